// EchoConnectionHandler: serves the `bench.Echo` gRPC service on one HTTP/2 connection, reading and writing HTTP/2
// frames directly (no per-stream child channels). Request DATA payloads are already gRPC-framed, so echoing them
// verbatim answers each message without parsing or re-framing it. Methods given a response file (`--response-file`)
// are answered with that file's message instead: once per request message, so one response for a unary call and
// one per message received for a stream, which lets the benchmark replay real Temporal traffic. When the
// connection closes it prints one summary line (calls served, RST_STREAM frames received) that scripts/bench reads
// to show what a proxy sends upstream. It owns per-stream echo state only; accepting connections and the HTTP/2
// codec belong to EchoServerCommand and NIOHTTP2Handler.

import NIOCore
import NIOHPACK
import NIOHTTP2

#if canImport(Glibc)
import Glibc
#endif

/// Answers `bench.Echo/Unary` and `bench.Echo/Stream` calls, and those of the methods with a response file, on one
/// connection.
final class EchoConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// What an open request stream is waiting for.
    private enum EchoCall {
        /// A unary call: its request bytes are held until the request ends, then answered in one go, as a real
        /// unary handler would (so a proxy sees the whole request before any of the response).
        case unary(requestBytes: ByteBuffer?)
        /// A bidirectional call whose response headers are sent: every DATA payload is echoed as it arrives.
        case stream
        /// A call of a method with a response file: every complete request message (counted as DATA arrives, however
        /// it is split) is answered with `response`, a whole gRPC message; the response headers go out with the
        /// first answer.
        case answering(requests: GRPCMessageCounter, response: ByteBuffer, headersSent: Bool)
    }

    private var calls: [HTTP2StreamID: EchoCall] = [:]
    private var hasUnflushedWrites = false
    private var callsServed = 0
    private let resetCounter: InboundResetCounter
    /// The response message (a whole gRPC message) of each method path that is answered from a file.
    private let responses: [String: ByteBuffer]

    /// A handler for a connection whose inbound bytes `resetCounter` watches, answering the paths of `responses`
    /// with their message.
    init(resetCounter: InboundResetCounter, responses: [String: ByteBuffer] = [:]) {
        self.resetCounter = resetCounter
        self.responses = responses
    }

    func channelInactive(context: ChannelHandlerContext) {
        let peer = context.remoteAddress.map { "\($0)" } ?? "unknown peer"
        print("connection closed: \(peer), \(self.callsServed) calls, \(self.resetCounter.resetsReceived) RST_STREAM received")
        // Read line by line through a pipe by scripts/bench, where stdout is block-buffered.
        fflush(nil)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            self.received(headers: headers, on: frame.streamID, context: context)
        case .data(let data):
            self.received(data: data, on: frame.streamID, context: context)
        default:
            // SETTINGS, PING, WINDOW_UPDATE and friends are handled by NIOHTTP2Handler.
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.hasUnflushedWrites {
            self.hasUnflushedWrites = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let windowEvent = event as? NIOHTTP2WindowUpdatedEvent,
            let update = BenchHTTP2Tuning.windowUpdate(after: windowEvent)
        {
            self.write(update, context: context)
        } else if let closed = event as? StreamClosedEvent {
            // A client that resets a call leaves nothing to answer.
            self.calls.removeValue(forKey: closed.streamID)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A stream error only ends that stream (NIOHTTP2Handler has already reset it); anything else ends the
        // connection.
        if error is NIOHTTP2Errors.StreamError {
            return
        }
        context.close(promise: nil)
    }

    private func received(headers: HTTP2Frame.FramePayload.Headers, on streamID: HTTP2StreamID, context: ChannelHandlerContext) {
        guard self.calls[streamID] == nil else {
            // Request trailers: the request half of a known call is over.
            if headers.endStream {
                self.finish(streamID, context: context)
            }
            return
        }
        guard BenchGRPCHeaders.isGRPCRequest(headers.headers) else {
            self.write(streamID, .headers(.init(headers: BenchGRPCHeaders.notGRPC, endStream: true)), context: context)
            return
        }
        let path = headers.headers.first(name: ":path") ?? ""
        self.callsServed += 1
        if let response = self.responses[path] {
            self.calls[streamID] = .answering(requests: GRPCMessageCounter(), response: response, headersSent: false)
            if headers.endStream {
                self.finish(streamID, context: context)
            }
            return
        }
        switch BenchEchoMethod(rawValue: path) {
        case .unary:
            self.calls[streamID] = .unary(requestBytes: nil)
        case .stream:
            self.calls[streamID] = .stream
            self.write(streamID, .headers(.init(headers: BenchGRPCHeaders.responseStart)), context: context)
        case nil:
            let rejection = BenchGRPCHeaders.unimplemented(path: path)
            self.write(streamID, .headers(.init(headers: rejection, endStream: true)), context: context)
            return
        }
        if headers.endStream {
            self.finish(streamID, context: context)
        }
    }

    private func received(data: HTTP2Frame.FramePayload.Data, on streamID: HTTP2StreamID, context: ChannelHandlerContext) {
        // Inbound DATA from NIOHTTP2Handler always carries a ByteBuffer.
        guard case .byteBuffer(let bytes) = data.data, let call = self.calls[streamID] else {
            return
        }
        switch call {
        case .stream:
            if bytes.readableBytes > 0 {
                self.write(streamID, .data(.init(data: .byteBuffer(bytes))), context: context)
            }
        case .unary(requestBytes: nil):
            self.calls[streamID] = .unary(requestBytes: bytes)
        case .unary(requestBytes: var held?):
            // A request split across DATA frames: only this rare case copies.
            var appendedBytes = bytes
            held.writeBuffer(&appendedBytes)
            self.calls[streamID] = .unary(requestBytes: held)
        case .answering(var requests, let response, var headersSent):
            let answers = requests.consume(bytes)
            if answers > 0 && !headersSent {
                headersSent = true
                self.write(streamID, .headers(.init(headers: BenchGRPCHeaders.responseStart)), context: context)
            }
            for _ in 0..<answers {
                self.write(streamID, .data(.init(data: .byteBuffer(response))), context: context)
            }
            self.calls[streamID] = .answering(requests: requests, response: response, headersSent: headersSent)
        }
        if data.endStream {
            self.finish(streamID, context: context)
        }
    }

    /// Completes the response of a call whose request half has ended.
    private func finish(_ streamID: HTTP2StreamID, context: ChannelHandlerContext) {
        guard let call = self.calls.removeValue(forKey: streamID) else {
            return
        }
        switch call {
        case .unary(let requestBytes):
            self.write(streamID, .headers(.init(headers: BenchGRPCHeaders.responseStart)), context: context)
            if let requestBytes {
                self.write(streamID, .data(.init(data: .byteBuffer(requestBytes))), context: context)
            }
        case .answering(requests: _, response: _, headersSent: false):
            // No request message arrived: nothing was answered, and the status alone ends the call.
            let status = HTTP2Frame.FramePayload.Headers(headers: BenchGRPCHeaders.okTrailersOnly, endStream: true)
            self.write(streamID, .headers(status), context: context)
            return
        case .stream, .answering:
            break
        }
        self.write(streamID, .headers(.init(headers: BenchGRPCHeaders.okTrailers, endStream: true)), context: context)
    }

    private func write(_ streamID: HTTP2StreamID, _ payload: HTTP2Frame.FramePayload, context: ChannelHandlerContext) {
        self.write(HTTP2Frame(streamID: streamID, payload: payload), context: context)
    }

    private func write(_ frame: HTTP2Frame, context: ChannelHandlerContext) {
        context.write(self.wrapOutboundOut(frame), promise: nil)
        self.hasUnflushedWrites = true
    }
}
