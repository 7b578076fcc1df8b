// The running proxy: two listeners per cluster connection, their upstreams, and orderly shutdown.
//
//   outbound  local.tcpServer  -> remote.tcpClient   (calls from the local Temporal to the remote side)
//   inbound   remote.tcpServer -> local.tcpClient    (calls from the remote side to the local Temporal)
//
// With `remote.connectionType` mux-client or mux-server, the remote side is `muxCount` yamux sessions on
// `remote.muxAddressInfo` (MuxTransport) instead: outbound calls go out over new streams of the sessions
// (MuxUpstream), and the streams the peer opens are the inbound listener's connections.
//
// A connection's `localClusterHealthCheck` / `remoteClusterHealthCheck` blocks add HTTP listeners (Health/).

import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The proxy built from a configuration; start it, then shut it down once.
public final class ProxyServer: Sendable {
    private let listeners: [ProxyListener]
    private let upstreams: [Upstream]
    private let muxTransports: [MuxTransport]
    /// Every listener's context, the mux inbound sides' included, for swapping plugin chains.
    private let listenerContexts: [ListenerContext]
    private let healthEndpoints: [HealthEndpoint]
    /// Per cluster connection, in config order: what health checks and `/debug/connections` read.
    private let statuses: [ClusterConnectionStatus]
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger
    /// Calls in flight across all listeners.
    public let activeCalls: ActiveCallCounter
    /// What the metrics endpoint serves.
    public let metrics: ProxyMetrics
    /// `/metrics` on `metrics.prometheus.listenAddress`; nil when the config sets none.
    private let metricsEndpoint: MetricsEndpoint?
    /// Returns freed memory to the system once a wave of load is over.
    private let memoryTrimmer: MemoryTrimmer
    /// Shard-count mode routing's directions (two per connection in that mode).
    private let routingDirections: [RoutingDirection]
    /// Routing mode's replica coordinators (one per connection with `memberlist`).
    private let routingReplicas: [RoutingReplicas]

