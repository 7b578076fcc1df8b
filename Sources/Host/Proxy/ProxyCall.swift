// One gRPC call forwarded from a downstream HTTP/2 stream to an upstream HTTP/2 stream, and its response back.
//
// The call is generic: it never parses messages, only follows their length prefixes to enforce the size limit, and
// forwards DATA frames as they are (no copy). Flow control is end to end per stream: bytes received on one side are
// granted back to their sender's stream (WINDOW_UPDATE) only when the write to the other side has completed, so a
// slow reader on either end throttles the writer on the other, and at most one stream window per direction is held
// here. Connection windows are granted back by the connection handlers as bytes arrive, so a call whose reader
// stalls never holds up the other calls sharing either connection.
//
// Ending rules: the upstream's final HEADERS (trailers) ends the call; a reset on one side resets the other with the
// same code; an upstream connection that dies mid-call, an unreachable upstream and an oversized message end the
// call with a gRPC status the proxy writes itself. When the status goes out while the client is still sending,
// RST_STREAM(NO_ERROR) follows it, as HTTP/2 prescribes for a response that completes before its request.
//
// A replication stream (`StreamWorkflowReplicationMessages`) is also recorded in its listener's
// `ReplicationStreamRegistry`: its whole messages each way (counted by the boundary trackers, or the reassemblers
// when plugins want the messages), and which side ended it. Other calls pay one path compare at the start and a nil
// check per DATA frame.
//
// Confined to the event loop of the downstream connection, which is also the loop of the upstream connection used.

import Logging
import NIOCore
import NIOHPACK
import NIOHTTP2
import PluginABI

final class ProxyCall {
    private enum Phase {
        case connecting
        case open
        case finished
    }

    private let listener: ListenerContext
    /// The connection's logger for the call's component (by its `:path`: adminService, workflowService,
    /// replicationStreams or otherServices), shared by the connection's calls of that component; a call adds its
    /// method and stream id only to the lines it writes (copying metadata for every call would cost more than the
    /// rest of the call's bookkeeping).
    private var logger: Logger
    private var phase = Phase.connecting

    private let downstream: DownstreamConnectionHandler
    private let downstreamStreamID: HTTP2StreamID
    private var upstream: UpstreamConnection?
    private var upstreamStreamID = HTTP2StreamID.rootStream
    /// Request frames that arrived while the upstream stream was being opened (at most one stream window).
    private var pendingRequestFrames: [HTTP2Frame.FramePayload] = []

    private var requestMessages: GRPCMessageBoundaryTracker
    private var responseMessages: GRPCMessageBoundaryTracker
    /// The client sent END_STREAM.
    private var clientEnded = false
    /// END_STREAM was forwarded to the upstream.
    private var requestEnded = false
    /// The upstream sent END_STREAM.
    private var upstreamEnded = false
    private var responseHeadersSent = false
    /// Whether the client has been sent the response's headers (or a status): a call reset before that, and
    /// soon after it started, is what a rapid-reset flood is made of.
    var isAnswered: Bool { responseHeadersSent }
    /// The plugins that want this call, if any; calls no plugin wants never allocate one.
    private var plugins: PluginCallRunner?
    /// Present when a plugin wants the messages of that direction: whole messages are then cut out of the DATA
    /// frames, run through the chain and forwarded re-framed.
    private var requestReassembler: GRPCMessageReassembler?
    private var responseReassembler: GRPCMessageReassembler?
    /// The grpc-status the client received (for plugins' call_end), -1 while unknown.
    private var finalStatus: Int32 = -1
    /// The final HEADERS (or END_STREAM) went to the client.
    private var responseEnded = false
    private var method = ""
    /// The metrics shard of the call's event loop, and when the call began, for the metrics endpoint.
    private let metricsShard: Int
    let startTime = NIODeadline.now()
    /// The proxy wrote the call's status itself (the call never got one from the upstream).
    private var failedInProxy = false
    /// Set when the call is a replication stream: where its messages and its end are recorded.
    private var replicationStream: ReplicationStream?
    /// The side whose event is ending the call, noted before the proxy writes the frames that end it: writing them
    /// can close the downstream stream, which comes back at once as a client event.
    private var endingSide: CallSide?

