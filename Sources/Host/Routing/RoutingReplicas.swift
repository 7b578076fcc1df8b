// Several proxy replicas serving one routing-mode cluster connection (docs/design/routing.md, "Replicas"): which
// replica holds each target shard's stream (a `ShardDirectory` per direction, fed by announcements), and the
// streams between replicas that carry announcements, deliveries (a source batch's share for a target shard another
// replica holds) and settlements back (`IntraMessage`).
//
// Each replica keeps one outgoing stream per peer, `/s2sproxy.intra.v1.Routing/Exchange` on a connection to the
// peer's outbound listener (`memberlist.proxyAddresses`, TLS as `local.tcpClient.tls`), and receives the peers'
// streams on its own outbound listener (the listener hands that method to routing instead of its upstream). A peer
// is a member while its stream to us is open: when it ends, the peer's shards have no owner until it is back and
// announces them again. No gossip: each replica tells the others what it holds, and a newer registration wins.
//
// Confined to the connection's routing event loop (both directions share it when replicas are configured).

import Foundation
import HTTP2Forwarding
import Logging
import NIOCore
import NIOHPACK
import NIOHTTP2
import ShardRouting

final class RoutingReplicas: @unchecked Sendable {
    static let method = "/s2sproxy.intra.v1.Routing/Exchange"
    static let originHeader = "x-s2s-origin-proxy-id"

    let localReplica: String
    let loop: EventLoop
    private let logger: Logger
    private let connectionName: String
    /// The peers' outbound listeners, by replica name (this one left out).
    private let peers: [String: UpstreamConnecting]
    private(set) var directions: [String: RoutingDirection] = [:]
    private var links: [String: IntraLink] = [:]
    /// Peers whose stream to us is open: the members.
    private var members: Set<String> = []

    init(localReplica: String, peers: [String: UpstreamConnecting], connectionName: String, loop: EventLoop, logger: Logger) {
        self.localReplica = localReplica
        self.peers = peers
        self.connectionName = connectionName
        self.loop = loop
        self.logger = logger
    }

    func add(_ direction: RoutingDirection) {
        directions[direction.shape.side.rawValue] = direction
    }

    func start() {
        loop.execute {
            for (name, upstream) in self.peers.sorted(by: { $0.key < $1.key }) {
                let link = IntraLink(peer: name, upstream: upstream, replicas: self)
                self.links[name] = link
                link.connect()
            }
        }
    }

    func stop() {
        loop.execute {
            for link in self.links.values { link.close() }
            self.links = [:]
        }
    }

    /// Whether `name` is one of the configured peers (`memberlist.proxyAddresses`, this replica left out).
    func isPeer(_ name: String) -> Bool { peers[name] != nil }

    /// The members, sorted.
    var memberNames: [String] { members.sorted() }

    /// Whether `peer` is a member (its stream to us is open).
    func isMember(_ peer: String) -> Bool { members.contains(peer) }

    /// Sends `message` to every peer whose link is up.
    func broadcast(_ message: IntraMessage) {
        for link in links.values { link.send(message) }
    }

    /// Sends `message` to `peer`; false when its link is down or full (the caller keeps the message's work waiting).
    func send(_ message: IntraMessage, to peer: String) -> Bool {
        guard let link = links[peer], link.hasRoom else { return false }
        return link.send(message)
    }

    /// Whether a delivery to `peer` could go now.
    func hasRoom(toward peer: String) -> Bool { links[peer]?.hasRoom ?? false }

    /// A link (re)connected: tell the peer what this replica holds.
    fileprivate func linkUp(_ link: IntraLink) {
        for (side, direction) in directions.sorted(by: { $0.key < $1.key }) {
            for event in direction.directory.localRegistrations {
                link.send(.announcement(direction: side, event: event))
            }
        }
        logger.info("intra-proxy link up", metadata: ["peer": "\(link.peer)"])
        for direction in directions.values { direction.peersChanged() }
    }

    fileprivate func linkHasRoom() {
        for direction in directions.values { direction.peersChanged() }
    }

    // MARK: What peers send (on their streams to our outbound listener)

    /// A peer's stream to us opened.
    func peerStreamOpened(_ peer: String) {
        members.insert(peer)
        logger.info("replica joined", metadata: ["peer": "\(peer)"])
    }

    /// A peer's stream to us ended: its shards have no owner until it is back.
    func peerStreamEnded(_ peer: String) {
        guard members.remove(peer) != nil else { return }
        logger.warning("replica left: its target shards have no owner until it is back", metadata: ["peer": "\(peer)"])
        for direction in directions.values { direction.peerLost(peer) }
    }

