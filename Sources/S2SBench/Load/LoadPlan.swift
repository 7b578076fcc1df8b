// LoadPlan: what one `s2s-bench load` run does, as a plain value: where to send, which call pattern, how much
// concurrency, how long. The command line fills it in; the runner and workloads only read it.

import ArgumentParser

/// The call pattern of a load run.
enum LoadMode: String, ExpressibleByArgument, Codable, Sendable {
    /// Unary calls: one request message, one response message, trailers; a finished call starts the next one.
    case unary
    /// Long-lived bidirectional streams, each keeping a fixed number of echoed messages in flight.
    case stream

    /// The `bench.Echo` method this pattern calls unless told otherwise.
    var echoMethod: BenchEchoMethod {
        switch self {
        case .unary: .unary
        case .stream: .stream
        }
    }
}

/// The parameters of one load run.
struct LoadPlan: Sendable {
    /// Host (an address on this machine) of the gRPC server or proxy under test.
    var host: String
    /// Its port.
    var port: Int
    var mode: LoadMode
    /// HTTP/2 connections the load is spread over.
    var connections: Int
    /// Calls in flight (unary) or open streams (stream), over all connections.
    var concurrency: Int
    /// Messages each stream keeps in flight in stream mode.
    var messagesInFlightPerStream: Int
    /// The gRPC method the calls go to (`/package.Service/Method`).
    var path: String
    /// Custom request metadata sent with every call, after the standard gRPC headers.
    var metadata: [(name: String, value: String)]
    /// The request message body (the 5-byte gRPC prefix comes on top): a file's bytes, or a fixed pattern.
    var requestBody: [UInt8]
    /// Seconds of load before measuring starts, so connections, caches and the peer's pools are warm.
    var warmupSeconds: Double
    /// Seconds measured.
    var durationSeconds: Double
    /// Event-loop threads of the load generator.
    var threads: Int

    /// Request message body size in bytes.
    var messageSize: Int { self.requestBody.count }

    /// `host:port`, as sent in `:authority` and printed in reports.
    var target: String { "\(self.host):\(self.port)" }

    /// How many calls (or streams) connection number `index` carries: the concurrency split as evenly as possible.
    func concurrency(ofConnection index: Int) -> Int {
        self.concurrency / self.connections + (index < self.concurrency % self.connections ? 1 : 0)
    }
}
