// One gRPC call forwarded from a downstream HTTP/2 stream to an upstream HTTP/2 stream, and its response back.
//
// The call is generic: it never parses messages, only follows their length prefixes to enforce the size limit, and
// forwards DATA frames as they are (no copy). Both stream channels run with auto-read off, and each side is read only
// while the other side is writable; since NIO's HTTP/2 streams send WINDOW_UPDATE only for bytes the pipeline has
// read, a slow reader on either end throttles the writer on the other, and at most one stream window per direction
// is ever held here.
//
// Ending rules: the upstream's final HEADERS (trailers) ends the call; a reset on one side resets the other with the
// same code; an upstream connection that dies mid-call, an unreachable upstream and an oversized message end the
// call with a gRPC status the proxy writes itself.
//
// Confined to the event loop of the downstream stream, which is also the loop of the upstream pool it uses.

import Logging
import NIOCore
import NIOHPACK
import NIOHTTP2

final class ProxyCall {
    private enum Phase {
        case awaitingHeaders
        case connecting
        case open
        case finished
    }

    private let listener: ListenerContext
    private var logger: Logger
    private var phase = Phase.awaitingHeaders

    private var downstream: ChannelHandlerContext?
    private var upstream: ChannelHandlerContext?
    /// Request frames that arrived while the upstream stream was being opened (at most one stream window).
    private var pendingRequestFrames: [HTTP2Frame.FramePayload] = []

    private var requestMessages: GRPCMessageBoundaryTracker
    private var responseMessages: GRPCMessageBoundaryTracker
    /// The client half-closed its side (END_STREAM seen and forwarded).
    private var requestEnded = false
    private var responseHeadersSent = false
    /// The final HEADERS (or END_STREAM) went to the client.
    private var responseEnded = false
    /// Reset code the upstream sent, if it reset the stream.
    private var upstreamResetCode: HTTP2ErrorCode?
    private var closingUpstreamOurselves = false
    private var method = ""
    private var finalStatus = "unknown"

    init(listener: ListenerContext, logger: Logger) {
        self.listener = listener
        self.logger = logger
        self.requestMessages = GRPCMessageBoundaryTracker(maxMessageBytes: listener.maxMessageBytes)
        self.responseMessages = GRPCMessageBoundaryTracker(maxMessageBytes: listener.maxMessageBytes)
    }

    // MARK: Downstream events

    func downstreamAdded(_ context: ChannelHandlerContext) {
        downstream = context
        listener.activeCalls.increment()
    }

    func downstreamActive() {
        downstream?.read()
    }

    func downstreamRead(_ payload: HTTP2Frame.FramePayload) {
        switch phase {
        case .awaitingHeaders:
            guard case .headers(let headers) = payload else {
                resetDownstream(.protocolError)
                return
            }
            start(headers)
        case .connecting:
            pendingRequestFrames.append(payload)
        case .open:
            forwardRequestFrame(payload)
        case .finished:
            break
        }
    }

    func downstreamReadComplete() {
        guard phase == .open else { return }
        upstream?.flush()
        readDownstreamIfPossible()
    }

    func downstreamWritabilityChanged() {
        readUpstreamIfPossible()
    }

    func downstreamInactive() {
        listener.activeCalls.decrement()
        downstream = nil
        if phase != .finished {
            // The client went away or reset the stream before the call ended: cancel the upstream side too.
            logger.debug("call cancelled by client", metadata: ["method": "\(method)"])
            finalStatus = "cancelled by client"
            finish()
        }
    }

    // MARK: Upstream events

    func upstreamAdded(_ context: ChannelHandlerContext) {
        upstream = context
    }

