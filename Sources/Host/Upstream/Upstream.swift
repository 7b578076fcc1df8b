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
    /// The TLS the calls use, which the reachability probe must get through too; nil for plain TCP.
    private let tls: TLSClientSetup?

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
        self.tls = settings.tls
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

    func readyConnection(on eventLoop: EventLoop) -> UpstreamConnection? {
        pool(for: eventLoop).acquireReady()
    }

    /// The connection state of every pool, each read on its own loop; one entry per event loop and address.
    func snapshot() -> EventLoopFuture<[UpstreamEndpointSnapshot]> {
        let pools = Array(self.pools.values)
        let futures = pools.map { pool in pool.eventLoop.submit { pool.snapshot() } }
        return EventLoopFuture.whenAllSucceed(futures, on: pools[0].eventLoop).map { $0.flatMap { $0 } }
    }

    /// Whether the target is reachable: nil when a pool has a ready connection or a fresh connection to one of its
    /// addresses succeeds, else the reason. For a TLS upstream the fresh connection must complete the TLS handshake
    /// with the calls' own TLS setup (a wrong CA or name, or a peer that does not speak TLS, is unreachable); it is
    /// closed at once, with no HTTP/2 handshake.
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
            // The address only when the target is a name: "db:7233 (10.0.0.5:7233)", else "10.0.0.5:7233".
            let dialled = "\(target)" == address.endpointDescription
                ? "\(target)" : "\(target) (\(address.endpointDescription))"
            let started = NIODeadline.now()
            return ClientBootstrap(group: loop).connectTimeout(timeout).connect(to: address)
                .flatMap { channel -> EventLoopFuture<String?> in
                    guard let tls = self.tls else {
                        channel.close(promise: nil)
                        return loop.makeSucceededFuture(nil)
                    }
                    // One budget for the connect and the handshake together.
                    let left = max(timeout - (NIODeadline.now() - started), .milliseconds(1))
                    return tls.checkHandshake(on: channel, timeout: left).map { () -> String? in nil }
                        .recover { error in
                            "TLS handshake with \(dialled) failed: \(error)"
                        }
                        .always { _ in channel.close(promise: nil) }
                }
                // Only the connect can fail here: the handshake's failures are reasons already.
                .recover { error in
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
