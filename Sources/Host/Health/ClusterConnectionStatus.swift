// The live state of one cluster connection as the health endpoints and `/debug/connections` see it: its listeners,
// the local Temporal upstream, the remote side (a TCP upstream or the mux tunnel), its plugin chains and their
// schema, and its listeners' open replication streams. Owns the health rules' inputs (probing the upstreams,
// counting sessions) and the debug JSON of one connection; it changes nothing on the connection.

import NIOConcurrencyHelpers
import NIOCore

/// One cluster connection's parts, read for health answers and debug reports.
final class ClusterConnectionStatus: Sendable {
    /// Where the remote side is reached.
    enum RemoteSide: Sendable {
        case tcp(Upstream)
        case mux(MuxTransport)
    }

    /// A socket the connection listens on.
    struct Listener: Sendable, Encodable {
        /// `outbound` (local Temporal calls out), `inbound` (the remote side calls in), `mux` (mux-server),
        /// `localHealthCheck` or `remoteHealthCheck`.
        var role: String
        var address: String
    }

    let name: String
    let listeners: [Listener]
    private let local: Upstream
    private let remote: RemoteSide
    /// The chains new calls use; a reload swaps them (`replaceChains`), so that health and debug answers speak of
    /// the plugins that serve, not of the ones a reload retired.
    private let currentChains: NIOLockedValueBox<[PluginChain]>
    private var chains: [PluginChain] { currentChains.withLockedValue { $0 } }
    /// One per listener (outbound, inbound).
    private let replicationStreams: [ReplicationStreamRegistry]
    /// Shard-count mode routing's two directions; empty in other modes.
    private let routing: [RoutingDirection]
    private let localProbe = ProbeCache()
    private let remoteProbe = ProbeCache()

    init(
        name: String, listeners: [Listener], local: Upstream, remote: RemoteSide, chains: [PluginChain],
        replicationStreams: [ReplicationStreamRegistry] = [], routing: [RoutingDirection] = []
    ) {
        self.routing = routing
        self.name = name
        self.listeners = listeners
        self.local = local
        self.remote = remote
        currentChains = NIOLockedValueBox(chains)
        self.replicationStreams = replicationStreams
    }

    /// The status of `connection`, listing the addresses its configuration listens on.
    convenience init(
        connection: ClusterConnectionConfig, local: Upstream, remote: RemoteSide, chains: [PluginChain],
        replicationStreams: [ReplicationStreamRegistry] = [], routing: [RoutingDirection] = []
    ) {
        let addresses: [(String, String?)] = [
            ("outbound", connection.local.tcpServer?.address),
            ("inbound", connection.remote.connectionType == .tcp ? connection.remote.tcpServer?.address : nil),
            ("mux", connection.remote.connectionType == .muxServer ? connection.remote.muxAddressInfo?.address : nil),
            ("localHealthCheck", connection.localClusterHealthCheck?.listenAddress),
            ("remoteHealthCheck", connection.remoteClusterHealthCheck?.listenAddress),
        ]
        let listeners = addresses.compactMap { role, address in address.map { Listener(role: role, address: $0) } }
        self.init(
            name: connection.name, listeners: listeners, local: local, remote: remote, chains: chains,
            replicationStreams: replicationStreams, routing: routing
        )
    }

    /// After a reload: the chains the listeners now give new calls.
    func replaceChains(_ chains: [PluginChain]) {
        currentChains.withLockedValue { $0 = chains }
    }

    /// The plugin entries of this connection that need the Temporal schema, each once, with its state.
    private var schemaStates: [(label: String, state: PluginEntry.SchemaState)] {
        var seen = Set<ObjectIdentifier>()
        var states: [(label: String, state: PluginEntry.SchemaState)] = []
        for entry in chains.flatMap(\.entries) where entry.library.needsSchema {
            if seen.insert(ObjectIdentifier(entry)).inserted {
                states.append(("\(entry.library.name) (\(entry.label))", entry.currentSchemaState))
            }
        }
        return states
    }

    /// Healthy when the local Temporal is reachable and every plugin that needs the schema has it.
    func localVerdict(on loop: EventLoop) -> EventLoopFuture<HealthVerdict> {
        let schema = HealthVerdict.schema(schemaStates)
        return localProbe.value(on: loop) { local.probe() }.map { failure in
            let unreachable = HealthVerdict.unreachable(
                "the local Temporal (\(self.local.target))", probeFailure: failure
            )
            let missing = [unreachable].compactMap { $0 } + schema
            return HealthVerdict(check: .local, connection: self.name, missing: missing)
        }
    }

    /// Healthy when the remote upstream is reachable (tcp) or at least one mux session is up (mux).
    func remoteVerdict(on loop: EventLoop) -> EventLoopFuture<HealthVerdict> {
        switch remote {
        case .tcp(let upstream):
            return remoteProbe.value(on: loop) { upstream.probe() }.map { failure in
                let missing = [HealthVerdict.unreachable("the remote side (\(upstream.target))", probeFailure: failure)]
                return HealthVerdict(check: .remote, connection: self.name, missing: missing.compactMap { $0 })
            }
        case .mux(let transport):
            let missing = HealthVerdict.muxSessions(
                up: transport.pool.count, wanted: transport.pool.wanted, address: "\(transport.address)"
            )
            return loop.makeSucceededFuture(
                HealthVerdict(check: .remote, connection: name, missing: [missing].compactMap { $0 })
            )
        }
    }

