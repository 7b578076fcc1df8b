// The log output of `s2s-proxy start`: swift-log's text lines on standard error, or one JSON object per line, with an
// optional rate limit over all lines (`logging.throttleMaxRPS`, as the Go proxy's root throttle).
//
// The limit is a token bucket of `throttleMaxRPS` lines per second (a burst of as many); lines beyond it are dropped
// and counted, and the next line that passes is preceded by one saying how many were dropped. Errors and critical
// lines are never dropped.

import Foundation
import Logging
import NIOConcurrencyHelpers

enum LogFormat: String, CaseIterable {
    case text
    case json
}

/// Drops lines beyond a rate; shared by every logger of the process.
final class LogRateLimiter: Sendable {
    private let rate: Double
    private let state: NIOLockedValueBox<(tokens: Double, last: Double, dropped: Int)>

    init(linesPerSecond: Double) {
        rate = linesPerSecond
        state = NIOLockedValueBox((linesPerSecond, Self.now(), 0))
    }

    /// Whether a line may go out now; and how many were dropped since the last one that did.
    func admit() -> (allowed: Bool, droppedBefore: Int) {
        state.withLockedValue { state in
            let now = Self.now()
            state.tokens = min(rate, state.tokens + (now - state.last) * rate)
            state.last = now
            guard state.tokens >= 1 else {
                state.dropped += 1
                return (false, 0)
            }
            state.tokens -= 1
            defer { state.dropped = 0 }
            return (true, state.dropped)
        }
    }

    private static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

struct ProxyLogHandler: LogHandler {
    private var text: StreamLogHandler
    private let label: String
    private let format: LogFormat
    private let limiter: LogRateLimiter?

    init(label: String, level: Logger.Level, format: LogFormat, limiter: LogRateLimiter?) {
        self.text = StreamLogHandler.standardError(label: label)
        self.text.logLevel = level
        self.label = label
        self.format = format
        self.limiter = limiter
    }

    var logLevel: Logger.Level {
        get { text.logLevel }
        set { text.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { text.metadata }
        set { text.metadata = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { text.metadataProvider }
        set { text.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { text[metadataKey: key] }
        set { text[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        if let limiter, event.level < .error {
            let (allowed, dropped) = limiter.admit()
            guard allowed else { return }
            if dropped > 0 {
                var notice = event
                notice.level = .warning
                notice.message = "\(dropped) log lines dropped by logging.throttleMaxRPS"
                notice.metadata = nil
                emit(notice)
            }
        }
        emit(event)
    }

    private func emit(_ event: LogEvent) {
        switch format {
        case .text:
            text.log(event: event)
        case .json:
            var object: [String: String] = [:]
            for (key, value) in text.metadata { object[key] = "\(value)" }
            for (key, value) in text.metadataProvider?.get() ?? [:] { object[key] = "\(value)" }
            for (key, value) in event.metadata ?? [:] { object[key] = "\(value)" }
            object["time"] = Self.timestamp()
            object["level"] = "\(event.level)"
            object["logger"] = label
            object["source"] = event.source
            object["message"] = "\(event.message)"
            guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
            var line = data
            line.append(0x0A)
            FileHandle.standardError.write(line)
        }
    }

    private static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(cString: buffer)
    }
}
