// The log output of `s2s-proxy start`: swift-log's lines as text on standard error, or one JSON object per line,
// each tagged with its component and passed through the process's `LogLimits`.
//
// Owns `ProxyLogHandler` (the swift-log handler, one value per logger) and `LogOutput` (what every handler writes
// to: the format, the limits, the sink). A handler keeps its component apart from its metadata: setting the
// `component` metadata key (`Logger.component(_:)`) stores the component, so the lines of a logger cost one
// `LogLimits.admit` each and nothing is looked up by name when a line is written.

import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How lines are written.
public enum LogFormat: String, CaseIterable, Sendable {
    /// `<time> <level> <label>[<component>]: key=value ... [<source>] <message>`
    case text
    /// One JSON object per line: `time`, `level`, `logger`, `component`, `source`, `message` and the metadata.
    case json
}

/// Where every logger of the process writes: one format, one set of limits, one sink.
public final class LogOutput: Sendable {
    public let format: LogFormat
    public let limits: LogLimits
    private let sink: @Sendable (String) -> Void

    /// Writes `format` lines to `sink` (standard error unless a test passes its own), as `limits` allow.
    public init(
        format: LogFormat, limits: LogLimits,
        sink: @escaping @Sendable (String) -> Void = { LogOutput.standardError($0) }
    ) {
        self.format = format
        self.limits = limits
        self.sink = sink
    }

    /// Writes one line per component whose dropped lines no passing line has reported yet; call periodically.
    public func reportDrops(label: String) {
        for (component, count) in limits.takeUnreportedDrops() {
            write(
                level: .warning, message: limits.dropNotice(count, component: component), label: label,
                component: component, metadata: [:], source: "Host"
            )
        }
    }

    /// Formats and writes one line, bypassing the limits (the caller has asked them).
    func write(
        level: Logger.Level, message: String, label: String, component: LogComponent?, metadata: Logger.Metadata,
        source: String
    ) {
        switch format {
        case .text:
            let tag = component.map { "[\($0.name)]" } ?? ""
            let pairs = metadata.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
            sink("\(Self.timestamp()) \(level) \(label)\(tag):\(pairs) [\(source)] \(message)\n")
        case .json:
            var object: [String: String] = [:]
            for (key, value) in metadata { object[key] = "\(value)" }
            object["time"] = Self.timestamp()
            object["level"] = "\(level)"
            object["logger"] = label
            object["component"] = component?.name
            object["source"] = source
            object["message"] = message
            guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]),
                  let line = String(data: data, encoding: .utf8) else { return }
            sink(line + "\n")
        }
    }

    /// Writes `line` to standard error in one `write`, so lines from several threads do not interleave.
    public static func standardError(_ line: String) {
        var line = line
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                #if canImport(Glibc)
                let written = Glibc.write(2, bytes.baseAddress! + offset, bytes.count - offset)
                #else
                let written = Musl.write(2, bytes.baseAddress! + offset, bytes.count - offset)
                #endif
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
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

/// The swift-log handler of `s2s-proxy start`.
public struct ProxyLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let output: LogOutput
    /// Set through the `component` metadata key; kept out of `metadata` so `LogOutput` places it itself.
    private var component: LogComponent?

    /// A handler for the logger `label`, writing lines at `level` and above to `output`.
    public init(label: String, level: Logger.Level, output: LogOutput) {
        self.label = label
        self.logLevel = level
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get {
            if key == LogComponent.metadataKey, let component { return .string(component.name) }
            return metadata[key]
        }
        set {
            // A name no component has stays plain metadata: it is still shown, and the root limit applies.
            if key == LogComponent.metadataKey, let name = newValue.map({ "\($0)" }),
               let known = LogComponent(name: name) {
                component = known
                metadata[key] = nil
            } else {
                if key == LogComponent.metadataKey { component = nil }
                metadata[key] = newValue
            }
        }
    }

    public func log(event: LogEvent) {
        switch output.limits.admit(component, level: event.level) {
        case .drop:
            return
        case .write(let dropped):
            if dropped > 0 {
                output.write(
                    level: .warning, message: output.limits.dropNotice(dropped, component: component), label: label,
                    component: component, metadata: [:], source: event.source
                )
            }
        }
        var merged = metadata
        if let provided = metadataProvider?.get() {
            merged.merge(provided) { _, new in new }
        }
        if let own = event.metadata {
            merged.merge(own) { _, new in new }
        }
        output.write(
            level: event.level, message: "\(event.message)", label: label, component: component, metadata: merged,
            source: event.source
        )
    }
}
