// Makes an upstream's silence about SETTINGS_MAX_CONCURRENT_STREAMS mean what RFC 9113 says it means: no limit.
//
// NIOHTTP2 assumes a peer allows 100 concurrent streams until the peer's SETTINGS say otherwise, and keeps that
// assumption when the peer's SETTINGS never mention the parameter. grpc-go servers (the Temporal frontend among
// them) never do, so every upstream connection carried at most 100 calls and queued the rest inside NIOHTTP2,
// silently, until their deadlines: long polls and replication streams (hundreds per cluster) are exactly such calls.
//
// The fix sits in front of the HTTP/2 handler on upstream connections: the server's first frame (its preface, a
// SETTINGS frame, RFC 9113 3.4) is read whole, and when it does not carry SETTINGS_MAX_CONCURRENT_STREAMS the
// parameter is appended with `PeerStreamLimit.unlimited`. The peer sees nothing of this (NIOHTTP2 acknowledges
// the one SETTINGS frame it received, as it would have); later SETTINGS frames pass untouched, so a peer that sets
// a limit later is obeyed. Every other byte passes as it came, and the handler leaves the pipeline after the
// first frame. This goes away with the proxy's own HTTP/2 engine (issue "Own the HTTP/2 data path").
//
// `PeerStreamLimit.Rewriter` is the state machine (bytes in, bytes out, no I/O); `PeerStreamLimitHandler` moves
// a connection's bytes through it.

import NIOCore

enum PeerStreamLimit {
    /// What the rewriter writes for an absent limit: the largest value a stream count can take here (client stream
    /// ids are odd numbers below 2^31, so a connection cannot have more streams than this anyway).
    static let unlimited: UInt32 = UInt32(Int32.max)

    private static let frameHeaderLength = 9
    private static let settingsType: UInt8 = 0x4
    private static let ackFlag: UInt8 = 0x1
    private static let maxConcurrentStreamsIdentifier: UInt16 = 0x3
    /// SETTINGS_MAX_FRAME_SIZE's initial value: the peer's preface is decoded before any larger value applies.
    private static let initialMaxFrameSize = 16_384

    /// Follows the start of the bytes a server sends until its first frame is complete.
    struct Rewriter {
        /// The first frame's bytes (and anything after them) while the frame is incomplete.
        private var pending: ByteBuffer?
        /// Set once the first frame has been handled: everything from then on passes untouched.
        private(set) var isDone = false
        /// Whether the first frame was a SETTINGS frame without a stream limit (and got one appended).
        private(set) var addedUnlimited = false

        init() {}

        /// Takes the next bytes read from the server; returns what to pass on now (nil: nothing yet, the first
        /// frame is incomplete). Bytes come out in order, with the first frame changed only as described above.
        mutating func feed(_ bytes: ByteBuffer) -> ByteBuffer? {
            if isDone { return bytes }
            var buffer: ByteBuffer
            if var held = pending {
                var incoming = bytes
                held.writeBuffer(&incoming)
                buffer = held
            } else {
                buffer = bytes
            }
            guard let header = Self.header(of: buffer) else {
                pending = buffer
                return nil
            }
            // Anything but a well-formed SETTINGS preface is passed on for the HTTP/2 handler to refuse.
            guard header.type == PeerStreamLimit.settingsType, header.flags & PeerStreamLimit.ackFlag == 0,
                header.streamID == 0, header.length % 6 == 0,
                header.length + 6 <= PeerStreamLimit.initialMaxFrameSize
            else {
                return finish(buffer)
            }
            let frameLength = PeerStreamLimit.frameHeaderLength + header.length
            guard buffer.readableBytes >= frameLength else {
                pending = buffer
                return nil
            }
            let payloadStart = buffer.readerIndex + PeerStreamLimit.frameHeaderLength
            for offset in stride(from: 0, to: header.length, by: 6) {
                let identifier = buffer.getInteger(at: payloadStart + offset, as: UInt16.self)!
                if identifier == PeerStreamLimit.maxConcurrentStreamsIdentifier {
                    return finish(buffer)
                }
            }
            var rewritten = ByteBufferAllocator().buffer(capacity: buffer.readableBytes + 6)
            let newLength = header.length + 6
            rewritten.writeInteger(UInt8(truncatingIfNeeded: newLength >> 16))
            rewritten.writeInteger(UInt16(truncatingIfNeeded: newLength))
            rewritten.writeInteger(header.type)
            rewritten.writeInteger(header.flags)
            rewritten.writeInteger(header.streamID)
            rewritten.writeImmutableBuffer(buffer.getSlice(at: payloadStart, length: header.length)!)
            rewritten.writeInteger(PeerStreamLimit.maxConcurrentStreamsIdentifier)
            rewritten.writeInteger(PeerStreamLimit.unlimited)
            buffer.moveReaderIndex(forwardBy: frameLength)
            rewritten.writeBuffer(&buffer)
            addedUnlimited = true
            return finish(rewritten)
        }

        private mutating func finish(_ buffer: ByteBuffer) -> ByteBuffer {
            isDone = true
            pending = nil
            return buffer
        }

        private static func header(of buffer: ByteBuffer) -> (length: Int, type: UInt8, flags: UInt8, streamID: UInt32)? {
            guard buffer.readableBytes >= PeerStreamLimit.frameHeaderLength else { return nil }
            let start = buffer.readerIndex
            let high = Int(buffer.getInteger(at: start, as: UInt8.self)!)
            let low = Int(buffer.getInteger(at: start + 1, as: UInt16.self)!)
            return (
                length: high << 16 | low,
                type: buffer.getInteger(at: start + 3, as: UInt8.self)!,
                flags: buffer.getInteger(at: start + 4, as: UInt8.self)!,
                streamID: buffer.getInteger(at: start + 5, as: UInt32.self)! & 0x7FFF_FFFF
            )
        }
    }
}

/// Runs a connection's first inbound bytes through `PeerStreamLimit.Rewriter`, then leaves the pipeline.
final class PeerStreamLimitHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var rewriter = PeerStreamLimit.Rewriter()
    private var removed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !removed else {
            context.fireChannelRead(data)
            return
        }
        if let output = rewriter.feed(unwrapInboundIn(data)) {
            context.fireChannelRead(wrapInboundOut(output))
        }
        if rewriter.isDone {
            removed = true
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}