    func upstreamRead(_ payload: HTTP2Frame.FramePayload) {
        guard phase == .open, let downstream else { return }
        switch payload {
        case .headers(let headers):
            var block = headers
            block.headers = HeaderFilter.forwardable(headers.headers)
            if responseHeadersSent {
                // Trailers: the call's status.
                block.endStream = true
            } else {
                responseHeadersSent = true
            }
            if block.endStream {
                responseEnded = true
                finalStatus = block.headers.first(name: "grpc-status").map { "grpc-status \($0)" } ?? "no grpc-status"
            }
            downstream.write(NIOAny(HTTP2Frame.FramePayload.headers(block)), promise: nil)
        case .data(let data):
            if case .byteBuffer(let bytes) = data.data,
               case .messageTooLarge(let length) = responseMessages.consume(bytes) {
                failCall(tooLarge(length: length, direction: "response"))
                return
            }
            if data.endStream {
                responseEnded = true
                finalStatus = "ended without trailers"
            }
            downstream.write(NIOAny(payload), promise: nil)
        default:
            break
        }
        if responseEnded {
            finishAfterResponse()
        }
    }

    func upstreamReadComplete() {
        downstream?.flush()
        readUpstreamIfPossible()
    }

    func upstreamWritabilityChanged() {
        readDownstreamIfPossible()
    }

    func upstreamError(_ error: Error) {
        if let closed = error as? NIOHTTP2Errors.StreamClosed {
            upstreamResetCode = closed.errorCode
        } else {
            logger.debug("upstream stream error", metadata: ["method": "\(method)", "error": "\(error)"])
        }
    }

    func upstreamInactive() {
        upstream = nil
        guard phase != .finished, !closingUpstreamOurselves else { return }
        if let code = upstreamResetCode {
            logger.debug("upstream reset the stream", metadata: ["method": "\(method)", "code": "\(code)"])
            finalStatus = "reset by upstream (\(code))"
            resetDownstream(code)
        } else {
            failCall(GRPCStatus(.unavailable, "upstream \(listener.upstream.target) closed the stream before the call ended"))
        }
    }

    // MARK: Call flow

