// Gets the Temporal schema to the plugins that need it: one `TemporalSchemaSource` per cluster connection with
// such a plugin (a saved file, or gRPC reflection from the local Temporal, retried with back-off), and, once it is
// ready, `schema_ready` for each of those entries on the plugin control queue — never on an event loop, and never
// concurrently with another control hook. Until then the entries answer their calls UNAVAILABLE with the source's
// reason.

import Dispatch
import Logging
import NIOCore
import NIOPosix

public final class PluginSchemaDelivery: Sendable {
    /// Where control-thread hooks (schema_ready) run, one at a time.
    static let controlQueue = DispatchQueue(label: "s2s-proxy.plugin-control")

    private let sources: [TemporalSchemaSource]
    private let entriesBySource: [[PluginEntry]]

    /// Sources for every connection of `config` whose chain needs the schema; nothing starts yet.
    public init(plugins: PluginSetup, config: ProxyConfig, logger: Logger) {
        var sources: [TemporalSchemaSource] = []
        var entriesBySource: [[PluginEntry]] = []
        for (index, connection) in config.clusterConnections.enumerated() where plugins.needsSchema(connection: index) {
            let entries = plugins.entries[index].filter { $0.library.needsSchema }
            guard let origin = TemporalSchemaSource.Origin(connection: connection) else {
                for entry in entries {
                    entry.schemaFailed("connection \(connection.name) has no source for the Temporal schema: set schema.file or schema.reflectionAddress")
                }
                continue
            }
            var sourceLogger = logger.component(.schema)
            sourceLogger[metadataKey: "connection"] = "\(connection.name)"
            // Reflection talks to the local Temporal, so it connects the way local.tcpClient does.
            let security: ReflectionSchemaClient.TransportSecurity
            do {
                let tls = try TLSClientSetup(
                    config: connection.local.tcpClient?.tls ?? TLSConfig(),
                    label: "clusterConnections[\(index)].local.tcpClient.tls"
                )
                security = tls.map { .tls($0, logger: sourceLogger.component(.tlsHandshake)) } ?? .plaintext
            } catch {
                for entry in entries {
                    entry.schemaFailed("cannot reach the Temporal schema: \(error)")
                }
                continue
            }
            let source = TemporalSchemaSource(
                origin: origin, settings: .init(upstream: config.upstream), security: security, logger: sourceLogger
            )
            for entry in entries {
                entry.attach(schemaSource: source)
            }
            source.whenReady { schema in
                Self.controlQueue.async {
                    for entry in entries {
                        entry.deliverSchema(schema)
                    }
                }
            }
            sources.append(source)
            entriesBySource.append(entries)
        }
        self.sources = sources
        self.entriesBySource = entriesBySource
    }

    /// Starts loading or pulling every schema. Schemas from files are loaded and handed to their plugins before
    /// this returns; the problems returned (a file that does not load, a plugin that rejects its schema) mean
    /// the configuration cannot serve those plugins' calls.
    @discardableResult
    public func start(group: EventLoopGroup) -> [String] {
        start(sources, group: group)
    }

    /// For `validate`: loads the schema files (pulls nothing) and hands them to their plugins; the problems found.
    /// Returns the reflection addresses that `start` would pull from, for a note.
    public func checkFiles() -> (problems: [String], pulledAtStart: [String]) {
        var pulled: [String] = []
        var files: [TemporalSchemaSource] = []
        for source in sources {
            if case .file = source.origin { files.append(source) } else { pulled.append("\(source.origin)") }
        }
        let group = MultiThreadedEventLoopGroup.singleton
        return (start(files, group: group), pulled)
    }

    private func start(_ selected: [TemporalSchemaSource], group: EventLoopGroup) -> [String] {
        for source in selected {
            source.start(group: group)
        }
        Self.controlQueue.sync {}
        var problems: [String] = []
        for (source, entries) in zip(sources, entriesBySource) where selected.contains(where: { $0 === source }) {
            if case .failed(let error) = source.currentState {
                problems.append("\(error)")
                continue
            }
            for entry in entries {
                if case .failed(let reason) = entry.currentSchemaState { problems.append(reason) }
            }
        }
        return problems
    }

    /// Stops retries; waits for schema deliveries already queued.
    public func stop() {
        for source in sources {
            source.stop()
        }
        Self.controlQueue.sync {}
    }
}
