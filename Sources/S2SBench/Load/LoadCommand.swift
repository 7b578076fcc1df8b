// LoadCommand: `s2s-bench load`, the gRPC load generator's command line. It validates the options into a LoadPlan,
// hands it to LoadRunner and prints the LoadResult (text or one JSON object).

import ArgumentParser
import NIOCore

/// Generates unary or streaming gRPC load against a `bench.Echo` server, directly or through a proxy; with `--path`
/// and `--request-file`, calls of any method with a real message (the echo server answers them with
/// `--response-file`).
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Drive bench.Echo calls over cleartext HTTP/2 and report throughput, latency and errors."
    )

    @Option(help: "host:port of the echo server or the proxy in front of it.")
    var target: String

    @Option(help: "unary: closed-loop unary calls; stream: bidirectional echo streams.")
    var mode = LoadMode.unary

    @Option(help: "HTTP/2 connections to spread the load over.")
    var connections = 4

    @Option(help: "Calls in flight (unary) or open streams (stream), over all connections.")
    var concurrency = 64

    @Option(help: "Messages each stream keeps in flight (stream mode).")
    var streamWindow = 8

    @Option(help: "Measured seconds.")
    var duration = 10.0

    @Option(help: "Seconds of load before measuring.")
    var warmup = 2.0

    @Option(help: "gRPC message body size in bytes (a fixed pattern; --request-file replaces it).")
    var messageSize = 100

    @Option(help: "The gRPC method to call, /package.Service/Method (default: bench.Echo/Unary or bench.Echo/Stream).")
    var path: String?

    @Option(
        help: """
            Send this file's bytes as the request message body instead of --message-size bytes: a serialized \
            protobuf message, without the 5-byte gRPC prefix.
            """
    )
    var requestFile: String?

    @Option(
        name: .customLong("header"),
        help: "Request metadata NAME=VALUE sent with every call (repeatable), e.g. temporal-namespace=orders."
    )
    var headers: [KeyValueArgument] = []

    @Option(help: "Event-loop threads (default: one per connection, at most one per core).")
    var threads: Int?

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        _ = try self.plan()
    }

    func run() async throws {
        let result = try await LoadRunner(plan: try self.plan()).run()
        print(self.json ? try result.json() : result.report)
        if result.completed == 0 {
            throw LoadRunError(description: "no call completed in the measured window")
        }
    }

    private func plan() throws -> LoadPlan {
        guard let colon = self.target.lastIndex(of: ":"), let port = Int(self.target[self.target.index(after: colon)...]),
            (1...65535).contains(port)
        else {
            throw ValidationError("--target must be host:port, got '\(self.target)'")
        }
        var host = String(self.target[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        }
        guard self.connections >= 1, self.concurrency >= self.connections else {
            throw ValidationError("need at least one connection and at least one call or stream per connection")
        }
        guard self.streamWindow >= 1, self.messageSize >= 0, self.messageSize <= 4 << 20 else {
            throw ValidationError("--stream-window must be at least 1 and --message-size between 0 and 4 MiB")
        }
        let path = self.path ?? self.mode.echoMethod.rawValue
        guard path.hasPrefix("/"), path.dropFirst().contains("/") else {
            throw ValidationError("--path must look like /package.Service/Method, got '\(path)'")
        }
        for header in self.headers where header.key != header.key.lowercased() || header.key.hasPrefix(":") {
            throw ValidationError("--header \(header.key): metadata names are lower case and not pseudo-headers")
        }
        let requestBody: [UInt8]
        if let requestFile = self.requestFile {
            requestBody = try MessageFile.body(atPath: requestFile)
        } else {
            requestBody = [UInt8](repeating: UInt8(ascii: "x"), count: self.messageSize)
        }
        guard self.duration > 0, self.warmup >= 0 else {
            throw ValidationError("--duration must be positive and --warmup not negative")
        }
        let threads = self.threads ?? min(self.connections, System.coreCount)
        guard threads >= 1 else {
            throw ValidationError("--threads must be at least 1")
        }
        return LoadPlan(
            host: host,
            port: port,
            mode: self.mode,
            connections: self.connections,
            concurrency: self.concurrency,
            messagesInFlightPerStream: self.streamWindow,
            path: path,
            metadata: self.headers.map { (name: $0.key, value: $0.value) },
            requestBody: requestBody,
            warmupSeconds: self.warmup,
            durationSeconds: self.duration,
            threads: threads
        )
    }
}
