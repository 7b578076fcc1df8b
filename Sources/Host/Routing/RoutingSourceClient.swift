// The client end of routing mode's receivers: one internal HTTP/2 connection into the direction's own listener, on
// which each receiver opens its `StreamWorkflowReplicationMessages` stream toward the source cluster (docs/design/
// routing.md, "Receivers"). The listener forwards these streams to its upstream as any other call (TCP, TLS or the
// mux), but marks the connection internal: no plugins, no ACL, and never routed back here. Batches arrive as gRPC
// messages, reassembled and handed to the direction with the bytes they took; the direction releases those bytes
// (HTTP/2 flow control) only once the batch is delivered, so a target that is missing or slow holds its source back
// instead of growing a buffer.
//
// Confined to the direction's event loop.

import Foundation
import HTTP2Forwarding
import NIOCore
import NIOHPACK
import ShardRouting

/// One receiver's stream toward its source shard.
final class RoutingSourceStream {
    let shard: Int32
    fileprivate let id: H2StreamID
    fileprivate weak var client: RoutingSourceClient?
    fileprivate var ended = false
    fileprivate var reassembler: GRPCMessageReassembler
    fileprivate var sawHeaders = false

    fileprivate init(shard: Int32, id: H2StreamID, client: RoutingSourceClient, maxMessageBytes: Int) {
        self.shard = shard
        self.id = id
        self.client = client
        self.reassembler = GRPCMessageReassembler(maxMessageBytes: maxMessageBytes)
    }

    /// Sends an ACK (a `StreamWorkflowReplicationMessagesRequest`).
    func send(_ message: [UInt8]) {
        guard !ended else { return }
        client?.send(message, on: id)
    }

    /// Gives back `bytes` of receive window: the source may send that much more.
    func release(_ bytes: Int) {
        guard !ended, bytes > 0 else { return }
        client?.engine.release(stream: id, bytes: bytes)
        client?.engine.flush()
    }

    /// Ends the stream from this side (RST_STREAM CANCEL); the direction hears nothing more of it.
    func cancel() {
        guard !ended else { return }
        ended = true
        client?.cancel(id)
    }
}

final class RoutingSourceClient: ChannelInboundHandler, H2ConnectionDelegate {
    typealias InboundIn = Never

    let engine: H2ConnectionHandler
    private let direction: RoutingDirection
    private let maxMessageBytes: Int
    private var streams: [H2StreamID: RoutingSourceStream] = [:]
    private var context: ChannelHandlerContext?
    /// Completes once the listener's SETTINGS arrived (streams may be opened), or fails if the connection ends first.
    let ready: EventLoopPromise<Void>
    private var readySettled = false

    init(direction: RoutingDirection, tuning: HTTP2Tuning, maxMessageBytes: Int) {
        self.direction = direction
        self.maxMessageBytes = maxMessageBytes
        var configuration = tuning.engineConfiguration(for: .client)
        // A batch may be large; the window is what lets a source send ahead while the last batch is delivered.
        configuration.connection.initialWindowSize = max(configuration.connection.initialWindowSize, 4 << 20)
        configuration.connection.connectionWindowSize = max(configuration.connection.connectionWindowSize, 64 << 20)
        self.engine = H2ConnectionHandler(configuration: configuration)
        self.ready = direction.loop.makePromise()
    }

    func install(on channel: Channel) throws {
        try channel.pipeline.syncOperations.addHandler(engine)
        try channel.pipeline.syncOperations.addHandler(self)
    }

