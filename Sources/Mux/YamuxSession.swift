// One yamux session over one connection: the handler that turns frames into streams and streams into frames.
//
// It sits at the end of the connection's pipeline, after a `ByteToMessageHandler(YamuxFrameDecoder)`. Every stream
// is a child `Channel` (`YamuxStreamChannel`) with its own pipeline, so whatever runs over a stream — HTTP/2 and gRPC
// here — runs as it would over TCP. Streams the peer opens are set up by the session's `inboundStreamInitializer`;
// this side opens them with `openStream`.
//
// What the handler enforces (hashicorp/yamux's rules, so a Go peer and this side agree):
// * stream ids: the client opens odd ids, the server even ones; a SYN with the wrong parity or for an id in use,
//   data beyond the window this side granted, or a frame that cannot be decoded ends the session with a
//   protocol-error go-away — never the process;
// * flow control: each direction of a stream starts with a 256 KiB window; this side sends no more than the peer
//   granted and grants more as its stream's pipeline reads, half a window at a time;
// * lifecycle: FIN half-closes, RST aborts; a stream is forgotten once both sides have closed it, or it is reset,
//   or the close timeout passes; an unanswered open is reset after the open timeout; pings are answered, and the
//   keepalive ping ends a session whose peer stopped answering; a peer that pings while it reads none of the
//   answers is stopped before they pile up; go-away stops new streams.
//
// Confined to the connection's event loop; `openStream` may be called from anywhere.

import NIOCore

/// What a session reports to its owner.
public protocol YamuxSessionDelegate: AnyObject {
    /// The connection is up (active, and the session added to it): frames can go out. Called once.
    func yamuxSessionBecameActive(_ session: YamuxSession)
    /// The session ended: the connection closed, or the session closed it. `error` says why (nil: a clean close).
    func yamuxSessionEnded(_ session: YamuxSession, error: Error?)
    /// The peer sent go-away: it accepts no new streams; those open go on.
    func yamuxSessionReceivedGoAway(_ session: YamuxSession, code: UInt32)
    /// A stream was opened (by either side) or forgotten; `count` streams are open now.
    func yamuxSession(_ session: YamuxSession, streamCountChanged count: Int)
}

extension YamuxSessionDelegate {
    public func yamuxSessionBecameActive(_ session: YamuxSession) {}
    public func yamuxSessionReceivedGoAway(_ session: YamuxSession, code: UInt32) {}
    public func yamuxSession(_ session: YamuxSession, streamCountChanged count: Int) {}
}

/// Why a stream or a session could not be used.
public struct YamuxSessionError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    public static let sessionClosed = YamuxSessionError("the yamux session is closed")
    static let goAway = YamuxSessionError("the yamux peer sent go-away: it accepts no new streams")
    static let streamReset = YamuxSessionError("the yamux peer reset the stream")
    static let openTimedOut = YamuxSessionError("the yamux peer did not accept the stream in time")
    static let closeTimedOut = YamuxSessionError("the yamux peer did not close its half of the stream in time")
    static let idsExhausted = YamuxSessionError("the yamux session has used all its stream ids")
}

/// A user outbound event that aborts a stream with RST instead of closing it with FIN.
public struct YamuxResetStream: Sendable {
    public init() {}
}

/// The yamux session handler of one connection.
public final class YamuxSession: ChannelInboundHandler, @unchecked Sendable {
    public typealias InboundIn = YamuxFrame
    public typealias OutboundOut = ByteBuffer

    public let role: YamuxRole
    public let configuration: YamuxConfiguration
    /// The connection's event loop, where the session and its streams live.
    public let eventLoop: EventLoop
    /// Sets up the pipeline of a stream the peer opened.
    private let inboundStreamInitializer: @Sendable (Channel) -> EventLoopFuture<Void>
    public weak var delegate: YamuxSessionDelegate?

