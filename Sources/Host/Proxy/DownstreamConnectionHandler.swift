// One accepted downstream HTTP/2 connection, handled frame by frame: each new stream becomes a `ProxyCall`.
//
// NIO's HTTP/2 handler sits before this one without a stream multiplexer, so frames arrive here with their stream
// ids; there is no channel per stream. This handler owns the connection's calls by stream id, hands frames to them,
// grants flow-control credit back to the client when a call says its bytes were forwarded, logs the connection's
// life, closes it on protocol errors (garbage, a client that is not HTTP/2) and sends GOAWAY when the proxy drains.
//
// Confined to the connection's event loop.

import Logging
import NIOCore
import NIOHTTP2

final class DownstreamConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let listener: ListenerContext
    private let logger: Logger
    private let tuning: HTTP2Tuning
    private var context: ChannelHandlerContext?
    private var calls: [HTTP2StreamID: ProxyCall] = [:]
    private var connectionCredit: FlowCredit
    private var connectionWindowRaised = false
    private var flushScheduled = false
    private var reportedError = false

    init(listener: ListenerContext, logger: Logger, tuning: HTTP2Tuning) {
        self.listener = listener
        self.logger = logger
        self.tuning = tuning
        self.connectionCredit = FlowCredit(window: tuning.connectionWindowBytes)
    }

    var eventLoop: EventLoop? { context?.eventLoop }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        logger.info("connection opened")
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        logger.info("connection closed")
        let open = calls
        calls = [:]
        for call in open.values {
            call.downstreamClosed(reason: nil)
        }
        self.context = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        raiseConnectionWindowOnce()
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            if let call = calls[frame.streamID] {
                call.downstreamHeaders(headers)
            } else {
                var callLogger = logger
                callLogger[metadataKey: "stream"] = "\(frame.streamID)"
                let call = ProxyCall(listener: listener, downstream: self, streamID: frame.streamID, logger: callLogger)
                calls[frame.streamID] = call
                call.start(headers)
            }
        case .data(let data):
            if let call = calls[frame.streamID] {
                call.downstreamData(data)
            } else {
                // A stream that already ended: drop the bytes but give their connection credit back.
                releaseConnectionCredit(HTTP2FlowControlledLength.of(data))
            }
        case .rstStream(let code):
            calls[frame.streamID]?.downstreamReset(code)
        default:
            break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let closed as StreamClosedEvent:
            calls.removeValue(forKey: closed.streamID)?.downstreamClosed(reason: closed.reason)
        case is DrainRequest:
            // Tell the client to open no new streams; streams in flight continue.
            let goAway = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: .maxID, errorCode: .noError, opaqueData: nil))
            context.writeAndFlush(wrapOutboundOut(goAway), promise: nil)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Stream-level errors were already answered with RST_STREAM by the HTTP/2 handler; a StreamClosedEvent ends
        // the call. Anything else is a connection error: the connection is unusable.
        if error is NIOHTTP2Errors.StreamError { return }
        if !reportedError {
            reportedError = true
            logger.warning("closing connection after protocol error", metadata: ["error": "\(NetworkErrorDescription.describe(error))"])
        }
        context.close(promise: nil)
    }

    // MARK: Used by the calls of this connection

    func write(_ payload: HTTP2Frame.FramePayload, streamID: HTTP2StreamID, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: payload)), promise: promise)
    }

    /// Flushes at the end of the current event-loop tick, once for all calls that wrote in it: flushing through
    /// the HTTP/2 handler is costly, and calls finish in bursts.
    func flush() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.context?.flush()
        }
    }

    /// `bytes` received on `streamID` were forwarded: let the client send that much more.
    func releaseCredit(_ bytes: Int, streamID: HTTP2StreamID, streamCredit: inout FlowCredit, streamOpen: Bool) {
        if streamOpen, let increment = streamCredit.release(bytes) {
            write(.windowUpdate(windowSizeIncrement: increment), streamID: streamID, promise: nil)
            flush()
        }
        releaseConnectionCredit(bytes)
    }

    /// The connection window starts at 64 KiB by protocol; open it to the configured size. Done on first use
    /// rather than on activation, because the HTTP/2 handler's preface must be the first thing on the wire.
    private func raiseConnectionWindowOnce() {
        guard !connectionWindowRaised else { return }
        connectionWindowRaised = true
        let raise = tuning.connectionWindowBytes - 65_535
        if raise > 0 {
            write(.windowUpdate(windowSizeIncrement: raise), streamID: .rootStream, promise: nil)
            flush()
        }
    }

    private func releaseConnectionCredit(_ bytes: Int) {
        if let increment = connectionCredit.release(bytes) {
            write(.windowUpdate(windowSizeIncrement: increment), streamID: .rootStream, promise: nil)
            flush()
        }
    }

    /// The call on `streamID` is over from the proxy's point of view; frames still arriving for it are dropped.
    func forget(_ streamID: HTTP2StreamID) {
        calls.removeValue(forKey: streamID)
    }
}

/// Sent down a connection's pipeline when the proxy starts draining.
struct DrainRequest {}