    var isActive: Bool { context?.channel.isActive ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        engine.delegate = self
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        engine.delegate = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        settleReady(.failure(ChannelError.ioOnClosedChannel))
        let open = Array(streams.values)
        streams = [:]
        for stream in open where !stream.ended {
            stream.ended = true
            direction.sourceEnded(stream, reason: "the internal connection to the listener closed")
        }
        direction.sourceConnectionClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    /// Closes the connection (and with it every receiver stream on it).
    func close() {
        context?.close(promise: nil)
    }

    /// Opens a receiver's stream with `headers` (pseudo-headers included); nil when the connection takes no stream.
    func openStream(shard: Int32, headers: HPACKHeaders) -> RoutingSourceStream? {
        guard isActive, let id = engine.openStream(headers: headers, endStream: false) else { return nil }
        let stream = RoutingSourceStream(shard: shard, id: id, client: self, maxMessageBytes: maxMessageBytes)
        streams[id] = stream
        engine.flush()
        return stream
    }

    // MARK: What the engine hands over

    func h2PeerSettingsChanged() {
        settleReady(.success(()))
    }

    func h2Headers(_ headers: HPACKHeaders, stream: H2StreamID, endStream: Bool, isNewStream: Bool) {
        guard let source = streams[stream] else { return }
        if !source.sawHeaders {
            source.sawHeaders = true
            if let status = headers.first(name: ":status"), status != "200" {
                return end(source, reason: "HTTP status \(status)")
            }
        }
        guard endStream else { return }
        let code = headers.first(name: "grpc-status") ?? "none"
        let message = headers.first(name: "grpc-message").map { $0.removingPercentEncodingOrSelf } ?? ""
        end(source, reason: code == "0" ? "the source ended the stream" : "the source ended the stream with grpc-status \(code): \(message)")
    }

    func h2Data(_ payload: ByteBuffer, stream: H2StreamID, endStream: Bool, flowControlledLength: Int) {
        guard let source = streams[stream], !source.ended else {
            engine.release(stream: stream, bytes: flowControlledLength)
            return
        }
        var messages: [ByteBuffer] = []
        if let tooLarge = source.reassembler.consume(payload, into: &messages) {
            return end(source, reason: "a batch of \(tooLarge) bytes is over the limit (limits.maxMessageBytes)", cancel: true)
        }
        // The frame's bytes go back with the last message it completed, or at once if it completed none (it is
        // then held by the reassembler, at most one message's worth).
        if messages.isEmpty {
            engine.release(stream: stream, bytes: flowControlledLength)
        }
        for (index, var message) in messages.enumerated() {
            message.moveReaderIndex(forwardBy: 5)
            let bytes = message.readBytes(length: message.readableBytes) ?? []
            let credit = index == messages.count - 1 ? flowControlledLength : 0
            do {
                guard let batch = try ReplicationBatch(response: bytes) else {
                    source.release(credit)
                    continue
                }
                direction.sourceBatch(source, batch, credit: credit)
            } catch {
                return end(source, reason: "a malformed batch: \(error)", cancel: true)
            }
        }
        if endStream { end(source, reason: "the source ended the stream without a status") }
    }

    func h2StreamReset(_ stream: H2StreamID, code: H2ErrorCode, byPeer: Bool) {
        guard let source = streams[stream] else { return }
        end(source, reason: "the stream was reset (\(code))")
    }

    func h2StreamClosed(_ stream: H2StreamID) {
        streams[stream] = nil
    }

    func h2GoAway(lastStream: H2StreamID, code: H2ErrorCode, debugData: ByteBuffer) {}
    func h2PingAnswered(opaque: UInt64) {}
    func h2ConnectionError(_ violation: H2ProtocolViolation) {}

    // MARK: Used by the streams

    fileprivate func send(_ message: [UInt8], on stream: H2StreamID) {
        var buffer = ByteBufferAllocator().buffer(capacity: 5 + message.count)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(message.count))
        buffer.writeBytes(message)
        engine.sendData(buffer, stream: stream, endStream: false, promise: nil)
        engine.flush()
    }

    fileprivate func cancel(_ stream: H2StreamID) {
        streams[stream] = nil
        engine.resetStream(stream, code: .cancel)
        engine.flush()
    }

    private func end(_ source: RoutingSourceStream, reason: String, cancel: Bool = false) {
        guard !source.ended else { return }
        if cancel {
            source.cancel()
        } else {
            source.ended = true
            streams[source.id] = nil
        }
        direction.sourceEnded(source, reason: reason)
    }

    private func settleReady(_ result: Result<Void, Error>) {
        guard !readySettled else { return }
        readySettled = true
        ready.completeWith(result)
    }
}

extension String {
    /// The text with %-escapes decoded (grpc-message), or as it is if they do not decode.
    var removingPercentEncodingOrSelf: String { removingPercentEncoding ?? self }
}
