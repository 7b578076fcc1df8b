// The engine on a channel: bytes in, frames decoded and applied to the connection state machine, header blocks
// through HPACK, and what follows handed to the connection's owner (`H2ConnectionDelegate`) by direct calls; the
// owner's frames encoded into one buffer per write batch.
//
// It is the last handler of a connection's pipeline that sees bytes (after TLS, if any). Pipeline events other
// than reads (active, inactive, read complete, user events, errors from below) go on to the handler after it,
// which is usually the owner itself.
//
// Sending follows flow control: DATA beyond the peer's windows waits here, per stream, in order, until the peer
// grants more; trailers queued behind such DATA wait with it. A write's promise completes once its bytes were
// written to the socket, which is what the proxy's end-to-end credit is built on. DATA larger than the peer's
// SETTINGS_MAX_FRAME_SIZE is split; header blocks larger than it go out with CONTINUATION frames.
//
// Protocol errors end the connection (GOAWAY with the reason, then close) only when the RFC says the connection
// is broken; a malformed header block, a window overflow or a frame on a closed stream resets that stream alone.
//
// Confined to the channel's event loop.

import NIOCore
import NIOHPACK

/// The owner of a connection: gets what the peer sent, stream by stream.
public protocol H2ConnectionDelegate: AnyObject {
    /// A header block: a new stream's request (`isNewStream`, servers), a response's headers (clients), or trailers.
    func h2Headers(_ headers: HPACKHeaders, stream: H2StreamID, endStream: Bool, isNewStream: Bool)
    /// DATA, padding removed; `flowControlledLength` is what it took from the stream's window (padding included),
    /// to be handed back with `release(stream:bytes:)` once forwarded.
    func h2Data(_ payload: ByteBuffer, stream: H2StreamID, endStream: Bool, flowControlledLength: Int)
    /// The stream ended without both sides finishing it: reset by the peer (`byPeer`), by this end for a stream
    /// error, or refused by the peer's GOAWAY.
    func h2StreamReset(_ stream: H2StreamID, code: H2ErrorCode, byPeer: Bool)
    /// The peer finished the stream after this end had: both sides are done. (A stream that this end's own write
    /// closes is not reported: the owner made that write.)
    func h2StreamClosed(_ stream: H2StreamID)
    func h2GoAway(lastStream: H2StreamID, code: H2ErrorCode, debugData: ByteBuffer)
    /// The peer's SETTINGS took effect (the first ones end the handshake).
    func h2PeerSettingsChanged()
    func h2PingAnswered(opaque: UInt64)
    /// The peer broke the protocol for the whole connection: GOAWAY went out and the connection is closing.
    func h2ConnectionError(_ violation: H2ProtocolViolation)
}

/// A write the engine could not do: its stream is not open for sending (reset, or ended by this end).
public struct H2StreamNotWritable: Error, CustomStringConvertible {
    public var stream: H2StreamID
    public var description: String { "stream \(stream) is closed for sending" }
}

public final class H2ConnectionHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    public struct Configuration: Sendable {
        public var connection: H2ConnectionStateMachine.Configuration
        /// Check each header block against RFC 9113 8.2 and 8.3 (a block the proxy received and validated once
        /// need not be checked again by the connection that sends it on; but every block received is checked).
        public var validateHeaders = true