    private var context: ChannelHandlerContext?
    private var streams: [UInt32: YamuxStreamChannel] = [:]
    private var nextStreamID: UInt32
    private var peerStreamCount = 0
    private var sentGoAway = false
    private var receivedGoAway = false
    private var ended = false
    private var flushPending = false
    private var nextPingID: UInt32 = 1
    private var pings: [UInt32: (promise: EventLoopPromise<TimeAmount>, sent: NIODeadline, timeout: Scheduled<Void>)] = [:]
    private var keepalive: RepeatedTask?
    private var announcedActive = false
    /// Ping answers written while the connection was not writable (the peer is not reading), since it last was.
    private var answersWhileBlocked = 0

    /// How many pings a peer may send, while it reads nothing of what this side writes, before the session ends. A
    /// keepalive pings every few seconds at most; a peer that sends thousands of pings without reading the answers
    /// would make this side queue them without bound.
    public static let maxPingAnswersWhileBlocked = 64

    /// - Parameters:
    ///   - eventLoop: the event loop of the connection the session will be added to.
    ///   - inboundStreamInitializer: runs on each stream the peer opens, before it becomes active.
    public init(
        role: YamuxRole,
        eventLoop: EventLoop,
        configuration: YamuxConfiguration = YamuxConfiguration(),
        inboundStreamInitializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) {
        self.role = role
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.inboundStreamInitializer = inboundStreamInitializer
        nextStreamID = role == .client ? 1 : 2
    }

    /// The streams open now (in any state short of forgotten).
    public var streamCount: Int { streams.count }

    /// The peer's address of the session's connection, while connected; read on `eventLoop`.
    public var remoteAddress: SocketAddress? { context?.channel.remoteAddress }
    /// This end's address of the session's connection; read on the session's loop.
    public var localAddress: SocketAddress? { context?.channel.localAddress }

    /// Whether the session can open streams: connected, and no go-away either way.
    public var canOpenStreams: Bool { context != nil && !ended && !sentGoAway && !receivedGoAway }

