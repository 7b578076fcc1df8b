// An upstream target as the rest of the proxy sees it: one `host:port`, with one connection pool per event loop.

import Logging
import NIOCore

/// Where one listener's calls go: a configured `host:port`, reached from every event loop through that loop's pool.
public final class Upstream: UpstreamConnecting {
    public let target: HostAndPort
    // Immutable after init; each pool is used only on its own event loop.
    nonisolated(unsafe) private let pools: [ObjectIdentifier: UpstreamConnectionPool]

    init(target: HostAndPort, eventLoops: [EventLoop], settings: UpstreamPoolSettings, resolver: UpstreamAddressResolving, logger: Logger) {
        self.target = target
        var pools: [ObjectIdentifier: UpstreamConnectionPool] = [:]
        for loop in eventLoops {
            pools[ObjectIdentifier(loop)] = UpstreamConnectionPool(
                target: target, eventLoop: loop, settings: settings, resolver: resolver, logger: logger
            )
        }
        self.pools = pools
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

    /// Closes every pool's connections, each on its own loop.
    func close() -> EventLoopFuture<Void>? {
        let futures = pools.values.map { pool in pool.eventLoop.submit { pool.close() } }
        guard let first = futures.first else { return nil }
        return EventLoopFuture.andAllSucceed(futures, on: first.eventLoop)
    }
}