    init(listener: ListenerContext, downstream: DownstreamConnectionHandler, streamID: HTTP2StreamID) {
        self.listener = listener
        self.downstream = downstream
        self.downstreamStreamID = streamID
        // Until `start` reads the call's path.
        self.logger = downstream.logger
        self.requestMessages = GRPCMessageBoundaryTracker(maxMessageBytes: listener.maxMessageBytes)
        self.responseMessages = GRPCMessageBoundaryTracker(maxMessageBytes: listener.maxMessageBytes)
        metricsShard = listener.metrics.shard(for: downstream.writer.eventLoop)
        listener.activeCalls.increment()
        listener.metrics.callStarted(shard: metricsShard)
    }

    // MARK: Downstream events

    func start(_ request: HTTP2Frame.FramePayload.Headers) {
        let headers = request.headers
        method = headers.first(name: ":path") ?? ""
        logger = downstream.callLogger(for: LogComponent.ofCall(path: method))
        clientEnded = request.endStream
        let contentType = headers.first(name: "content-type") ?? ""
        guard headers.first(name: ":method") == "POST", contentType.hasPrefix("application/grpc") else {
            rejectNonGRPC(contentType: contentType)
            return
        }
        var forwarded = request
        forwarded.headers = HeaderFilter.forwardable(headers)
        if let chain = listener.plugins, let plan = chain.plan(for: method) {
            let runner = PluginCallRunner(plan: plan, method: method, side: chain.side, connection: chain.connectionName)
            runner.requestEncoding = headers.first(name: "grpc-encoding")
            runner.maxMessageBytes = listener.maxMessageBytes
            plugins = runner
            if case .fail(let status) = runner.start(headers: &forwarded.headers) {
                failCall(status, cause: .client)
                return
            }
            if runner.wantsRequestMessages {
                requestReassembler = GRPCMessageReassembler(maxMessageBytes: listener.maxMessageBytes)
            }
            if runner.wantsResponseMessages {
                responseReassembler = GRPCMessageReassembler(maxMessageBytes: listener.maxMessageBytes)
            }
        }
        if method == ReplicationStreamRegistry.method {
            // After the plugins' start, as the Go proxy records a stream only once its metadata was accepted.
            replicationStream = listener.replicationStreams.open(headers: headers)
        }
        guard let loop = downstream.writer.eventLoop else { return finish(endedBy: .client) }
        // Opened once the frames read with these headers have been handled: a client that opens and resets streams
        // in one go (a rapid-reset flood) costs the upstream nothing, and a real call loses no time, since the
        // headers would be flushed at the end of the read anyway.
        downstream.writer.atEndOfReadBatch {
            guard self.phase == .connecting else { return }
            self.openUpstreamStream(forwarded, on: loop, attemptsLeft: Self.upstreamAttempts)
        }
    }

    /// How many connections a call tries before failing when each it is handed turns out full or draining (others'
    /// calls can take the room of a connection between the pool choosing it and the call opening its stream).
    private static let upstreamAttempts = 8

    /// Asks the upstream for a connection and opens the call's stream on it.
    private func openUpstreamStream(_ forwarded: HTTP2Frame.FramePayload.Headers, on loop: EventLoop, attemptsLeft: Int) {
        listener.upstream.connection(on: loop).whenComplete { result in
            guard self.phase == .connecting else { return }
            switch result {
            case .success(let connection):
                let id: HTTP2StreamID
                switch connection.openStream(for: self, headers: forwarded) {
                case .opened(let opened):
                    id = opened
                case .full where attemptsLeft > 1, .unavailable where attemptsLeft > 1:
                    return self.openUpstreamStream(forwarded, on: loop, attemptsLeft: attemptsLeft - 1)
                case .full:
                    self.failCall(
                        GRPCStatus(.unavailable, "upstream \(self.listener.upstream.target) has no connection with room for another call (SETTINGS_MAX_CONCURRENT_STREAMS); retry the call"),
                        cause: .upstream
                    )
                    return
                case .unavailable:
                    self.failCall(
                        GRPCStatus(.unavailable, "upstream \(self.listener.upstream.target) is draining; retry the call"),
                        cause: .upstream
                    )
                    return
                }
                self.upstream = connection
                self.upstreamStreamID = id
                self.phase = .open
                self.requestEnded = forwarded.endStream
                let pending = self.pendingRequestFrames
                self.pendingRequestFrames = []
                for frame in pending where self.phase == .open {
                    self.forwardRequestFrame(frame)
                }
                connection.writer.flush()
            case .failure(let error):
                let message = (error as? UpstreamUnavailableError)?.description
                    ?? "upstream \(self.listener.upstream.target) is unavailable: \(NetworkErrorDescription.describe(error))"
                self.failCall(GRPCStatus(.unavailable, message), cause: .upstream)
            }
        }
    }

