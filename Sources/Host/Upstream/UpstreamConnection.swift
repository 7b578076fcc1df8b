// One HTTP/2 client connection to one upstream address, carrying the upstream halves of many calls.
//
// Over TLS when the upstream's `tls:` block enables it: the connection counts as established only once the server
// has spoken HTTP/2 after the handshake, so a refused certificate fails the connect (with its reason) instead of
// handing calls a connection that is about to close. The proxy's HTTP/2 engine (`H2ConnectionHandler`, client
// role) reads and writes the connection: it allocates the stream ids, keeps the flow-control windows (the
// connection's is granted back as DATA arrives, a stream's once its call says the bytes were forwarded) and takes a
// server that never mentions SETTINGS_MAX_CONCURRENT_STREAMS at its word: no limit (RFC 9113 6.5.2; grpc-go servers,
// the Temporal frontend among them, say nothing). This handler is the engine's owner: it hands each event to the call
// that owns its stream, tells its pool when the upstream says GOAWAY and when the connection is gone, and pings a
// silent connection that has calls. It never retries anything itself: that is the pool's job.
//
// Confined to its event loop.

import HTTP2Forwarding
import Logging
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOTLS

final class UpstreamConnection: ChannelInboundHandler, H2ConnectionDelegate {
    /// Nothing arrives through the pipeline: the engine calls this handler directly.
    typealias InboundIn = Never

    let address: SocketAddress
    private(set) var channel: Channel?
    private var context: ChannelHandlerContext?
    /// Writes to the upstream; calls use it for their upstream frames.
    let writer: HTTP2FrameWriter
    /// The engine that reads and writes the connection's HTTP/2.
    private let engine: H2ConnectionHandler
    private let tuning: HTTP2Tuning
    private let onGoAway: (UpstreamConnection) -> Void
    private var calls = H2StreamMap<ProxyCall>()
    /// Streams carried for others than forwarded calls (routing mode's source streams); looked up only for a
    /// stream that is not a call's.
    private var others: [H2StreamID: any UpstreamStreamHandler] = [:]
    /// Streams open on the connection now. Calls that ended early leave `calls` at once but hold a stream until
    /// its reset is out, so this, not `calls.count`, is what the peer's limit applies to.
    var openStreams: Int { engine.openStreamCount }
    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS; `Int.max` while it has set none (RFC 9113 6.5.2: no limit).
    var peerMaxConcurrentStreams: Int { engine.peerMaxConcurrentStreams }
    /// Set once the upstream sent GOAWAY (or stream ids run out): calls in flight finish, new ones go elsewhere.
    private(set) var isDraining = false
    /// Why the connection ended, when it was not simply closed by the upstream: a protocol error, or the error code
    /// of the upstream's GOAWAY. For the log line of the lost connection.
    private(set) var endReason: String?
    /// Succeeds once the server's preface (its first SETTINGS frame) has arrived, over TLS after the handshake: only
    /// then is its stream limit known and may streams be opened.
    private let active: EventLoopPromise<Void>
    private var activeSettled = false
    /// Succeeds once the connection may open streams (the server's SETTINGS have arrived).
    var activeFuture: EventLoopFuture<Void> { active.futureResult }
    /// TLS for this connection, added in front of HTTP/2; nil for plain TCP.
    private let tls: (setup: TLSClientSetup, logger: Logger)?
    private var tlsHandshakeCompleted = false
    /// Liveness checks (see `HTTP2Tuning.upstreamKeepaliveInterval`).
    private var keepalive: RepeatedTask?
    private var readSinceLastCheck = false
    private var pingOutstanding = false
    /// The opaque data of this side's keepalive PINGs.
    private static let keepaliveOpaque: UInt64 = 0x5332_5350_524F_5859
    /// Stream ids left before the connection must drain (client ids are odd and below 2^31).
    private static let lastUsableStreamID = H2StreamID(Int32.max - 2)

    private init(
        address: SocketAddress, eventLoop: EventLoop, tuning: HTTP2Tuning,
        tls: (setup: TLSClientSetup, logger: Logger)? = nil, onGoAway: @escaping (UpstreamConnection) -> Void
    ) {
        self.address = address
        self.tls = tls
        self.active = eventLoop.makePromise()
        self.writer = HTTP2FrameWriter()
        self.engine = H2ConnectionHandler(configuration: tuning.engineConfiguration(for: .client))
        self.tuning = tuning
        self.onGoAway = onGoAway
    }