    /// A message from `peer`.
    func received(_ message: IntraMessage, from peer: String) -> Bool {
        switch message {
        case .announcement(let side, let event):
            directions[side]?.announced(event)
            return true
        case .delivery(let delivery):
            return directions[delivery.direction]?.deliveredByPeer(delivery, from: peer) ?? true
        case .settled(let side, let sourceShard, let batch, let targetShard):
            directions[side]?.settledByPeer(sourceShard: sourceShard, batch: batch, targetShard: targetShard, peer: peer)
            return true
        }
    }
}

/// This replica's stream to one peer: reconnects with backoff, sends messages framed as gRPC, holds back deliveries
/// while too much is unwritten.
final class IntraLink: UpstreamStreamHandler {
    let peer: String
    private let upstream: UpstreamConnecting
    private unowned let replicas: RoutingReplicas
    private var connection: UpstreamConnection?
    private var stream: H2StreamID?
    private var connecting = false
    private var closed = false
    private var retry: Scheduled<Void>?
    private var retryDelay: TimeAmount = .milliseconds(100)
    private var bytesInFlight = 0
    static let maxBytesInFlight = 8 << 20

    init(peer: String, upstream: UpstreamConnecting, replicas: RoutingReplicas) {
        self.peer = peer
        self.upstream = upstream
        self.replicas = replicas
    }

    var isUp: Bool { stream != nil }
    var hasRoom: Bool { isUp && bytesInFlight < Self.maxBytesInFlight }

    func connect() {
        guard !closed, !connecting, stream == nil else { return }
        connecting = true
        upstream.connection(on: replicas.loop).whenComplete { result in
            self.connecting = false
            guard !self.closed else { return }
            switch result {
            case .success(let connection):
                let headers: HPACKHeaders = [
                    ":method": "POST", ":scheme": "http", ":path": RoutingReplicas.method,
                    ":authority": self.peer, "content-type": "application/grpc", "te": "trailers",
                    "x-s2s-intra-proxy": "1", RoutingReplicas.originHeader: self.replicas.localReplica,
                ]
                guard let id = connection.openStream(for: self, headers: headers) else { return self.scheduleRetry() }
                self.connection = connection
                self.stream = id
                self.retryDelay = .milliseconds(100)
                self.replicas.linkUp(self)
            case .failure:
                self.scheduleRetry()
            }
        }
    }

    private func scheduleRetry() {
        guard !closed else { return }
        retry?.cancel()
        retry = replicas.loop.scheduleTask(in: retryDelay) { self.connect() }
        retryDelay = min(retryDelay * 2, .seconds(5))
    }

    @discardableResult
    func send(_ message: IntraMessage) -> Bool {
        guard let connection, let stream else { return false }
        let bytes = message.bytes
        let buffer = ByteBuffer.grpcMessage(bytes)
        bytesInFlight += bytes.count
        let size = bytes.count
        let promise = replicas.loop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { _ in
            self.bytesInFlight -= size
            if self.bytesInFlight + size >= Self.maxBytesInFlight, self.bytesInFlight < Self.maxBytesInFlight {
                self.replicas.linkHasRoom()
            }
        }
        connection.writer.write(.data(.init(data: .byteBuffer(buffer), endStream: false)),
                                streamID: HTTP2StreamID(Int(stream)), promise: promise)
        connection.writer.flush()
        return true
    }

    func close() {
        closed = true
        retry?.cancel()
        if let connection, let stream {
            connection.forgetOther(stream)
            connection.writer.write(.rstStream(.cancel), streamID: HTTP2StreamID(Int(stream)), promise: nil)
            connection.writer.flush()
        }
        stream = nil
    }

    // MARK: UpstreamStreamHandler

    func upstreamStreamHeaders(_ headers: HPACKHeaders, endStream: Bool) {
        if endStream { ended() }
    }

    func upstreamStreamData(_ payload: ByteBuffer, endStream: Bool, flowControlledLength: Int) {
        // The peer sends nothing back on this stream; give the window back.
        if let connection, let stream {
            connection.writer.releaseStreamCredit(flowControlledLength, streamID: HTTP2StreamID(Int(stream)), streamOpen: true)
        }
        if endStream { ended() }
    }

    func upstreamStreamEnded(reason: String) {
        ended()
    }

    private func ended() {
        guard stream != nil else { return }
        stream = nil
        connection = nil
        bytesInFlight = 0
        scheduleRetry()
    }
}