    func downstreamHeaders(_ trailers: HTTP2Frame.FramePayload.Headers) {
        clientEnded = true
        receivedRequestFrame(.headers(trailers))
    }

    func downstreamData(_ data: HTTP2Frame.FramePayload.Data) {
        if data.endStream { clientEnded = true }
        receivedRequestFrame(.data(data))
    }

    func downstreamReset(_ code: HTTP2ErrorCode) {
        guard phase != .finished else { return }
        logger.debug("call reset by client", metadata: callMetadata(["code": "\(code)"]))
        finish(endedBy: .client)
    }

    func downstreamClosed(reason: HTTP2ErrorCode?) {
        guard phase != .finished else { return }
        logger.debug("call cancelled by client", metadata: callMetadata(["reason": "\(reason.map { "\($0)" } ?? "connection closed")"]))
        finish(endedBy: .client)
    }

    // MARK: Upstream events

    func upstreamHeaders(_ headers: HTTP2Frame.FramePayload.Headers) {
        guard phase == .open else { return }
        var block = headers
        block.headers = HeaderFilter.forwardable(headers.headers)
        if responseHeadersSent {
            // Trailers: the call's status.
            block.endStream = true
        } else {
            responseHeadersSent = true
            plugins?.responseEncoding = headers.headers.first(name: "grpc-encoding")
        }
        upstreamEnded = upstreamEnded || headers.endStream
        if block.endStream { recordStatus(block.headers) }
        // Only a client still sending needs to know when the status is out (see `stopRequest`).
        let written = block.endStream && !clientEnded ? downstream.writer.eventLoop?.makePromise(of: Void.self) : nil
        downstream.writer.write(.headers(block), streamID: downstreamStreamID, promise: written)
        if block.endStream {
            responseEnded = true
            finishAfterResponse(written: written?.futureResult)
        } else {
            downstream.writer.flush()
        }
    }

    func upstreamData(_ data: HTTP2Frame.FramePayload.Data) {
        guard phase == .open, let upstream else { return }
        if responseReassembler != nil {
            return translateResponseData(data, from: upstream)
        }
        let bytes = HTTP2FlowControlledLength.of(data)
        let completedBefore = responseMessages.completedMessages
        if case .byteBuffer(let buffer) = data.data, case .messageTooLarge(let length) = responseMessages.consume(buffer) {
            failCall(tooLarge(length: length, direction: "response"), cause: .upstream)
            return
        }
        replicationStream?.forwarded(responses: responseMessages.completedMessages - completedBefore)
        upstreamEnded = upstreamEnded || data.endStream
        let promise = downstream.writer.eventLoop!.makePromise(of: Void.self)
        downstream.writer.write(.data(data), streamID: downstreamStreamID, promise: promise)
        let streamID = upstreamStreamID
        promise.futureResult.whenComplete { result in
            var successful = false
            if case .success = result { successful = true }
            upstream.writer.releaseStreamCredit(bytes, streamID: streamID, streamOpen: successful && !self.upstreamEnded && self.phase == .open)
        }
        if data.endStream {
            responseEnded = true
            finishAfterResponse(written: promise.futureResult)
        } else {
            downstream.writer.flush()
        }
    }

    func upstreamReset(_ code: HTTP2ErrorCode) {
        guard phase == .open else { return }
        logger.debug("upstream reset the stream", metadata: callMetadata(["code": "\(code)"]))
        upstreamEnded = true
        resetDownstream(code)
    }

