// LoadResult: the summary of one load run, as the JSON object `s2s-bench load --json` prints (flat, so shell
// tools can pick fields) and as a short human-readable report. It only formats; measuring is the runner's job.

import Foundation

/// Throughput, latency percentiles and errors of one load run.
struct LoadResult: Codable, Sendable {
    var mode: LoadMode
    var target: String
    var connections: Int
    /// Calls in flight (unary) or streams (stream).
    var concurrency: Int
    /// Messages each stream keeps in flight; absent for unary runs.
    var messagesInFlightPerStream: Int?
    /// The gRPC method called.
    var path: String
    /// Request message body size in bytes.
    var messageSize: Int
    var warmupSeconds: Double
    /// Length of the measured window, averaged over connections.
    var measuredSeconds: Double
    /// Calls (unary) or echoed messages (stream) completed in the measured window.
    var completed: UInt64
    /// `completed` per second.
    var perSecond: Double
    /// Response message bodies received per second, in MB (10^6 bytes); for echoed calls, also the request rate.
    var megabytesPerSecond: Double
    var p50Micros: Double
    var p90Micros: Double
    var p99Micros: Double
    var maxMicros: Double
    /// Failed calls, reset streams and calls lost with a connection, over the whole run.
    var errors: UInt64
    /// RST_STREAM frames the peer sent over the whole run, including those for streams that had already finished
    /// (which HTTP/2 stacks ignore, but which cost a frame per call and trip strict peers' reset limits).
    var resetsReceived = 0
    /// Connections that ended before the run did (the load generator does not replace them).
    var connectionsLost = 0
    /// Why they ended, each reason once.
    var connectionLossReasons: [String] = []
    /// CPU time the load generator itself used during the measured window, as a percentage of one core; near
    /// 100 × cores means the generator, not the system under test, may be the limit.
    var loadGeneratorCPUPercent: Double

    /// Summarises `tally` (all connections merged) for `plan`.
    init(plan: LoadPlan, tally: LoadTally, errors: UInt64, cpuSeconds: Double) {
        self.mode = plan.mode
        self.target = plan.target
        self.connections = plan.connections
        self.concurrency = plan.concurrency
        self.messagesInFlightPerStream = plan.mode == .stream ? plan.messagesInFlightPerStream : nil
        self.path = plan.path
        self.messageSize = plan.messageSize
        self.warmupSeconds = plan.warmupSeconds
        let connections = max(tally.connections, 1)
        self.measuredSeconds = Double(tally.recordedNanoseconds) / Double(connections) / 1e9
        self.completed = tally.completed
        self.perSecond = self.measuredSeconds > 0 ? Double(tally.completed) / self.measuredSeconds : 0
        self.megabytesPerSecond =
            self.measuredSeconds > 0 ? Double(tally.responseBytes) / self.measuredSeconds / 1e6 : 0
        self.p50Micros = Self.micros(tally.latency.percentile(0.50))
        self.p90Micros = Self.micros(tally.latency.percentile(0.90))
        self.p99Micros = Self.micros(tally.latency.percentile(0.99))
        self.maxMicros = Self.micros(tally.latency.maximum)
        self.errors = errors
        self.loadGeneratorCPUPercent = self.measuredSeconds > 0 ? 100 * cpuSeconds / self.measuredSeconds : 0
    }

    /// A few lines for a person reading a terminal.
    var report: String {
        let unit = self.mode == .unary ? "calls" : "messages"
        let window = self.messagesInFlightPerStream.map { ", \($0) messages in flight each" } ?? ""
        return """
            \(self.mode.rawValue) load on \(self.target): \(self.connections) connections, \(self.concurrency) \
            \(self.mode == .unary ? "calls in flight" : "streams")\(window), \(self.messageSize)-byte requests to \
            \(self.path)
            measured     \(Self.format(self.measuredSeconds)) s after \(Self.format(self.warmupSeconds)) s warm-up
            throughput   \(Self.format(self.perSecond)) \(unit)/s, \(Self.format(self.megabytesPerSecond)) MB/s
            latency µs   p50 \(Self.format(self.p50Micros))  p90 \(Self.format(self.p90Micros))  \
            p99 \(Self.format(self.p99Micros))  max \(Self.format(self.maxMicros))
            errors       \(self.errors)
            resets       \(self.resetsReceived) RST_STREAM frames received
            connections  \(self.connectionsLost) lost\(self.connectionLossReasons.isEmpty ? "" : ": " + self.connectionLossReasons.joined(separator: "; "))
            load CPU     \(Self.format(self.loadGeneratorCPUPercent)) % of one core
            """
    }

    private static func micros(_ nanoseconds: UInt64) -> Double {
        (Double(nanoseconds) / 1000).rounded()
    }

    private static func format(_ value: Double) -> String {
        String(format: "%.1f", value)
    }

    /// The result as one line of JSON with sorted keys.
    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
