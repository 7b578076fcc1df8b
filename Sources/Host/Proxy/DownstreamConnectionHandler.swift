// One accepted downstream HTTP/2 connection: each new stream becomes a `ProxyCall`.
//
// The proxy's HTTP/2 engine (`H2ConnectionHandler`, module HTTP2Forwarding) sits before this handler and hands it
// what the client sent by direct calls (`H2ConnectionDelegate`): header blocks, DATA, resets, closes. This handler
// owns the connection's calls by stream id, hands them those events, and writes their frames through its
// `HTTP2FrameWriter` into the engine, which keeps the flow-control windows: the connection's is granted back as DATA
// arrives, a stream's once its call says the bytes were forwarded. It logs the connection's life, and sends GOAWAY
// when the proxy drains. Two timers bound what an idle client costs: a connection that has not sent its preface
// and SETTINGS within the handshake timeout is closed, and one without calls for the idle timeout gets GOAWAY and
// is closed (`limits.handshakeTimeoutSeconds`, `limits.idleTimeoutSeconds`).
//
// Confined to the connection's event loop.

import HTTP2Forwarding
import Logging
import NIOCore
import NIOHPACK
import NIOHTTP2

final class DownstreamConnectionHandler: ChannelInboundHandler, H2ConnectionDelegate {
    /// Nothing arrives through the pipeline: the engine calls this handler directly.
    typealias InboundIn = Never

    private let listener: ListenerContext
    /// The connection's lines (`tcpServer`, with the peer).
    let logger: Logger
    /// This connection's logger for each call component, made on the first call of that component.
    private var callLoggers: [Logger?] = [nil, nil, nil, nil]
    /// Writes to the client; calls use it for their downstream frames.
    let writer: HTTP2FrameWriter
    /// The engine that reads and writes the connection's HTTP/2.
    private let engine: H2ConnectionHandler
    private var context: ChannelHandlerContext?
    private var calls = H2StreamMap<ProxyCall>()
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
    /// The connection got GOAWAY for a flood: the calls in flight finish, then the connection closes.
    private var closeWhenIdle = false
    /// This side sent GOAWAY (drain, idle, flood): never a second one.
    private var goAwaySent = false

    init(listener: ListenerContext, logger: Logger, tuning: HTTP2Tuning, engine: H2ConnectionHandler) {
        self.listener = listener
        self.logger = logger
        self.engine = engine
        self.writer = HTTP2FrameWriter()
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
        self.context = context
        engine.delegate = self
        writer.attach(context, engine: engine)
        if context.channel.isActive {
            startHandshakeTimer(context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The context and the engine would otherwise keep this handler (and it them) alive after the connection.
        self.context = nil
        engine.delegate = nil
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
        let open = calls.allValues
        calls.removeAll()
        for call in open {
            call.downstreamClosed(reason: nil)
        }
        writer.detach()
        engine.delegate = nil
        context.fireChannelInactive()
    }

    // MARK: What the engine hands over

    func h2PeerSettingsChanged() {
        if !handshakeDone, let context {
            // The client's preface and first SETTINGS are in.
            handshakeFinished(context: context)
        }
    }

    func h2Headers(_ headers: HPACKHeaders, stream: H2StreamID, endStream: Bool, isNewStream: Bool) {
        writer.beginReadBatch()
        let streamID = HTTP2StreamID(Int(stream))
        let block = HTTP2Frame.FramePayload.Headers(headers: headers, endStream: endStream)
        guard isNewStream else {
            calls[stream]?.downstreamHeaders(block)
            return
        }
        let call = ProxyCall(listener: listener, downstream: self, streamID: streamID)
        calls[stream] = call
        streamsInWindow += 1
        if streamsInWindow > Self.prematureResetWindow {
            streamsInWindow = 1
            prematureResets = 0
        }
        idleSince = nil
        lastStreamID = max(lastStreamID, streamID)
        call.start(block)
    }

    func h2Data(_ payload: ByteBuffer, stream: H2StreamID, endStream: Bool, flowControlledLength: Int) {
        writer.beginReadBatch()
        // The engine gave the connection window back as the bytes arrived; the call releases its stream's window.
        guard let call = calls[stream] else { return }
        call.downstreamData(.init(engineData: payload, endStream: endStream, flowControlledLength: flowControlledLength))
    }

    func h2StreamReset(_ stream: H2StreamID, code: H2ErrorCode, byPeer: Bool) {
        writer.beginReadBatch()
        let streamID = HTTP2StreamID(Int(stream))
        let reason = HTTP2ErrorCode(networkCode: Int(code.rawValue))
        guard byPeer else {
            // This end reset the stream for a stream error (a window overflow, a malformed trailer block).
            removeCall(streamID)?.downstreamClosed(reason: reason)
            return
        }
        guard let call = removeCall(streamID) else { return }
        if !call.isAnswered, NIODeadline.now() - call.startTime < Self.prematureResetLifetime {
            prematureResets += 1
        }
        call.downstreamReset(reason)
        if prematureResets >= Self.prematureResetLimit, let context {
            closeForRapidResets(context: context)
        }
    }

    func h2StreamClosed(_ stream: H2StreamID) {
        writer.beginReadBatch()
        removeCall(HTTP2StreamID(Int(stream)))?.downstreamClosed(reason: nil)
    }

    func h2GoAway(lastStream: H2StreamID, code: H2ErrorCode, debugData: ByteBuffer) {
        logger.debug("the client sent GOAWAY", metadata: ["code": "\(code)"])
    }

    func h2PingAnswered(opaque: UInt64) {}

    func h2ConnectionError(_ violation: H2ProtocolViolation) {
        guard !reportedError else { return }
        reportedError = true
        logger.warning("closing connection after protocol error", metadata: ["error": "\(violation)"])
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is DrainRequest {
            // Tell the client to open no new streams; streams in flight continue.
            sendGoAway(code: .noError, context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        writer.endReadBatch()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Protocol errors are the engine's (`h2ConnectionError`); what arrives here failed below HTTP/2: a reset TCP
        // connection, a TLS error, the mux session carrying the connection.
        if !reportedError {
            reportedError = true
            logger.warning("connection lost", metadata: ["error": "\(NetworkErrorDescription.describe(error))"])
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
        let removed = calls.removeValue(forKey: streamID.engineID)
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
        sendGoAway(code: .enhanceYourCalm, context: context, debug: "rapid reset")
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

    /// Sends GOAWAY once per connection, naming the last stream the client opened: later ones it retries elsewhere.
    private func sendGoAway(code: H2ErrorCode, context: ChannelHandlerContext, debug: String = "") {
        guard !goAwaySent else { return }
        goAwaySent = true
        engine.goAway(code: code, debug: debug)
        engine.flush()
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
        sendGoAway(code: .noError, context: context)
        engine.close()
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
