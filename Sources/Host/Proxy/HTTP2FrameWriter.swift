// The write side shared by both ends of a forwarded call: the client's connection and the upstream connection.
//
// Both connection handlers run NIO's HTTP/2 handler without a stream multiplexer, so each needs the same three
// things: write frames by stream id, flush once per read batch (`ReadBatchFlusher`: flushing through the HTTP/2
// handler is costly, and calls finish in bursts), and grant flow-control credit back to its peer (`FlowCredit`):
// the connection's as bytes arrive, a stream's once they were forwarded, and the connection window opened beyond
// the 64 KiB the protocol starts with.
//
// Confined to the connection's event loop.

import HTTP2Forwarding
import NIOCore
import NIOHTTP2

final class HTTP2FrameWriter {
    private var context: ChannelHandlerContext?
    /// The proxy's own HTTP/2 engine, when the connection runs on it rather than on NIOHTTP2: frames go to it by
    /// direct calls, and it keeps the flow-control windows itself.
    private var engine: H2ConnectionHandler?
    private let connectionWindowBytes: Int
    private var connectionCredit: FlowCredit
    private var connectionWindowRaised = false
    private var flushPending = false
    private var flusher: ReadBatchFlusher?

    init(tuning: HTTP2Tuning) {
        self.connectionWindowBytes = tuning.connectionWindowBytes
        self.connectionCredit = FlowCredit(window: tuning.connectionWindowBytes)
    }

    /// Starts writing through `context` (the connection handler's own context).
    func attach(_ context: ChannelHandlerContext) {
        self.context = context
        flusher = ReadBatchFlusher.current
    }

    /// Starts writing through the engine, on the connection of `context`.
    func attach(_ context: ChannelHandlerContext, engine: H2ConnectionHandler) {
        self.engine = engine
        attach(context)
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
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        guard let engine else {
            context.write(NIOAny(HTTP2Frame(streamID: streamID, payload: payload)), promise: promise)
            return
        }
        let stream = H2StreamID(Int32(streamID))
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

    /// The connection started handing frames to calls: their flushes wait for `endReadBatch`.
    func beginReadBatch() {
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
        if let engine { return engine.flush() }
        context?.flush()
    }

    /// True when the writer was not yet waiting for the end of the read batch.
    func markFlushPending() -> Bool {
        defer { flushPending = true }
        return !flushPending
    }

    /// `bytes` received on `streamID` were forwarded: let the peer send that much more on the stream, while it is
    /// open. (The connection's window got them back when they arrived: `releaseConnectionCredit`.)
    func releaseStreamCredit(_ bytes: Int, streamID: HTTP2StreamID, streamCredit: inout FlowCredit, streamOpen: Bool) {
        if let engine {
            if streamOpen {
                engine.release(stream: H2StreamID(Int32(streamID)), bytes: bytes)
                flush()
            }
            return
        }
        if streamOpen, let increment = streamCredit.release(bytes) {
            write(.windowUpdate(windowSizeIncrement: increment), streamID: streamID, promise: nil)
            flush()
        }
    }

    /// `bytes` of DATA arrived on the connection: the connection window gets them back at once, whatever stream
    /// they are for. Backpressure is per stream; a shared window held by one stalled call would stall all the others.
    func releaseConnectionCredit(_ bytes: Int) {
        guard engine == nil else { return }
        if let increment = connectionCredit.release(bytes) {
            write(.windowUpdate(windowSizeIncrement: increment), streamID: .rootStream, promise: nil)
            flush()
        }
    }

    /// Opens the connection window to its configured size. Done on first use rather than on activation, because
    /// the HTTP/2 handler's preface must be the first thing on the wire.
    func raiseConnectionWindowOnce() {
        guard !connectionWindowRaised, engine == nil else { return }
        connectionWindowRaised = true
        let raise = connectionWindowBytes - 65_535
        if raise > 0 {
            write(.windowUpdate(windowSizeIncrement: raise), streamID: .rootStream, promise: nil)
            flush()
        }
    }
}
