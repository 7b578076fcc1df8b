// Routing mode's receivers' streams: each opens `StreamWorkflowReplicationMessages` toward its source shard directly
// on a connection of the listener's upstream (TCP, TLS or the mux, whichever the listener forwards to; docs/design/
// routing.md, "Receivers"), as the stream's `UpstreamStreamHandler`: no plugins and no ACL (the proxy's own stream),
// one hop. Batches arrive as gRPC messages, reassembled and handed to the direction with the bytes they took; the
// direction gives those bytes back (HTTP/2 flow control) only once the batch is delivered, so a target that is
// missing or slow holds its source back instead of growing a buffer.
//
// Confined to the direction's event loop (the loop of the upstream connection it is opened on).

import Foundation
import HTTP2Forwarding
import NIOCore
import NIOHPACK
import NIOHTTP2
import ShardRouting

/// One receiver's stream toward its source shard.
final class RoutingSourceStream: UpstreamStreamHandler {
    let shard: Int32
    private let connection: UpstreamConnection
    private let direction: RoutingDirection
    private var id: H2StreamID?
    private var ended = false
    private var reassembler: GRPCMessageReassembler
    private var sawHeaders = false

    /// Opens the stream on `connection` with `headers`; nil when the connection takes no stream now.
    static func open(
        shard: Int32, on connection: UpstreamConnection, headers: HPACKHeaders, direction: RoutingDirection,
        maxMessageBytes: Int
    ) -> RoutingSourceStream? {
        let stream = RoutingSourceStream(
            shard: shard, connection: connection, direction: direction, maxMessageBytes: maxMessageBytes)
        guard let id = connection.openStream(for: stream, headers: headers) else { return nil }
        stream.id = id
        return stream
    }

    private init(shard: Int32, connection: UpstreamConnection, direction: RoutingDirection, maxMessageBytes: Int) {
        self.shard = shard
        self.connection = connection
        self.direction = direction
        self.reassembler = GRPCMessageReassembler(maxMessageBytes: maxMessageBytes)
    }

    /// Sends an ACK (a `StreamWorkflowReplicationMessagesRequest`).
    func send(_ message: [UInt8]) {
        guard !ended, let id else { return }
        var buffer = ByteBufferAllocator().buffer(capacity: 5 + message.count)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(message.count))
        buffer.writeBytes(message)
        connection.writer.write(
            .data(.init(data: .byteBuffer(buffer), endStream: false)), streamID: HTTP2StreamID(Int(id)), promise: nil)
        connection.writer.flush()
    }

    /// Gives back `bytes` of receive window: the source may send that much more.
    func release(_ bytes: Int) {
        guard !ended, bytes > 0, let id else { return }
        connection.writer.releaseStreamCredit(bytes, streamID: HTTP2StreamID(Int(id)), streamOpen: true)
    }

    /// Ends the stream from this side (RST_STREAM CANCEL); the direction hears nothing more of it.
    func cancel() {
        guard !ended, let id else { return }
        ended = true
        connection.forgetOther(id)
        connection.writer.write(.rstStream(.cancel), streamID: HTTP2StreamID(Int(id)), promise: nil)
        connection.writer.flush()
    }

    // MARK: UpstreamStreamHandler

    func upstreamStreamHeaders(_ headers: HPACKHeaders, endStream: Bool) {
        guard !ended else { return }
        if !sawHeaders {
            sawHeaders = true
            if let status = headers.first(name: ":status"), status != "200" {
                return end(reason: "HTTP status \(status)", cancel: true)
            }
        }
        guard endStream else { return }
        let code = headers.first(name: "grpc-status") ?? "none"
        let message = headers.first(name: "grpc-message").map { $0.removingPercentEncoding ?? $0 } ?? ""
        end(reason: code == "0"
            ? "the source ended the stream" : "the source ended the stream with grpc-status \(code): \(message)")
    }

    func upstreamStreamData(_ payload: ByteBuffer, endStream: Bool, flowControlledLength: Int) {
        guard !ended else { return }
        var messages: [ByteBuffer] = []
        if let tooLarge = reassembler.consume(payload, into: &messages) {
            return end(reason: "a batch of \(tooLarge) bytes is over the limit (limits.maxMessageBytes)", cancel: true)
        }
        // The frame's bytes go back with the last message it completed, or at once if it completed none (they are
        // then held by the reassembler, at most one message's worth).
        if messages.isEmpty {
            release(flowControlledLength)
        }
        for (index, var message) in messages.enumerated() {
            message.moveReaderIndex(forwardBy: 5)
            let bytes = message.readBytes(length: message.readableBytes) ?? []
            let credit = index == messages.count - 1 ? flowControlledLength : 0
            do {
                guard let batch = try ReplicationBatch(response: bytes) else {
                    release(credit)
                    continue
                }
                direction.sourceBatch(self, batch, credit: credit)
            } catch {
                return end(reason: "a malformed batch: \(error)", cancel: true)
            }
            if ended { return }
        }
        if endStream { end(reason: "the source ended the stream without a status") }
    }

    func upstreamStreamEnded(reason: String) {
        end(reason: reason)
    }

    private func end(reason: String, cancel: Bool = false) {
        guard !ended else { return }
        if cancel {
            self.cancel()
        } else {
            ended = true
            if let id { connection.forgetOther(id) }
        }
        direction.sourceEnded(self, reason: reason)
    }
}
