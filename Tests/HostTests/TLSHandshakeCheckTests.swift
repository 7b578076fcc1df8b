// The health probe's TLS handshake (TLSClientSetup.checkHandshake) against real loopback servers: it succeeds only
// when the server passes the client setup's verification, and every other outcome is a reason, within the timeout.

import Logging
import NIOCore
import NIOHTTP2
import NIOPosix
import XCTest

@testable import Host

final class TLSHandshakeCheckTests: LoopbackServerTestCase {
    /// A server presenting `certificate` (client certificates not asked for).
    private func tlsServer(_ certificate: String) throws -> SocketAddress {
        let setup = try XCTUnwrap(
            try TLSServerSetup(config: try TLSTestCertificates.config(certificate, skip: true), label: "server")
        )
        return try startServer { channel in
            try setup.addHandler(to: channel, logger: Logger(label: "server"))
            try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server))
        }
    }

    /// The outcome of a handshake check from a client trusting `ca` and expecting `name`: nil on success.
    private func check(
        _ address: SocketAddress, ca: String = "ca", name: String = "localhost", timeout: TimeAmount = .seconds(5)
    ) throws -> String? {
        let client = try XCTUnwrap(try TLSClientSetup(
            config: try TLSTestCertificates.config("client", ca: ca, name: name), label: "test"
        ))
        let channel = try ClientBootstrap(group: group).connect(to: address).wait()
        defer { channel.close(promise: nil) }
        let outcome = channel.eventLoop.flatSubmit { client.checkHandshake(on: channel, timeout: timeout) }
        do {
            try outcome.wait()
            return nil
        } catch {
            return "\(error)"
        }
    }

    func testATrustedServerPasses() throws {
        XCTAssertNil(try check(try tlsServer("server")))
    }

    func testAServerFromAnotherCAFailsWithTheReason() throws {
        let reason = try XCTUnwrap(try check(try tlsServer("other-server")))
        XCTAssertTrue(reason.contains("not issued by a trusted CA"), reason)
    }

    func testAServerCertificateForAnotherNameFails() throws {
        let reason = try XCTUnwrap(try check(try tlsServer("named-server"), name: "elsewhere.example"))
        XCTAssertTrue(reason.contains("not issued for the expected name"), reason)
    }

    func testAPlainHTTP2ServerDoesNotSpeakTLS() throws {
        let address = try startServer { channel in
            try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server))
        }
        let reason = try XCTUnwrap(try check(address))
        XCTAssertTrue(reason.contains("does not speak TLS") || reason.contains("closed the connection"), reason)
    }

    func testAServerThatNeverAnswersFailsAtTheTimeout() throws {
        let address = try startServer { _ in }
        let started = NIODeadline.now()
        let reason = try XCTUnwrap(try check(address, timeout: .milliseconds(300)))
        XCTAssertEqual(reason, "no answer to the TLS handshake within 300 ms")
        XCTAssertLessThan(NIODeadline.now() - started, .seconds(3))
    }
}
