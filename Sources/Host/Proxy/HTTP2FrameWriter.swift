// The write side shared by both ends of a forwarded call: the client's connection and the upstream connection.
//
// Both run the proxy's HTTP/2 engine (`H2ConnectionHandler`) and need the same things from it: write frames by stream
// id, flush once per read batch (`ReadBatchFlusher`: calls finish in bursts, and one write system call for all of
// them is cheaper than one each), and grant a stream's flow-control credit back to its peer once its call forwarded
// the bytes. The engine keeps the windows themselves (and gives the connection's back as bytes arrive).
//
// Confined to the connection's event loop.

import HTTP2Forwarding
import NIOCore
import NIOHTTP2

final class HTTP2FrameWriter {
    private var context: ChannelHandlerContext?
    /// The engine frames go to, by direct calls.
    private var engine: H2ConnectionHandler?
    private var flushPending = false
    private var flusher: ReadBatchFlusher?

    init() {}

    /// Starts writing through the engine, on the connection of `context` (the connection owner's context).
    func attach(_ context: ChannelHandlerContext, engine: H2ConnectionHandler) {
        self.context = context
        self.engine = engine
        flusher = ReadBatchFlusher.current
    }

    /// Closes the connection once what was written is flushed (at the end of the current read batch, if any).
    func detachedClose() {
        guard let context else { return }
        flush()
        context.eventLoop.execute {
            context.close(promise: nil)
        }
    }

    /// The connection is gone: writes fail from now on.
    func detach() {
        context = nil
        engine = nil
    }

    var eventLoop: EventLoop? { context?.eventLoop }

    func write(_ payload: HTTP2Frame.FramePayload, streamID: HTTP2StreamID, promise: EventLoopPromise<Void>?) {
        guard let engine else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let stream = streamID.engineID
        switch payload {
        case .headers(let headers):
            engine.sendHeaders(headers.headers, stream: stream, endStream: headers.endStream, promise: promise)
        case .data(let data):
            guard case .byteBuffer(let buffer) = data.data else {
                promise?.fail(ChannelError.operationUnsupported)
                return
            }
            engine.sendData(buffer, stream: stream, endStream: data.endStream, promise: promise)
        case .rstStream(let code):
            engine.resetStream(stream, code: H2ErrorCode(rawValue: UInt32(code.networkCode)))
            promise?.succeed()
        case .ping(let data, ack: false):
            engine.ping(opaque: data.integer)
            promise?.succeed()
        case .goAway(_, let code, let debug):
            engine.goAway(code: H2ErrorCode(rawValue: UInt32(code.networkCode)),
                          debug: debug.map { String(buffer: $0) } ?? "")
            promise?.succeed()
        default:
            // WINDOW_UPDATE and SETTINGS are the engine's own business.
            promise?.succeed()
        }
    }

    /// Flushes at the end of the event loop's current read batch, once for every call that wrote in it.
    func flush() {
        flusher?.flush(self)
    }

    /// The connection started handing frames to calls: their flushes wait for `endReadBatch`. Only while the engine
    /// is reading: a callback the owner's own action caused (a stream closed by a reset it sent) has no read batch
    /// whose end would flush, and a batch begun there would hold every flush of the thread until some later read.
    func beginReadBatch() {
        guard engine?.isReading ?? false else { return }
        flusher?.beginReadBatch()
    }

    /// Runs `body` at the end of the current read batch (see `ReadBatchFlusher.atEndOfReadBatch`).
    func atEndOfReadBatch(_ body: @escaping () -> Void) {
        guard let flusher else { return body() }
        flusher.atEndOfReadBatch(body)
    }

    /// The connection's read batch is over (or the connection closed): flush every writer its calls used.
    func endReadBatch() {
        flusher?.endReadBatch()
    }

    /// Called by the flusher.
    func flushNow() {
        flushPending = false
        engine?.flush()
    }

    /// True when the writer was not yet waiting for the end of the read batch.
    func markFlushPending() -> Bool {
        defer { flushPending = true }
        return !flushPending
    }

    /// `bytes` received on `streamID` were forwarded: let the peer send that much more on the stream, while it is
    /// open. (The connection's window got them back when they arrived.)
    func releaseStreamCredit(_ bytes: Int, streamID: HTTP2StreamID, streamOpen: Bool) {
        guard streamOpen, let engine else { return }
        engine.release(stream: streamID.engineID, bytes: bytes)
        flush()
    }
}

/// Namespace for flow-control arithmetic.
enum HTTP2FlowControlledLength {
    /// The number of bytes a DATA frame takes from the flow-control windows: payload, padding and the pad-length byte.
    static func of(_ data: HTTP2Frame.FramePayload.Data) -> Int {
        data.data.readableBytes + (data.paddingBytes.map { $0 + 1 } ?? 0)
    }
}

extension HTTP2Frame.FramePayload.Data {
    /// DATA the engine handed over, as a frame payload whose flow-controlled length (`HTTP2FlowControlledLength.of`)
    /// is the one the engine counted: what is beyond the payload was padding and its pad-length byte.
    init(engineData payload: ByteBuffer, endStream: Bool, flowControlledLength: Int) {
        let padding = flowControlledLength - payload.readableBytes
        self.init(data: .byteBuffer(payload), endStream: endStream, paddingBytes: padding > 0 ? padding - 1 : nil)
    }
}

extension HTTP2StreamID {
    /// The id as the engine and its stream maps have it.
    var engineID: H2StreamID { H2StreamID(Int32(self)) }
}