    /// Connects to `address` on `eventLoop` and speaks HTTP/2 with prior knowledge, inside TLS when `tls` is set
    /// (its handshake failures are logged to `logger`).
    ///
    /// `onGoAway` runs on the event loop when the upstream announces it will accept no new streams.
    static func connect(
        to address: SocketAddress,
        on eventLoop: EventLoop,
        connectTimeout: TimeAmount,
        tuning: HTTP2Tuning,
        tls: (setup: TLSClientSetup, logger: Logger)? = nil,
        onGoAway: @escaping (UpstreamConnection) -> Void
    ) -> EventLoopFuture<UpstreamConnection> {
        let connection = UpstreamConnection(
            address: address, eventLoop: eventLoop, tuning: tuning, tls: tls, onGoAway: onGoAway
        )
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try connection.installHandlers(on: channel)
                }
            }
        // The connect future can complete before channelActive has run through the pipeline; wait for it.
        return bootstrap.connect(to: address).flatMap { channel in
            connection.channel = channel
            // A peer that accepts TCP and then stays silent (no TLS handshake, no SETTINGS) would hold the attempt,
            // and the calls waiting on it, forever: neither TLS nor HTTP/2 has a timeout of its own for this.
            let deadline = eventLoop.scheduleTask(in: connectTimeout) {
                let error: Error = tls != nil
                    ? TLSStartTimeout(timeout: connectTimeout) : HTTP2StartTimeout(timeout: connectTimeout)
                connection.settleActive(.failure(error))
                channel.close(promise: nil)
            }
            connection.active.futureResult.whenComplete { _ in deadline.cancel() }
            return connection.active.futureResult.map { connection }
        }.flatMapErrorThrowing { error in
            connection.settleActive(.failure(error))
            throw error
        }
    }

    /// Builds a connection on a channel that is not yet active (an `EmbeddedChannel` in tests, a mux stream);
    /// `connect` is the way for real sockets.
    static func install(on channel: Channel, address: SocketAddress, tuning: HTTP2Tuning, onGoAway: @escaping (UpstreamConnection) -> Void) throws -> UpstreamConnection {
        let connection = UpstreamConnection(address: address, eventLoop: channel.eventLoop, tuning: tuning, onGoAway: onGoAway)
        try connection.installHandlers(on: channel)
        connection.channel = channel
        return connection
    }

    private func installHandlers(on channel: Channel) throws {
        if let tls {
            try tls.setup.addHandler(to: channel, logger: tls.logger)
        }
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(engine)
        try sync.addHandler(self)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        engine.delegate = self
        writer.attach(context, engine: engine)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The context and the engine would otherwise keep this handler (and it them) alive after the connection.
        self.context = nil
        engine.delegate = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if let interval = tuning.upstreamKeepaliveInterval {
            keepalive = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                self.checkLiveness()
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        keepalive?.cancel()
        keepalive = nil
        // A read batch can end in the connection closing, without channelReadComplete.
        defer { writer.endReadBatch() }
        settleActive(.failure(tlsHandshakeCompleted ? ClosedAfterTLSHandshake() : ChannelError.ioOnClosedChannel))
        self.context = nil
        writer.detach()
        engine.delegate = nil
        let open = calls.allValues
        calls.removeAll()
        for call in open {
            call.upstreamClosed(reason: nil)
        }
        let otherStreams = Array(others.values)
        others = [:]
        for handler in otherStreams {
            handler.upstreamStreamEnded(reason: endReason ?? "the upstream connection closed")
        }
        context.fireChannelInactive()
    }

    // MARK: What the engine hands over

    func h2PeerSettingsChanged() {
        // The server's first frame is its SETTINGS: only once it is read is the server's stream limit known, so only
        // then may calls choose this connection (over TLS it also says the server accepted the handshake).
        settleActive(.success(()))
    }

    func h2Headers(_ headers: HPACKHeaders, stream: H2StreamID, endStream: Bool, isNewStream: Bool) {
        writer.beginReadBatch()
        guard let call = calls[stream] else {
            others[stream]?.upstreamStreamHeaders(headers, endStream: endStream)
            return
        }
        call.upstreamHeaders(.init(headers: headers, endStream: endStream))
    }

    func h2Data(_ payload: ByteBuffer, stream: H2StreamID, endStream: Bool, flowControlledLength: Int) {
        writer.beginReadBatch()
        // The engine gave the connection window back as the bytes arrived: a client that does not read holds back
        // its own call's stream, never the other calls on this connection.
        guard let call = calls[stream] else {
            others[stream]?.upstreamStreamData(payload, endStream: endStream, flowControlledLength: flowControlledLength)
            return
        }
        call.upstreamData(.init(engineData: payload, endStream: endStream, flowControlledLength: flowControlledLength))
    }

    func h2StreamReset(_ stream: H2StreamID, code: H2ErrorCode, byPeer: Bool) {
        writer.beginReadBatch()
        guard let call = calls.removeValue(forKey: stream) else {
            others.removeValue(forKey: stream)?.upstreamStreamEnded(reason: "the stream was reset (\(code))")
            return
        }
        let reason = HTTP2ErrorCode(networkCode: Int(code.rawValue))
        if byPeer {
            // Also the streams above the last one a GOAWAY says the upstream processed (REFUSED_STREAM): it never
            // saw them, so their clients may retry them.
            call.upstreamReset(reason)
        } else {
            // This end reset the stream for the upstream's stream error (a malformed response header block, a
            // window overflow).
            call.upstreamClosed(reason: reason)
        }
    }

    func h2StreamClosed(_ stream: H2StreamID) {
        writer.beginReadBatch()
        guard let call = calls.removeValue(forKey: stream) else {
            others.removeValue(forKey: stream)?.upstreamStreamEnded(reason: "the stream closed")
            return
        }
        call.upstreamClosed(reason: nil)
    }

    func h2GoAway(lastStream: H2StreamID, code: H2ErrorCode, debugData: ByteBuffer) {
        if code != .noError {
            var reason = "the upstream sent GOAWAY (\(code))"
            if debugData.readableBytes > 0 {
                reason += ": " + String(decoding: debugData.readableBytesView.prefix(200), as: UTF8.self)
            }
            endReason = reason
        }
        drain()
    }

    func h2PingAnswered(opaque: UInt64) {
        if opaque == Self.keepaliveOpaque { pingOutstanding = false }
    }

    func h2ConnectionError(_ violation: H2ProtocolViolation) {
        // The engine sent GOAWAY and is closing the connection; the pool reconnects.
        if endReason == nil { endReason = "HTTP/2 protocol error: \(violation)" }
        settleActive(.failure(UpstreamProtocolError(violation: "\(violation)")))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            // Not yet established: under TLS 1.3 the server judges our certificate after our side has finished.
            tlsHandshakeCompleted = true
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readSinceLastCheck = true
        writer.endReadBatch()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Protocol errors are the engine's (`h2ConnectionError`); what arrives here failed below HTTP/2: a reset TCP
        // connection, a TLS error. Before the connection is established the error is the reason the connect failed.
        settleActive(.failure(error))
        if endReason == nil { endReason = NetworkErrorDescription.describe(error) }
        context.close(promise: nil)
    }

    // MARK: Used by calls

    /// Whether a new call may open a stream here now: the connection is up, not draining, and below the peer's
    /// stream limit.
    var canOpenStream: Bool {
        context != nil && !isDraining && engine.canOpenStream
    }

    /// What `openStream` did.
    enum StreamOpening {
        case opened(HTTP2StreamID)
        /// The connection is draining or gone: the call needs another connection.
        case unavailable
        /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS is reached: the call needs another connection.
        case full
    }

    /// Opens a stream for `call` by sending its request headers.
    func openStream(for call: ProxyCall, headers: HTTP2Frame.FramePayload.Headers) -> StreamOpening {
        guard context != nil, !isDraining else { return .unavailable }
        guard let stream = openEngineStream(headers.headers, endStream: headers.endStream) else {
            return engine.openStreamCount >= engine.peerMaxConcurrentStreams ? .full : .unavailable
        }
        calls[stream] = call
        return .opened(HTTP2StreamID(Int(stream)))
    }

    /// Opens a stream for `handler` (not a forwarded call) with `headers`; nil when the connection takes no stream.
    func openStream(for handler: any UpstreamStreamHandler, headers: HPACKHeaders) -> H2StreamID? {
        guard context != nil, !isDraining, let stream = openEngineStream(headers, endStream: false) else { return nil }
        others[stream] = handler
        writer.flush()
        return stream
    }

    /// Sends the HEADERS of a new stream; draining once the stream ids run out.
    @inline(__always)
    private func openEngineStream(_ headers: HPACKHeaders, endStream: Bool) -> H2StreamID? {
        guard let stream = engine.openStream(headers: headers, endStream: endStream) else { return nil }
        if stream >= Self.lastUsableStreamID {
            drain()
        }
        return stream
    }

    /// The stream of a handler that ended it: its frames are dropped from now on.
    func forgetOther(_ stream: H2StreamID) {
        others[stream] = nil
    }

    /// Runs every keepalive interval: a PING unanswered for a whole interval means the peer is gone. Idle
    /// connections are not pinged: grpc-go servers count pings without streams as abuse (GOAWAY "too_many_pings").
    private func checkLiveness() {
        guard let context else { return }
        if pingOutstanding {
            context.close(promise: nil)
            return
        }
        if !readSinceLastCheck && (!calls.isEmpty || !others.isEmpty) {
            pingOutstanding = true
            engine.ping(opaque: Self.keepaliveOpaque)
            engine.flush()
        }
        readSinceLastCheck = false
    }

    /// The call on `streamID` no longer wants its frames.
    func forget(_ streamID: HTTP2StreamID) {
        calls.removeValue(forKey: streamID.engineID)
    }

    /// Completes `active` once: with success when streams may be opened, or with the reason they never can.
    private func settleActive(_ result: Result<Void, Error>) {
        guard !activeSettled else { return }
        activeSettled = true
        active.completeWith(result)
    }

    private func drain() {
        guard !isDraining else { return }
        isDraining = true
        onGoAway(self)
    }

    /// Closes the connection; calls on it end.
    func close() {
        channel?.close(promise: nil)
    }
}