    func upstreamClosed(reason: HTTP2ErrorCode?) {
        guard phase == .open else { return }
        if let reason {
            upstreamEnded = true
            resetDownstream(reason)
        } else {
            failCall(
                GRPCStatus(.unavailable, "upstream \(listener.upstream.target) closed the stream before the call ended"),
                cause: .upstream
            )
        }
    }

    // MARK: Call flow

    private func receivedRequestFrame(_ payload: HTTP2Frame.FramePayload) {
        switch phase {
        case .connecting:
            pendingRequestFrames.append(payload)
        case .open:
            forwardRequestFrame(payload)
            upstream?.writer.flush()
        case .finished:
            // Dropped; the connection window got the bytes back as they arrived.
            break
        }
    }

    private func forwardRequestFrame(_ payload: HTTP2Frame.FramePayload) {
        guard let upstream, !requestEnded else { return }
        switch payload {
        case .data(let data) where requestReassembler != nil:
            translateRequestData(data, to: upstream)
        case .data(let data):
            let bytes = HTTP2FlowControlledLength.of(data)
            let completedBefore = requestMessages.completedMessages
            if case .byteBuffer(let buffer) = data.data, case .messageTooLarge(let length) = requestMessages.consume(buffer) {
                failCall(tooLarge(length: length, direction: "request"), cause: .client)
                return
            }
            replicationStream?.forwarded(requests: requestMessages.completedMessages - completedBefore)
            requestEnded = data.endStream
            let promise = upstream.writer.eventLoop!.makePromise(of: Void.self)
            upstream.writer.write(payload, streamID: upstreamStreamID, promise: promise)
            promise.futureResult.whenComplete { result in
                var successful = false
                if case .success = result { successful = true }
                self.downstream.writer.releaseStreamCredit(bytes, streamID: self.downstreamStreamID, streamOpen: successful && !self.clientEnded && self.phase == .open)
            }
        case .headers(var block):
            // Request trailers are rare in gRPC but legal HTTP/2; they end the request side.
            block.headers = HeaderFilter.forwardable(block.headers)
            block.endStream = true
            requestEnded = true
            upstream.writer.write(.headers(block), streamID: upstreamStreamID, promise: nil)
        default:
            break
        }
    }

    // MARK: Calls a plugin wants the messages of

    /// Cuts whole requests out of `data`, runs them through the plugins and forwards what they decide.
    private func translateRequestData(_ data: HTTP2Frame.FramePayload.Data, to upstream: UpstreamConnection) {
        let bytes = HTTP2FlowControlledLength.of(data)
        let release: (Bool) -> Void = { successful in
            self.downstream.writer.releaseStreamCredit(bytes, streamID: self.downstreamStreamID, streamOpen: successful && !self.clientEnded && self.phase == .open)
        }
        switch translate(data, reassembler: &requestReassembler, direction: S2S_DIRECTION_REQUEST) {
        case .fail(let status):
            release(false)
            failCall(status, cause: .client)
        case .forward(let messages):
            replicationStream?.forwarded(requests: messages.count)
            requestEnded = data.endStream
            write(messages, endStream: data.endStream, to: upstream.writer, streamID: upstreamStreamID, release: release)
        }
    }

    /// Cuts whole responses out of `data`, runs them through the plugins and forwards what they decide.
    private func translateResponseData(_ data: HTTP2Frame.FramePayload.Data, from upstream: UpstreamConnection) {
        let bytes = HTTP2FlowControlledLength.of(data)
        let streamID = upstreamStreamID
        let release: (Bool) -> Void = { successful in
            upstream.writer.releaseStreamCredit(bytes, streamID: streamID, streamOpen: successful && !self.upstreamEnded && self.phase == .open)
        }
        upstreamEnded = upstreamEnded || data.endStream
        switch translate(data, reassembler: &responseReassembler, direction: S2S_DIRECTION_RESPONSE) {
        case .fail(let status):
            release(false)
            failCall(status, cause: .upstream)
        case .forward(let messages):
            replicationStream?.forwarded(responses: messages.count)
            let written = write(messages, endStream: data.endStream, to: downstream.writer, streamID: downstreamStreamID,
                                release: release)
            if data.endStream {
                responseEnded = true
                finishAfterResponse(written: written)
            } else {
                downstream.writer.flush()
            }
        }
    }

