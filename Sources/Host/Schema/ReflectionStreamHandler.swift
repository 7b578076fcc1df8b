// The I/O of one schema pull: a single HTTP/2 client connection carrying the `ServerReflectionInfo` stream.
//
// Owns `ReflectionStreamHandler`, which sits behind the client `NIOHTTP2Handler` (frames, no stream multiplexer),
// opens the bidi stream, frames requests as gRPC messages, reassembles response messages from DATA frames, hands
// them to `ReflectionPull` and writes what it asks for. When v1 answers UNIMPLEMENTED it tries v1alpha on the next
// stream of the same connection. It settles the pull's future exactly once (schema, error, or timeout) and then
// closes the connection. Confined to its event loop.

import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP2

final class ReflectionStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// The reflection services to try, in order; both speak the same messages.
    static let serviceVersions = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]
    /// No reflection answer comes near this; a larger length prefix means the peer is not what it claims.
    static let maxMessageBytes = 64 << 20
    /// Receive windows large enough that a Temporal schema (about 1 MiB) arrives without waiting for updates.
    static let initialSettings: HTTP2Settings = [
        HTTP2Setting(parameter: .initialWindowSize, value: 4 << 20),
        HTTP2Setting(parameter: .maxHeaderListSize, value: 64 << 10),
    ]

    /// Completes once: the schema, or why there is none.
    let result: EventLoopPromise<TemporalSchema>
    private let target: HostAndPort
    private let scheme: String
    private let deadline: NIODeadline
    private let timeoutSeconds: Double
    private var context: ChannelHandlerContext?
    private var timeoutTask: Scheduled<Void>?
    private var settled = false
    private var connected = false

    private var pull: ReflectionPull
    private var versionIndex = 0
    private var streamID = HTTP2StreamID(1)
    private var sawResponseHeaders = false
    private var received: ByteBuffer

    /// A handler for one pull from `target`; call on `eventLoop`. The pull fails at `deadline` if not done.
    init(target: HostAndPort, scheme: String, timeout: TimeAmount, eventLoop: EventLoop) {
        self.target = target
        self.scheme = scheme
        // The loop's clock, not the wall clock: the same as the timer's (virtual in tests).
        self.deadline = eventLoop.now + timeout
        self.timeoutSeconds = Double(timeout.nanoseconds) / 1e9
        self.result = eventLoop.makePromise()
        self.pull = ReflectionPull(address: target.description)
        self.received = ByteBuffer()
        timeoutTask = eventLoop.scheduleTask(deadline: deadline) { [self] in
            // Still connecting: the same words as the connect timeout, which this one can beat by a hair.
            let milliseconds = timeout.nanoseconds / 1_000_000
            settle(.failure(connected
                ? .timedOut(address: target.description, seconds: timeoutSeconds, progress: pull.progress)
                : .unreachable(address: target.description, reason: "connect timed out after \(milliseconds) ms")))
        }
    }

    /// The TCP connection could not be made.
    func connectFailed(_ error: Error) {
        settle(.failure(.unreachable(address: target.description, reason: NetworkErrorDescription.describe(error))))
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        // The overall timeout may have passed while connecting.
        guard !settled else {
            context.close(promise: nil)
            return
        }
        connected = true
        // The connection window starts at 64 KiB whatever SETTINGS say; raise it once to match the stream window.
        let raise = (4 << 20) - 65_535
        write(.windowUpdate(windowSizeIncrement: raise), on: .rootStream, context: context)
        openStream(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        settle(.failure(.protocolViolation(
            address: target.description,
            detail: "the connection closed before the schema was complete (\(pull.progress))"
        )))
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        // Frames of an abandoned v1 stream may still arrive after the switch to v1alpha.
        guard frame.streamID == streamID, !settled else { return }
        switch frame.payload {
        case .headers(let headers):
            receivedHeaders(headers, context: context)
        case .data(let data):
            receivedData(data, context: context)
        case .rstStream(let code):
            settle(.failure(.protocolViolation(
                address: target.description, detail: "the server reset the reflection stream (\(code))"
            )))
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Errors about one stream (a late frame for the abandoned v1 stream) leave the connection usable.
        if error is NIOHTTP2Errors.StreamError { return }
        let hint = scheme == "http" ? " (is \(target) a gRPC server over plain HTTP/2?)" : ""
        settle(.failure(.protocolViolation(
            address: target.description,
            detail: "\(NetworkErrorDescription.describe(error))\(hint)"
        )))
    }

    // MARK: The stream

    private func openStream(context: ChannelHandlerContext) {
        let service = Self.serviceVersions[versionIndex]
        let remainingMilliseconds = max(1, (deadline - context.eventLoop.now).nanoseconds / 1_000_000)
        let headers: HPACKHeaders = [
            ":method": "POST",
            ":scheme": scheme,
            ":path": "/\(service)/ServerReflectionInfo",
            ":authority": target.description,
            "content-type": "application/grpc",
            "te": "trailers",
            "grpc-timeout": "\(min(remainingMilliseconds, 99_999_999))m",
            "user-agent": "s2s-proxy-schema",
        ]
        write(.headers(.init(headers: headers)), on: streamID, context: context)
        send(pull.start(), context: context)
    }

    private func receivedHeaders(_ payload: HTTP2Frame.FramePayload.Headers, context: ChannelHandlerContext) {
        let headers = payload.headers
        if !sawResponseHeaders {
            sawResponseHeaders = true
            if let status = headers.first(name: ":status"), status != "200" {
                settle(.failure(.protocolViolation(
                    address: target.description,
                    detail: "HTTP status \(status) instead of 200 (is \(target) a gRPC server?)"
                )))
                return
            }
        }
        if payload.endStream {
            streamEnded(trailers: headers, context: context)
        }
    }

    private func streamEnded(trailers: HPACKHeaders, context: ChannelHandlerContext) {
        guard let statusText = trailers.first(name: "grpc-status"), let code = Int(statusText) else {
            settle(.failure(.protocolViolation(
                address: target.description, detail: "the reflection stream ended without a grpc-status"
            )))
            return
        }
        let message = trailers.first(name: "grpc-message").map { $0.removingPercentEncoding ?? $0 } ?? ""
        switch GRPCStatusCode(rawValue: code) {
        case .ok:
            settle(.failure(.protocolViolation(
                address: target.description,
                detail: "the server ended the reflection stream before the schema was complete (\(pull.progress))"
            )))
        case .unimplemented where versionIndex + 1 < Self.serviceVersions.count:
            versionIndex += 1
            streamID = HTTP2StreamID(Int32(streamID) + 2)
            pull = ReflectionPull(address: target.description)
            sawResponseHeaders = false
            received.clear()
            openStream(context: context)
        case .unimplemented:
            settle(.failure(.reflectionUnavailable(address: target.description)))
        case let status:
            settle(.failure(.callFailed(
                address: target.description, status: status.map { "\($0)" } ?? "status \(code)", message: message
            )))
        }
    }

    private func receivedData(_ payload: HTTP2Frame.FramePayload.Data, context: ChannelHandlerContext) {
        guard case .byteBuffer(var bytes) = payload.data else { return }
        let consumed = HTTP2FlowControlledLength.of(payload)
        if consumed > 0 {
            write(.windowUpdate(windowSizeIncrement: consumed), on: .rootStream, context: context)
            if !payload.endStream {
                write(.windowUpdate(windowSizeIncrement: consumed), on: streamID, context: context)
            }
        }
        received.writeBuffer(&bytes)
        while !settled, let message = nextMessage() {
            switch pull.receive(message: message) {
            case .send(let requests):
                send(requests, context: context)
            case .finished(let schema):
                settle(.success(schema))
            case .failed(let error):
                settle(.failure(error))
            }
        }
        received.discardReadBytes()
        if payload.endStream, !settled {
            settle(.failure(.protocolViolation(
                address: target.description, detail: "the reflection stream ended without trailers"
            )))
        }
        context.flush()
    }

    /// The next complete gRPC message of the response, if one has fully arrived.
    private func nextMessage() -> [UInt8]? {
        guard let flag = received.getInteger(at: received.readerIndex, as: UInt8.self),
              let length = received.getInteger(at: received.readerIndex + 1, as: UInt32.self) else { return nil }
        guard flag == 0 else {
            settle(.failure(.protocolViolation(
                address: target.description, detail: "the server sent a compressed message, which was not offered"
            )))
            return nil
        }
        guard Int(length) <= Self.maxMessageBytes else {
            settle(.failure(.protocolViolation(
                address: target.description,
                detail: "a reflection message of \(length) bytes is larger than the "
                    + "\(Self.maxMessageBytes >> 20) MiB accepted"
            )))
            return nil
        }
        guard received.readableBytes >= 5 + Int(length) else { return nil }
        received.moveReaderIndex(forwardBy: 5)
        return received.readBytes(length: Int(length))
    }

    private func send(_ requests: [ReflectionRequest], context: ChannelHandlerContext) {
        guard !requests.isEmpty else { return }
        var buffer = context.channel.allocator.buffer(capacity: requests.count * 64)
        for request in requests {
            let bytes = request.encoded()
            buffer.writeInteger(UInt8(0))
            buffer.writeInteger(UInt32(bytes.count))
            buffer.writeBytes(bytes)
        }
        write(.data(.init(data: .byteBuffer(buffer))), on: streamID, context: context)
        context.flush()
    }

    private func write(_ payload: HTTP2Frame.FramePayload, on stream: HTTP2StreamID, context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: payload)), promise: nil)
    }

    // MARK: The end

    /// Completes the pull's future the first time, then closes the connection.
    private func settle(_ outcome: Result<TemporalSchema, TemporalSchemaError>) {
        guard !settled else { return }
        settled = true
        timeoutTask?.cancel()
        timeoutTask = nil
        switch outcome {
        case .success(let schema): result.succeed(schema)
        case .failure(let error): result.fail(error)
        }
        context?.close(promise: nil)
    }
}