    /// Builds listeners and upstream pools for every cluster connection; binds nothing yet.
    ///
    /// The configuration must have passed validation and carry no unsupported features.
    public init(
        config: ProxyConfig, plugins: PluginSetup = .empty, group: MultiThreadedEventLoopGroup, threadPool: NIOThreadPool,
        logger: Logger, metrics: ProxyMetrics = ProxyMetrics()
    ) throws {
        self.metrics = metrics
        metrics.setPluginEntries(plugins)
        self.group = group
        self.logger = logger
        let activeCalls = ActiveCallCounter()
        self.activeCalls = activeCalls
        let loops = Array(group.makeIterator())
        let resolver = AddressResolver(threadPool: threadPool)
        MemoryTrimmer.tuneAllocator()
        memoryTrimmer = MemoryTrimmer(threadPool: threadPool, logger: logger)
        let settings = UpstreamPoolSettings(
            connectTimeout: .nanoseconds(Int64(config.upstream.connectTimeoutSeconds * 1e9)),
            backoffInitial: .nanoseconds(Int64(config.upstream.reconnectBackoffInitialSeconds * 1e9)),
            backoffMax: .nanoseconds(Int64(config.upstream.reconnectBackoffMaxSeconds * 1e9)),
            tuning: HTTP2Tuning(
                upstreamKeepaliveSeconds: config.upstream.keepaliveIntervalSeconds,
                handshakeTimeoutSeconds: config.limits.handshakeTimeoutSeconds,
                idleTimeoutSeconds: config.limits.idleTimeoutSeconds
            )
        )
        var listeners: [ProxyListener] = []
        var upstreams: [Upstream] = []
        var muxTransports: [MuxTransport] = []
        var contexts: [ListenerContext] = []
        var healthEndpoints: [HealthEndpoint] = []
        var statuses: [ClusterConnectionStatus] = []
        var routingDirections: [RoutingDirection] = []
        var routingReplicas: [RoutingReplicas] = []
        // Every health listener reports on all connections; the list is complete once the loop below has run.
        let allStatuses = NIOLockedValueBox<[ClusterConnectionStatus]>([])
        for (connectionIndex, connection) in config.clusterConnections.enumerated() {
            var connectionLogger = logger
            connectionLogger[metadataKey: "connection"] = "\(connection.name)"
            var connectionStreams: [ReplicationStreamRegistry] = []
            func context(_ side: PluginSide, upstream: UpstreamConnecting) -> ListenerContext {
                var routeLogger = connectionLogger
                routeLogger[metadataKey: "direction"] = "\(side.rawValue)"
                let callMetrics = CallMetrics(connection: connection.name, direction: side.rawValue)
                metrics.add(callMetrics)
                let streams = ReplicationStreamRegistry(connection: connection.name, direction: side.rawValue)
                metrics.add(streams)
                connectionStreams.append(streams)
                let made = ListenerContext(
                    name: "\(connection.name)/\(side.rawValue)",
                    upstream: upstream,
                    maxMessageBytes: config.limits.maxMessageBytes,
                    tuning: settings.tuning,
                    logger: routeLogger.component(.tcpServer),
                    activeCalls: activeCalls,
                    plugins: plugins.chain(connection: connectionIndex, side: side),
                    connectionIndex: connectionIndex,
                    side: side,
                    metrics: callMetrics,
                    replicationStreams: streams
                )
                contexts.append(made)
                return made
            }
            func address(_ endpoint: EndpointConfig?, _ role: String) throws -> HostAndPort {
                guard let text = endpoint?.address, let parsed = HostAndPort(parsing: text) else {
                    throw ProxyStartError(message: "\(connection.name): the \(role) needs a host:port address")
                }
                return parsed
            }
            let connectionPath = "clusterConnections[\(connectionIndex)]"
            /// The TLS setups of `side`'s tcpServer and tcpClient blocks (validation has built them once already).
            func serverTLS(_ side: String, _ endpoint: EndpointConfig?) throws -> TLSServerSetup? {
                do {
                    return try TLSServerSetup(
                        config: endpoint?.tls ?? TLSConfig(), label: "\(connectionPath).\(side).tcpServer.tls"
                    )
                } catch {
                    throw ProxyStartError(message: "\(error)")
                }
            }
            func clientTLS(_ side: String, _ endpoint: EndpointConfig?) throws -> TLSClientSetup? {
                do {
                    return try TLSClientSetup(
                        config: endpoint?.tls ?? TLSConfig(), label: "\(connectionPath).\(side).tcpClient.tls"
                    )
                } catch {
                    throw ProxyStartError(message: "\(error)")
                }
            }
            func tcpUpstream(_ side: String, _ endpoint: EndpointConfig?, _ role: String) throws -> Upstream {
                var upstreamSettings = settings
                upstreamSettings.tls = try clientTLS(side, endpoint)
                let upstream = Upstream(
                    target: try address(endpoint, role), eventLoops: loops, settings: upstreamSettings,
                    resolver: resolver, logger: connectionLogger.component(.clusterConnection)
                )
                upstreams.append(upstream)
                return upstream
            }

            // Inbound: calls from the remote side into the local Temporal.
            let localUpstream = try tcpUpstream("local", connection.local.tcpClient, "local Temporal")
            let inbound = context(.inbound, upstream: localUpstream)
            let remoteSide: ClusterConnectionStatus.RemoteSide
            var outboundContext: ListenerContext?
            let outboundTLS = try serverTLS("local", connection.local.tcpServer)
            // Outbound: calls from the local Temporal to the remote side, over TCP or the mux sessions.
            switch connection.remote.connectionType {
            case .tcp:
                let remoteUpstream = try tcpUpstream("remote", connection.remote.tcpClient, "remote side")
                remoteSide = .tcp(remoteUpstream)
                let outbound = context(.outbound, upstream: remoteUpstream)
                outboundContext = outbound
                listeners.append(ProxyListener(
                    context: outbound, bindTarget: try address(connection.local.tcpServer, "outbound listener"),
                    tuning: settings.tuning, tls: outboundTLS
                ))
                listeners.append(ProxyListener(
                    context: inbound, bindTarget: try address(connection.remote.tcpServer, "inbound listener"),
                    tuning: settings.tuning, tls: try serverTLS("remote", connection.remote.tcpServer)
                ))
            case .muxClient, .muxServer:
                let muxAddress = try address(connection.remote.muxAddressInfo, "mux address (muxAddressInfo)")
                let pool = MuxSessionPool(
                    name: "\(connection.name)/mux", wanted: connection.remote.muxCount > 0 ? connection.remote.muxCount : 10,
                    loops: loops
                )
                metrics.add(ProxyMetrics.MuxSource(
                    pool: pool, address: "\(muxAddress)",
                    mode: connection.remote.connectionType == .muxClient ? "mux-client" : "mux-server",
                    configName: connection.name
                ))
                var muxLogger = connectionLogger
                muxLogger[metadataKey: "direction"] = "mux"
                muxLogger = muxLogger.component(.muxManager)
                let upstream = MuxUpstream(
                    target: muxAddress, pool: pool, tuning: settings.tuning, firstSessionWait: .seconds(60),
                    logger: muxLogger
                )
                let outbound = context(.outbound, upstream: upstream)
                outboundContext = outbound
                listeners.append(ProxyListener(
                    context: outbound,
                    bindTarget: try address(connection.local.tcpServer, "outbound listener"),
                    tuning: settings.tuning, chooseLoop: { pool.loopForConnection() }, tls: outboundTLS
                ))
                let tuning = settings.tuning
                let muxTLS: MuxTransport.TLS?
                let tlsLabel = "\(connectionPath).remote.muxAddressInfo.tls"
                let tlsConfig = connection.remote.muxAddressInfo?.tls ?? TLSConfig()
                do {
                    if connection.remote.connectionType == .muxClient {
                        muxTLS = try TLSClientSetup(config: tlsConfig, label: tlsLabel).map { .client($0) }
                    } else {
                        muxTLS = try TLSServerSetup(config: tlsConfig, label: tlsLabel).map { .server($0) }
                    }
                } catch {
                    throw ProxyStartError(message: "\(error)")
                }
                let transport = MuxTransport(
                    mode: connection.remote.connectionType == .muxClient ? .client : .server,
                    address: muxAddress, pool: pool, tls: muxTLS, logger: muxLogger
                ) { stream in
                    try ProxyListener.configureConnection(stream, context: inbound, tuning: tuning)
                }
                muxTransports.append(transport)
                remoteSide = .mux(transport)
            }
            var connectionRouting: [RoutingDirection] = []
            var connectionReplicas: RoutingReplicas?
            if let shards = connection.shardCount, shards.mode == "routing", let outboundContext {
                // With replicas both directions share one loop with the replicas' coordinator.
                let routingLoop = loops[connectionIndex % loops.count]
                if let memberlist = connection.memberlist {
                    var peerSettings = settings
                    peerSettings.tls = try clientTLS("local", connection.local.tcpClient)
                    var peers: [String: UpstreamConnecting] = [:]
                    for (name, text) in memberlist.proxyAddresses where name != memberlist.nodeName {
                        guard let target = HostAndPort(parsing: text) else {
                            throw ProxyStartError(message: "\(connectionPath).memberlist.proxyAddresses.\(name) needs a host:port address")
                        }
                        // Used only from the routing loop: a pool there alone.
                        let upstream = Upstream(
                            target: target, eventLoops: [routingLoop], settings: peerSettings, resolver: resolver,
                            logger: connectionLogger.component(.shardManager))
                        upstreams.append(upstream)
                        peers[name] = upstream
                    }
                    connectionReplicas = RoutingReplicas(
                        localReplica: memberlist.nodeName, peers: peers, connectionName: connection.name,
                        loop: routingLoop, logger: connectionLogger.component(.shardManager))
                }
                // Outbound: the local cluster's shards open streams there, the remote's are the sources; inbound the
                // other way round.
                for (listenerContext, targets, sources) in [
                    (outboundContext, shards.localShardCount, shards.remoteShardCount),
                    (inbound, shards.remoteShardCount, shards.localShardCount),
                ] {
                    let loop = connectionReplicas == nil
                        ? loops[(routingDirections.count + connectionRouting.count) % loops.count] : routingLoop
                    let direction = Self.routing(
                        listenerContext, loop: loop,
                        shape: .init(
                            connectionName: connection.name, side: listenerContext.side, targetShardCount: targets,
                            sourceShardCount: sources),
                        tuning: settings.tuning, maxMessageBytes: config.limits.maxMessageBytes,
                        logger: listenerContext.logger.component(.shardRouting))
                    if let connectionReplicas {
                        direction.replicas = connectionReplicas
                        connectionReplicas.add(direction)
                    }
                    connectionRouting.append(direction)
                }
                routingDirections += connectionRouting
                if let connectionReplicas { routingReplicas.append(connectionReplicas) }
                for direction in connectionRouting { metrics.add(direction) }
            }
            let status = ClusterConnectionStatus(
                connection: connection, local: localUpstream, remote: remoteSide,
                chains: [.outbound, .inbound].compactMap { plugins.chain(connection: connectionIndex, side: $0) },
                replicationStreams: connectionStreams, routing: connectionRouting
            )
            statuses.append(status)
            healthEndpoints += try HealthEndpoint.configured(
                by: connection, at: connectionPath, status: status, logger: connectionLogger.component(.healthCheck),
                counters: metrics.healthChecks
            ) { allStatuses.withLockedValue { $0 } }
        }
        if let text = config.metrics?.prometheusListenAddress, !text.isEmpty {
            guard let address = HostAndPort(parsing: text) else {
                throw ProxyStartError(message: "metrics.prometheus.listenAddress needs a host:port address")
            }
            metricsEndpoint = MetricsEndpoint(bindTarget: address, metrics: metrics, logger: logger.component(.metrics))
        } else {
            metricsEndpoint = nil
        }
        self.listeners = listeners
        self.upstreams = upstreams
        self.muxTransports = muxTransports
        self.listenerContexts = contexts
        self.healthEndpoints = healthEndpoints
        self.statuses = statuses
        self.routingDirections = routingDirections
        self.routingReplicas = routingReplicas
        allStatuses.withLockedValue { $0 = statuses }
    }