    private enum Translation {
        case forward([ByteBuffer])
        case fail(GRPCStatus)
    }

    private func translate(
        _ data: HTTP2Frame.FramePayload.Data, reassembler: inout GRPCMessageReassembler?, direction: s2s_direction_t
    ) -> Translation {
        let name = direction == S2S_DIRECTION_REQUEST ? "request" : "response"
        guard case .byteBuffer(let buffer) = data.data, let plugins else {
            return .fail(GRPCStatus(.internal, "s2s-proxy could not read the \(name) bytes"))
        }
        var messages: [ByteBuffer] = []
        if let length = reassembler?.consume(buffer, into: &messages) {
            return .fail(tooLarge(length: length, direction: name))
        }
        if data.endStream, reassembler?.isAtMessageBoundary == false {
            return .fail(GRPCStatus(.internal, "the \(name) stream ended in the middle of a message"))
        }
        var output: [ByteBuffer] = []
        output.reserveCapacity(messages.count)
        for message in messages {
            switch plugins.message(message, direction: direction) {
            case .forward(let translated):
                if translated.readableBytes - 5 > listener.maxMessageBytes {
                    return .fail(GRPCStatus(
                        .resourceExhausted,
                        "a plugin made a \(name) message of \(translated.readableBytes - 5) bytes, over the proxy's limit of \(listener.maxMessageBytes) bytes (limits.maxMessageBytes)"
                    ))
                }
                output.append(translated)
            case .fail(let status):
                return .fail(status)
            }
        }
        return .forward(output)
    }

