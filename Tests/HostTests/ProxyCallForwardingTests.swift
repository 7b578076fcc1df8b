// Drives whole calls through the proxy frame by frame with EmbeddedChannels on one EmbeddedEventLoop:
//
//   client (HTTP/2 client) <-> proxy listener pipeline <-> ProxyCall <-> UpstreamConnection <-> upstream (HTTP/2 server)
//
// The test moves bytes between the pairs of channels itself, so every exchange is deterministic.

import Logging
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import XCTest

@testable import Host

/// An upstream gRPC server stream: answers headers, echoes every DATA frame, ends with trailers when the request ends.
/// A request header `x-upstream-ends` makes it end the call itself after echoing the first DATA frame: `trailers`
/// (status OK while the client still sends) or `reset` (RST_STREAM).
/// Unchecked Sendable: everything in these tests runs on one EmbeddedEventLoop.
private final class EchoUpstreamStream: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    let record: UpstreamRecord
    private var ends: String?
    private var ended = false

    init(record: UpstreamRecord) {
        self.record = record
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            record.requestHeaders.append(headers.headers)
            ends = headers.headers.first(name: "x-upstream-ends")
            let response: HPACKHeaders = [":status": "200", "content-type": "application/grpc", "x-upstream": "seen"]
            context.write(wrapOutboundOut(.headers(.init(headers: response))), promise: nil)
        case .data(let data) where !ended:
            if case .byteBuffer(let bytes) = data.data {
                record.requestBytes += bytes.readableBytes
                context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(bytes)))), promise: nil)
            }
            if ends == "reset" {
                ended = true
                context.flush()
                context.close(promise: nil)
                return
            }
            if data.endStream || ends == "trailers" {
                ended = true
                let trailers: HPACKHeaders = ["grpc-status": "0", "x-trailer": "kept"]
                context.write(wrapOutboundOut(.headers(.init(headers: trailers, endStream: true))), promise: nil)
            }
        default:
            break
        }
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let closed = error as? NIOHTTP2Errors.StreamClosed {
            record.resetCodes.append(closed.errorCode)
        }
    }
}

/// What the upstream saw.
private final class UpstreamRecord: @unchecked Sendable {
    var requestHeaders: [HPACKHeaders] = []
    var requestBytes = 0
    var resetCodes: [HTTP2ErrorCode] = []
}

/// Collects what arrives on a client stream.
private final class ClientStreamRecorder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame.FramePayload
    var headers: [HPACKHeaders] = []
    var bytes = 0
    var ended = false
    var resetCode: HTTP2ErrorCode?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let block):
            headers.append(block.headers)
            ended = ended || block.endStream
        case .data(let data):
            bytes += data.data.readableBytes
            ended = ended || data.endStream
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let closed = error as? NIOHTTP2Errors.StreamClosed {
            resetCode = closed.errorCode
        }
    }
}

/// Hands every call the one embedded upstream connection. Unchecked Sendable: one EmbeddedEventLoop, one thread.
private struct EmbeddedUpstream: UpstreamConnecting, @unchecked Sendable {
    let target = HostAndPort(host: "127.0.0.1", port: 7233)
    let connection: UpstreamConnection

    func connection(on eventLoop: EventLoop) -> EventLoopFuture<UpstreamConnection> {
        eventLoop.makeSucceededFuture(connection)
    }
}

final class ProxyCallForwardingTests: XCTestCase {
    private let loop = EmbeddedEventLoop()
    private var client: EmbeddedChannel!
    private var clientMultiplexer: NIOHTTP2Handler.StreamMultiplexer!
    private var proxyServer: EmbeddedChannel!
    private var proxyUpstream: EmbeddedChannel!
    private var upstreamServer: EmbeddedChannel!
    private var upstreamConnection: UpstreamConnection!
    /// Set: the upstream's SETTINGS_MAX_CONCURRENT_STREAMS is cut out of its preface on the way to the proxy, as
    /// if the server (like grpc-go) set none. NIO's own server cannot leave it out: it would then allow only 100.
    private var hideUpstreamStreamLimit = false

