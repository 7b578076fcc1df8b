// The server end of routing mode's internal upstream connection: where a listener forwards the replication streams
// target shards open (docs/design/routing.md, "Senders"). Each stream is a target shard's: its metadata is checked
// and the stream registered with the listener's `RoutingDirection`, its messages (ACKs) handed over, and the
// batches the direction writes framed as gRPC messages. The listener's `ProxyCall` sits between the target and this
// server, so plugins, ACL, metrics and logs apply to these streams as to forwarded ones.
//
// Confined to the direction's event loop.

import HTTP2Forwarding
import Logging
import NIOCore
import NIOHPACK
import ShardRouting

/// One target shard's stream, as the direction sees it.
final class RoutingTargetStream {
    let shard: Int32
    let headers: HPACKHeaders
    fileprivate let id: H2StreamID
    fileprivate weak var server: RoutingTargetServer?
    fileprivate var ended = false
    /// Bytes handed to the engine and not yet written to the socket: a slow target holds its sender back.
    private(set) var bytesInFlight = 0

    fileprivate init(shard: Int32, headers: HPACKHeaders, id: H2StreamID, server: RoutingTargetServer) {
        self.shard = shard
        self.headers = headers
        self.id = id
        self.server = server
    }

    /// Whether the stream can take another batch now.
    var hasRoom: Bool { !ended && bytesInFlight < RoutingTargetServer.maxBytesInFlight }

    /// Sends one response message (a `StreamWorkflowReplicationMessagesResponse`).
    func send(_ message: OutgoingBatch) {
        guard !ended, let server else { return }
        bytesInFlight += message.size
        let size = message.size
        server.send(message, on: id) { [weak self] in
            guard let self else { return }
            self.bytesInFlight -= size
            if let server = self.server, self.bytesInFlight < RoutingTargetServer.maxBytesInFlight {
                server.direction.targetHasRoom(self)
            }
        }
    }

    /// Ends the stream with `status`.
    func finish(_ status: GRPCStatus) {
        guard !ended else { return }
        ended = true
        server?.finish(id, status: status)
    }
}

final class RoutingTargetServer: ChannelInboundHandler, H2ConnectionDelegate {
    typealias InboundIn = Never

    /// A target stream with this much written and not yet on the socket takes no more batches until it drains.
    static let maxBytesInFlight = 4 << 20

    let engine: H2ConnectionHandler
    let direction: RoutingDirection
    private let maxMessageBytes: Int
    /// Target shards' streams, with their ACKs gathered so far.
    private var streams: [H2StreamID: (stream: RoutingTargetStream, arrays: GRPCMessageArrays)] = [:]
    /// Streams from peer replicas (`RoutingReplicas.method`), by stream: the peer's name and its messages so far.
    private var peerStreams: [H2StreamID: (peer: String, arrays: GRPCMessageArrays)] = [:]

    init(direction: RoutingDirection, tuning: HTTP2Tuning, maxMessageBytes: Int) {
        self.direction = direction
        self.maxMessageBytes = maxMessageBytes
        self.engine = H2ConnectionHandler(configuration: tuning.engineConfiguration(for: .server))
    }

    /// Installs the engine and this handler on `channel`.
    func install(on channel: Channel) throws {
        try channel.pipeline.syncOperations.addHandler(engine)
        try channel.pipeline.syncOperations.addHandler(self)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        engine.delegate = self
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        engine.delegate = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        let peers = peerStreams.values.map(\.peer)
        peerStreams = [:]
        for peer in peers { direction.replicas?.peerStreamEnded(peer) }
        let open = streams.values.map(\.stream)
        streams = [:]
        for stream in open where !stream.ended {
            stream.ended = true
            direction.targetClosed(stream)
        }
        context.fireChannelInactive()
    }

    // MARK: What the engine hands over

    func h2Headers(_ headers: HPACKHeaders, stream: H2StreamID, endStream: Bool, isNewStream: Bool) {
        guard isNewStream else {
            // Trailers from the target: it is done sending.
            if endStream { endedByTarget(stream) }
            if endStream, let peer = peerStreams.removeValue(forKey: stream)?.peer { direction.replicas?.peerStreamEnded(peer) }
            return
        }
        if headers.first(name: ":path") == RoutingReplicas.method {
            return peerStreamOpened(headers, stream: stream)
        }
        switch direction.targetOpening(headers: headers) {
        case .refused(let status):
            engine.sendHeaders(status.trailers(trailersOnly: true), stream: stream, endStream: true, promise: nil)
            engine.flush()
        case .accepted(let shard):
            let target = RoutingTargetStream(shard: shard, headers: headers, id: stream, server: self)
            streams[stream] = (target, GRPCMessageArrays(maxMessageBytes: maxMessageBytes))
            engine.sendHeaders([":status": "200", "content-type": "application/grpc"], stream: stream, endStream: false, promise: nil)
            engine.flush()
            direction.targetOpened(target)
            if endStream { endedByTarget(stream) }
        }
    }

    func h2Data(_ payload: ByteBuffer, stream: H2StreamID, endStream: Bool, flowControlledLength: Int) {
        if peerStreams[stream] != nil {
            return peerData(payload, stream: stream, endStream: endStream, flowControlledLength: flowControlledLength)
        }
        engine.release(stream: stream, bytes: flowControlledLength)
        guard var entry = streams[stream] else { return }
        let target = entry.stream
        var messages: [[UInt8]] = []
        let tooLarge = entry.arrays.consume(payload, into: &messages)
        streams[stream] = entry
        for bytes in messages {
            do {
                guard let state = try SyncReplicationState(request: bytes) else { continue }
                direction.targetAcknowledged(target, state)
            } catch {
                fail(target, GRPCStatus(.invalidArgument, "s2s-proxy routing: a malformed SyncReplicationState: \(error)"))
                return
            }
        }
        if let tooLarge {
            fail(target, GRPCStatus(.resourceExhausted, "s2s-proxy routing: a request message of \(tooLarge) bytes is over the limit"))
            return
        }
        if endStream { endedByTarget(stream) }
    }