    /// Routing mode on `context`'s listener: its replication streams go to a `RoutingDirection` on `loop`, whose
    /// source streams go out on the listener's upstream.
    private static func routing(
        _ context: ListenerContext, loop: EventLoop, shape: RoutingDirection.Shape, tuning: HTTP2Tuning,
        maxMessageBytes: Int, logger: Logger
    ) -> RoutingDirection {
        let direction = RoutingDirection(loop: loop, shape: shape, maxMessageBytes: maxMessageBytes, logger: logger)
        // The receivers' streams go out on the listener's own upstream, on the direction's loop.
        let upstream = context.upstream
        direction.sourceConnection = { upstream.connection(on: loop) }
        context.replicationUpstream = RoutingUpstream(direction: direction, tuning: tuning, maxMessageBytes: maxMessageBytes)
        return direction
    }

    /// Swaps every listener's plugin chain for the one `plugins` builds for its connection and side; calls that
    /// start from now on use it, calls in flight keep the chain they started with. Health answers and
    /// `/debug/connections` follow the new chains from now on.
    public func replacePlugins(_ plugins: PluginSetup) {
        metrics.setPluginEntries(plugins)
        for context in listenerContexts {
            context.replacePlugins(plugins.chain(connection: context.connectionIndex, side: context.side))
        }
        for (index, status) in statuses.enumerated() {
            status.replaceChains([.outbound, .inbound].compactMap { plugins.chain(connection: index, side: $0) })
        }
    }

