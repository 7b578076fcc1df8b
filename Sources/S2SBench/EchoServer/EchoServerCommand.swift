// EchoServerCommand: `s2s-bench echo-server`, the gRPC backend every benchmark peer forwards to. It binds a
// cleartext HTTP/2 (prior knowledge) listener and gives each accepted connection an HTTP/2 codec and an
// EchoConnectionHandler (with the response files read once at start); it runs until the process is stopped.

import ArgumentParser
import NIOCore
import NIOHTTP2
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Runs the `bench.Echo` gRPC backend.
struct EchoServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo-server",
        abstract: "Serve bench.Echo/Unary and bench.Echo/Stream over cleartext HTTP/2 (h2c, prior knowledge)."
    )

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0 picks a free one).")
    var port = 0

    @Option(help: "Event-loop threads (default: one per core).")
    var threads = System.coreCount

    @Flag(
        help: """
            Accept any number of RST_STREAM frames. By default a connection that receives more than 200 in 30 s \
            is closed with GOAWAY, as NIO-based servers do.
            """
    )
    var tolerateResets = false

    @Option(
        name: .customLong("response-file"),
        help: """
            PATH=FILE: answer calls of the method PATH (/package.Service/Method) with FILE's bytes, a serialized \
            protobuf message without the gRPC prefix, instead of echoing: once per request message, so unary calls \
            get one response and each message on a stream gets one (repeatable).
            """
    )
    var responseFiles: [KeyValueArgument] = []

    func validate() throws {
        guard self.threads > 0 else {
            throw ValidationError("--threads must be at least 1")
        }
        _ = try self.responseBodies()
    }

    /// The response message body of each path given a response file.
    private func responseBodies() throws -> [String: [UInt8]] {
        var bodies: [String: [UInt8]] = [:]
        for entry in self.responseFiles {
            guard entry.key.hasPrefix("/"), entry.key.dropFirst().contains("/") else {
                throw ValidationError("--response-file \(entry.key): the path must look like /package.Service/Method")
            }
            guard bodies[entry.key] == nil else {
                throw ValidationError("--response-file \(entry.key) is given twice")
            }
            bodies[entry.key] = try MessageFile.body(atPath: entry.value)
        }
        return bodies
    }

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: self.threads)
        let toleratingResets = self.tolerateResets
        let responses = try self.responseBodies().mapValues {
            GRPCMessageCounter.makeMessage(body: $0, allocator: ByteBufferAllocator())
        }
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let codec = BenchHTTP2Tuning.codec(mode: .server, toleratingResets: toleratingResets)
                    let resetCounter = InboundResetCounter(side: .server)
                    try channel.pipeline.syncOperations.addHandlers([
                        resetCounter, codec, EchoConnectionHandler(resetCounter: resetCounter, responses: responses),
                    ])
                }
            }
            .bind(host: self.host, port: self.port)
            .get()
        let boundPort = listener.localAddress?.port ?? self.port
        print("listening on \(self.host):\(boundPort)")
        // The benchmark script waits for this line through a pipe, where stdout is block-buffered.
        fflush(nil)
        try await listener.closeFuture.get()
        try await group.shutdownGracefully()
    }
}
