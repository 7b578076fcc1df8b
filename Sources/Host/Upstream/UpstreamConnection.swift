// One HTTP/2 client connection to one upstream address, carrying the upstream halves of many calls.
//
// Over TLS when the upstream's `tls:` block enables it: the connection counts as established only once the server
// has spoken HTTP/2 after the handshake, so a refused certificate fails the connect (with its reason) instead of
// handing calls a connection that is about to close. Frames are handled without a stream
// multiplexer: the connection allocates client stream ids itself, hands each
// inbound frame to the call that owns its stream, and grants flow-control credit back to the upstream: for the
// connection as DATA arrives, for a stream when its call says the bytes were forwarded to its client. It tells its pool when the upstream says GOAWAY and when the
// connection is gone; it never retries anything itself: that is the pool's job.
//
// Confined to its event loop.

import Logging
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOTLS

final class UpstreamConnection: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    let address: SocketAddress
    private(set) var channel: Channel?
    private var context: ChannelHandlerContext?
    /// Writes to the upstream; calls use it for their upstream frames.
    let writer: HTTP2FrameWriter
    private let tuning: HTTP2Tuning
    private let onGoAway: (UpstreamConnection) -> Void
    private var calls: [HTTP2StreamID: ProxyCall] = [:]
    private var nextStreamID = HTTP2StreamID(1)
    /// Streams opened here that NIOHTTP2 has not yet reported closed. Calls that ended early leave `calls` at once
    /// but hold a stream until its reset is out, so this, not `calls.count`, is what the peer's limit applies to.
    private(set) var openStreams = 0
    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS; `Int.max` while it has set none (RFC 9113 6.5.2: no limit).
    private(set) var peerMaxConcurrentStreams = Int.max
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

    private init(
        address: SocketAddress, eventLoop: EventLoop, tuning: HTTP2Tuning,
        tls: (setup: TLSClientSetup, logger: Logger)? = nil, onGoAway: @escaping (UpstreamConnection) -> Void
    ) {
        self.address = address
        self.tls = tls
        self.active = eventLoop.makePromise()
        self.writer = HTTP2FrameWriter(tuning: tuning)
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
            // and the calls waiting on it, forever: NIOSSL and NIOHTTP2 have no timeout of their own for this.
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

    /// Builds a connection on a channel that is not yet active (an `EmbeddedChannel` in tests); `connect` is the
    /// way for real sockets.
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
        try sync.addHandler(PeerStreamLimitHandler())
        try sync.addHandler(NIOHTTP2Handler(
            mode: .client, frameDelegate: nil,
            connectionConfiguration: tuning.connectionConfiguration(for: .client),
            streamConfiguration: tuning.streamConfiguration(for: .client)
        ))
        try sync.addHandler(self)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        writer.attach(context)
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
        let open = calls
        calls = [:]
        for call in open.values {
            call.upstreamClosed(reason: nil)
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The server's first frame is its SETTINGS: only once it is read is the server's stream limit known, so only
        // then may calls choose this connection (over TLS it also says the server accepted the handshake).
        defer { settleActive(.success(())) }
        writer.beginReadBatch()
        writer.raiseConnectionWindowOnce()
        readSinceLastCheck = true
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .ping(_, ack: true):
            pingOutstanding = false
        case .settings(.settings(let settings)):
            for setting in settings where setting.parameter == .maxConcurrentStreams {
                peerMaxConcurrentStreams = setting.value >= Int(PeerStreamLimit.unlimited) ? Int.max : setting.value
            }
        case .headers(let headers):
            calls[frame.streamID]?.upstreamHeaders(headers)
        case .data(let data):
            // The connection window is given back as bytes arrive (see DownstreamConnectionHandler): a client that
            // does not read holds back its own call's stream, never the other calls on this connection.
            writer.releaseConnectionCredit(HTTP2FlowControlledLength.of(data))
            calls[frame.streamID]?.upstreamData(data)
        case .rstStream(let code):
            calls[frame.streamID]?.upstreamReset(code)
        case .goAway(let lastStreamID, let code, let debugData):
            if code != .noError {
                var reason = "the upstream sent GOAWAY (\(code))"
                if let debugData, debugData.readableBytes > 0 {
                    reason += ": " + String(decoding: debugData.readableBytesView.prefix(200), as: UTF8.self)
                }
                endReason = reason
            }
            drain()
            // Streams above the last one the upstream processed were never seen by it: fail them so they can be
            // retried by their clients.
            for (id, call) in calls where id > lastStreamID {
                calls.removeValue(forKey: id)
                call.upstreamClosed(reason: .refusedStream)
            }
        default:
            break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Window updates come with every DATA frame and nobody after this handler needs them.
        if event is NIOHTTP2WindowUpdatedEvent { return }
        if case TLSUserEvent.handshakeCompleted = event {
            // Not yet established: under TLS 1.3 the server judges our certificate after our side has finished.
            tlsHandshakeCompleted = true
        }
        if let closed = event as? StreamClosedEvent {
            openStreams -= 1
            calls.removeValue(forKey: closed.streamID)?.upstreamClosed(reason: closed.reason)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        writer.endReadBatch()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is NIOHTTP2Errors.StreamError { return }
        // Before the connection is established (a failed TLS handshake) the error is the reason the connect failed.
        settleActive(.failure(error))
        if endReason == nil { endReason = NetworkErrorDescription.describe(error) }
        // A connection-level protocol error: the connection is unusable. Closing it lets the pool reconnect.
        context.close(promise: nil)
    }

    // MARK: Used by calls

    /// Whether a new call may open a stream here now: the connection is up, not draining, and below the peer's
    /// stream limit. A call on a connection without room would wait inside NIOHTTP2 until another call ends.
    var canOpenStream: Bool {
        context != nil && !isDraining && openStreams < peerMaxConcurrentStreams
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
        guard let context, !isDraining else { return .unavailable }
        guard openStreams < peerMaxConcurrentStreams else { return .full }
        writer.raiseConnectionWindowOnce()
        let id = nextStreamID
        nextStreamID = HTTP2StreamID(Int32(id) + 2)
        if Int32(nextStreamID) > Int32.max - 2 {
            drain()
        }
        calls[id] = call
        openStreams += 1
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(headers))), promise: nil)
        return .opened(id)
    }

    /// Runs every keepalive interval: a PING unanswered for a whole interval means the peer is gone. Idle
    /// connections are not pinged: grpc-go servers count pings without streams as abuse (GOAWAY "too_many_pings").
    private func checkLiveness() {
        guard let context else { return }
        if pingOutstanding {
            context.close(promise: nil)
            return
        }
        if !readSinceLastCheck && !calls.isEmpty {
            pingOutstanding = true
            writer.write(.ping(HTTP2PingData(withInteger: 0x5332_5350_524F_5859), ack: false), streamID: .rootStream, promise: nil)
            writer.flush()
        }
        readSinceLastCheck = false
    }

    /// The call on `streamID` no longer wants its frames.
    func forget(_ streamID: HTTP2StreamID) {
        calls.removeValue(forKey: streamID)
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