    /// Binds every listener; if one fails, the ones already bound are closed and the error names the address.
    public func start() async throws {
        memoryTrimmer.start(on: group.next())
        for direction in routingDirections { direction.start() }
        for replicas in routingReplicas { replicas.start() }
        do {
            for listener in listeners {
                try await listener.start(group: group)
            }
            for transport in muxTransports {
                try await transport.start()
            }
            for endpoint in healthEndpoints {
                try await endpoint.start(group: group)
            }
            try await metricsEndpoint?.start(group: group)
        } catch {
            memoryTrimmer.stop()
            for endpoint in healthEndpoints { await endpoint.stop() }
            await metricsEndpoint?.stop()
            for started in listeners { await started.stopAccepting() }
            for transport in muxTransports { await transport.stop() }
            throw error
        }
    }

    /// Graceful shutdown: stop accepting, let calls in flight finish for up to `drainTimeout`, then close the rest.
    public func shutdown(drainTimeout: TimeAmount) async {
        for endpoint in healthEndpoints { await endpoint.stop() }
        for listener in listeners { await listener.stopAccepting() }
        for transport in muxTransports { await transport.stop() }
        // Replication streams last for ever: routing ends its own, so that the drain is of real calls.
        for replicas in routingReplicas { replicas.stop() }
        for direction in routingDirections { direction.stop() }
        let deadline = NIODeadline.now() + drainTimeout
        var inFlight = activeCalls.value
        if inFlight > 0 {
            logger.info("draining calls in flight", metadata: ["calls": "\(inFlight)", "timeout_s": "\(drainTimeout.nanoseconds / 1_000_000_000)"])
        }
        while inFlight > 0 && NIODeadline.now() < deadline {
            try? await Task.sleep(nanoseconds: 50_000_000)
            inFlight = activeCalls.value
        }
        if inFlight > 0 {
            logger.warning("drain timeout reached; closing remaining calls", metadata: ["calls": "\(inFlight)"])
        }
        for listener in listeners { await listener.closeConnections() }
        for transport in muxTransports { transport.closeSessions() }
        for upstream in upstreams { try? await upstream.close()?.get() }
        await metricsEndpoint?.stop()
        memoryTrimmer.stop()
    }
}

/// The proxy cannot be built from this configuration.
public struct ProxyStartError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