/// A stream an `UpstreamConnection` carries for someone other than a forwarded call (routing mode's source streams),
/// on the connection's event loop.
protocol UpstreamStreamHandler: AnyObject {
    func upstreamStreamHeaders(_ headers: HPACKHeaders, endStream: Bool)
    /// DATA; the handler gives the stream's window back with `writer.releaseStreamCredit` when it has used the bytes.
    func upstreamStreamData(_ payload: ByteBuffer, endStream: Bool, flowControlledLength: Int)
    /// The stream is over (reset, closed, or the connection gone); nothing more arrives.
    func upstreamStreamEnded(reason: String)
}

/// The upstream broke the HTTP/2 protocol before the connection was established.
struct UpstreamProtocolError: Error, CustomStringConvertible {
    var violation: String
    var description: String {
        "the server broke the HTTP/2 protocol (\(violation)); is it an HTTP/2 (gRPC) server, and does it want TLS?"
    }
}

/// A TLS upstream did not complete the handshake and start HTTP/2 within the connect timeout.
struct TLSStartTimeout: Error, CustomStringConvertible {
    var timeout: TimeAmount
    var description: String {
        "no TLS handshake and HTTP/2 start within \(timeout.nanoseconds / 1_000_000) ms "
            + "(upstream.connectTimeoutSeconds); is it a TLS server?"
    }
}

/// A plain upstream accepted the TCP connection but sent no HTTP/2 SETTINGS within the connect timeout.
struct HTTP2StartTimeout: Error, CustomStringConvertible {
    var timeout: TimeAmount
    var description: String {
        "no HTTP/2 SETTINGS from the server within \(timeout.nanoseconds / 1_000_000) ms of connecting "
            + "(upstream.connectTimeoutSeconds); is it an HTTP/2 (gRPC) server, and does it want TLS?"
    }
}

/// A TLS upstream closed the connection after the handshake and before HTTP/2 started: under TLS 1.3 that is how a
/// server refuses the client's certificate, and grpc servers send no alert that would say so.
struct ClosedAfterTLSHandshake: Error, CustomStringConvertible {
    var description: String {
        "the server closed the connection right after the TLS handshake: it may have refused this side's client "
            + "certificate (or want one: certificatePath and keyPath); the server's log says why"
    }
}