    func h2StreamReset(_ stream: H2StreamID, code: H2ErrorCode, byPeer: Bool) {
        closed(stream)
    }

    func h2StreamClosed(_ stream: H2StreamID) {
        closed(stream)
    }

    func h2GoAway(lastStream: H2StreamID, code: H2ErrorCode, debugData: ByteBuffer) {}
    func h2PeerSettingsChanged() {}
    func h2PingAnswered(opaque: UInt64) {}
    func h2ConnectionError(_ violation: H2ProtocolViolation) {}

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    // MARK: Used by the streams

    fileprivate func send(_ message: OutgoingBatch, on stream: H2StreamID, written: @escaping () -> Void) {
        // The tasks are renumbered as they are written into the frame's buffer: one copy of their bytes.
        var buffer = ByteBufferAllocator().buffer(capacity: 5 + message.size)
        buffer.writeGRPCPrefix(length: message.size)
        do {
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: message.size) { raw in
                try message.write(into: UnsafeMutableRawBufferPointer(rebasing: raw.prefix(message.size)))
                return message.size
            }
        } catch {
            // The tasks were read whole when they arrived; writing them again cannot fail short of a bug.
            direction.logger.error("could not write a batch for a target shard", metadata: ["error": "\(error)"])
            return
        }
        let promise = direction.loop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { _ in written() }
        engine.sendData(buffer, stream: stream, endStream: false, promise: promise)
        engine.flush()
    }

    fileprivate func finish(_ stream: H2StreamID, status: GRPCStatus) {
        streams[stream] = nil
        engine.sendHeaders(status.trailers(trailersOnly: false), stream: stream, endStream: true, promise: nil)
        engine.flush()
    }

    private func fail(_ target: RoutingTargetStream, _ status: GRPCStatus) {
        direction.logger.warning("ending a target shard's replication stream", metadata: [
            "shard": "\(target.shard)", "status": "\(status)",
        ])
        target.finish(status)
        direction.targetClosed(target)
    }

    /// The target half-closed its side: the stream is over (Temporal's receiver never does this while it wants tasks).
    private func endedByTarget(_ stream: H2StreamID) {
        guard let target = streams[stream]?.stream, !target.ended else { return }
        target.finish(GRPCStatus(.ok, ""))
        direction.targetClosed(target)
    }

    // MARK: Peer replicas' streams

    private func peerStreamOpened(_ headers: HPACKHeaders, stream: H2StreamID) {
        guard let replicas = direction.replicas, let peer = headers.first(name: RoutingReplicas.originHeader),
              replicas.isPeer(peer)
        else {
            let status = GRPCStatus(
                .permissionDenied,
                "s2s-proxy: \(RoutingReplicas.method) is for this connection's routing replicas (memberlist), and "
                    + "this stream names none of them")
            engine.sendHeaders(status.trailers(trailersOnly: true), stream: stream, endStream: true, promise: nil)
            engine.flush()
            return
        }
        peerStreams[stream] = (peer, GRPCMessageArrays(maxMessageBytes: maxMessageBytes))
        engine.sendHeaders([":status": "200", "content-type": "application/grpc"], stream: stream, endStream: false, promise: nil)
        engine.flush()
        replicas.peerStreamOpened(peer)
    }

    private func peerData(_ payload: ByteBuffer, stream: H2StreamID, endStream: Bool, flowControlledLength: Int) {
        guard var entry = peerStreams[stream], let replicas = direction.replicas else { return }
        var messages: [[UInt8]] = []
        let tooLarge = entry.arrays.consume(payload, into: &messages)
        peerStreams[stream] = entry
        var allHanded = true
        for bytes in messages {
            do {
                guard let message = try IntraMessage(bytes: bytes) else { continue }
                if !replicas.received(message, from: entry.peer) { allHanded = false }
            } catch {
                direction.logger.warning("ending a replica's stream: a malformed message", metadata: [
                    "peer": "\(entry.peer)", "error": "\(error)",
                ])
                return endPeerStream(stream, GRPCStatus(.invalidArgument, "a malformed intra-proxy message: \(error)"))
            }
        }
        if tooLarge != nil {
            return endPeerStream(stream, GRPCStatus(.resourceExhausted, "an intra-proxy message over the limit"))
        }
        // Deliveries a busy target shard could not take yet hold the peer back: their window returns once it can.
        if allHanded {
            engine.release(stream: stream, bytes: flowControlledLength)
        } else {
            direction.whenTargetsHaveRoom { [weak self] in
                self?.engine.release(stream: stream, bytes: flowControlledLength)
                self?.engine.flush()
            }
        }
        if endStream, let peer = peerStreams.removeValue(forKey: stream)?.peer {
            replicas.peerStreamEnded(peer)
        }
    }

    private func endPeerStream(_ stream: H2StreamID, _ status: GRPCStatus) {
        guard let peer = peerStreams.removeValue(forKey: stream)?.peer else { return }
        engine.sendHeaders(status.trailers(trailersOnly: false), stream: stream, endStream: true, promise: nil)
        engine.flush()
        direction.replicas?.peerStreamEnded(peer)
    }

    private func closed(_ stream: H2StreamID) {
        if let peer = peerStreams.removeValue(forKey: stream)?.peer {
            direction.replicas?.peerStreamEnded(peer)
            return
        }
        guard let target = streams.removeValue(forKey: stream)?.stream, !target.ended else { return }
        target.ended = true
        direction.targetClosed(target)
    }
}
