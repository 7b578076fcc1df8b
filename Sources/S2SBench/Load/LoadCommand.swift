// LoadCommand: `s2s-bench load`, the gRPC load generator's command line. It validates the options into a LoadPlan,
// hands it to LoadRunner and prints the LoadResult (text or one JSON object).

import ArgumentParser
import NIOCore

/// Generates unary or streaming gRPC load against a `bench.Echo` server, directly or through a proxy.
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

    @Option(help: "gRPC message body size in bytes.")
    var messageSize = 100

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
            messageSize: self.messageSize,
            warmupSeconds: self.warmup,
            durationSeconds: self.duration,
            threads: threads
        )
    }
}
