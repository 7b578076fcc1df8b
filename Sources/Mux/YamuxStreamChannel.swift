// One yamux stream as a NIO `Channel`: a pipeline of its own, bytes in and out, on the session's event loop.
//
// Reads: data frames are queued and handed to the pipeline when it reads (at once with autoRead, the default); what
// the pipeline has been handed is granted back to the peer as window, half a window at a time, so a pipeline that
// stops reading stops the peer once its window is spent. Writes: queued, and sent on flush as data frames no larger
// than the peer's window and the session's frame size; the rest waits for the peer's window updates. The channel is
// not writable while more than the configured limit waits.
//
// Closing sends FIN after everything written (close(mode: .output) does only that: a half-close); the channel is
// inactive at once, and the session forgets the stream when the peer's FIN arrives too. The peer's FIN closes the
// channel after the data before it was read. RST either way aborts: pending writes fail. A `YamuxResetStream` user
// event sends RST.

import NIOCore

final class YamuxStreamChannel: Channel, ChannelCore, @unchecked Sendable {
    let streamID: UInt32
    let openedByPeer: Bool
    private let session: YamuxSession
    private let parentChannel: Channel
    private var _pipeline: ChannelPipeline!
    private let closePromise: EventLoopPromise<Void>

    private var active = false
    private var closed = false
    private var writable = true
    private var autoRead = true
    private var allowRemoteHalfClosure = false

    private var acknowledgedByPeer: Bool
    private var localFinished = false
    private var remoteFinished = false
    private var finAfterWrites = false

    /// Bytes the peer will still accept / may still send.
    private var sendWindow = YamuxConfiguration.initialWindow
    private var receiveWindow: UInt32
    /// Bytes the pipeline was handed and the peer not yet granted back.
    private var unsentCredit: UInt32 = 0

    private var pendingWrites = CircularBuffer<(buffer: ByteBuffer, promise: EventLoopPromise<Void>?)>()
    private var flushedWrites = 0
    private var pendingWriteBytes = 0
    private var pendingReads = CircularBuffer<ByteBuffer>()
    private var unsatisfiedRead = false
    private var deliveredSinceReadComplete = false

    private var openTimeout: Scheduled<Void>?
    /// A writability change of the connection waits to be applied (see `parentWritabilityChanged`).
    private var parentWritabilityUpdateScheduled = false
    private var closeTimeout: Scheduled<Void>?

    init(session: YamuxSession, parent: Channel, id: UInt32, openedByPeer: Bool) {
        self.session = session
        self.parentChannel = parent
        self.streamID = id
        self.openedByPeer = openedByPeer
        self.acknowledgedByPeer = openedByPeer
        self.receiveWindow = session.configuration.receiveWindow
        self.closePromise = parent.eventLoop.makePromise()
        self._pipeline = ChannelPipeline(channel: self)
    }

    // MARK: Channel

    var pipeline: ChannelPipeline { _pipeline }
    var allocator: ByteBufferAllocator { parentChannel.allocator }
    var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    var localAddress: SocketAddress? { parentChannel.localAddress }
    var remoteAddress: SocketAddress? { parentChannel.remoteAddress }
    var parent: Channel? { parentChannel }
    var isWritable: Bool { writable }
    var isActive: Bool { active }
    var _channelCore: ChannelCore { self }
    var eventLoop: EventLoop { parentChannel.eventLoop }
    var syncOptions: NIOSynchronousChannelOptions? { SynchronousOptions(channel: self) }

