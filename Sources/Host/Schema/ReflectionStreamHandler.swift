// The I/O of one schema pull: a single HTTP/2 client connection carrying the `ServerReflectionInfo` stream.
//
// `ReflectionStreamHandler` is the owner of the connection's HTTP/2 engine (`H2ConnectionHandler`, client role, the
// same engine the proxy forwards calls with; it sits in the pipeline before this handler): it opens the bidi stream,
// frames requests as gRPC messages, reassembles response messages from DATA, hands them to `ReflectionPull` and
// writes what it asks for, releasing the bytes it consumed so the server may send more. When v1 answers
// UNIMPLEMENTED it tries v1alpha on the next stream of the same connection. It settles the pull's future exactly
// once (schema, error, or timeout) and then closes the connection. Confined to its event loop.

import Foundation
import HTTP2Forwarding
import NIOCore
import NIOHPACK

final class ReflectionStreamHandler: ChannelInboundHandler, H2ConnectionDelegate {
    /// Nothing arrives through the pipeline: the engine calls this handler directly.
    typealias InboundIn = Never

    /// The reflection services to try, in order; both speak the same messages.
    static let serviceVersions = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]
    /// No reflection answer comes near this; a larger length prefix means the peer is not what it claims.
    static let maxMessageBytes = 64 << 20
    /// Receive windows large enough that a Temporal schema (about 1 MiB) arrives without waiting for updates.
    static var engineConfiguration: H2ConnectionHandler.Configuration {
        var configuration = H2ConnectionHandler.Configuration(role: .client)
        configuration.connection.initialWindowSize = 4 << 20
        configuration.connection.connectionWindowSize = 4 << 20
        configuration.connection.maxHeaderListSize = 64 << 10
        return configuration
    }

    /// The engine under this handler; add it to the pipeline just before it.
    let engine = H2ConnectionHandler(configuration: ReflectionStreamHandler.engineConfiguration)

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
    /// The stream of the current version's call; nil before it is opened.
    private var streamID: H2StreamID?
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
        engine.delegate = self
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        engine.delegate = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        // The overall timeout may have passed while connecting.
        guard !settled else {
            context.close(promise: nil)
            return
        }
        connected = true
        // (The engine has written its preface and opened the connection window in its own channelActive.)
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

    // MARK: What the engine hands over

    func h2Headers(_ headers: HPACKHeaders, stream: H2StreamID, endStream: Bool, isNewStream: Bool) {
        // Frames of an abandoned v1 stream may still arrive after the switch to v1alpha.
        guard stream == streamID, !settled, let context else { return }
        receivedHeaders(headers, endStream: endStream, context: context)
    }

    func h2Data(_ payload: ByteBuffer, stream: H2StreamID, endStream: Bool, flowControlledLength: Int) {
        guard stream == streamID, !settled, let context else { return }
        receivedData(payload, endStream: endStream, flowControlledLength: flowControlledLength, context: context)
    }

    func h2StreamReset(_ stream: H2StreamID, code: H2ErrorCode, byPeer: Bool) {
        guard stream == streamID else { return }
        settle(.failure(.protocolViolation(
            address: target.description,
            detail: byPeer ? "the server reset the reflection stream (\(code))"
                : "the server's answer broke HTTP/2 (\(engine.lastMalformedReason ?? "\(code)"))"
        )))
    }

    func h2StreamClosed(_ stream: H2StreamID) {}
    func h2GoAway(lastStream: H2StreamID, code: H2ErrorCode, debugData: ByteBuffer) {}
    func h2PeerSettingsChanged() {}
    func h2PingAnswered(opaque: UInt64) {}

    func h2ConnectionError(_ violation: H2ProtocolViolation) {
        let hint = scheme == "http" ? " (is \(target) a gRPC server over plain HTTP/2?)" : ""
        settle(.failure(.protocolViolation(address: target.description, detail: "\(violation)\(hint)")))
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // What arrives here failed below HTTP/2 (a reset connection, TLS); protocol errors are the engine's.
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
        guard let opened = engine.openStream(headers: headers, endStream: false) else {
            settle(.failure(.protocolViolation(
                address: target.description, detail: "the server accepts no stream (GOAWAY or a stream limit of 0)"
            )))
            return
        }
        streamID = opened
        send(pull.start(), context: context)
    }

    private func receivedHeaders(_ headers: HPACKHeaders, endStream: Bool, context: ChannelHandlerContext) {
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
        if endStream {
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
            // This side never ended the abandoned stream's requests: cancel it, then ask again on a new one.
            if let abandoned = streamID {
                streamID = nil
                engine.resetStream(abandoned, code: .cancel)
            }
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

    private func receivedData(
        _ payload: ByteBuffer, endStream: Bool, flowControlledLength: Int, context: ChannelHandlerContext
    ) {
        // The engine gave the connection window back as the bytes arrived; the stream's goes back once they are
        // taken in here (the messages are bounded by `maxMessageBytes`).
        if let streamID, !endStream, flowControlledLength > 0 {
            engine.release(stream: streamID, bytes: flowControlledLength)
        }
        var bytes = payload
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
        if endStream, !settled {
            settle(.failure(.protocolViolation(
                address: target.description, detail: "the reflection stream ended without trailers"
            )))
        }
        engine.flush()
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
            buffer.writeGRPCPrefix(length: bytes.count)
            buffer.writeBytes(bytes)
        }
        guard let streamID else { return }
        engine.sendData(buffer, stream: streamID, endStream: false, promise: nil)
        engine.flush()
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