    /// `buffer` (starting with the server's SETTINGS frame) without its SETTINGS_MAX_CONCURRENT_STREAMS entry.
    private static func removingStreamLimit(fromPrefaceIn buffer: ByteBuffer) -> ByteBuffer {
        var bytes = Array(buffer.readableBytesView)
        let length = Int(bytes[0]) << 16 | Int(bytes[1]) << 8 | Int(bytes[2])
        precondition(bytes[3] == 4, "the upstream's first frame is not SETTINGS")
        var payload: [UInt8] = []
        for offset in stride(from: 9, to: 9 + length, by: 6) where !(bytes[offset] == 0 && bytes[offset + 1] == 3) {
            payload += bytes[offset..<offset + 6]
        }
        let rest = Array(bytes[(9 + length)...])
        bytes = [UInt8(payload.count >> 16), UInt8(payload.count >> 8 & 0xFF), UInt8(payload.count & 0xFF)]
            + bytes[3..<9] + payload + rest
        return ByteBuffer(bytes: bytes)
    }
    private let record = UpstreamRecord()
    private let calls = ActiveCallCounter()
    private let replicationStreams = ReplicationStreamRegistry(connection: "test", direction: "outbound")

    /// `upstreamSettings`: the upstream server's SETTINGS (NIO's defaults declare a limit of 100 streams).
    private func setUp(maxMessageBytes: Int, upstreamSettings: HTTP2Settings? = nil, hideStreamLimit: Bool = false) throws {
        let record = self.record
        hideUpstreamStreamLimit = hideStreamLimit
        upstreamServer = EmbeddedChannel(loop: loop)
        var upstreamConfiguration = NIOHTTP2Handler.ConnectionConfiguration()
        if let upstreamSettings {
            upstreamConfiguration.initialSettings = upstreamSettings
        }
        _ = try upstreamServer.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: upstreamConfiguration, streamConfiguration: .init(),
            inboundStreamInitializer: { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandler(EchoUpstreamStream(record: record))
                }
            }
        )
        proxyUpstream = EmbeddedChannel(loop: loop)
        let upstreamAddress = try SocketAddress(ipAddress: "127.0.0.1", port: 7233)
        let connection = try UpstreamConnection.install(on: proxyUpstream, address: upstreamAddress, tuning: HTTP2Tuning(), onGoAway: { _ in })
        upstreamConnection = connection

        proxyServer = EmbeddedChannel(loop: loop)
        let context = ListenerContext(
            name: "test/outbound", upstream: EmbeddedUpstream(connection: connection), maxMessageBytes: maxMessageBytes,
            logger: Logger(label: "test"), activeCalls: calls, replicationStreams: replicationStreams
        )
        try ProxyListener.configureConnection(proxyServer, context: context, tuning: HTTP2Tuning())

        client = EmbeddedChannel(loop: loop)
        clientMultiplexer = try client.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .client, connectionConfiguration: .init(), streamConfiguration: .init(),
            inboundStreamInitializer: { $0.close() }
        )
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        for channel in [upstreamServer!, proxyUpstream!, proxyServer!, client!] {
            try channel.connect(to: address).wait()
        }
        try exchange()
    }

    /// Moves bytes across both connections until nothing moves.
    private func exchange() throws {
        for _ in 0..<200 {
            loop.run()
            let moved = try move(from: client, to: proxyServer) + move(from: proxyServer, to: client)
                + move(from: proxyUpstream, to: upstreamServer) + move(from: upstreamServer, to: proxyUpstream)
            if moved == 0 { return }
        }
        XCTFail("the channels never went quiet")
    }

    private func move(from source: EmbeddedChannel, to destination: EmbeddedChannel) throws -> Int {
        var count = 0
        while let data = try source.readOutbound(as: IOData.self) {
            if case .byteBuffer(var buffer) = data {
                if source === upstreamServer, hideUpstreamStreamLimit {
                    hideUpstreamStreamLimit = false
                    buffer = Self.removingStreamLimit(fromPrefaceIn: buffer)
                }
                try destination.writeInbound(buffer)
                count += 1
            }
        }
        return count
    }

    private func message(_ length: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(length))
        buffer.writeRepeatingByte(7, count: length)
        return buffer
    }

    private func openCall(
        path: String = "/temporal.api.workflowservice.v1.WorkflowService/Echo", extraHeaders: HPACKHeaders = [:]
    ) throws -> (Channel, ClientStreamRecorder) {
        let recorder = ClientStreamRecorder()
        let created = clientMultiplexer.createStreamChannel { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(recorder) }
        }
        loop.run()
        let stream = try created.wait()
        var headers: HPACKHeaders = [
            ":method": "POST", ":scheme": "http", ":path": path,
            ":authority": "proxy", "content-type": "application/grpc", "te": "trailers",
        ]
        headers.add(contentsOf: extraHeaders)
        stream.writeAndFlush(HTTP2Frame.FramePayload.headers(.init(headers: headers)), promise: nil)
        return (stream, recorder)
    }

    func testUnaryCallCrossesWithHeadersMessageAndTrailersIntact() throws {
        try setUp(maxMessageBytes: 1 << 20)
        let (stream, recorder) = try openCall(extraHeaders: ["x-custom": "value", "custom-bin": "AAEC"])
        stream.writeAndFlush(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(message(1000)), endStream: true)), promise: nil)
        try exchange()

        let upstreamHeaders = try XCTUnwrap(record.requestHeaders.first)
        XCTAssertEqual(upstreamHeaders.first(name: "x-custom"), "value")
        XCTAssertEqual(upstreamHeaders.first(name: "custom-bin"), "AAEC")
        XCTAssertEqual(upstreamHeaders.first(name: ":path"), "/temporal.api.workflowservice.v1.WorkflowService/Echo")
        XCTAssertEqual(record.requestBytes, 1005)
        XCTAssertEqual(recorder.headers.first?.first(name: "x-upstream"), "seen")
        XCTAssertEqual(recorder.bytes, 1005)
        XCTAssertEqual(recorder.headers.last?.first(name: "grpc-status"), "0")
        XCTAssertEqual(recorder.headers.last?.first(name: "x-trailer"), "kept")
        XCTAssertTrue(recorder.ended)
        XCTAssertEqual(record.resetCodes, [], "a call that completed must not be reset upstream")
        XCTAssertEqual(calls.value, 0)
    }

    func testAnUpstreamThatSetsNoStreamLimitTakesMoreThanAHundredCallsOnOneConnection() throws {
        // grpc-go servers (the Temporal frontend) declare no SETTINGS_MAX_CONCURRENT_STREAMS: RFC 9113 says that is
        // no limit; NIOHTTP2 alone assumed 100 and held every further call back until one of them ended.
        try setUp(
            maxMessageBytes: 1 << 20, upstreamSettings: [HTTP2Setting(parameter: .maxConcurrentStreams, value: 1000)],
            hideStreamLimit: true
        )
        XCTAssertEqual(upstreamConnection.peerMaxConcurrentStreams, Int.max)
        var recorders: [ClientStreamRecorder] = []
        for _ in 0..<150 {
            let (stream, recorder) = try openCall()
            stream.writeAndFlush(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(message(10)))), promise: nil)
            recorders.append(recorder)
        }
        try exchange()
        XCTAssertEqual(record.requestHeaders.count, 150, "every call reached the upstream while all are open")
        XCTAssertEqual(upstreamConnection.openStreams, 150)
        XCTAssertEqual(recorders.filter { $0.headers.first?.first(name: "x-upstream") == "seen" }.count, 150)
        XCTAssertEqual(calls.value, 150)
    }

    func testAnUpstreamsOwnStreamLimitIsObeyedAndACallWithoutRoomFailsClearly() throws {
        try setUp(maxMessageBytes: 1 << 20, upstreamSettings: [HTTP2Setting(parameter: .maxConcurrentStreams, value: 3)])
        XCTAssertEqual(upstreamConnection.peerMaxConcurrentStreams, 3)
        var recorders: [ClientStreamRecorder] = []
        for _ in 0..<4 {
            let (stream, recorder) = try openCall()
            stream.writeAndFlush(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(message(10)))), promise: nil)
            recorders.append(recorder)
            try exchange()
        }
        XCTAssertEqual(record.requestHeaders.count, 3)
        XCTAssertFalse(upstreamConnection.canOpenStream)
        // This test's upstream offers only the one full connection (the pool would open another): the fourth call
        // is told so instead of waiting inside NIOHTTP2 for one of the others to end.
        let refused = try XCTUnwrap(recorders.last?.headers.last)
        XCTAssertEqual(refused.first(name: "grpc-status"), "14")
        XCTAssertTrue(refused.first(name: "grpc-message")?.contains("SETTINGS_MAX_CONCURRENT_STREAMS") ?? false, "\(refused)")
        XCTAssertEqual(calls.value, 3)
    }

    /// Everything the client wrote, handed to the proxy as one read.
    private func moveClientBytesAsOneRead() throws {
        var combined = ByteBuffer()
        while let data = try client.readOutbound(as: IOData.self) {
            if case .byteBuffer(var buffer) = data { combined.writeBuffer(&buffer) }
        }
        try proxyServer.writeInbound(combined)
        loop.run()
    }

    /// The frames the proxy wrote to the client since the last call, by type (raw bytes, no HTTP/2 state).
    private func frameTypesToClient() throws -> [(type: UInt8, payload: [UInt8])] {
        var bytes: [UInt8] = []
        while let data = try proxyServer.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = data { bytes += buffer.readableBytesView }
        }
        var frames: [(UInt8, [UInt8])] = []
        var index = 0
        while index + 9 <= bytes.count {
            let length = Int(bytes[index]) << 16 | Int(bytes[index + 1]) << 8 | Int(bytes[index + 2])
            frames.append((bytes[index + 3], Array(bytes[(index + 9)..<min(bytes.count, index + 9 + length)])))
            index += 9 + length
        }
        return frames
    }

    func testAStreamOpenedAndResetInOneReadNeverReachesTheUpstream() throws {
        try setUp(maxMessageBytes: 1 << 20)
        for _ in 0..<20 {
            let (stream, _) = try openCall()
            stream.close(promise: nil)
            loop.run()
        }
        try moveClientBytesAsOneRead()
        try exchange()
        XCTAssertEqual(record.requestHeaders.count, 0, "streams reset in the read that opened them were forwarded")
        XCTAssertEqual(calls.value, 0)
        // A call whose reset comes in a later read was forwarded, and is cancelled upstream.
        let (stream, _) = try openCall()
        try exchange()
        stream.close(promise: nil)
        try exchange()
        XCTAssertEqual(record.requestHeaders.count, 1)
        XCTAssertEqual(record.resetCodes, [.cancel])
    }

    func testAClientThatResetsMostCallsBeforeTheyAreAnsweredGetsGoAwayEnhanceYourCalm() throws {
        try setUp(maxMessageBytes: 1 << 20)
        for index in 0..<DownstreamConnectionHandler.prematureResetLimit {
            XCTAssertTrue(proxyServer.isActive, "closed after \(index) resets")
            let (stream, _) = try openCall()
            try moveClientBytesAsOneRead()
            stream.close(promise: nil)
            loop.run()
            try moveClientBytesAsOneRead()
        }
        let goAways = try frameTypesToClient().filter { $0.type == 7 }
        XCTAssertEqual(goAways.count, 1)
        XCTAssertEqual(goAways.first.map { Array($0.payload[4..<8]) }, [0, 0, 0, 0xB], "ENHANCE_YOUR_CALM")
        loop.run()
        XCTAssertFalse(proxyServer.isActive, "with no call left, the connection closes")
    }

    func testClientResetCancelsTheUpstreamStream() throws {
        try setUp(maxMessageBytes: 1 << 20)
        let (stream, _) = try openCall()
        stream.writeAndFlush(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(message(10)))), promise: nil)
        try exchange()
        XCTAssertEqual(calls.value, 1)
        stream.close(promise: nil)
        try exchange()
        XCTAssertEqual(record.resetCodes, [.cancel])
        XCTAssertEqual(calls.value, 0)
    }

    func testOversizedRequestEndsWithResourceExhaustedAndNeverReachesUpstream() throws {
        try setUp(maxMessageBytes: 1024)
        let (stream, recorder) = try openCall()
        stream.writeAndFlush(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(message(2000)), endStream: true)), promise: nil)
        try exchange()
        let status = try XCTUnwrap(recorder.headers.last)
        XCTAssertEqual(status.first(name: "grpc-status"), "8")
        XCTAssertTrue(status.first(name: "grpc-message")?.contains("1024") ?? false)
        XCTAssertEqual(record.requestBytes, 0)
        XCTAssertEqual(calls.value, 0)
    }

    func testSilentUpstreamConnectionWithACallInFlightIsClosedAfterAnUnansweredPing() throws {
        try setUp(maxMessageBytes: 1 << 20)
        let interval = try XCTUnwrap(HTTP2Tuning().upstreamKeepaliveInterval)
        let (stream, recorder) = try openCall()
        stream.writeAndFlush(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(message(10)))), promise: nil)
        try exchange()
        // The first interval saw the call's traffic: no PING needed yet.
        loop.advanceTime(by: interval)
        XCTAssertNil(try proxyUpstream.readOutbound(as: IOData.self))
        // A silent interval with the call still open: the PING goes out but never reaches the upstream, as with a
        // peer that vanished.
        loop.advanceTime(by: interval)
        XCTAssertNotNil(try proxyUpstream.readOutbound(as: IOData.self))
        while try proxyUpstream.readOutbound(as: IOData.self) != nil {}
        XCTAssertTrue(proxyUpstream.isActive)
        loop.advanceTime(by: interval)
        XCTAssertFalse(proxyUpstream.isActive)
        loop.run()
        _ = try move(from: proxyServer, to: client)
        XCTAssertEqual(recorder.headers.last?.first(name: "grpc-status"), "14")
    }

    func testIdleUpstreamConnectionIsNotPinged() throws {
        try setUp(maxMessageBytes: 1 << 20)
        let interval = try XCTUnwrap(HTTP2Tuning().upstreamKeepaliveInterval)
        for _ in 0..<3 {
            loop.advanceTime(by: interval)
            XCTAssertNil(try proxyUpstream.readOutbound(as: IOData.self))
        }
        XCTAssertTrue(proxyUpstream.isActive)
    }

    func testAnsweredPingsKeepTheUpstreamConnection() throws {
        try setUp(maxMessageBytes: 1 << 20)
        let interval = try XCTUnwrap(HTTP2Tuning().upstreamKeepaliveInterval)
        let (stream, _) = try openCall()
        stream.writeAndFlush(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(message(10)))), promise: nil)
        try exchange()
        for _ in 0..<4 {
            loop.advanceTime(by: interval)
            try exchange()
        }
        XCTAssertTrue(proxyUpstream.isActive)
    }

    // MARK: Replication streams

    private func openReplicationStream(extraHeaders: HPACKHeaders = [:]) throws -> (Channel, ClientStreamRecorder) {
        try openCall(path: ReplicationStreamRegistry.method, extraHeaders: extraHeaders)
    }

    /// Two messages in one DATA frame, then one split across two frames.
    private func sendThreeMessages(on stream: Channel) {
        var both = message(3)
        var second = message(4)
        both.writeBuffer(&second)
        var third = message(10)
        let head = third.readSlice(length: 7)!
        for part in [both, head, third] {
            stream.writeAndFlush(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(part))), promise: nil)
        }
    }

    func testReplicationStreamCountsWholeMessagesEachWayWhileOpen() throws {
        try setUp(maxMessageBytes: 1 << 20)
        let (stream, _) = try openReplicationStream(extraHeaders: [
            "temporal-client-cluster-id": "2", "temporal-client-shard-id": "1",
            "temporal-server-cluster-id": "1", "temporal-server-shard-id": "4",
        ])
        sendThreeMessages(on: stream)
        try exchange()
        let snapshot = replicationStreams.snapshot()
        XCTAssertEqual(snapshot.open.count, 1)
        XCTAssertEqual(snapshot.open.first?.requestMessages, 3)
        XCTAssertEqual(snapshot.open.first?.responseMessages, 3, "the upstream echoes every message")
        XCTAssertEqual(snapshot.open.first?.clientShard, "(id: 2, shard: 1)")
        XCTAssertEqual(snapshot.open.first?.serverShard, "(id: 1, shard: 4)")
        XCTAssertEqual(snapshot.totals.terminated, [:])
    }

    func testReplicationStreamTheClientHalfClosesEndsByTheTarget() throws {
        try setUp(maxMessageBytes: 1 << 20)
        let (stream, recorder) = try openReplicationStream()
        sendThreeMessages(on: stream)
        stream.writeAndFlush(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)), promise: nil)
        try exchange()
        XCTAssertEqual(recorder.headers.last?.first(name: "grpc-status"), "0")
        let snapshot = replicationStreams.snapshot()
        XCTAssertEqual(snapshot.open, [])
        XCTAssertEqual(snapshot.totals.closed, 1)
        XCTAssertEqual(snapshot.totals.terminated, [.target: 1])
        XCTAssertEqual(snapshot.totals.requestMessages, 3)
        XCTAssertEqual(snapshot.totals.responseMessages, 3)
    }

    func testReplicationStreamTheClientResetsEndsByTheTarget() throws {
        try setUp(maxMessageBytes: 1 << 20)
        let (stream, _) = try openReplicationStream()
        sendThreeMessages(on: stream)
        try exchange()
        stream.close(promise: nil)
        try exchange()
        XCTAssertEqual(replicationStreams.snapshot().totals.terminated, [.target: 1])
        XCTAssertEqual(replicationStreams.snapshot().open, [])
    }

    func testReplicationStreamTheUpstreamEndsWithTrailersEndsByTheSource() throws {
        try setUp(maxMessageBytes: 1 << 20)
        let (stream, recorder) = try openReplicationStream(extraHeaders: ["x-upstream-ends": "trailers"])
        sendThreeMessages(on: stream)
        try exchange()
        XCTAssertEqual(recorder.headers.last?.first(name: "grpc-status"), "0")
        let snapshot = replicationStreams.snapshot()
        XCTAssertEqual(snapshot.open, [])
        XCTAssertEqual(snapshot.totals.terminated, [.source: 1])
        XCTAssertEqual(snapshot.totals.responseMessages, 2, "the echo of the first frame, then the trailers")
    }

    func testReplicationStreamTheUpstreamResetsEndsByTheSource() throws {
        try setUp(maxMessageBytes: 1 << 20)
        let (stream, recorder) = try openReplicationStream(extraHeaders: ["x-upstream-ends": "reset"])
        sendThreeMessages(on: stream)
        try exchange()
        XCTAssertNotNil(recorder.resetCode)
        XCTAssertEqual(replicationStreams.snapshot().totals.terminated, [.source: 1])
    }

    func testReplicationStreamOverAnOversizedRequestEndsByTheTarget() throws {
        try setUp(maxMessageBytes: 1024)
        let (stream, _) = try openReplicationStream()
        stream.writeAndFlush(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(message(2000)))), promise: nil)
        try exchange()
        XCTAssertEqual(replicationStreams.snapshot().totals.terminated, [.target: 1])
    }

    func testOtherCallsAreNotReplicationStreams() throws {
        try setUp(maxMessageBytes: 1 << 20)
        let (stream, _) = try openCall()
        sendThreeMessages(on: stream)
        try exchange()
        XCTAssertEqual(calls.value, 1)
        XCTAssertEqual(replicationStreams.snapshot(), ReplicationStreamRegistry.Snapshot())
    }
}