    // MARK: Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive {
            becameActive(context: context)
        }
    }

    public func channelActive(context: ChannelHandlerContext) {
        becameActive(context: context)
        context.fireChannelActive()
    }

    private func becameActive(context: ChannelHandlerContext) {
        guard !announcedActive else { return }
        announcedActive = true
        startKeepalive(context: context)
        delegate?.yamuxSessionBecameActive(self)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        end(error: YamuxSessionError.sessionClosed)
        self.context = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        end(error: nil)
        context.fireChannelInactive()
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        if writable { answersWhileBlocked = 0 }
        for stream in streams.values {
            stream.parentWritabilityChanged(writable)
        }
        context.fireChannelWritabilityChanged()
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let violation = error as? YamuxProtocolError {
            fail(violation)
        } else {
            end(error: error)
            context.close(promise: nil)
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        do {
            try receive(frame)
        } catch {
            fail(error)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        for stream in streams.values {
            stream.parentReadComplete()
        }
        flushIfPending()
        context.fireChannelReadComplete()
    }

    // MARK: Frames in

    private func receive(_ frame: YamuxFrame) throws(YamuxProtocolError) {
        let header = frame.header
        switch header.type {
        case .ping:
            guard header.streamID == 0 else {
                throw YamuxProtocolError("ping on stream \(header.streamID); pings belong to stream 0")
            }
            if header.flags.contains(.syn) {
                if context?.channel.isWritable == false {
                    answersWhileBlocked += 1
                    guard answersWhileBlocked <= Self.maxPingAnswersWhileBlocked else {
                        throw YamuxProtocolError(
                            "the peer sent more than \(Self.maxPingAnswersWhileBlocked) pings without reading the answers")
                    }
                }
                writeFrame(YamuxFrameHeader(type: .ping, flags: .ack, streamID: 0, length: header.length))
            } else if header.flags.contains(.ack), let ping = pings.removeValue(forKey: header.length) {
                ping.timeout.cancel()
                ping.promise.succeed(NIODeadline.now() - ping.sent)
            }
        case .goAway:
            receivedGoAway = true
            delegate?.yamuxSessionReceivedGoAway(self, code: header.length)
        case .data, .windowUpdate:
            try receiveStreamFrame(frame)
        }
    }

    private func receiveStreamFrame(_ frame: YamuxFrame) throws(YamuxProtocolError) {
        let header = frame.header
        let id = header.streamID
        guard id != 0 else {
            throw YamuxProtocolError("\(header.type) frame on stream 0, which carries no data")
        }
        var stream = streams[id]
        if header.flags.contains(.syn) {
            guard stream == nil else {
                throw YamuxProtocolError("the peer opened stream \(id), which is already open")
            }
            let peerOpens: UInt32 = role == .client ? 0 : 1
            guard id % 2 == peerOpens else {
                throw YamuxProtocolError(
                    "the peer opened stream \(id), whose parity belongs to this side (\(role) opens "
                        + "\(role == .client ? "odd" : "even") ids)")
            }
            stream = acceptStream(id: id)
            if stream == nil {
                return  // refused with RST
            }
        }
        guard let stream else {
            // A frame for a stream already forgotten (both sides closed it, or it was reset): data in flight.
            return
        }
        if header.flags.contains(.ack) {
            stream.acknowledged()
        }
        switch header.type {
        case .windowUpdate:
            stream.peerGranted(header.length)
        case .data:
            if frame.payload.readableBytes > 0 {
                try stream.received(frame.payload)
            }
        default:
            break
        }
        if header.flags.contains(.rst) {
            stream.peerReset()
        } else if header.flags.contains(.fin) {
            stream.peerFinished()
        }
    }

    /// Sets up a stream the peer opened and acknowledges it, or refuses it with RST when the session is closing or
    /// the peer has too many open; nil when refused.
    private func acceptStream(id: UInt32) -> YamuxStreamChannel? {
        guard let context, !sentGoAway, !ended, peerStreamCount < configuration.maximumPeerStreams else {
            writeFrame(YamuxFrameHeader(type: .windowUpdate, flags: .rst, streamID: id, length: 0))
            return nil
        }
        let stream = YamuxStreamChannel(session: self, parent: context.channel, id: id, openedByPeer: true)
        streams[id] = stream
        peerStreamCount += 1
        delegate?.yamuxSession(self, streamCountChanged: streams.count)
        writeFrame(YamuxFrameHeader(
            type: .windowUpdate, flags: .ack, streamID: id, length: configuration.receiveWindow - YamuxConfiguration.initialWindow
        ))
        stream.start(initializer: inboundStreamInitializer, promise: nil)
        return stream
    }

    // MARK: Opening streams

    /// Opens a stream to the peer, runs `initializer` on its pipeline and returns it once active. The peer may still
    /// refuse it (RST), which closes it; data can be written at once, before the peer's ACK.
    public func openStream(
        initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<Channel> {
        guard eventLoop.inEventLoop else {
            return eventLoop.flatSubmit { self.openStream(initializer: initializer) }
        }
        guard let context, !ended else { return eventLoop.makeFailedFuture(YamuxSessionError.sessionClosed) }
        guard !sentGoAway, !receivedGoAway else { return eventLoop.makeFailedFuture(YamuxSessionError.goAway) }
        guard nextStreamID < UInt32.max - 1 else { return eventLoop.makeFailedFuture(YamuxSessionError.idsExhausted) }
        let id = nextStreamID
        nextStreamID += 2
        let stream = YamuxStreamChannel(session: self, parent: context.channel, id: id, openedByPeer: false)
        streams[id] = stream
        delegate?.yamuxSession(self, streamCountChanged: streams.count)
        writeFrame(YamuxFrameHeader(
            type: .windowUpdate, flags: .syn, streamID: id, length: configuration.receiveWindow - YamuxConfiguration.initialWindow
        ))
        flushIfPending()
        stream.scheduleOpenTimeout(configuration.streamOpenTimeout)
        let promise = eventLoop.makePromise(of: Void.self)
        stream.start(initializer: initializer, promise: promise)
        return promise.futureResult.map { stream }
    }

    // MARK: Pings, go-away, closing

    /// Sends a ping; the future holds the round-trip time, or fails after the keepalive timeout.
    public func ping() -> EventLoopFuture<TimeAmount> {
        guard eventLoop.inEventLoop else { return eventLoop.flatSubmit { self.ping() } }
        guard context != nil, !ended else { return eventLoop.makeFailedFuture(YamuxSessionError.sessionClosed) }
        let id = nextPingID
        nextPingID &+= 1
        let promise = eventLoop.makePromise(of: TimeAmount.self)
        let timeout = eventLoop.scheduleTask(in: configuration.keepaliveTimeout) { [weak self] in
            guard let self, let ping = self.pings.removeValue(forKey: id) else { return }
            ping.promise.fail(YamuxSessionError("the yamux peer did not answer a ping within \(self.configuration.keepaliveTimeout)"))
        }
        pings[id] = (promise, .now(), timeout)
        writeFrame(YamuxFrameHeader(type: .ping, flags: .syn, streamID: 0, length: id))
        flushIfPending()
        return promise.futureResult
    }

    private func startKeepalive(context: ChannelHandlerContext) {
        guard keepalive == nil, let interval = configuration.keepaliveInterval else { return }
        keepalive = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
            guard let self, !self.ended else { return }
            self.ping().whenFailure { [weak self] error in
                guard let self, !self.ended else { return }
                self.end(error: YamuxSessionError("keepalive failed: \(error)"))
                self.context?.close(promise: nil)
            }
        }
    }

    /// Sends go-away (no new streams either way) and closes the connection once every stream is done, or at once
    /// with `immediately`.
    public func close(code: YamuxGoAwayCode = .normal, immediately: Bool = false) {
        guard eventLoop.inEventLoop else {
            eventLoop.execute { self.close(code: code, immediately: immediately) }
            return
        }
        guard let context else { return }
        sendGoAway(code)
        if immediately || streams.isEmpty {
            context.close(promise: nil)
        }
    }

    private func sendGoAway(_ code: YamuxGoAwayCode) {
        guard !sentGoAway, context != nil else { return }
        sentGoAway = true
        writeFrame(YamuxFrameHeader(type: .goAway, streamID: 0, length: code.rawValue))
        flushIfPending()
    }

    /// A protocol violation: go-away with the protocol-error code, then the connection closes.
    private func fail(_ error: Error) {
        guard let context, !ended else { return }
        sendGoAway(error is YamuxProtocolError ? .protocolError : .internalError)
        end(error: error)
        context.close(promise: nil)
    }

    /// Every stream closes with `error`; pings fail; the delegate hears of it once.
    private func end(error: Error?) {
        guard !ended else { return }
        ended = true
        keepalive?.cancel()
        keepalive = nil
        for ping in pings.values {
            ping.timeout.cancel()
            ping.promise.fail(error ?? YamuxSessionError.sessionClosed)
        }
        pings.removeAll()
        let open = streams.values
        streams.removeAll()
        for stream in open {
            stream.sessionEnded(error: error ?? YamuxSessionError.sessionClosed)
        }
        delegate?.yamuxSessionEnded(self, error: error)
    }

    // MARK: For streams

    /// Writes a frame header (and payload) to the connection; flushed at the end of the read or write burst.
    func writeFrame(_ header: YamuxFrameHeader, payload: ByteBuffer? = nil, promise: EventLoopPromise<Void>? = nil) {
        guard let context else {
            promise?.fail(YamuxSessionError.sessionClosed)
            return
        }
        var headerBytes = context.channel.allocator.buffer(capacity: YamuxFrameHeader.size)
        header.write(to: &headerBytes)
        if let payload {
            context.write(wrapOutboundOut(headerBytes), promise: nil)
            context.write(wrapOutboundOut(payload), promise: promise)
        } else {
            context.write(wrapOutboundOut(headerBytes), promise: promise)
        }
        flushPending = true
    }

    func flushIfPending() {
        guard flushPending, let context else { return }
        flushPending = false
        context.flush()
    }

    var parentIsWritable: Bool { context?.channel.isWritable ?? false }

    /// A stream is done on both sides, reset or timed out: forget it.
    func forget(_ stream: YamuxStreamChannel) {
        guard streams[stream.streamID] === stream else { return }
        streams[stream.streamID] = nil
        if stream.openedByPeer {
            peerStreamCount -= 1
        }
        delegate?.yamuxSession(self, streamCountChanged: streams.count)
        if sentGoAway, streams.isEmpty {
            context?.close(promise: nil)
        }
    }
}