    /// Writes re-framed messages as DATA frames; `release` runs once the last write completed (at once if there is
    /// nothing to write), handing the flow credit of the frame they came from back to its sender. Returns the last
    /// write's completion, nil if nothing was written.
    @discardableResult
    private func write(
        _ messages: [ByteBuffer], endStream: Bool, to writer: HTTP2FrameWriter, streamID: HTTP2StreamID,
        release: @escaping (Bool) -> Void
    ) -> EventLoopFuture<Void>? {
        guard !messages.isEmpty || endStream else {
            // A part of a message, held until the rest arrives; the sender may go on (the limit bounds what is held).
            release(true)
            return nil
        }
        let promise = writer.eventLoop!.makePromise(of: Void.self)
        if messages.isEmpty {
            writer.write(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)), streamID: streamID, promise: promise)
        } else {
            for (index, message) in messages.enumerated() {
                let last = index == messages.count - 1
                writer.write(.data(.init(data: .byteBuffer(message), endStream: last && endStream)), streamID: streamID,
                             promise: last ? promise : nil)
            }
        }
        promise.futureResult.whenComplete { result in
            if case .success = result { release(true) } else { release(false) }
        }
        return promise.futureResult
    }

    /// The upstream's final frame is on its way to the client. Anything the client still sends is moot.
    ///
    /// The call ended on the client's side when its requests had ended first, else on the upstream's.
    /// `written` completes when the response's last frame has been written.
    private func finishAfterResponse(written: EventLoopFuture<Void>?) {
        logger.debug("call finished", metadata: callMetadata([:]))
        let side: CallSide = clientEnded ? .client : .upstream
        endingSide = side
        if !clientEnded {
            // Like gRPC servers: after the status, stop the rest of the request without cancelling the call.
            stopRequest(after: written)
        }
        downstream.writer.flush()
        finish(endedBy: side)
    }

    /// Sends RST_STREAM(NO_ERROR) to a client still sending, once the response's last frame (`written`) is out.
    /// Written at once, the reset would overtake the response's DATA and trailers while they wait in the HTTP/2
    /// handler (for flow-control window, or for the flush), and gRPC clients would report the reset instead of the
    /// status and lose the last messages. If the client ends its request meanwhile, the reset finds the stream
    /// closed and is dropped (its write fails; nothing else happens).
    private func stopRequest(after written: EventLoopFuture<Void>?) {
        let writer = downstream.writer
        let streamID = downstreamStreamID
        guard let written else {
            writer.write(.rstStream(.noError), streamID: streamID, promise: nil)
            return
        }
        written.whenSuccess {
            writer.write(.rstStream(.noError), streamID: streamID, promise: nil)
            writer.flush()
        }
    }

    /// Ends the call with a status written by the proxy itself; `cause` is the side whose event or bytes led to it.
    private func failCall(_ status: GRPCStatus, cause: CallSide) {
        guard phase != .finished else { return }
        endingSide = cause
        logger.info("call failed in proxy", metadata: callMetadata(["status": "\(status.code)", "reason": "\(status.message)"]))
        if !responseEnded {
            failedInProxy = true
            finalStatus = Int32(status.code.rawValue)
            endResponse(with: status.trailers(trailersOnly: !responseHeadersSent))
        }
        finish(endedBy: cause)
    }

    private func rejectNonGRPC(contentType: String) {
        logger.info("rejected non-gRPC request", metadata: callMetadata(["content-type": "\(contentType)"]))
        method = CallMetrics.nonGRPCMethod
        finalStatus = Int32(GRPCStatusCode.internal.rawValue)
        failedInProxy = true
        var headers = HPACKHeaders()
        headers.add(name: ":status", value: "415")
        headers.add(name: "grpc-status", value: String(GRPCStatusCode.internal.rawValue))
        headers.add(name: "grpc-message", value: GRPCStatus.percentEncode("s2s-proxy forwards gRPC only (content-type application/grpc)"))
        endResponse(with: headers)
        finish(endedBy: .client)
    }

    /// Sends the response's last HEADERS, written by the proxy, and stops the client's request side if it is still
    /// sending.
    private func endResponse(with headers: HPACKHeaders) {
        responseHeadersSent = true
        responseEnded = true
        let written = clientEnded ? nil : downstream.writer.eventLoop?.makePromise(of: Void.self)
        downstream.writer.write(.headers(.init(headers: headers, endStream: true)), streamID: downstreamStreamID,
                                promise: written)
        if !clientEnded {
            stopRequest(after: written?.futureResult)
        }
        downstream.writer.flush()
    }

    /// Passes an upstream reset (or the upstream connection's end) on to the client.
    private func resetDownstream(_ code: HTTP2ErrorCode) {
        endingSide = .upstream
        downstream.writer.write(.rstStream(code), streamID: downstreamStreamID, promise: nil)
        downstream.writer.flush()
        finish(endedBy: .upstream)
    }

    /// Marks the call over, stops both connections from routing frames to it, and cancels the upstream stream
    /// unless it completed (both sides sent END_STREAM: a RST_STREAM then would only count against the upstream's
    /// reset-flood limits). `side` is the side that ended it, recorded for replication streams unless an earlier
    /// event already named one (`endingSide`).
    private func finish(endedBy side: CallSide) {
        guard phase != .finished else { return }
        phase = .finished
        pendingRequestFrames = []
        listener.activeCalls.decrement()
        let now = NIODeadline.now()
        listener.metrics.callEnded(
            shard: metricsShard, method: method, status: finalStatus, failedInProxy: failedInProxy,
            seconds: Double((now - startTime).nanoseconds) / 1e9
        )
        if let replicationStream {
            listener.replicationStreams.close(replicationStream, endedBy: endingSide ?? side, now: now)
        }
        downstream.forget(downstreamStreamID)
        plugins?.end(grpcStatus: finalStatus)
        if let upstream {
            if !(requestEnded && upstreamEnded) {
                upstream.writer.write(.rstStream(.cancel), streamID: upstreamStreamID, promise: nil)
                upstream.writer.flush()
            }
            upstream.forget(upstreamStreamID)
        }
    }

    private func recordStatus(_ trailers: HPACKHeaders) {
        finalStatus = trailers.first(name: "grpc-status").flatMap { Int32($0) } ?? Int32(GRPCStatusCode.unknown.rawValue)
    }

    private func callMetadata(_ extra: Logger.Metadata) -> Logger.Metadata {
        extra.merging(["method": "\(method)", "stream": "\(Int(downstreamStreamID))"]) { first, _ in first }
    }

    private func tooLarge(length: Int, direction: String) -> GRPCStatus {
        GRPCStatus(
            .resourceExhausted,
            "\(direction) message of \(length) bytes exceeds the proxy's limit of \(listener.maxMessageBytes) bytes (limits.maxMessageBytes)"
        )
    }
}
