// An upstream connection over TLS against real loopback servers: it counts as established only once the server
// speaks HTTP/2 after the handshake, and every way of not getting there fails the connect with a reason.

import Logging
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOTLS
import XCTest

@testable import Host

final class UpstreamTLSConnectionTests: LoopbackServerTestCase {
    private func connect(
        to address: SocketAddress, timeout: TimeAmount = .seconds(5)
    ) throws -> EventLoopFuture<UpstreamConnection> {
        let client = try XCTUnwrap(try TLSClientSetup(
            config: try TLSTestCertificates.config("client", ca: "ca", name: "localhost"), label: "test"
        ))
        let loop = group.next()
        return loop.flatSubmit {
            UpstreamConnection.connect(
                to: address, on: loop, connectTimeout: timeout, tuning: HTTP2Tuning(),
                tls: (client, Logger(label: "test")), onGoAway: { _ in }
            )
        }
    }

    private func failure(of future: EventLoopFuture<UpstreamConnection>, line: UInt = #line) -> String {
        do {
            let connection = try future.wait()
            connection.channel?.close(promise: nil)
            XCTFail("the connection was established", line: line)
            return ""
        } catch {
            return NetworkErrorDescription.describe(error)
        }
    }

    func testEstablishedOnceTheServerSpeaksHTTP2OverTLS() throws {
        let setup = try XCTUnwrap(
            try TLSServerSetup(config: try TLSTestCertificates.config("server", ca: "ca"), label: "s")
        )
        let address = try startServer { channel in
            try setup.addHandler(to: channel, logger: Logger(label: "server"))
            try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server))
        }
        let connection = try connect(to: address).wait()
        XCTAssertFalse(connection.isDraining)
        try connection.channel?.close().wait()
    }

    func testServerThatClosesRightAfterTheHandshakeFailsTheConnectNamingTheClientCertificate() throws {
        let setup = try XCTUnwrap(
            try TLSServerSetup(config: try TLSTestCertificates.config("server", ca: "ca"), label: "s")
        )
        let address = try startServer { channel in
            try setup.addHandler(to: channel, logger: Logger(label: "server"))
            try channel.pipeline.syncOperations.addHandler(CloseAfterHandshake())
        }
        let reason = failure(of: try connect(to: address))
        XCTAssertTrue(reason.contains("right after the TLS handshake"), reason)
        XCTAssertTrue(reason.contains("client certificate"), reason)
    }

    func testServerThatNeverAnswersFailsTheConnectAtTheTimeout() throws {
        let address = try startServer { _ in }
        let reason = failure(of: try connect(to: address, timeout: .milliseconds(300)))
        XCTAssertTrue(reason.contains("no TLS handshake and HTTP/2 start within 300 ms"), reason)
    }

    func testPlainHTTP2ServerFailsTheHandshake() throws {
        let address = try startServer { channel in
            try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server))
        }
        let reason = failure(of: try connect(to: address))
        XCTAssertFalse(reason.isEmpty)
    }
}

/// Closes a server connection as soon as its TLS handshake completes, before HTTP/2 could start.
private final class CloseAfterHandshake: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }
}
