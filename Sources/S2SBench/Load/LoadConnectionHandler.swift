// LoadConnectionHandler: drives one HTTP/2 load connection, frame by frame, on top of NIOHTTP2Handler. It owns the
// NIO-facing duties every workload shares (write batching, inbound flow-control refills, connection failures, the
// run phases the LoadRunner steps it through) and hands the frames of its calls to a LoadWorkload, which owns the
// call pattern itself (unary or streaming).

import NIOCore
import NIOHTTP2

/// A call pattern run over one connection: it opens calls, reacts to their frames, and reports outcomes.
protocol LoadWorkload {
    /// Opens the calls that keep this connection busy.
    mutating func start(_ connection: LoadConnectionWriter)
    /// Handles a HEADERS or DATA frame received on one of this workload's streams.
    mutating func received(_ frame: HTTP2Frame, _ connection: LoadConnectionWriter)
    /// Handles the closing of a stream; `reason` is set when the stream was reset rather than finished.
    mutating func streamClosed(_ streamID: HTTP2StreamID, reason: HTTP2ErrorCode?, _ connection: LoadConnectionWriter)
    /// Stops opening new work and winds down what is open (for example by half-closing streams).
    mutating func beginDraining(_ connection: LoadConnectionWriter)
    /// True when no call or message is outstanding.
    var isDrained: Bool { get }
    /// Calls or messages still outstanding: they count as errors if the connection is lost.
    var outstanding: Int { get }
}

/// Frames a workload asked to send, held until the workload call returns. Writing into the pipeline can make
/// NIOHTTP2Handler deliver stream events re-entrantly (a stream that just closed), and those events must not reach
/// the workload while it is still in the middle of a mutation.
final class LoadOutbox {
    fileprivate var frames = CircularBuffer<HTTP2Frame>(initialCapacity: 64)
}

/// What a workload may touch while handling an event: frame writes, the clock and the recorder.
struct LoadConnectionWriter {
    fileprivate let outbox: LoadOutbox
    /// Where the workload records completions and errors.
    let recorder: LoadRecorder
    /// False once the run is draining: finished calls are not replaced any more.
    let keepsLoadGoing: Bool

    /// Queues a frame; the handler writes it when the workload returns and flushes after each read burst.
    func write(_ frame: HTTP2Frame) {
        self.outbox.frames.append(frame)
    }
}

/// The run phases the LoadRunner steps each connection through, from that connection's event loop.
protocol LoadConnectionControl: AnyObject {
    /// Opens the workload's calls.
    func start()
    /// Opens the measured window.
    func beginRecording()
    /// Closes the measured window and returns its tally.
    func endRecording() -> LoadTally
    /// Stops replacing finished work; the future completes once nothing is outstanding (or the connection is gone).
    func drain() -> EventLoopFuture<Void>
    /// Closes the connection although calls are still outstanding, because draining took too long.
    func abandon()
    /// Errors seen over the whole run.
    var errors: UInt64 { get }
    /// Why the connection ended before the run did, or nil if it lasted.
    var connectionLoss: String? { get }
}

/// Runs a LoadWorkload on one client connection.
final class LoadConnectionHandler<Workload: LoadWorkload>: ChannelInboundHandler, LoadConnectionControl {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private enum Phase {
        case idle
        case running
        case draining(EventLoopPromise<Void>)
        case finished
    }

    private var workload: Workload
    private var phase = Phase.idle
    private let recorder = LoadRecorder()
    private let outbox = LoadOutbox()
    private var context: ChannelHandlerContext?
    private let eventLoop: EventLoop

    /// Creates the handler for a connection whose channel runs on `eventLoop`.
    init(workload: Workload, eventLoop: EventLoop) {
        self.workload = workload
        self.eventLoop = eventLoop
    }

    var errors: UInt64 { self.recorder.errors }

    private(set) var connectionLoss: String?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func start() {
        guard case .idle = self.phase, let context = self.context else {
            return
        }
        self.phase = .running
        self.withWorkload { workload, writer in workload.start(writer) }
        context.flush()
    }

    func beginRecording() {
        self.recorder.beginRecording()
    }

    func endRecording() -> LoadTally {
        self.recorder.endRecording()
    }

    func drain() -> EventLoopFuture<Void> {
        guard let context = self.context, case .running = self.phase else {
            return self.eventLoop.makeSucceededVoidFuture()
        }
        let drained = self.eventLoop.makePromise(of: Void.self)
        self.phase = .draining(drained)
        self.withWorkload { workload, writer in workload.beginDraining(writer) }
        context.flush()
        self.finishIfDrained()
        return drained.futureResult
    }

    func abandon() {
        self.noteConnectionLoss("\(self.workload.outstanding) calls or messages still outstanding after the drain timeout")
        self.context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        if case .goAway(_, let errorCode, _) = frame.payload {
            self.noteConnectionLoss("peer sent GOAWAY (\(errorCode))")
        }
        self.withWorkload { workload, writer in workload.received(frame, writer) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let windowEvent = event as? NIOHTTP2WindowUpdatedEvent,
            let update = BenchHTTP2Tuning.windowUpdate(after: windowEvent)
        {
            context.write(self.wrapOutboundOut(update), promise: nil)
        } else if let closed = event as? StreamClosedEvent {
            self.withWorkload { workload, writer in workload.streamClosed(closed.streamID, reason: closed.reason, writer) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A stream error is followed by that stream's StreamClosedEvent, where the workload counts it. Anything
        // else breaks the connection.
        if error is NIOHTTP2Errors.StreamError {
            return
        }
        self.noteConnectionLoss("\(error)")
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch self.phase {
        case .idle, .finished:
            break
        case .running, .draining:
            self.noteConnectionLoss("closed by the peer")
            self.recorder.recordErrors(self.workload.outstanding)
            self.finish()
        }
        context.fireChannelInactive()
    }

    /// Keeps the first reason the connection is going away while the run still needs it.
    private func noteConnectionLoss(_ reason: String) {
        switch self.phase {
        case .running, .draining:
            self.connectionLoss = self.connectionLoss ?? reason
        case .idle, .finished:
            break
        }
    }

    private var isRunning: Bool {
        if case .running = self.phase {
            return true
        }
        return false
    }

    /// Lets the workload handle one event, then writes what it queued and checks whether draining is over.
    private func withWorkload(_ body: (inout Workload, LoadConnectionWriter) -> Void) {
        guard let context = self.context else {
            return
        }
        let writer = LoadConnectionWriter(outbox: self.outbox, recorder: self.recorder, keepsLoadGoing: self.isRunning)
        body(&self.workload, writer)
        // Writes may re-enter `withWorkload` (and queue more frames); popping one frame at a time keeps the
        // outbox consistent and the frames in order.
        while let frame = self.outbox.frames.popFirst() {
            context.write(self.wrapOutboundOut(frame), promise: nil)
        }
        self.finishIfDrained()
    }

    private func finishIfDrained() {
        if case .draining = self.phase, self.workload.isDrained {
            self.finish()
        }
    }

    private func finish() {
        let previousPhase = self.phase
        // Finished before the promise completes: its callbacks close the channel, synchronously on this loop.
        self.phase = .finished
        if case .draining(let drained) = previousPhase {
            drained.succeed()
        }
    }
}