        public init(role: H2FrameDecoder.Role) {
            connection = .init(role: role)
        }
    }

    public var delegate: (any H2ConnectionDelegate)?
    private var state: H2ConnectionStateMachine
    private var decoder: H2FrameDecoder
    private var hpackDecoder: H2HeaderDecoder
    private var headerEncoder = H2HeaderEncoder()
    private let role: H2FrameDecoder.Role
    private let validateHeaders: Bool
    private var context: ChannelHandlerContext?
    /// Frames encoded but not yet handed to the channel.
    private var output: ByteBuffer
    /// The promise of the writes whose bytes are all in `output` (a later one cascades to the earlier ones, since
    /// the buffer is written as a whole), completed when `output` is written.
    private var outputPromise: EventLoopPromise<Void>?
    /// The DATA frame that ends `output`, which the stream's next DATA may extend: a peer then reads one frame for
    /// the messages forwarded in one batch, as it would from HAProxy, instead of one per message.
    private var openDataFrame: (stream: H2StreamID, start: Int, length: Int)?
    /// A header block being encoded (reused).
    private var headerBlock: ByteBuffer
    /// Something was written to the channel since the last flush.
    private var unflushed = false
    /// The actions array reused between events (taken out while in use, so that nested events get their own).
    private var spareActions: [H2ConnectionAction] = []
    /// DATA (and trailers behind it) waiting for flow-control window, per stream, and the streams in the order they
    /// started waiting.
    private var queued = H2StreamMap<CircularBuffer<QueuedWrite>>()
    private var waitingStreams: [H2StreamID] = []
    private var closing = false
    /// When the flood counters last started over (checked on each read: no timer to cancel).
    private var floodWindowStart = NIODeadline.now()

    private enum QueuedWrite {
        case data(ByteBuffer, endStream: Bool, promise: EventLoopPromise<Void>?)
        case trailers(HPACKHeaders, promise: EventLoopPromise<Void>?)

        var promise: EventLoopPromise<Void>? {
            switch self {
            case .data(_, _, let promise), .trailers(_, let promise): return promise
            }
        }
    }

    /// DATA payloads up to this size are copied into the batch buffer next to their frame header (where the next
    /// DATA of the same stream may join them in one frame); larger ones are written as their own buffer (the socket
    /// gathers them).
    static let copyThreshold = 4096
    /// How often the flood counters start over.
    static let floodWindow: TimeAmount = .seconds(10)

    public init(configuration: Configuration) {
        role = configuration.connection.role
        state = H2ConnectionStateMachine(configuration: configuration.connection)
        decoder = H2FrameDecoder(role: role, maxHeaderBlockBytes: configuration.connection.maxHeaderListSize)
        let allocator = ByteBufferAllocator()
        hpackDecoder = H2HeaderDecoder(maxHeaderListSize: configuration.connection.maxHeaderListSize)
        validateHeaders = configuration.validateHeaders
        output = allocator.buffer(capacity: 512)
        headerBlock = allocator.buffer(capacity: 256)
    }

    // MARK: Pipeline

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context: context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        delegate = nil
        discardOutput()
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private var started = false

    private func start(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        if role == .client {
            output.writeBytes(H2FrameDecoder.clientPreface)
        }
        withActions { actions in state.start(into: &actions) }
        flush()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        closing = true
        failQueuedWrites(ChannelError.ioOnClosedChannel)
        discardOutput()
        context.fireChannelInactive()
    }

    /// True while the engine hands over what it read (inside `channelRead`): a delegate callback outside it comes
    /// from the owner's own action (a reset it asked for closes the stream at once), not from the peer.
    public private(set) var isReading = false

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        isReading = true
        defer { isReading = false }
        let now = NIODeadline.now()
        if now - floodWindowStart >= Self.floodWindow {
            floodWindowStart = now
            state.floodWindowElapsed()
        }
        decoder.append(unwrapInboundIn(data))
        var actions = takeActions()
        while !closing {
            let next: H2FrameDecoder.Output?
            do {
                next = try decoder.nextFrame()
            } catch {
                state.fail(error, into: &actions)
                perform(&actions)
                break
            }
            guard let next else { break }
            state.receive(next, into: &actions)
            perform(&actions)
        }
        returnActions(actions)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
        flush()
    }

    // MARK: Sending (the owner's side)

    /// Whether a new stream may be opened now (clients): the peer's limit, no GOAWAY either way.
    public var canOpenStream: Bool { !closing && state.canOpenStream }
    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS (Int.max while it set none).
    public var peerMaxConcurrentStreams: Int { state.peerMaxConcurrentStreams }
    /// Streams open now, either side's.
    public var openStreamCount: Int { state.openStreamCount }

    /// Opens a stream with a request's headers (clients); nil if no stream may be opened now.
    public func openStream(headers: HPACKHeaders, endStream: Bool) -> H2StreamID? {
        guard !closing, let id = state.openStream(endStream: endStream) else { return nil }
        encodeHeaders(headers, stream: id, endStream: endStream)
        return id
    }

    /// Sends a header block on an open stream: a response's headers, or trailers (`endStream`). Waits behind DATA
    /// of the stream still waiting for window.
    public func sendHeaders(_ headers: HPACKHeaders, stream: H2StreamID, endStream: Bool, promise: EventLoopPromise<Void>?) {
        if endStream, queued.modify(stream, { $0.append(.trailers(headers, promise: promise)) }) != nil {
            return
        }
        writeHeaders(headers, stream: stream, endStream: endStream, promise: promise)
    }

    private func writeHeaders(_ headers: HPACKHeaders, stream: H2StreamID, endStream: Bool, promise: EventLoopPromise<Void>?) {
        var actions = takeActions()
        defer { returnActions(actions) }
        guard !closing, state.sendHeaders(stream: stream, endStream: endStream, into: &actions) else {
            promise?.fail(H2StreamNotWritable(stream: stream))
            return
        }
        encodeHeaders(headers, stream: stream, endStream: endStream)
        if let promise { addOutputPromise(promise) }
        performOwnSend(&actions)
    }

    /// Does what followed from one of the owner's own writes, except telling it that the write closed its stream:
    /// the owner knows, and hearing of it in the middle of its write would be an event out of order.
    private func performOwnSend(_ actions: inout [H2ConnectionAction]) {
        actions.removeAll { if case .streamClosed = $0 { return true } else { return false } }
        perform(&actions)
    }

    /// Sends DATA on an open stream, as far as the windows allow now; the rest waits for the peer's grants. The
    /// promise completes when the last byte was written.
    public func sendData(_ payload: ByteBuffer, stream: H2StreamID, endStream: Bool, promise: EventLoopPromise<Void>?) {
        guard !closing, state.lifecycle(of: stream) != nil else {
            promise?.fail(H2StreamNotWritable(stream: stream))
            return
        }
        if queued.modify(stream, { $0.append(.data(payload, endStream: endStream, promise: promise)) }) != nil {
            return
        }
        if let rest = writeData(payload, stream: stream, endStream: endStream, promise: promise) {
            queued[stream] = CircularBuffer([.data(rest, endStream: endStream, promise: promise)])
            waitingStreams.append(stream)
        }
    }

    /// Writes as much of `payload` as the windows allow; returns what is left (nil when all of it went out, or the
    /// write failed and its promise with it).
    private func writeData(_ payload: ByteBuffer, stream: H2StreamID, endStream: Bool, promise: EventLoopPromise<Void>?) -> ByteBuffer? {
        var rest = payload
        var actions = takeActions()
        defer { returnActions(actions) }
        while true {
            let length = min(rest.readableBytes, state.sendableBytes(stream: stream), state.peerMaxFrameSize)
            if length == 0 && rest.readableBytes > 0 {
                if state.lifecycle(of: stream) == nil {
                    promise?.fail(H2StreamNotWritable(stream: stream))
                    return nil
                }
                return rest
            }
            let last = length == rest.readableBytes
            guard state.sendData(stream: stream, length: length, endStream: last && endStream, into: &actions) else {
                promise?.fail(H2StreamNotWritable(stream: stream))
                return nil
            }
            var chunk = rest.readSlice(length: length)!
            let endsStream = last && endStream
            if length <= Self.copyThreshold {
                if let open = openDataFrame, open.stream == stream, output.writerIndex == open.start + 9 + open.length,
                   open.length + length <= state.peerMaxFrameSize {
                    // The stream's DATA frame ends the batch: it grows by this chunk (its END_STREAM with it).
                    H2FrameEncoder.setFrameHeader(
                        length: open.length + length, type: .data, flags: endsStream ? 0x1 : 0, stream: stream,
                        at: open.start, in: &output)
                    openDataFrame = (stream, open.start, open.length + length)
                } else {
                    openDataFrame = (stream, output.writerIndex, length)
                    H2FrameEncoder.writeDataHeader(length: length, stream: stream, endStream: endsStream, into: &output)
                }
                output.writeBuffer(&chunk)
                if endsStream { openDataFrame = nil }
                if last, let promise { addOutputPromise(promise) }
            } else {
                H2FrameEncoder.writeDataHeader(length: length, stream: stream, endStream: endsStream, into: &output)
                writeOutput(promise: nil)
                context?.write(wrapOutboundOut(chunk), promise: last ? promise : nil)
                unflushed = true
            }
            if last {
                performOwnSend(&actions)
                return nil
            }
        }
    }

    /// The owner forwarded `bytes` the peer sent on the stream: the peer may send that much more.
    public func release(stream: H2StreamID, bytes: Int) {
        guard !closing else { return }
        withActions { actions in state.release(stream: stream, bytes: bytes, into: &actions) }
    }

    /// Resets an open stream; does nothing for a stream that is already closed.
    public func resetStream(_ stream: H2StreamID, code: H2ErrorCode) {
        guard !closing, state.lifecycle(of: stream) != nil else { return }
        withActions { actions in state.resetStream(stream, code: code, into: &actions) }
    }

    /// GOAWAY: the peer may open no more streams; those it opened finish. Once per connection.
    public func goAway(code: H2ErrorCode, debug: String) {
        guard !closing else { return }
        withActions { actions in state.goAway(code: code, debug: debug, into: &actions) }
    }

    public func ping(opaque: UInt64) {
        guard !closing else { return }
        H2FrameEncoder.writePing(opaque: opaque, ack: false, into: &output)
    }

    /// Hands what was written so far to the channel and flushes it.
    public func flush() {
        writeOutput(promise: nil)
        if unflushed {
            unflushed = false
            context?.flush()
        }
    }

    // MARK: Actions

    private func takeActions() -> [H2ConnectionAction] {
        var actions = spareActions
        spareActions = []
        actions.removeAll(keepingCapacity: true)
        return actions
    }

    private func returnActions(_ actions: [H2ConnectionAction]) {
        if actions.capacity > spareActions.capacity { spareActions = actions }
    }

    private func withActions(_ body: (inout [H2ConnectionAction]) -> Void) {
        var actions = takeActions()
        body(&actions)
        perform(&actions)
        returnActions(actions)
    }

    /// Does what the state machine asked, in order, and empties `actions`. The delegate may call back into the
    /// handler meanwhile: those calls use actions arrays of their own.
    private func perform(_ actions: inout [H2ConnectionAction]) {
        guard !actions.isEmpty else { return }
        let todo = actions
        actions.removeAll(keepingCapacity: true)
        // A malformed header block that also ended its stream: the owner hears of a reset, not of a clean close.
        var refused: (stream: H2StreamID, isNewStream: Bool)?
        for action in todo {
            switch action {
            case .streamClosed(let stream) where refused?.stream == stream:
                if refused?.isNewStream == false {
                    delegate?.h2StreamReset(stream, code: .protocolError, byPeer: false)
                }
            case .send(let frame):
                encode(frame)
            case .headers(let stream, let block, let endStream, let isNewStream):
                if !receivedHeaders(block, stream: stream, endStream: endStream, isNewStream: isNewStream) {
                    refused = (stream, isNewStream)
                }
            case .decodeAndDiscard(let block):
                _ = decodeBlock(block)
            case .data(let stream, let payload, let endStream, let length):
                delegate?.h2Data(payload, stream: stream, endStream: endStream, flowControlledLength: length)
            case .streamReset(let stream, let code, let byPeer):
                dropQueue(of: stream, H2StreamNotWritable(stream: stream))
                if role == .client { headersSeen.removeValue(forKey: stream) }
                delegate?.h2StreamReset(stream, code: code, byPeer: byPeer)
            case .streamClosed(let stream):
                dropQueue(of: stream, H2StreamNotWritable(stream: stream))
                if role == .client { headersSeen.removeValue(forKey: stream) }
                delegate?.h2StreamClosed(stream)
            case .windowOpened(let stream):
                resumeQueued(stream: stream)
            case .pingAnswered(let opaque):
                delegate?.h2PingAnswered(opaque: opaque)
            case .peerSettingsChanged:
                delegate?.h2PeerSettingsChanged()
            case .goAwayReceived(let lastStream, let code, let debugData):
                delegate?.h2GoAway(lastStream: lastStream, code: code, debugData: debugData)
            case .close(let violation):
                closeConnection(violation)
            }
        }
    }

    /// Decodes, checks and hands over a header block; false when it was malformed and its stream reset.
    private func receivedHeaders(_ block: ByteBuffer, stream: H2StreamID, endStream: Bool, isNewStream: Bool) -> Bool {
        guard let headers = decodeBlock(block) else { return true }
        if validateHeaders {
            let kind: H2HeaderValidation.Block
            if isNewStream {
                kind = .request
            } else if role == .client && !headersSeen.contains(stream) {
                kind = .response
            } else {
                kind = .trailers
            }
            var contentLength: Int?
            var problem = H2HeaderValidation.violation(
                in: headers, as: kind, contentLength: &contentLength, checkedFields: hpackDecoder.checkedFields)
            if problem == nil, let contentLength, kind != .trailers {
                if endStream && contentLength != 0 {
                    problem = "a content-length of \(contentLength) on a block that ends its stream"
                } else {
                    state.expectContentLength(stream: stream, contentLength)
                }
            }
            if let problem {
                var actions = takeActions()
                state.resetStream(stream, code: .protocolError, into: &actions)
                // The owner never saw the stream if it was new: it learns nothing of its reset.
                if isNewStream { actions.removeAll { if case .streamReset = $0 { return true } else { return false } } }
                perform(&actions)
                returnActions(actions)
                malformedBlocks += 1
                lastMalformedReason = problem
                return false
            }
        }
        if role == .client && !isNewStream && !endStream { headersSeen[stream] = () }
        if role == .client && endStream { headersSeen.removeValue(forKey: stream) }
        delegate?.h2Headers(headers, stream: stream, endStream: endStream, isNewStream: isNewStream)
        return true
    }

    /// Streams (clients) whose response headers arrived: the next block on them is trailers.
    private var headersSeen = H2StreamMap<Void>()
    /// Header blocks refused as malformed, and the last reason (for tests and logs).
    public private(set) var malformedBlocks = 0
    public private(set) var lastMalformedReason: String?

    private func decodeBlock(_ block: ByteBuffer) -> HPACKHeaders? {
        do {
            return try hpackDecoder.decode(block)
        } catch {
            var actions = takeActions()
            state.fail(H2ProtocolViolation(connection: .compressionError, "a header block HPACK cannot decode: \(error)"), into: &actions)
            perform(&actions)
            returnActions(actions)
            return nil
        }
    }

    private func encode(_ frame: H2OutboundFrame) {
        switch frame {
        case .settings(let settings):
            H2FrameEncoder.writeSettings(settings, into: &output)
        case .settingsAck:
            H2FrameEncoder.writeSettingsAck(into: &output)
        case .ping(let opaque, let ack):
            H2FrameEncoder.writePing(opaque: opaque, ack: ack, into: &output)
        case .rstStream(let stream, let code):
            H2FrameEncoder.writeRSTStream(stream: stream, code: code, into: &output)
        case .windowUpdate(let stream, let increment):
            H2FrameEncoder.writeWindowUpdate(stream: stream, increment: increment, into: &output)
        case .goAway(let lastStream, let code, let debug):
            H2FrameEncoder.writeGoAway(lastStream: lastStream, code: code, debugData: debug, into: &output)
        }
    }

    private func encodeHeaders(_ headers: HPACKHeaders, stream: H2StreamID, endStream: Bool) {
        // The block is encoded in place after room for its frame header, which is filled in once the block's
        // length is known; a block larger than the peer's frame size (rare: metadata of 16 KiB) is moved into
        // HEADERS and CONTINUATION frames instead.
        let frameStart = output.writerIndex
        output.writeRepeatingByte(0, count: 9)
        headerEncoder.encode(headers, into: &output)
        let length = output.writerIndex - frameStart - 9
        if length <= state.peerMaxFrameSize {
            H2FrameEncoder.setFrameHeader(
                length: length, type: .headers, flags: endStream ? 0x5 : 0x4, stream: stream, at: frameStart,
                in: &output)
            return
        }
        headerBlock.clear()
        headerBlock.writeImmutableBuffer(output.getSlice(at: frameStart + 9, length: length)!)
        output.moveWriterIndex(to: frameStart)
        H2FrameEncoder.writeHeaders(
            block: headerBlock, stream: stream, endStream: endStream, maxFrameSize: state.peerMaxFrameSize, into: &output)
    }

    /// What was encoded but never handed to the channel is lost with it: the writes in it fail.
    private func discardOutput() {
        output.clear()
        openDataFrame = nil
        outputPromise?.fail(ChannelError.ioOnClosedChannel)
        outputPromise = nil
    }

    /// Adds a write whose bytes are in `output` to the promise `output` is written with.
    private func addOutputPromise(_ promise: EventLoopPromise<Void>) {
        if let earlier = outputPromise { promise.futureResult.cascade(to: earlier) }
        outputPromise = promise
    }

    /// Hands the batch buffer to the channel (with `promise` and those of the writes in it, which complete when it
    /// was written).
    private func writeOutput(promise: EventLoopPromise<Void>?) {
        openDataFrame = nil
        var promise = promise
        if let pending = outputPromise {
            outputPromise = nil
            if let promise { promise.futureResult.cascade(to: pending) } else { promise = pending }
        }
        guard output.readableBytes > 0 else {
            if let promise {
                if let context { context.write(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise) } else {
                    promise.fail(ChannelError.ioOnClosedChannel)
                }
            }
            return
        }
        guard let context else {
            output.clear()
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(wrapOutboundOut(output), promise: promise)
        unflushed = true
        output = context.channel.allocator.buffer(capacity: 512)
    }

    // MARK: Flow-control queue

    private func resumeQueued(stream: H2StreamID?) {
        guard !waitingStreams.isEmpty else { return }
        if let stream {
            guard queued.contains(stream) else { return }
            resume(stream)
        } else {
            for id in waitingStreams where state.sendableBytes(stream: id) > 0 {
                resume(id)
            }
        }
        waitingStreams.removeAll { !queued.contains($0) }
    }

    private func resume(_ stream: H2StreamID) {
        // The queue is changed in place (`modify`): a copy taken out and put back would be copied whole by each
        // change, for every write of a long queue.
        while let next = queued[stream]?.first {
            switch next {
            case .data(let payload, let endStream, let promise):
                if let rest = writeData(payload, stream: stream, endStream: endStream, promise: promise) {
                    queued.modify(stream) { $0[$0.startIndex] = .data(rest, endStream: endStream, promise: promise) }
                    return
                }
            case .trailers(let headers, let promise):
                writeHeaders(headers, stream: stream, endStream: true, promise: promise)
            }
            // The write may have closed (and dropped) the stream's queue.
            let emptied = queued.modify(stream) { writes -> Bool in
                writes.removeFirst()
                return writes.isEmpty
            }
            guard let emptied else { return }
            if emptied { queued.removeValue(forKey: stream) }
        }
    }

    private func dropQueue(of stream: H2StreamID, _ error: Error) {
        guard let writes = queued.removeValue(forKey: stream) else { return }
        for write in writes { write.promise?.fail(error) }
    }

    private func failQueuedWrites(_ error: Error) {
        let all = queued.allValues
        queued.removeAll()
        waitingStreams = []
        for writes in all {
            for write in writes { write.promise?.fail(error) }
        }
    }

    // MARK: Closing

    private func closeConnection(_ violation: H2ProtocolViolation) {
        guard !closing else { return }
        closing = true
        delegate?.h2ConnectionError(violation)
        failQueuedWrites(ChannelError.ioOnClosedChannel)
        flush()
        context?.close(promise: nil)
    }

    /// Closes the connection once what was written is flushed.
    public func close() {
        flush()
        context?.close(promise: nil)
    }
}
