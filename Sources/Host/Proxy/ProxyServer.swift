// The running proxy: two listeners per cluster connection, their upstreams, and orderly shutdown.
//
//   outbound  local.tcpServer  -> remote.tcpClient   (calls from the local Temporal to the remote side)
//   inbound   remote.tcpServer -> local.tcpClient    (calls from the remote side to the local Temporal)

import Logging
import NIOCore
import NIOPosix

/// The proxy built from a configuration; start it, then shut it down once.
public final class ProxyServer: Sendable {
    private let listeners: [ProxyListener]
    private let upstreams: [Upstream]
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger
    /// Calls in flight across all listeners.
    public let activeCalls = ActiveCallCounter()

    /// Builds listeners and upstream pools for every cluster connection; binds nothing yet.
    ///
    /// The configuration must have passed validation and carry no unsupported features.
    public init(
        config: ProxyConfig, plugins: PluginSetup = .empty, group: MultiThreadedEventLoopGroup, threadPool: NIOThreadPool,
        logger: Logger
    ) throws {
        self.group = group
        self.logger = logger
        let loops = Array(group.makeIterator())
        let resolver = AddressResolver(threadPool: threadPool)
        let settings = UpstreamPoolSettings(
            connectTimeout: .nanoseconds(Int64(config.upstream.connectTimeoutSeconds * 1e9)),
            backoffInitial: .nanoseconds(Int64(config.upstream.reconnectBackoffInitialSeconds * 1e9)),
            backoffMax: .nanoseconds(Int64(config.upstream.reconnectBackoffMaxSeconds * 1e9)),
            tuning: HTTP2Tuning(upstreamKeepaliveSeconds: config.upstream.keepaliveIntervalSeconds)
        )
        var listeners: [ProxyListener] = []
        var upstreams: [Upstream] = []
        for (connectionIndex, connection) in config.clusterConnections.enumerated() {
            let routes: [(side: PluginSide, listen: EndpointConfig?, forward: EndpointConfig?)] = [
                (.outbound, connection.local.tcpServer, connection.remote.tcpClient),
                (.inbound, connection.remote.tcpServer, connection.local.tcpClient),
            ]
            for route in routes {
                let name = "\(connection.name)/\(route.side.rawValue)"
                guard let listenText = route.listen?.address, let listen = HostAndPort(parsing: listenText),
                      let forwardText = route.forward?.address, let forward = HostAndPort(parsing: forwardText)
                else {
                    throw ProxyStartError(message: "\(name): listener and upstream need host:port addresses")
                }
                var routeLogger = logger
                routeLogger[metadataKey: "connection"] = "\(connection.name)"
                routeLogger[metadataKey: "direction"] = "\(route.side.rawValue)"
                let upstream = Upstream(target: forward, eventLoops: loops, settings: settings, resolver: resolver, logger: routeLogger)
                let context = ListenerContext(
                    name: name,
                    upstream: upstream,
                    maxMessageBytes: config.limits.maxMessageBytes,
                    tuning: settings.tuning,
                    logger: routeLogger,
                    activeCalls: activeCalls,
                    plugins: plugins.chain(connection: connectionIndex, side: route.side)
                )
                upstreams.append(upstream)
                listeners.append(ProxyListener(context: context, bindTarget: listen, tuning: settings.tuning))
            }
        }
        self.listeners = listeners
        self.upstreams = upstreams
    }

    /// Binds every listener; if one fails, the ones already bound are closed and the error names the address.
    public func start() async throws {
        for listener in listeners {
            do {
                try await listener.start(group: group)
            } catch {
                for started in listeners { await started.stopAccepting() }
                throw error
            }
        }
    }

    /// Graceful shutdown: stop accepting, let calls in flight finish for up to `drainTimeout`, then close the rest.
    public func shutdown(drainTimeout: TimeAmount) async {
        for listener in listeners { await listener.stopAccepting() }
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
        for upstream in upstreams { try? await upstream.close()?.get() }
    }
}

/// The proxy cannot be built from this configuration.
public struct ProxyStartError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
