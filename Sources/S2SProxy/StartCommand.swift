// `s2s-proxy start --config FILE`: run the proxy until SIGINT or SIGTERM, then drain and exit 0.

import ArgumentParser
import Dispatch
import Host
import Logging
import NIOCore
import NIOPosix

struct StartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Run the proxy."
    )

    @Option(name: .long, help: "Path of the YAML config file.")
    var config: String

    @Option(
        name: [.customLong("log-level"), .customLong("level")],
        help: "trace, debug, info, notice, warning (or warn), error, critical."
    )
    var logLevel: String = "info"

    @Option(name: .long, help: "Event-loop threads (default: one per core).")
    var threads: Int?

    func validate() throws {
        guard LogLevelName.parse(logLevel) != nil else {
            throw ValidationError("unknown log level '\(logLevel)'; use trace, debug, info, notice, warning, error or critical")
        }
    }

    func run() async throws {
        let level = LogLevelName.parse(logLevel)!
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "s2s-proxy")

        let loaded = try ConfigFile.load(config)
        if !loaded.unsupported.isEmpty {
            for problem in loaded.unsupported {
                printToStandardError("error: \(problem)")
            }
            printToStandardError("s2s-proxy: refusing to start: the config uses features this build does not have yet (listed above)")
            throw ExitCode(2)
        }
        for warning in loaded.warnings {
            logger.warning("\(warning)")
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads ?? System.coreCount)
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
        let server = try ProxyServer(config: loaded.config, group: group, threadPool: threadPool, logger: logger)
        let signals = TerminationSignals()
        do {
            try await server.start()
        } catch {
            logger.critical("start-up failed: \(error)")
            try? await group.shutdownGracefully()
            throw ExitCode(1)
        }
        logger.info("s2s-proxy started", metadata: [
            "version": "\(ProxyVersion.current)",
            "connections": "\(loaded.config.clusterConnections.count)",
        ])

        let signal = await signals.next()
        logger.info("received \(signal); shutting down")
        let drain = TimeAmount.nanoseconds(Int64(loaded.config.shutdown.drainTimeoutSeconds * 1e9))
        await server.shutdown(drainTimeout: drain)
        try? await threadPool.shutdownGracefully()
        try? await group.shutdownGracefully()
        logger.info("s2s-proxy stopped")
    }
}

/// Maps the CLI's level names (including the Go proxy's `warn`) to swift-log levels.
enum LogLevelName {
    static func parse(_ name: String) -> Logger.Level? {
        switch name.lowercased() {
        case "warn": return .warning
        default: return Logger.Level(rawValue: name.lowercased())
        }
    }
}

/// Delivers SIGINT and SIGTERM as an async sequence instead of killing the process.
final class TerminationSignals: @unchecked Sendable {
    // Sources are only touched in init; Dispatch serialises their handlers on `queue`.
    private let sources: [DispatchSourceSignal]
    private let stream: AsyncStream<String>

    init() {
        let queue = DispatchQueue(label: "s2s-proxy.signals")
        var continuation: AsyncStream<String>.Continuation!
        stream = AsyncStream { continuation = $0 }
        var sources: [DispatchSourceSignal] = []
        for (number, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { continuation.yield(name) }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    /// Waits for the first termination signal.
    func next() async -> String {
        for await name in stream {
            return name
        }
        return "end of signal stream"
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