    /// This connection's entry of `/debug/connections`.
    func debugInfo(on loop: EventLoop) -> EventLoopFuture<ConnectionDebugInfo> {
        let plugins = Dictionary(uniqueKeysWithValues: chains.map { chain in
            (chain.side.rawValue, chain.entries.map {
                ConnectionDebugInfo.Plugin(
                    name: $0.library.name, version: $0.library.version, entry: $0.label, path: $0.library.path,
                    sha256: $0.library.sha256
                )
            })
        })
        let schema = schemaStates.map { label, state -> ConnectionDebugInfo.Schema in
            switch state {
            case .notNeeded: return .init(plugin: label, state: "not needed", reason: nil)
            case .ready: return .init(plugin: label, state: "ready", reason: nil)
            case .pending(let reason): return .init(plugin: label, state: "pending", reason: reason)
            case .failed(let reason): return .init(plugin: label, state: "failed", reason: reason)
            }
        }
        var streams: [ConnectionDebugInfo.ReplicationStreamInfo] = []
        var streamCounts: [String: Int] = [:]
        for registry in replicationStreams {
            let open = registry.snapshot().open
            streamCounts[registry.direction] = open.count
            streams += open.map { ConnectionDebugInfo.ReplicationStreamInfo($0, direction: registry.direction) }
        }
        let localUpstream = local.snapshot().hop(to: loop).map {
            ConnectionDebugInfo.UpstreamInfo(role: "local", target: "\(self.local.target)", endpoints: $0)
        }
        let remoteParts: EventLoopFuture<(ConnectionDebugInfo.UpstreamInfo?, ConnectionDebugInfo.MuxInfo?)>
        switch remote {
        case .tcp(let upstream):
            remoteParts = upstream.snapshot().hop(to: loop).map {
                (ConnectionDebugInfo.UpstreamInfo(role: "remote", target: "\(upstream.target)", endpoints: $0), nil)
            }
        case .mux(let transport):
            remoteParts = transport.pool.snapshot(on: loop).map { sessions in
                (nil, ConnectionDebugInfo.MuxInfo(
                    mode: transport.mode == .client ? "mux-client" : "mux-server",
                    address: "\(transport.address)", wanted: transport.pool.wanted, sessions: sessions
                ))
            }
        }
        let routing = EventLoopFuture.whenAllSucceed(self.routing.map { $0.snapshot().hop(to: loop) }, on: loop)
        return localUpstream.and(remoteParts).and(routing).map { parts, routing in
            let (localInfo, remoteInfo) = parts
            return ConnectionDebugInfo(
                name: self.name, listeners: self.listeners,
                upstreams: [localInfo] + [remoteInfo.0].compactMap { $0 },
                mux: remoteInfo.1, plugins: plugins, schema: schema, activeStreams: streams, streamCounts: streamCounts,
                routing: routing.isEmpty ? nil : routing
            )
        }
    }
}

/// One cluster connection in `/debug/connections`.
struct ConnectionDebugInfo: Sendable, Encodable {
    struct UpstreamInfo: Sendable, Encodable {
        /// `local` (local.tcpClient) or `remote` (remote.tcpClient).
        var role: String
        var target: String
        /// One entry per event loop and resolved address (pools connect lazily: none before the first call).
        var endpoints: [UpstreamEndpointSnapshot]
    }

    struct MuxInfo: Sendable, Encodable {
        var mode: String
        var address: String
        var wanted: Int
        var sessions: [MuxSessionSnapshot]
    }

    struct Plugin: Sendable, Encodable {
        var name: String
        var version: String
        /// The config key of the entry, e.g. `clusterConnections[0].plugins[1]`.
        var entry: String
        /// The file the plugin was loaded from, and the SHA-256 of the build that serves (compare with
        /// `sha256sum`; a reload loads a rebuilt file anew).
        var path: String
        var sha256: String
    }

    struct Schema: Sendable, Encodable {
        var plugin: String
        var state: String
        var reason: String?
    }

    var name: String
    var listeners: [ClusterConnectionStatus.Listener]
    var upstreams: [UpstreamInfo]
    var mux: MuxInfo?
    /// Plugin chain per direction (`outbound`, `inbound`), in call order.
    var plugins: [String: [Plugin]]
    var schema: [Schema]
    /// The open replication streams of both listeners.
    var activeStreams: [ReplicationStreamInfo]
    /// How many replication streams are open, per listener direction (`outbound`, `inbound`).
    var streamCounts: [String: Int]
    /// Shard-count mode routing, per listener direction; absent in other modes.
    var routing: [RoutingDirection.Snapshot]?

    enum CodingKeys: String, CodingKey {
        case name, listeners, upstreams, mux, plugins, schema, routing
        case activeStreams = "active_streams"
        case streamCounts = "stream_counts"
    }
}
