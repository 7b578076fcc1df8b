// `s2s-proxy start --config FILE`: run the proxy until SIGINT or SIGTERM, then drain and exit 0. SIGHUP reloads the
// plugin chains from the config file (ConfigReloader).

import ArgumentParser
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
        help: "trace, debug, info, notice, warning (or warn), error, critical (default: logging.level, else info)."
    )
    var logLevel: String?

    @Option(name: .long, help: "text (default) or json: one JSON object per line.")
    var logFormat: String = "text"

    @Option(name: .long, help: "Event-loop threads (default: one per core).")
    var threads: Int?

    /// How often dropped log lines that no later line has reported are reported on their own.
    static let dropReportInterval = TimeAmount.seconds(10)

    func validate() throws {
        if let logLevel, LogLevelName.parse(logLevel) == nil {
            throw ValidationError("unknown log level '\(logLevel)'; use trace, debug, info, notice, warning, error or critical")
        }
        guard LogFormat(rawValue: logFormat) != nil else {
            throw ValidationError("unknown log format '\(logFormat)'; use text or json")
        }
    }

    func run() async throws {
        let format = LogFormat(rawValue: logFormat)!
        // The config is read before logging starts, for its level and throttle; its errors go to standard error.
        let loaded = try ConfigFile.load(config)
        // The command line wins over the config; validation has checked the config's name.
        let level = LogLevelName.parse(logLevel ?? loaded.config.logging?.level ?? "info") ?? .info
        let logLimits = LogLimits(logging: loaded.config.logging, logConfigs: loaded.config.logConfigs)
        let output = LogOutput(format: format, limits: logLimits)
        LoggingSystem.bootstrap { label in
            ProxyLogHandler(label: label, level: level, output: output)
        }
        let logger = Logger(label: "s2s-proxy").component(.startup)

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

        let plugins: PluginSetup
        let metrics = ProxyMetrics(logLimits: logLimits)
        do {
            plugins = try PluginSetup.build(
                config: loaded.config, configPath: config, logger: logger, metrics: metrics.plugins
            )
        } catch {
            for problem in error.problems {
                printToStandardError("error: \(config): \(problem)")
            }
            printToStandardError("s2s-proxy: refusing to start: plugins could not be set up (listed above)")
            throw ExitCode(2)
        }
        for line in plugins.describe(connectionNames: loaded.config.clusterConnections.map(\.name)) {
            logger.info("\(line)")
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads ?? System.coreCount)
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
        let server = try ProxyServer(
            config: loaded.config, plugins: plugins, group: group, threadPool: threadPool, logger: logger,
            metrics: metrics
        )
        let schemas = PluginSchemaDelivery(plugins: plugins, config: loaded.config, logger: logger)
        let schemaProblems = schemas.start(group: group)
        guard schemaProblems.isEmpty else {
            for problem in schemaProblems {
                printToStandardError("error: \(config): \(problem)")
            }
            printToStandardError("s2s-proxy: refusing to start: plugins cannot get their Temporal schema (listed above)")
            schemas.stop()
            try? await group.shutdownGracefully()
            throw ExitCode(2)
        }
        // Drops that no passing line of their component has reported yet (a quiet or silenced-by-rate component).
        let dropReports = group.next().scheduleRepeatedTask(
            initialDelay: Self.dropReportInterval, delay: Self.dropReportInterval
        ) { _ in
            output.reportDrops(label: "s2s-proxy")
        }
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

        let reloader = ConfigReloader(
            path: config, config: loaded.config, plugins: plugins, schemas: schemas, server: server, group: group,
            logLimits: logLimits, logger: logger
        )
        // Reloads run one after another, beside the wait for the next signal: a reload waiting for the Temporal
        // schema (up to a minute) must not keep SIGTERM waiting, nor a second SIGHUP.
        var reloads: [Task<Void, Never>] = []
        var signal = await signals.next()
        while signal == "SIGHUP" {
            let previous = reloads.last
            reloads.append(Task {
                await previous?.value
                guard !Task.isCancelled else { return }
                await reloader.reload()
            })
            signal = await signals.next()
        }
        logger.info("received \(signal); shutting down")
        for reload in reloads { reload.cancel() }
        await reloads.last?.value
        Task.detached {
            var second = await signals.next()
            while second == "SIGHUP" {
                second = await signals.next()
            }
            logger.warning("received \(second) while draining; exiting without waiting for calls in flight")
            Glibc.exit(1)
        }
        let drain = TimeAmount.nanoseconds(Int64(loaded.config.shutdown.drainTimeoutSeconds * 1e9))
        reloader.schemas.stop()
        await server.shutdown(drainTimeout: drain)
        PluginSetup.flushCaptures()
        try? await threadPool.shutdownGracefully()
        dropReports.cancel()
        output.reportDrops(label: "s2s-proxy")
        try? await group.shutdownGracefully()
        reloader.destroyAll()
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

/// Delivers SIGINT, SIGTERM and SIGHUP as an async wait instead of killing the process.
///
/// A classic self-pipe: the signal handler (which may run on any thread that does not block the signals) only
/// writes the signal number to a pipe, which is async-signal-safe; a dedicated thread reads the pipe. Nothing depends
/// on signal masks, so a signal cannot be lost to a thread that was created before the handler was installed.
final class TerminationSignals: @unchecked Sendable {
    // Written once in init, before the handlers are installed; read by the handler and the reader thread.
    nonisolated(unsafe) private static var pipeWriteEnd: Int32 = -1

    private let stream: AsyncStream<String>

    init() {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            fatalError("s2s-proxy: cannot create the signal pipe: errno \(errno)")
        }
        TerminationSignals.pipeWriteEnd = fds[1]
        var continuation: AsyncStream<String>.Continuation!
        stream = AsyncStream { continuation = $0 }
        let readEnd = fds[0]
        let signals = continuation!
        let reader = Thread {
            var number: Int32 = 0
            while true {
                let count = read(readEnd, &number, MemoryLayout<Int32>.size)
                if count == MemoryLayout<Int32>.size {
                    signals.yield(number == SIGINT ? "SIGINT" : number == SIGHUP ? "SIGHUP" : "SIGTERM")
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
        reader.name = "s2s-proxy signals"
        reader.start()
        for number in [SIGINT, SIGTERM, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { received in
                var value = received
                _ = write(TerminationSignals.pipeWriteEnd, &value, MemoryLayout<Int32>.size)
            }
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            sigaction(number, &action, nil)
        }
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
import Foundation