    func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        guard eventLoop.inEventLoop else {
            return eventLoop.submit { try self.setOption0(option, value: value) }
        }
        return eventLoop.makeCompletedFuture { try setOption0(option, value: value) }
    }

    func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        guard eventLoop.inEventLoop else {
            return eventLoop.submit { try self.getOption0(option) }
        }
        return eventLoop.makeCompletedFuture { try getOption0(option) }
    }

    private func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
        switch option {
        case _ as ChannelOptions.Types.AutoReadOption:
            autoRead = value as! Bool
            if autoRead { read0() }
        case _ as ChannelOptions.Types.AllowRemoteHalfClosureOption:
            allowRemoteHalfClosure = value as! Bool
        default:
            throw ChannelError.operationUnsupported
        }
    }

    private func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        switch option {
        case _ as ChannelOptions.Types.AutoReadOption:
            return autoRead as! Option.Value
        case _ as ChannelOptions.Types.AllowRemoteHalfClosureOption:
            return allowRemoteHalfClosure as! Option.Value
        default:
            throw ChannelError.operationUnsupported
        }
    }

    private struct SynchronousOptions: NIOSynchronousChannelOptions {
        let channel: YamuxStreamChannel

        func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
            try channel.setOption0(option, value: value)
        }

        func getOption<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
            try channel.getOption0(option)
        }
    }

    // MARK: ChannelCore

    func localAddress0() throws -> SocketAddress {
        guard let address = parentChannel.localAddress else { throw ChannelError.operationUnsupported }
        return address
    }

    func remoteAddress0() throws -> SocketAddress {
        guard let address = parentChannel.remoteAddress else { throw ChannelError.operationUnsupported }
        return address
    }

    func register0(promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !closed, !finAfterWrites else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let buffer = unwrapData(data, as: ByteBuffer.self)
        pendingWrites.append((buffer, promise))
        pendingWriteBytes += buffer.readableBytes
        updateWritability()
    }

    func flush0() {
        flushedWrites = pendingWrites.count
        sendWrites()
    }

    func read0() {
        guard !closed else { return }
        unsatisfiedRead = true
        deliverReads()
    }

    func close0(error: Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch mode {
        case .input:
            promise?.fail(ChannelError.operationUnsupported)
        case .output:
            guard !closed, !finAfterWrites else {
                promise?.fail(ChannelError.outputClosed)
                return
            }
            finAfterWrites = true
            flushedWrites = pendingWrites.count
            sendWrites()
            promise?.succeed()
        case .all:
            guard !closed else {
                promise?.fail(ChannelError.alreadyClosed)
                return
            }
            finAfterWrites = true
            flushedWrites = pendingWrites.count
            sendWrites()
            becomeClosed(error: nil)
            promise?.succeed()
            forgetIfDone()
        }
    }

    func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        guard event is YamuxResetStream else {
            promise?.fail(ChannelError.operationUnsupported)
            return
        }
        reset(sending: true, error: YamuxSessionError("the stream was reset by this side"))
        promise?.succeed()
    }

    func channelRead0(_ data: NIOAny) {
        // Reached the end of the pipeline unconsumed: nothing to do.
    }

    func errorCaught0(error: Error) {}

    // MARK: From the session

    /// Runs `initializer`, then registers and activates the channel.
    func start(initializer: @Sendable (Channel) -> EventLoopFuture<Void>, promise: EventLoopPromise<Void>?) {
        initializer(self).hop(to: eventLoop).whenComplete { result in
            switch result {
            case .success:
                guard !self.closed else {
                    promise?.fail(ChannelError.ioOnClosedChannel)
                    return
                }
                self.pipeline.fireChannelRegistered()
                self.active = true
                self.pipeline.fireChannelActive()
                promise?.succeed()
                if self.autoRead {
                    self.pipeline.read()
                }
                self.deliverReads()
            case .failure(let error):
                promise?.fail(error)
                self.reset(sending: true, error: error)
            }
        }
    }

    func acknowledged() {
        acknowledgedByPeer = true
        openTimeout?.cancel()
        openTimeout = nil
    }

    func scheduleOpenTimeout(_ timeout: TimeAmount) {
        openTimeout = eventLoop.scheduleTask(in: timeout) { [weak self] in
            guard let self, !self.acknowledgedByPeer else { return }
            self.reset(sending: true, error: YamuxSessionError.openTimedOut)
        }
    }

    func peerGranted(_ delta: UInt32) {
        let (sum, overflow) = sendWindow.addingReportingOverflow(delta)
        sendWindow = overflow ? UInt32.max : sum
        sendWrites()
    }

    func received(_ data: ByteBuffer) throws(YamuxProtocolError) {
        let count = UInt32(data.readableBytes)
        guard count <= receiveWindow else {
            throw YamuxProtocolError(
                "the peer sent \(count) bytes on stream \(streamID), beyond the \(receiveWindow) its window allows")
        }
        receiveWindow -= count
        guard !remoteFinished else {
            throw YamuxProtocolError("the peer sent data on stream \(streamID) after closing it (FIN)")
        }
        if closed {
            // Nobody reads any more: drop it, and keep the peer's window open so it can reach its FIN.
            grant(count)
            return
        }
        pendingReads.append(data)
        deliverReads()
    }

    func parentReadComplete() {
        if deliveredSinceReadComplete {
            deliveredSinceReadComplete = false
            pipeline.fireChannelReadComplete()
            if autoRead, !closed {
                pipeline.read()
            }
        }
    }

    func peerFinished() {
        remoteFinished = true
        closeTimeout?.cancel()
        if closed {
            forgetIfDone()
        } else {
            deliverReads()
        }
    }

    func peerReset() {
        reset(sending: false, error: YamuxSessionError.streamReset)
    }

    func sessionEnded(error: Error) {
        failPendingWrites(error)
        openTimeout?.cancel()
        closeTimeout?.cancel()
        if !closed {
            becomeClosed(error: error)
        }
    }

    func parentWritabilityChanged(_ parentWritable: Bool) {
        // The connection's writability changes inside its flush, which another stream's pipeline may have started
        // from the middle of its own write: firing into every stream's pipeline from there re-entered NIOHTTP2's
        // handler of a stream whose outbound buffers were mid-update (its assertion "Received flush data frames
        // while buffering control frames"). Each stream takes the change on a fresh stack instead, state and event
        // together.
        guard !parentWritabilityUpdateScheduled else { return }
        parentWritabilityUpdateScheduled = true
        eventLoop.execute {
            self.parentWritabilityUpdateScheduled = false
            self.updateWritability()
        }
    }

    // MARK: Internals

    private func deliverReads() {
        guard active, !closed else { return }
        while unsatisfiedRead || autoRead, let data = pendingReads.popFirst() {
            unsatisfiedRead = false
            deliveredSinceReadComplete = true
            grant(UInt32(data.readableBytes))
            pipeline.syncOperations.fireChannelRead(NIOAny(data))
            if closed { return }
        }
        if remoteFinished, pendingReads.isEmpty {
            if deliveredSinceReadComplete {
                deliveredSinceReadComplete = false
                pipeline.fireChannelReadComplete()
            }
            if allowRemoteHalfClosure {
                pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            } else {
                close0(error: ChannelError.eof, mode: .all, promise: nil)
            }
        }
    }

    /// Grants the peer window for `count` bytes handed on, once half a window has gathered.
    private func grant(_ count: UInt32) {
        guard !remoteFinished else { return }
        unsentCredit += count
        guard unsentCredit >= session.configuration.receiveWindow / 2 else { return }
        receiveWindow += unsentCredit
        session.writeFrame(YamuxFrameHeader(type: .windowUpdate, streamID: streamID, length: unsentCredit))
        unsentCredit = 0
        session.flushIfPending()
    }

    /// Sends flushed writes as far as the peer's window allows, then FIN if the channel was closed.
    private func sendWrites() {
        let maximumFrame = Int(session.configuration.maximumFrameSize)
        var wrote = false
        while flushedWrites > 0, sendWindow > 0, !localFinished {
            var (buffer, promise) = pendingWrites[pendingWrites.startIndex]
            let chunk = min(buffer.readableBytes, Int(sendWindow), maximumFrame)
            if chunk == buffer.readableBytes {
                _ = pendingWrites.removeFirst()
                flushedWrites -= 1
                if chunk > 0 {
                    session.writeFrame(
                        YamuxFrameHeader(type: .data, flags: openFlags(), streamID: streamID, length: UInt32(chunk)),
                        payload: buffer, promise: promise
                    )
                } else {
                    promise?.succeed()
                }
            } else {
                let slice = buffer.readSlice(length: chunk)!
                pendingWrites[pendingWrites.startIndex] = (buffer, promise)
                session.writeFrame(
                    YamuxFrameHeader(type: .data, flags: openFlags(), streamID: streamID, length: UInt32(chunk)),
                    payload: slice
                )
            }
            sendWindow -= UInt32(chunk)
            pendingWriteBytes -= chunk
            wrote = true
        }
        if finAfterWrites, pendingWrites.isEmpty, !localFinished {
            localFinished = true
            session.writeFrame(YamuxFrameHeader(type: .windowUpdate, flags: .fin, streamID: streamID, length: 0))
            wrote = true
            if !remoteFinished {
                closeTimeout = eventLoop.scheduleTask(in: session.configuration.streamCloseTimeout) { [weak self] in
                    self?.reset(sending: true, error: YamuxSessionError.closeTimedOut)
                }
            }
            forgetIfDone()
        }
        if wrote {
            session.flushIfPending()
        }
        updateWritability()
    }

    /// No flags: the SYN went out with the opening window update.
    private func openFlags() -> YamuxFlags { [] }

    private func updateWritability() {
        let limit = session.configuration.streamWriteBufferLimit
        let newValue: Bool
        if writable {
            newValue = session.parentIsWritable && pendingWriteBytes <= limit
        } else {
            newValue = session.parentIsWritable && pendingWriteBytes <= limit / 2
        }
        guard newValue != writable, !closed else { return }
        writable = newValue
        pipeline.fireChannelWritabilityChanged()
    }

    private func reset(sending: Bool, error: Error) {
        guard !(localFinished && remoteFinished) else { return }
        if sending {
            session.writeFrame(YamuxFrameHeader(type: .windowUpdate, flags: .rst, streamID: streamID, length: 0))
            session.flushIfPending()
        }
        localFinished = true
        remoteFinished = true
        openTimeout?.cancel()
        closeTimeout?.cancel()
        failPendingWrites(error)
        if !closed {
            becomeClosed(error: error)
        }
        session.forget(self)
    }

    private func failPendingWrites(_ error: Error) {
        while let (_, promise) = pendingWrites.popFirst() {
            promise?.fail(error)
        }
        flushedWrites = 0
        pendingWriteBytes = 0
    }

    /// The channel's side of closing: inactive, unregistered, handlers removed, close future done.
    private func becomeClosed(error: Error?) {
        closed = true
        pendingReads.removeAll()
        let wasActive = active
        active = false
        if let error, wasActive {
            pipeline.fireErrorCaught(error)
        }
        if wasActive {
            pipeline.fireChannelInactive()
        }
        pipeline.fireChannelUnregistered()
        eventLoop.execute {
            self.removeHandlers(pipeline: self.pipeline)
            self.closePromise.succeed()
        }
    }

    private func forgetIfDone() {
        if closed, localFinished, remoteFinished {
            closeTimeout?.cancel()
            session.forget(self)
        }
    }
}
