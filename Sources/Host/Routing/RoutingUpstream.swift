// Where a routing-mode listener forwards the replication streams target shards open: an internal HTTP/2 connection
// per event loop to the direction's `RoutingTargetServer` (an `InternalSocketPair`), instead of the Temporal
// upstream. Every other call of the listener goes to its upstream as before.

import Logging
import NIOConcurrencyHelpers
import NIOCore

final class RoutingUpstream: UpstreamConnecting, Sendable {
    let target: HostAndPort
    private let direction: RoutingDirection
    private let directionLoop: EventLoop
    private let tuning: HTTP2Tuning
    private let maxMessageBytes: Int
    private let connections = NIOLockedValueBox<[ObjectIdentifier: EventLoopFuture<UpstreamConnection>]>([:])

    init(direction: RoutingDirection, tuning: HTTP2Tuning, maxMessageBytes: Int) {
        self.target = HostAndPort(host: "s2s-proxy-routing", port: 0)
        self.direction = direction
        self.directionLoop = direction.loop
        self.tuning = tuning
        self.maxMessageBytes = maxMessageBytes
    }

    func connection(on eventLoop: EventLoop) -> EventLoopFuture<UpstreamConnection> {
        let key = ObjectIdentifier(eventLoop)
        let existing = connections.withLockedValue { $0[key] }
        if let existing {
            // A connection that closed is replaced; one still starting is waited for.
            return existing.flatMap { connection in
                guard connection.channel?.isActive ?? false, !connection.isDraining else {
                    self.connections.withLockedValue { if $0[key] === existing { $0[key] = nil } }
                    return self.connection(on: eventLoop)
                }
                return eventLoop.makeSucceededFuture(connection)
            }
        }
        let made = open(on: eventLoop)
        connections.withLockedValue { $0[key] = made }
        made.whenFailure { _ in self.connections.withLockedValue { if $0[key] === made { $0[key] = nil } } }
        return made
    }

    private func open(on eventLoop: EventLoop) -> EventLoopFuture<UpstreamConnection> {
        let installed = NIOLockedValueBox<UpstreamConnection?>(nil)
        let tuning = self.tuning
        let maxMessageBytes = self.maxMessageBytes
        let direction = self.direction
        let address = try! SocketAddress(unixDomainSocketPath: "/s2s-proxy/routing")
        return InternalSocketPair.make(
            eventLoop, { channel in
                let connection = try UpstreamConnection.install(on: channel, address: address, tuning: tuning) { _ in }
                installed.withLockedValue { $0 = connection }
            },
            directionLoop, { channel in
                try RoutingTargetServer(direction: direction, tuning: tuning, maxMessageBytes: maxMessageBytes)
                    .install(on: channel)
            }
        ).flatMap { _ in
            let connection = installed.withLockedValue { $0 }!
            return connection.activeFuture.map { connection }
        }
    }
}
