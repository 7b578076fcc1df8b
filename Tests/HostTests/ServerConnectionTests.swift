// Drives a proxy listener's connection pipeline frame by frame with NIO's EmbeddedChannel: a real HTTP/2 client
// pipeline on one side, the proxy's server pipeline on the other, bytes shuttled between them by the test.

import Logging
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import XCTest

@testable import Host

/// An upstream that is never reachable.
private struct UnreachableUpstream: UpstreamConnecting {
    let target = HostAndPort(host: "10.255.255.1", port: 7233)

    func connection(on eventLoop: EventLoop) -> EventLoopFuture<UpstreamConnection> {
        eventLoop.makeFailedFuture(UpstreamUnavailableError(target: target, reason: "connection refused"))
    }
}

/// Collects what arrives on a client stream. Unchecked Sendable: everything here runs on one EmbeddedEventLoop.
private final class FrameRecorder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame.FramePayload
    var frames: [HTTP2Frame.FramePayload] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        frames.append(unwrapInboundIn(data))
    }
}

final class ServerConnectionTests: XCTestCase {
    private var server: EmbeddedChannel!
    private var client: EmbeddedChannel!
    private var clientMultiplexer: NIOHTTP2Handler.StreamMultiplexer!
    private let counter = ActiveCallCounter()

    override func setUpWithError() throws {
        let context = ListenerContext(
            name: "test/outbound",
            upstream: UnreachableUpstream(),
            maxMessageBytes: 1024,
            logger: Logger(label: "test"),
            activeCalls: counter
        )
        server = EmbeddedChannel()
        try ProxyListener.configureConnection(server, context: context, tuning: HTTP2Tuning())
        client = EmbeddedChannel()
        clientMultiplexer = try client.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .client,
            connectionConfiguration: .init(),
            streamConfiguration: .init(),
            inboundStreamInitializer: { $0.close() }
        )
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
    }

    /// Moves bytes between the two pipelines until both are quiet.
    private func exchange() throws {
        var moved = true
        var rounds = 0
        while moved && rounds < 100 {
            rounds += 1
            moved = false
            while let bytes = try client.readOutbound(as: IOData.self) {
                guard case .byteBuffer(let buffer) = bytes else { continue }
                try server.writeInbound(buffer)
                moved = true
            }
            while let bytes = try server.readOutbound(as: IOData.self) {
                guard case .byteBuffer(let buffer) = bytes else { continue }
                try client.writeInbound(buffer)
                moved = true
            }
            client.embeddedEventLoop.run()
            server.embeddedEventLoop.run()
        }
    }

    private func openStream(headers: HPACKHeaders, body: ByteBuffer?) throws -> FrameRecorder {
        let recorder = FrameRecorder()
        let created = clientMultiplexer.createStreamChannel { channel in
            channel.pipeline.addHandler(recorder)
        }
        client.embeddedEventLoop.run()
        let stream = try XCTUnwrap(try? created.wait())
        stream.write(HTTP2Frame.FramePayload.headers(.init(headers: headers, endStream: body == nil)), promise: nil)
        if let body {
            stream.write(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(body), endStream: true)), promise: nil)
        }
        stream.flush()
        try exchange()
        return recorder
    }

    private func grpcRequest(path: String) -> HPACKHeaders {
        [":method": "POST", ":scheme": "http", ":path": path, ":authority": "proxy", "content-type": "application/grpc", "te": "trailers"]
    }

    private func grpcMessage(length: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(length))
        buffer.writeRepeatingByte(1, count: length)
        return buffer
    }

    private func trailers(_ recorder: FrameRecorder) -> HPACKHeaders? {
        for frame in recorder.frames {
            if case .headers(let block) = frame, block.endStream { return block.headers }
        }
        return nil
    }

    func testUnreachableUpstreamAnswersUnavailableNamingTheAddress() throws {
        let recorder = try openStream(headers: grpcRequest(path: "/svc/Method"), body: grpcMessage(length: 3))
        let status = try XCTUnwrap(trailers(recorder))
        XCTAssertEqual(status.first(name: ":status"), "200")
        XCTAssertEqual(status.first(name: "grpc-status"), "14")
        XCTAssertTrue(status.first(name: "grpc-message")?.contains("10.255.255.1:7233") ?? false, "\(status)")
    }

    func testNonGRPCRequestIsRefusedWith415() throws {
        let recorder = try openStream(
            headers: [":method": "GET", ":scheme": "http", ":path": "/", ":authority": "proxy"],
            body: nil
        )
        let response = try XCTUnwrap(trailers(recorder))
        XCTAssertEqual(response.first(name: ":status"), "415")
    }

    func testCallsAreCountedWhileOpenAndReleasedWhenDone() throws {
        _ = try openStream(headers: grpcRequest(path: "/svc/Method"), body: grpcMessage(length: 3))
        XCTAssertEqual(counter.value, 0)
    }

    func testGarbageInsteadOfTheHTTP2PrefaceClosesTheConnection() throws {
        var garbage = ByteBuffer()
        garbage.writeString("GET / HTTP/1.1\r\nHost: proxy\r\n\r\n")
        _ = try? server.writeInbound(garbage)
        server.embeddedEventLoop.run()
        XCTAssertFalse(server.isActive)
    }

    func testOtherConnectionsAreUnaffectedByOneBadConnection() throws {
        let bad = EmbeddedChannel()
        let context = ListenerContext(
            name: "test/outbound", upstream: UnreachableUpstream(), maxMessageBytes: 1024,
            logger: Logger(label: "test"), activeCalls: counter
        )
        try ProxyListener.configureConnection(bad, context: context, tuning: HTTP2Tuning())
        try bad.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 3)).wait()
        var garbage = ByteBuffer()
        garbage.writeRepeatingByte(0xFF, count: 64)
        _ = try? bad.writeInbound(garbage)
        bad.embeddedEventLoop.run()
        XCTAssertFalse(bad.isActive)

        let recorder = try openStream(headers: grpcRequest(path: "/svc/Method"), body: grpcMessage(length: 3))
        XCTAssertEqual(trailers(recorder)?.first(name: "grpc-status"), "14")
    }
}
