// SIGHUP: read the config file again and swap the plugin chains (and their options) for the calls that start after,
// without touching connections or calls in flight; the log limits (`logging.throttleMaxRPS`, `logConfigs`) change
// for every logger at the same moment.
//
// A new config with errors, features this build lacks, plugins that do not load or a schema that does not arrive
// within a minute is refused with its problems in the log, and the running config stays. A reload still waiting for
// the schema when SIGTERM or SIGINT arrives is abandoned, so that shutdown does not wait for it. What a reload cannot
// change without new sockets (listeners, upstreams, mux, TLS, limits, the health and metrics endpoints) or new
// loggers (`logging.level`) is named in a warning and takes effect at the next start; the plugin chains are swapped all the same. The old chains stay
// loaded until exit: calls in flight may still be using them.

import Foundation
import Host
import Logging
import NIOCore

final class ConfigReloader {
    private let path: String
    private let server: ProxyServer
    private let group: EventLoopGroup
    private let logger: Logger
    private let logLimits: LogLimits
    private var config: ProxyConfig
    private(set) var plugins: PluginSetup
    private(set) var schemas: PluginSchemaDelivery
    /// Setups replaced by a reload: kept, since calls in flight may still be using their entries.
    private var retired: [(PluginSetup, PluginSchemaDelivery)] = []

    init(
        path: String, config: ProxyConfig, plugins: PluginSetup, schemas: PluginSchemaDelivery, server: ProxyServer,
        group: EventLoopGroup, logLimits: LogLimits, logger: Logger
    ) {
        self.logLimits = logLimits
        self.path = path
        self.config = config
        self.plugins = plugins
        self.schemas = schemas
        self.server = server
        self.group = group
        self.logger = logger
    }

    func reload() async {
        logger.info("SIGHUP: reloading the plugin chains and log limits", metadata: ["config": "\(path)"])
        let loaded: LoadedConfig
        do {
            loaded = try ConfigLoader.load(path: path)
        } catch {
            logger.error("reload refused; the running config stays: \(error)")
            return
        }
        guard loaded.unsupported.isEmpty else {
            let problems = loaded.unsupported.map { "\($0)" }.joined(separator: "; ")
            logger.error("reload refused: the config uses features this build does not have: \(problems)")
            return
        }
        let restartOnly = Self.changesNeedingRestart(from: config, to: loaded.config)
        if !restartOnly.isEmpty {
            let names = restartOnly.joined(separator: ", ")
            logger.warning("reload: these changes take effect only at the next start: \(names)")
        }
        let setup: PluginSetup
        do {
            setup = try PluginSetup.build(
                config: loaded.config, configPath: path, logger: logger, metrics: server.metrics.plugins
            )
        } catch {
            logger.error("reload refused: \(error.problems.joined(separator: "; "))")
            return
        }
        let delivery = PluginSchemaDelivery(plugins: setup, config: loaded.config, logger: logger)
        let problems = delivery.start(group: group)
        guard problems.isEmpty else {
            logger.error("reload refused: \(problems.joined(separator: "; "))")
            delivery.stop()
            setup.destroy()
            return
        }
        // The new chains take over once every entry that needs the Temporal schema has it, so that no call meets
        // a chain still waiting for it.
        let deadline = Date().addingTimeInterval(60)
        while true {
            let states = setup.entries.flatMap { $0 }.map(\.currentSchemaState)
            if let failure = states.compactMap({ state -> String? in
                if case .failed(let reason) = state { return reason }
                return nil
            }).first {
                logger.error("reload refused: a plugin cannot use the Temporal schema: \(failure)")
                delivery.stop()
                setup.destroy()
                return
            }
            if !states.contains(where: { if case .pending = $0 { return true } else { return false } }) {
                break
            }
            guard !Task.isCancelled else {
                logger.warning("reload abandoned: the proxy is shutting down; the running config stays until it exits")
                delivery.stop()
                setup.destroy()
                return
            }
            guard Date() < deadline else {
                logger.error("reload refused: the Temporal schema did not arrive within 60 s")
                delivery.stop()
                setup.destroy()
                return
            }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        server.replacePlugins(setup)
        logLimits.apply(logging: loaded.config.logging, logConfigs: loaded.config.logConfigs)
        retired.append((plugins, schemas))
        schemas.stop()
        plugins = setup
        schemas = delivery
        config = loaded.config
        for line in setup.describe(connectionNames: loaded.config.clusterConnections.map(\.name)) {
            logger.info("reloaded \(line)")
        }
        logger.info("reload done: new calls use the new plugin chains; log limits are the new ones")
    }

    /// At exit, after the drain: every setup, current and retired.
    func destroyAll() {
        for (setup, _) in retired { setup.destroy() }
        plugins.destroy()
    }

    /// The settings that differ but need new sockets or state to apply, by name.
    static func changesNeedingRestart(from old: ProxyConfig, to new: ProxyConfig) -> [String] {
        var changes: [String] = []
        if old.clusterConnections.count != new.clusterConnections.count {
            changes.append("the number of cluster connections")
        }
        for (index, (before, after)) in zip(old.clusterConnections, new.clusterConnections).enumerated() {
            let prefix = "clusterConnections[\(index)]"
            if before.name != after.name { changes.append("\(prefix).name") }
            if before.local != after.local { changes.append("\(prefix).local") }
            if before.remote != after.remote { changes.append("\(prefix).remote") }
            if before.schema != after.schema { changes.append("\(prefix).schema") }
            if before.localClusterHealthCheck != after.localClusterHealthCheck {
                changes.append("\(prefix).localClusterHealthCheck")
            }
            if before.remoteClusterHealthCheck != after.remoteClusterHealthCheck {
                changes.append("\(prefix).remoteClusterHealthCheck")
            }
        }
        if old.limits != new.limits { changes.append("limits") }
        if old.upstream != new.upstream { changes.append("upstream") }
        if old.shutdown != new.shutdown { changes.append("shutdown") }
        // The level is each logger's own from the start; the limits (throttleMaxRPS, logConfigs) are applied.
        if old.logging?.level != new.logging?.level { changes.append("logging.level") }
        if old.metrics != new.metrics { changes.append("metrics") }
        return changes
    }
}
