// One accepted downstream HTTP/2 connection, handled frame by frame: each new stream becomes a `ProxyCall`.
//
// NIO's HTTP/2 handler sits before this one without a stream multiplexer, so frames arrive here with their stream
// ids; there is no channel per stream. This handler owns the connection's calls by stream id, hands frames to them,
// grants connection-level flow-control credit back to the client as DATA arrives (its calls grant their streams'
// credit once they have forwarded the bytes; both through its `HTTP2FrameWriter`), logs the connection's
// life, closes it on protocol errors (garbage, a client that is not HTTP/2) and sends GOAWAY when the proxy drains.
// Two timers bound what an idle client costs: a connection that has not sent its preface and SETTINGS within the
// handshake timeout is closed, and one without calls for the idle timeout gets GOAWAY and is closed
// (`limits.handshakeTimeoutSeconds`, `limits.idleTimeoutSeconds`).
//
// Confined to the connection's event loop.

import Logging
import NIOCore
import NIOHTTP2

final class DownstreamConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let listener: ListenerContext
    /// The connection's lines (`tcpServer`, with the peer).
    let logger: Logger
    /// This connection's logger for each call component, made on the first call of that component.
    private var callLoggers: [Logger?] = [nil, nil, nil, nil]
    /// Writes to the client; calls use it for their downstream frames.
    let writer: HTTP2FrameWriter
    private var calls: [HTTP2StreamID: ProxyCall] = [:]
    private var reportedError = false
    private let handshakeTimeout: TimeAmount?
    private let idleTimeout: TimeAmount?
    /// Closes the connection unless the client's preface and SETTINGS arrive first; nil once they have.
    private var handshakeDeadline: Scheduled<Void>?
    private var handshakeDone = false
    /// Runs once per idle timeout while the connection is up; closes it if it had no call all that time.
    private var idleCheck: Scheduled<Void>?
    /// Since when the connection has had no call; nil while it has one.
    private var idleSince: NIODeadline?
    /// The highest stream id a call came on, for the GOAWAY of an idle close.
    private var lastStreamID = HTTP2StreamID.rootStream
    /// Calls on this connection since the rapid-reset window began, and how many of them the client reset
    /// before they were answered, within `prematureResetLifetime` of their start.
    private var streamsInWindow = 0
    private var prematureResets = 0
    /// A client that resets `prematureResetLimit` of `prematureResetWindow` calls before they are answered (and
    /// within a second of starting them) is flooding: each of its calls still reaches the upstream, which a few
    /// thousand a second starve of everything else (CVE-2023-44487, "rapid reset"). Its connection gets GOAWAY
    /// (ENHANCE_YOUR_CALM) and is closed. Real clients cancel calls too, but not half of them within a second.
    static let prematureResetWindow = 200
    static let prematureResetLimit = 100
    static let prematureResetLifetime: TimeAmount = .seconds(1)
    /// NIOHTTP2 sent GOAWAY over frames for a stream that had already ended: the calls in flight finish, then the
    /// connection closes.
    private var closeWhenIdle = false
    /// This side sent GOAWAY (drain, idle, flood): never a second one.
    private var goAwaySent = false

    init(listener: ListenerContext, logger: Logger, tuning: HTTP2Tuning) {
        self.listener = listener
        self.logger = logger
        self.writer = HTTP2FrameWriter(tuning: tuning)
        self.handshakeTimeout = tuning.handshakeTimeout
        self.idleTimeout = tuning.idleTimeout
    }

    /// The logger for this connection's calls of `component` (a call's component comes from its `:path`).
    func callLogger(for component: LogComponent) -> Logger {
        let slot: Int
        switch component {
        case .adminService: slot = 0
        case .workflowService: slot = 1
        case .replicationStreams: slot = 2
        default: slot = 3
        }
        if let made = callLoggers[slot] { return made }
        let made = logger.component(slot == 3 ? .otherServices : component)
        callLoggers[slot] = made
        return made
    }

    func handlerAdded(context: ChannelHandlerContext) {
        writer.attach(context)
        if context.channel.isActive {
            startHandshakeTimer(context: context)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        logger.info("connection opened")
        startHandshakeTimer(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A read batch can end in the connection closing, without channelReadComplete.
        defer { writer.endReadBatch() }
        handshakeDeadline?.cancel()
        idleCheck?.cancel()
        logger.info("connection closed")
        let open = calls
        calls = [:]
        for call in open.values {
            call.downstreamClosed(reason: nil)
        }
        writer.detach()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        writer.beginReadBatch()
        writer.raiseConnectionWindowOnce()
        if !handshakeDone {
            // The HTTP/2 handler passes frames on only after the client's preface; the first is its SETTINGS.
            handshakeFinished(context: context)
        }
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            if let call = calls[frame.streamID] {
                call.downstreamHeaders(headers)
            } else {
                let call = ProxyCall(listener: listener, downstream: self, streamID: frame.streamID)
                calls[frame.streamID] = call
                streamsInWindow += 1
                if streamsInWindow > Self.prematureResetWindow {
                    streamsInWindow = 1
                    prematureResets = 0
                }
                idleSince = nil
                lastStreamID = max(lastStreamID, frame.streamID)
                call.start(headers)
            }
        case .data(let data):
            // The connection window is given back as bytes arrive, whoever they are for: a call whose other side
            // does not read holds its own stream window, never the window its connection shares with other calls.
            writer.releaseConnectionCredit(HTTP2FlowControlledLength.of(data))
            calls[frame.streamID]?.downstreamData(data)
        case .rstStream(let code):
            if let call = calls[frame.streamID] {
                if !call.isAnswered, NIODeadline.now() - call.startTime < Self.prematureResetLifetime {
                    prematureResets += 1
                }
                call.downstreamReset(code)
                if prematureResets >= Self.prematureResetLimit {
                    return closeForRapidResets(context: context)
                }
            }
        default:
            break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Window updates come with every DATA frame and nobody after this handler needs them: stop them here,
        // before the costlier checks below.
        if event is NIOHTTP2WindowUpdatedEvent { return }
        switch event {
        case let closed as StreamClosedEvent:
            removeCall(closed.streamID)?.downstreamClosed(reason: closed.reason)
        case is DrainRequest:
            // Tell the client to open no new streams; streams in flight continue.
            sendGoAway(lastStreamID: .maxID, code: .noError, context: context)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        writer.endReadBatch()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Stream-level errors were already answered with RST_STREAM by the HTTP/2 handler; a StreamClosedEvent ends
        // the call. Anything else is a connection error: the connection is unusable.
        if error is NIOHTTP2Errors.StreamError { return }
        if goAwaySent, error is NIOHTTP2Errors.IOOnClosedConnection || error is NIOHTTP2Errors.RaisedGoawayLastStreamID {
            // After this side's GOAWAY, NIOHTTP2 refuses what the client still sends once the connection has no
            // streams left, and tries a GOAWAY of its own. The calls in flight finish; then the connection closes.
            closeWhenIdle = true
            if calls.isEmpty { context.close(promise: nil) }
            return
        }
        if error is NIOHTTP2Errors.StreamIDTooSmall || error is NIOHTTP2Errors.NoSuchStream {
            // Frames for a stream that has already ended: trailers or DATA a client still had in flight when the
            // proxy ended its call. RFC 9113 (5.1, 6.4) says to ignore them; NIOHTTP2 ignores DATA on the streams
            // it reset last but treats HEADERS (and older streams) as a connection error and has sent GOAWAY. The
            // other calls on the connection are healthy: let them finish rather than fail them all, then close.
            if !closeWhenIdle {
                logger.info(
                    "the client sent frames for a stream that had already ended; HTTP/2 sent GOAWAY: the connection closes once its calls finish",
                    metadata: ["error": "\(error)", "calls": "\(calls.count)"])
            }
            closeWhenIdle = true
            if calls.isEmpty { context.close(promise: nil) }
            return
        }
        if !reportedError {
            reportedError = true
            if error is NIOHTTP2Errors.InvalidStreamIDForPeer {
                // grpc-go clients (the temporal CLI, Temporal servers) close their connections with a GOAWAY naming
                // their own last stream, which the HTTP/2 state machine rejects; the connection was ending anyway.
                logger.debug("closing connection: the client's GOAWAY named one of its own streams", metadata: ["error": "\(error)"])
            } else if error is any NIOHTTP2Error {
                logger.warning("closing connection after protocol error", metadata: ["error": "\(NetworkErrorDescription.describe(error))"])
            } else {
                // The transport under HTTP/2 failed: a reset TCP connection, or the mux session carrying it ended.
                logger.warning("connection lost", metadata: ["error": "\(NetworkErrorDescription.describe(error))"])
            }
        }
        context.close(promise: nil)
    }

    // MARK: Used by the calls of this connection

    /// The call on `streamID` is over from the proxy's point of view; frames still arriving for it are dropped.
    func forget(_ streamID: HTTP2StreamID) {
        removeCall(streamID)
    }

    @discardableResult
    private func removeCall(_ streamID: HTTP2StreamID) -> ProxyCall? {
        let removed = calls.removeValue(forKey: streamID)
        if removed != nil, calls.isEmpty {
            if closeWhenIdle {
                writer.detachedClose()
            } else if idleTimeout != nil {
                idleSince = .now()
            }
        }
        return removed
    }

    /// GOAWAY(ENHANCE_YOUR_CALM) for a client that resets most of its calls before they are answered. The calls
    /// it already opened may finish (a proxy in front forwards many clients' resets, and its other calls are
    /// healthy): the connection closes once they have, or after `rapidResetGrace`.
    private func closeForRapidResets(context: ChannelHandlerContext) {
        prematureResets = 0
        streamsInWindow = 0
        guard context.channel.isActive, !goAwaySent else { return }
        logger.warning(
            "closing connection: the client reset most of its last calls before they were answered (a rapid-reset flood); calls in flight may finish",
            metadata: ["calls": "\(calls.count)"]
        )
        listener.metrics.rapidResetConnectionClosed()
        sendGoAway(lastStreamID: lastStreamID, code: .enhanceYourCalm, context: context, debug: "rapid reset")
        closeWhenIdle = true
        if calls.isEmpty {
            writer.detachedClose()
        } else {
            context.eventLoop.scheduleTask(in: Self.rapidResetGrace) {
                context.close(promise: nil)
            }
        }
    }

    static let rapidResetGrace: TimeAmount = .seconds(10)

    /// Sends GOAWAY once per connection: NIOHTTP2 refuses a second one that names a higher last stream.
    @discardableResult
    private func sendGoAway(
        lastStreamID: HTTP2StreamID, code: HTTP2ErrorCode, context: ChannelHandlerContext, debug: String? = nil
    ) -> EventLoopFuture<Void>? {
        guard !goAwaySent else { return nil }
        goAwaySent = true
        let goAway = HTTP2Frame(
            streamID: .rootStream,
            payload: .goAway(lastStreamID: lastStreamID, errorCode: code, opaqueData: debug.map { ByteBuffer(string: $0) }))
        return context.writeAndFlush(wrapOutboundOut(goAway))
    }

    // MARK: Handshake and idle timeouts

    private func startHandshakeTimer(context: ChannelHandlerContext) {
        guard let handshakeTimeout, handshakeDeadline == nil, !handshakeDone else { return }
        handshakeDeadline = context.eventLoop.scheduleTask(in: handshakeTimeout) {
            guard !self.handshakeDone else { return }
            self.logger.info(
                "closing connection: no HTTP/2 preface and SETTINGS within \(handshakeTimeout.secondsText) s of accepting it (limits.handshakeTimeoutSeconds)"
            )
            context.close(promise: nil)
        }
    }

    private func handshakeFinished(context: ChannelHandlerContext) {
        handshakeDone = true
        handshakeDeadline?.cancel()
        handshakeDeadline = nil
        guard let idleTimeout else { return }
        idleSince = .now()
        scheduleIdleCheck(in: idleTimeout, context: context)
    }

    private func scheduleIdleCheck(in delay: TimeAmount, context: ChannelHandlerContext) {
        idleCheck = context.eventLoop.scheduleTask(in: delay) {
            self.checkIdle(context: context)
        }
    }

    private func checkIdle(context: ChannelHandlerContext) {
        guard let idleTimeout, context.channel.isActive else { return }
        guard let idleSince, calls.isEmpty else {
            return scheduleIdleCheck(in: idleTimeout, context: context)
        }
        let idle = NIODeadline.now() - idleSince
        guard idle >= idleTimeout else {
            return scheduleIdleCheck(in: idleTimeout - idle, context: context)
        }
        logger.info("closing idle connection: no call for \(idleTimeout.secondsText) s (limits.idleTimeoutSeconds)")
        sendGoAway(lastStreamID: lastStreamID, code: .noError, context: context)?.whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

extension TimeAmount {
    /// Whole seconds when whole ("10"), else with decimals ("0.5"), for log lines that quote a configured time.
    var secondsText: String {
        let seconds = Double(nanoseconds) / 1e9
        return seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }
}

/// Sent down a connection's pipeline when the proxy starts draining.
struct DrainRequest {}
