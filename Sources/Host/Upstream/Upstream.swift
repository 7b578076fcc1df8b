// An upstream target as the rest of the proxy sees it: one `host:port`, with one connection pool per event loop.

import Logging
import NIOCore
import NIOPosix

/// Where one listener's calls go: a configured `host:port`, reached from every event loop through that loop's pool.
public final class Upstream: UpstreamConnecting {
    public let target: HostAndPort
    // Immutable after init; each pool is used only on its own event loop.
    nonisolated(unsafe) private let pools: [ObjectIdentifier: UpstreamConnectionPool]
    private let resolver: UpstreamAddressResolving
    private let connectTimeout: TimeAmount

    init(target: HostAndPort, eventLoops: [EventLoop], settings: UpstreamPoolSettings, resolver: UpstreamAddressResolving, logger: Logger) {
        self.target = target
        var pools: [ObjectIdentifier: UpstreamConnectionPool] = [:]
        for loop in eventLoops {
            pools[ObjectIdentifier(loop)] = UpstreamConnectionPool(
                target: target, eventLoop: loop, settings: settings, resolver: resolver, logger: logger
            )
        }
        self.pools = pools
        self.resolver = resolver
        self.connectTimeout = settings.connectTimeout
    }

    /// The pool owned by `eventLoop`; call only on that loop.
    func pool(for eventLoop: EventLoop) -> UpstreamConnectionPool {
        guard let pool = pools[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("no upstream pool for event loop \(eventLoop); channels must come from the proxy's group")
        }
        return pool
    }

    func connection(on eventLoop: EventLoop) -> EventLoopFuture<UpstreamConnection> {
        pool(for: eventLoop).acquire()
    }

    /// The connection state of every pool, each read on its own loop; one entry per event loop and address.
    func snapshot() -> EventLoopFuture<[UpstreamEndpointSnapshot]> {
        let pools = Array(self.pools.values)
        let futures = pools.map { pool in pool.eventLoop.submit { pool.snapshot() } }
        return EventLoopFuture.whenAllSucceed(futures, on: pools[0].eventLoop).map { $0.flatMap { $0 } }
    }

    /// Whether the target is reachable: nil when a pool has a ready connection or a fresh TCP connection to one of
    /// its addresses succeeds (closed at once; no TLS or HTTP/2 handshake), else the reason.
    func probe() -> EventLoopFuture<String?> {
        let loop = pools.values.first!.eventLoop
        return snapshot().flatMap { endpoints in
            if endpoints.contains(where: { $0.state == .ready || $0.state == .draining }) {
                return loop.makeSucceededFuture(nil)
            }
            return self.connectProbe(on: loop)
        }
    }

    private func connectProbe(on loop: EventLoop) -> EventLoopFuture<String?> {
        let target = self.target
        let timeout = min(connectTimeout, .seconds(2))
        return resolver.resolve(target, on: loop).flatMap { addresses -> EventLoopFuture<String?> in
            guard let address = addresses.first else {
                return loop.makeSucceededFuture("\(target) resolves to no address")
            }
            return ClientBootstrap(group: loop).connectTimeout(timeout).connect(to: address)
                .flatMap { channel in channel.close().map { nil } }
                .flatMapErrorThrowing { error in
                    "cannot connect to \(target) (\(address.endpointDescription)): "
                        + NetworkErrorDescription.describe(error)
                }
        }.flatMapErrorThrowing { error in
            "cannot resolve \(target): \(NetworkErrorDescription.describe(error))"
        }
    }

    /// Closes every pool's connections, each on its own loop.
    func close() -> EventLoopFuture<Void>? {
        let futures = pools.values.map { pool in pool.eventLoop.submit { pool.close() } }
        guard let first = futures.first else { return nil }
        return EventLoopFuture.andAllSucceed(futures, on: first.eventLoop)
    }
}
