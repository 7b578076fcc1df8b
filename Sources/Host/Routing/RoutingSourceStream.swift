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
    private var reassembler: GRPCMessageArrays
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
        self.reassembler = GRPCMessageArrays(maxMessageBytes: maxMessageBytes)
    }

    /// Sends an ACK (a `StreamWorkflowReplicationMessagesRequest`).
    func send(_ message: [UInt8]) {
        guard !ended, let id else { return }
        connection.writer.write(
            .data(.init(data: .byteBuffer(.grpcMessage(message)), endStream: false)), streamID: HTTP2StreamID(Int(id)), promise: nil)
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
        var messages: [[UInt8]] = []
        if let tooLarge = reassembler.consume(payload, into: &messages) {
            return end(reason: "a batch of \(tooLarge) bytes is over the limit (limits.maxMessageBytes)", cancel: true)
        }
        // The frame's bytes go back with the last message it completed, or at once if it completed none (they are
        // then held by the reassembler, at most one message's worth).
        if messages.isEmpty {
            release(flowControlledLength)
        }
        if reassembler.sawCompressed {
            return end(reason: "the source sent a compressed batch; routing reads every task, so the proxy asks for none (it sends no grpc-accept-encoding) and cannot serve this one", cancel: true)
        }
        for (index, bytes) in messages.enumerated() {
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

/// Cuts a stream's DATA into whole gRPC messages as byte arrays, each byte copied once, straight from the frames
/// into the array the codec reads (its tasks then share it); the 5-byte prefixes are left out. The size limit is
/// checked on the prefix, before any of the body is held.
struct GRPCMessageArrays {
    private let maxMessageBytes: Int
    private var prefix: [UInt8] = []
    private var body: [UInt8] = []
    /// The body length of the message being gathered, once its prefix is complete.
    private var length: Int?

    init(maxMessageBytes: Int) {
        self.maxMessageBytes = maxMessageBytes
        prefix.reserveCapacity(5)
    }

    /// Feeds the next chunk; appends each message it completes to `messages`.
    /// - Returns: the declared length of a message over the limit (the stream cannot go on), or nil.
    mutating func consume(_ chunk: ByteBuffer, into messages: inout [[UInt8]]) -> Int? {
        chunk.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                guard let length else {
                    let taken = min(5 - prefix.count, bytes.count - offset)
                    prefix.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + taken)]))
                    offset += taken
                    guard prefix.count == 5 else { continue }
                    let declared = Int(prefix[1]) << 24 | Int(prefix[2]) << 16 | Int(prefix[3]) << 8 | Int(prefix[4])
                    if declared > maxMessageBytes { return declared }
                    self.length = declared
                    body = []
                    body.reserveCapacity(declared)
                    if declared == 0 { finish(into: &messages) }
                    continue
                }
                let taken = min(length - body.count, bytes.count - offset)
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + taken)]))
                offset += taken
                if body.count == length { finish(into: &messages) }
            }
            return nil
        }
    }

    /// A message came compressed (its prefix's flag set): routing reads tasks, so the stream cannot be served.
    private(set) var sawCompressed = false

    private mutating func finish(into messages: inout [[UInt8]]) {
        if prefix[0] != 0 { sawCompressed = true }
        messages.append(body)
        body = []
        prefix.removeAll(keepingCapacity: true)
        length = nil
    }
}
