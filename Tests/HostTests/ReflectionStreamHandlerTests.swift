// The reflection stream frame by frame: the handler and its HTTP/2 engine on one EmbeddedChannel, a NIOHTTP2 server
// on another (its frames recorded and written by the test), bytes moved between them by the test. The gRPC request
// it opens, messages split across DATA frames, the v1alpha fallback, the overall timeout, and how each kind of
// server answer ends the pull.

import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import XCTest

@testable import Host

/// Records the frames the server side reads. Unchecked Sendable: one EmbeddedEventLoop, one thread.
private final class FrameRecorder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame
    var frames: [HTTP2Frame] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        frames.append(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {}
}

final class ReflectionStreamHandlerTests: XCTestCase {
    typealias Support = SchemaTestSupport

    private var loop: EmbeddedEventLoop!
    private var channel: EmbeddedChannel!
    private var server: EmbeddedChannel!
    private let recorder = FrameRecorder()
    private var handler: ReflectionStreamHandler!
    private var outcome: Result<TemporalSchema, Error>?

    override func setUpWithError() throws {
        loop = EmbeddedEventLoop()
        handler = ReflectionStreamHandler(
            target: HostAndPort(host: "127.0.0.1", port: 7233), scheme: "http", timeout: .seconds(30), eventLoop: loop
        )
        handler.result.futureResult.whenComplete { self.outcome = $0 }
        channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandler(handler.engine)
        try channel.pipeline.syncOperations.addHandler(handler)
        server = EmbeddedChannel(loop: loop)
        try server.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server))
        try server.pipeline.syncOperations.addHandler(recorder)
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7233)).wait()
        try exchange()
    }

    override func tearDownWithError() throws {
        _ = try? channel.finish(acceptAlreadyClosed: true)
        _ = try? server.finish(acceptAlreadyClosed: true)
    }

    // MARK: Helpers

    /// Moves bytes both ways until nothing moves.
    private func exchange() throws {
        for _ in 0..<100 {
            var moved = false
            while let bytes = try channel.readOutbound(as: ByteBuffer.self) {
                try server.writeInbound(bytes)
                moved = true
            }
            while let bytes = try server.readOutbound(as: ByteBuffer.self) {
                guard channel.isActive else { continue }
                try channel.writeInbound(bytes)
                channel.pipeline.fireChannelReadComplete()
                moved = true
            }
            if !moved { return }
        }
        XCTFail("the channels never went quiet")
    }

    /// The frames the server read since the last call.
    private func sentFrames() throws -> [HTTP2Frame] {
        try exchange()
        defer { recorder.frames = [] }
        return recorder.frames
    }

    /// The requests in the DATA frames among `frames`, decoded back to their bytes.
    private func requests(in frames: [HTTP2Frame]) -> [[UInt8]] {
        var messages: [[UInt8]] = []
        for frame in frames {
            guard case .data(let data) = frame.payload, case .byteBuffer(var buffer) = data.data else { continue }
            while let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self) {
                buffer.moveReaderIndex(forwardBy: 5)
                messages.append(buffer.readBytes(length: Int(length))!)
            }
        }
        return messages
    }

    private func path(in frames: [HTTP2Frame], stream: Int) -> String? {
        for frame in frames where frame.streamID == HTTP2StreamID(stream) {
            if case .headers(let headers) = frame.payload { return headers.headers.first(name: ":path") }
        }
        return nil
    }

    /// The server sends `payload` on `stream`.
    private func receive(_ payload: HTTP2Frame.FramePayload, stream: Int) throws {
        try server.writeOutbound(HTTP2Frame(streamID: HTTP2StreamID(stream), payload: payload))
        try exchange()
    }

    private func receiveResponseHeaders(stream: Int = 1) throws {
        try receive(.headers(.init(headers: [":status": "200", "content-type": "application/grpc"])), stream: stream)
    }

    private func receiveStatus(_ code: Int, message: String? = nil, trailersOnly: Bool, stream: Int = 1) throws {
        var headers: HPACKHeaders = trailersOnly ? [":status": "200", "content-type": "application/grpc"] : [:]
        headers.add(name: "grpc-status", value: "\(code)")
        if let message { headers.add(name: "grpc-message", value: message) }
        try receive(.headers(.init(headers: headers, endStream: true)), stream: stream)
    }

    /// `message` with its gRPC prefix, delivered in DATA frames cut at `cuts`.
    private func receiveMessage(_ message: [UInt8], cutAt cuts: [Int] = [], stream: Int = 1) throws {
        let framed = [0] + withUnsafeBytes(of: UInt32(message.count).bigEndian, Array.init) + message
        var start = 0
        for end in cuts + [framed.count] {
            let buffer = ByteBuffer(bytes: framed[start..<end])
            try receive(.data(.init(data: .byteBuffer(buffer))), stream: stream)
            start = end
        }
    }

    private var failureDetail: String {
        guard case .protocolViolation(_, let detail) = failure else { return "\(String(describing: outcome))" }
        return detail
    }

    private var failure: TemporalSchemaError? {
        guard case .failure(let error) = outcome else { return nil }
        return error as? TemporalSchemaError
    }

    // MARK: Opening

    func testOpensTheV1StreamAsAGRPCCallAndAsksForTheServiceList() throws {
        let frames = try sentFrames()
        guard case .headers(let headers) = frames.first(where: { $0.streamID == 1 })?.payload else {
            return XCTFail("no HEADERS on stream 1: \(frames)")
        }
        XCTAssertEqual(headers.headers.first(name: ":path"), "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
        XCTAssertEqual(headers.headers.first(name: ":method"), "POST")
        XCTAssertEqual(headers.headers.first(name: ":scheme"), "http")
        XCTAssertEqual(headers.headers.first(name: ":authority"), "127.0.0.1:7233")
        XCTAssertEqual(headers.headers.first(name: "content-type"), "application/grpc")
        XCTAssertEqual(headers.headers.first(name: "te"), "trailers")
        XCTAssertEqual(headers.headers.first(name: "grpc-timeout"), "30000m")
        XCTAssertFalse(headers.endStream, "the stream stays open for the next requests")
        XCTAssertEqual(requests(in: frames), [ReflectionRequest.listServices.encoded()])
    }

    // MARK: A whole pull

    func testPullsAcrossMessagesSplitOverFramesAndGrantsTheBytesBack() throws {
        _ = try sentFrames()
        try receiveResponseHeaders()
        try receiveMessage(Support.servicesResponse(["grpc.health.v1.Health", "test.v1.WorkflowService"]), cutAt: [2, 9])
        let afterListing = try sentFrames()
        XCTAssertEqual(requests(in: afterListing), [ReflectionRequest.fileContainingSymbol("test.v1.WorkflowService").encoded()])

        let common = Support.file("common.proto", package: "test.common")
        let service = Support.file("service.proto", imports: ["common.proto"], services: ["WorkflowService"])
        XCTAssertNil(outcome)
        try receiveMessage(Support.filesResponse([service, common].map(Support.serialized)), cutAt: [4])
        guard case .success(let schema) = outcome else { return XCTFail("\(String(describing: outcome))") }
        XCTAssertEqual(schema.serviceNames, ["test.v1.WorkflowService"])
        XCTAssertEqual(schema.fileCount, 2)
        XCTAssertFalse(channel.isActive, "the connection is closed once the schema is complete")
    }

    // MARK: Fallback and statuses

    func testFallsBackToV1AlphaOnTheNextStreamWhenV1IsUnimplemented() throws {
        _ = try sentFrames()
        try receiveStatus(12, trailersOnly: true)
        let frames = try sentFrames()
        XCTAssertEqual(path(in: frames, stream: 3), "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        XCTAssertEqual(requests(in: frames), [ReflectionRequest.listServices.encoded()])
        XCTAssertTrue(frames.contains { $0.streamID == 1 && $0.payload.isReset(.cancel) }, "the v1 stream is cancelled")
        XCTAssertNil(outcome)
        // A late reset of the abandoned v1 stream changes nothing.
        try channel.writeInbound(ByteBuffer(bytes: [0, 0, 4, 3, 0, 0, 0, 0, 1, 0, 0, 0, 0]))
        XCTAssertNil(outcome)
        XCTAssertTrue(channel.isActive)
    }

    func testUnimplementedForBothVersionsSaysThereIsNoReflection() throws {
        try receiveStatus(12, trailersOnly: true)
        try receiveStatus(12, trailersOnly: true, stream: 3)
        XCTAssertEqual(failure, .reflectionUnavailable(address: "127.0.0.1:7233"))
        XCTAssertTrue("\(failure!)".hasPrefix(
            "no gRPC reflection at 127.0.0.1:7233: server answered UNIMPLEMENTED for grpc.reflection.v1.ServerReflection and v1alpha"
        ))
    }

    func testOtherStatusFailsWithItsDecodedMessage() throws {
        try receiveResponseHeaders()
        try receiveStatus(7, message: "no%20access%20for%20you", trailersOnly: false)
        XCTAssertEqual(failure, .callFailed(address: "127.0.0.1:7233", status: "PERMISSION_DENIED", message: "no access for you"))
    }

    func testOKBeforeTheSchemaIsCompleteFails() throws {
        try receiveResponseHeaders()
        try receiveStatus(0, trailersOnly: false)
        guard case .protocolViolation(_, let detail) = failure else { return XCTFail("\(String(describing: outcome))") }
        XCTAssertTrue(detail.contains("before the schema was complete"), detail)
    }

    func testHTTPStatusOtherThan200IsNotGRPC() throws {
        try receive(.headers(.init(headers: [":status": "404"])), stream: 1)
        XCTAssertEqual(failure, .protocolViolation(
            address: "127.0.0.1:7233", detail: "HTTP status 404 instead of 200 (is 127.0.0.1:7233 a gRPC server?)"
        ))
    }

    func testResetStreamFails() throws {
        try receive(.rstStream(.refusedStream), stream: 1)
        guard case .protocolViolation(_, let detail) = failure else { return XCTFail("\(String(describing: outcome))") }
        XCTAssertTrue(detail.contains("reset the reflection stream"), detail)
    }

    func testCompressedMessageIsRefused() throws {
        try receiveResponseHeaders()
        try receive(.data(.init(data: .byteBuffer(ByteBuffer(bytes: [1, 0, 0, 0, 1, 0])))), stream: 1)
        guard case .protocolViolation(_, let detail) = failure else { return XCTFail("\(String(describing: outcome))") }
        XCTAssertTrue(detail.contains("compressed"), detail)
    }

    func testOversizedLengthPrefixIsRefusedBeforeBuffering() throws {
        try receiveResponseHeaders()
        try receive(.data(.init(data: .byteBuffer(ByteBuffer(bytes: [0, 0x7F, 0xFF, 0xFF, 0xFF])))), stream: 1)
        guard case .protocolViolation(_, let detail) = failure else { return XCTFail("\(String(describing: outcome))") }
        XCTAssertTrue(detail.contains("larger than the 64 MiB accepted"), detail)
    }

    // MARK: Ends without an answer

    func testConnectionClosingMidPullFailsWithProgress() throws {
        try receiveResponseHeaders()
        try receiveMessage(Support.servicesResponse(["test.v1.WorkflowService"]))
        channel.pipeline.fireChannelInactive()
        guard case .protocolViolation(_, let detail) = failure else { return XCTFail("\(String(describing: outcome))") }
        XCTAssertEqual(
            detail,
            "the connection closed before the schema was complete (1 services listed, 0 files received, 1 requests unanswered)"
        )
    }

    func testOverallTimeoutFailsWithProgressAndCloses() throws {
        loop.advanceTime(by: .seconds(29))
        XCTAssertNil(outcome)
        loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(failure, .timedOut(address: "127.0.0.1:7233", seconds: 30, progress: "no list of services received yet"))
        XCTAssertFalse(channel.isActive)
    }

    func testOverallTimeoutWhileConnectingIsAConnectTimeout() throws {
        let connecting = ReflectionStreamHandler(
            target: HostAndPort(host: "127.0.0.1", port: 7233), scheme: "http", timeout: .seconds(2), eventLoop: loop
        )
        var result: Result<TemporalSchema, Error>?
        connecting.result.futureResult.whenComplete { result = $0 }
        loop.advanceTime(by: .seconds(2))
        guard case .failure(let error) = result else { return XCTFail("\(String(describing: result))") }
        XCTAssertEqual(error as? TemporalSchemaError, .unreachable(address: "127.0.0.1:7233", reason: "connect timed out after 2000 ms"))
    }

    func testConnectFailureSaysUnreachable() throws {
        handler.connectFailed(IOError(errnoCode: ECONNREFUSED, reason: "connect"))
        XCTAssertEqual(failure, .unreachable(address: "127.0.0.1:7233", reason: "connection refused"))
    }
}

extension HTTP2Frame.FramePayload {
    fileprivate func isReset(_ code: HTTP2ErrorCode) -> Bool {
        if case .rstStream(code) = self { return true }
        return false
    }
}