    private func start(_ request: HTTP2Frame.FramePayload.Headers) {
        let headers = request.headers
        method = headers.first(name: ":path") ?? ""
        logger[metadataKey: "method"] = "\(method)"
        let contentType = headers.first(name: "content-type") ?? ""
        guard headers.first(name: ":method") == "POST", contentType.hasPrefix("application/grpc") else {
            rejectNonGRPC(contentType: contentType)
            return
        }
        var forwarded = request
        forwarded.headers = HeaderFilter.forwardable(headers)
        if request.endStream {
            requestEnded = true
        }
        phase = .connecting
        listener.upstream.openStream(on: downstream!.eventLoop) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.syncOptions!.setOption(ChannelOptions.autoRead, value: false)
                try channel.pipeline.syncOperations.addHandler(UpstreamStreamHandler(call: self))
            }
        }.whenComplete { result in
            switch result {
            case .success(let channel):
                guard self.phase == .connecting else {
                    // The client left while the upstream stream was being opened.
                    self.closingUpstreamOurselves = true
                    channel.close(promise: nil)
                    return
                }
                self.phase = .open
                self.upstream?.write(NIOAny(HTTP2Frame.FramePayload.headers(forwarded)), promise: nil)
                let pending = self.pendingRequestFrames
                self.pendingRequestFrames = []
                for frame in pending where self.phase == .open {
                    self.forwardRequestFrame(frame)
                }
                self.upstream?.flush()
                self.upstream?.read()
                self.readDownstreamIfPossible()
            case .failure(let error):
                let message: String
                if let unavailable = error as? UpstreamUnavailableError {
                    message = unavailable.description
                } else {
                    message = "upstream \(self.listener.upstream.target) is unavailable: \(error)"
                }
                self.failCall(GRPCStatus(.unavailable, message))
            }
        }
    }

    private func forwardRequestFrame(_ payload: HTTP2Frame.FramePayload) {
        guard let upstream else { return }
        switch payload {
        case .data(let data):
            if case .byteBuffer(let bytes) = data.data,
               case .messageTooLarge(let length) = requestMessages.consume(bytes) {
                failCall(tooLarge(length: length, direction: "request"))
                return
            }
            if data.endStream { requestEnded = true }
            upstream.write(NIOAny(payload), promise: nil)
        case .headers(var block):
            // Request trailers are rare in gRPC but legal HTTP/2; they end the request side.
            block.headers = HeaderFilter.forwardable(block.headers)
            block.endStream = true
            requestEnded = true
            upstream.write(NIOAny(HTTP2Frame.FramePayload.headers(block)), promise: nil)
        default:
            break
        }
    }

    private func readDownstreamIfPossible() {
        guard phase == .open, !requestEnded, let downstream, let upstream, upstream.channel.isWritable else { return }
        downstream.read()
    }

    private func readUpstreamIfPossible() {
        guard phase == .open, !responseEnded, let downstream, let upstream, downstream.channel.isWritable else { return }
        upstream.read()
    }

    /// The upstream's final frame is on its way to the client. Anything the client still sends is moot.
    private func finishAfterResponse() {
        logger.debug("call finished", metadata: ["status": "\(finalStatus)"])
        // Finish before flushing: the flush can close the stream channel synchronously.
        let downstream = self.downstream
        let requestEnded = self.requestEnded
        finish()
        guard let downstream else { return }
        downstream.flush()
        if !requestEnded {
            // Like gRPC servers: after the status, reset whatever is left of the request side.
            let channel = downstream.channel
            downstream.writeAndFlush(NIOAny(HTTP2Frame.FramePayload.rstStream(.noError))).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }

    /// Ends the call with a status written by the proxy itself.
    private func failCall(_ status: GRPCStatus) {
        guard phase != .finished else { return }
        logger.info("call failed in proxy", metadata: ["status": "\(status.code)", "reason": "\(status.message)"])
        finalStatus = "\(status.code)"
        let downstream = self.downstream
        let trailersOnly = !responseHeadersSent
        let alreadyEnded = responseEnded
        let requestEnded = self.requestEnded
        responseHeadersSent = true
        responseEnded = true
        finish()
        guard let downstream, !alreadyEnded else { return }
        let trailers = HTTP2Frame.FramePayload.Headers(headers: status.trailers(trailersOnly: trailersOnly), endStream: true)
        let channel = downstream.channel
        downstream.writeAndFlush(NIOAny(HTTP2Frame.FramePayload.headers(trailers))).whenComplete { _ in
            if !requestEnded {
                channel.close(promise: nil)
            }
        }
    }

    private func rejectNonGRPC(contentType: String) {
        logger.info("rejected non-gRPC request", metadata: ["content-type": "\(contentType)"])
        var headers = HPACKHeaders()
        headers.add(name: ":status", value: "415")
        headers.add(name: "grpc-status", value: String(GRPCStatusCode.internal.rawValue))
        headers.add(name: "grpc-message", value: GRPCStatus.percentEncode("s2s-proxy forwards gRPC only (content-type application/grpc)"))
        responseHeadersSent = true
        responseEnded = true
        writeFinalFrame(.headers(.init(headers: headers, endStream: true)))
    }

    private func resetDownstream(_ code: HTTP2ErrorCode) {
        writeFinalFrame(.rstStream(code))
    }

    /// Finishes the call, then sends `payload` as the downstream stream's last frame and closes it.
    private func writeFinalFrame(_ payload: HTTP2Frame.FramePayload) {
        let downstream = self.downstream
        finish()
        guard let downstream else { return }
        let channel = downstream.channel
        downstream.writeAndFlush(NIOAny(payload)).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    /// Marks the call over and releases the upstream stream if it is still open.
    private func finish() {
        let wasConnecting = phase == .connecting
        phase = .finished
        pendingRequestFrames = []
        if let upstream, !wasConnecting {
            closingUpstreamOurselves = true
            // Closing an open stream channel sends RST_STREAM(CANCEL); a fully closed one just goes away.
            upstream.close(promise: nil)
        }
    }

    private func tooLarge(length: Int, direction: String) -> GRPCStatus {
        GRPCStatus(
            .resourceExhausted,
            "\(direction) message of \(length) bytes exceeds the proxy's limit of \(listener.maxMessageBytes) bytes (limits.maxMessageBytes)"
        )
    }
}
