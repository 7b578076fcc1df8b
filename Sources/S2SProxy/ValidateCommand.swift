// `s2s-proxy validate --config FILE`: parse and check a config without starting anything.

import ArgumentParser
import Host
import Logging

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a config file: exit 0 with a one-line summary, or print its errors (with lines) and exit 2."
    )

    @Option(name: .long, help: "Path of the YAML config file.")
    var config: String

    func run() async throws {
        let loaded = try ConfigFile.load(config)
        // Plugins are loaded and given their options, so that a config that validates also starts.
        let plugins: PluginSetup
        do {
            var logger = Logger(label: "s2s-proxy")
            logger.logLevel = .warning
            plugins = try PluginSetup.build(config: loaded.config, configPath: config, logger: logger, metrics: PluginMetricsRegistry())
        } catch {
            for problem in error.problems {
                printToStandardError("error: \(config): \(problem)")
            }
            throw ExitCode(2)
        }
        defer { plugins.destroy() }
        var logger = Logger(label: "s2s-proxy")
        logger.logLevel = .critical
        let schemas = PluginSchemaDelivery(plugins: plugins, config: loaded.config, logger: logger)
        let (schemaProblems, pulledAtStart) = schemas.checkFiles()
        defer { schemas.stop() }
        guard schemaProblems.isEmpty else {
            for problem in schemaProblems {
                printToStandardError("error: \(config): \(problem)")
            }
            throw ExitCode(2)
        }
        print(loaded.summary)
        for line in plugins.describe(connectionNames: loaded.config.clusterConnections.map(\.name)) {
            print(line)
        }
        for (index, connection) in loaded.config.clusterConnections.enumerated()
        where connection.schema != nil && !plugins.needsSchema(connection: index) {
            print("note: clusterConnections[\(index)].schema is set, but no plugin of \(connection.name) needs the Temporal schema; it is not loaded")
        }
        for connection in loaded.config.clusterConnections {
            guard let shards = connection.shardCount, shards.mode == "routing" else { continue }
            print(
                "note: \(connection.name): shard-count mode routing: the local cluster is told the remote has "
                    + "\(shards.localShardCount) shards and the remote that the local has \(shards.remoteShardCount) "
                    + "(each its own count), and the proxy answers their replication streams itself, moving each task "
                    + "to its real shard; configure routing on this proxy of the pair only")
        }
        for origin in pulledAtStart {
            print("note: plugins get the Temporal schema by \(origin) once started; calls they want wait (UNAVAILABLE) until then")
        }
        for note in loaded.unsupported {
            print("note: \(note) — `start` refuses this config until that feature is built")
        }
        for warning in loaded.warnings {
            print("warning: \(warning)")
        }
    }
}
