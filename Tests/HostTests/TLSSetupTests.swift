// TLS blocks turned into setups: the Go proxy's enablement matrix, the CA bundle rules, the errors that name the key
// at fault, what `validate` says, and real handshakes over loopback between the two setups.
//
// Certificates come from Tests/Fixtures/tls/generate.sh (`TLSTestCertificates`).

import Foundation
@testable import Host
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import XCTest

final class TLSSetupTests: XCTestCase {
    private func file(_ name: String) throws -> String {
        try TLSTestCertificates.path(name)
    }

    /// Writes `text` to a new file in the certificate directory and returns its path.
    private func write(_ name: String, _ text: String) throws -> String {
        let path = try file(name)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func read(_ name: String) throws -> String {
        try String(contentsOfFile: try file(name), encoding: .utf8)
    }

    private func setupError(_ body: () throws -> Void, line: UInt = #line) -> TLSSetupError? {
        do {
            try body()
            XCTFail("expected a TLSSetupError", line: line)
            return nil
        } catch let error as TLSSetupError {
            return error
        } catch {
            XCTFail("expected a TLSSetupError, got \(error)", line: line)
            return nil
        }
    }

    // MARK: - Enablement (reference 8.4 item 32)

    func testEnablementMatrixMatchesTheGoProxy() {
        let cases: [(String, TLSConfig, Bool)] = [
            (
                "cert+key+CA+name",
                TLSConfig(certificatePath: "c", keyPath: "k", remoteCAPath: "ca", caServerName: "n"),
                true
            ),
            ("cert+key only", TLSConfig(certificatePath: "c", keyPath: "k"), true),
            ("name+CA", TLSConfig(remoteCAPath: "ca", caServerName: "n"), true),
            ("name only (system roots)", TLSConfig(caServerName: "n"), true),
            ("nothing", TLSConfig(), false),
            ("cert+name", TLSConfig(certificatePath: "c", caServerName: "n"), true),
            ("cert only", TLSConfig(certificatePath: "c"), false),
            ("CA only", TLSConfig(remoteCAPath: "ca"), false),
            ("skipCAVerification only", TLSConfig(skipCAVerification: true), false),
        ]
        for (name, config, enabled) in cases {
            XCTAssertEqual(config.isEnabled, enabled, name)
        }
    }

    func testDisabledBlocksBuildNoSetup() throws {
        for config in [TLSConfig(), TLSConfig(certificatePath: "c"), TLSConfig(remoteCAPath: "ca")] {
            XCTAssertNil(try TLSServerSetup(config: config, label: "l"))
            XCTAssertNil(try TLSClientSetup(config: config, label: "l"))
        }
    }

    func testClientWithEverythingVerifiesTheServerByName() throws {
        let setup = try XCTUnwrap(try TLSClientSetup(config: TLSConfig(
            certificatePath: try file("client.pem"), keyPath: try file("client.key"),
            remoteCAPath: try file("ca.pem"), caServerName: "localhost"
        ), label: "l"))
        XCTAssertTrue(setup.verifiesServer)
        XCTAssertEqual(setup.serverHostname, "localhost")
    }

    func testClientWithNameOnlyUsesTheSystemTrustStore() throws {
        let setup = try XCTUnwrap(try TLSClientSetup(config: TLSConfig(caServerName: "temporal.example"), label: "l"))
        XCTAssertTrue(setup.verifiesServer)
    }

    func testClientWithAnIPAddressAsServerNameSendsNoSNI() throws {
        let setup = try XCTUnwrap(try TLSClientSetup(
            config: TLSConfig(remoteCAPath: try file("ca.pem"), caServerName: "127.0.0.1"), label: "l"
        ))
        XCTAssertNil(setup.serverHostname)
    }

    func testClientThatVerifiesNeedsAServerName() throws {
        let error = setupError {
            _ = try TLSClientSetup(config: TLSConfig(
                certificatePath: try file("client.pem"), keyPath: try file("client.key")
            ), label: "conn.remote.tcpClient.tls")
        }
        XCTAssertEqual(error?.key, "caServerName")
        XCTAssertTrue(error?.description.hasPrefix("conn.remote.tcpClient.tls.caServerName: missing") ?? false)
    }

    func testClientThatSkipsVerificationNeedsNoServerName() throws {
        let setup = try XCTUnwrap(try TLSClientSetup(config: TLSConfig(
            certificatePath: try file("client.pem"), keyPath: try file("client.key"), skipCAVerification: true
        ), label: "l"))
        XCTAssertFalse(setup.verifiesServer)
    }

    func testCertificateWithoutKeyIsAnError() throws {
        let error = setupError {
            _ = try TLSClientSetup(
                config: TLSConfig(certificatePath: try file("client.pem"), caServerName: "n"), label: "l"
            )
        }
        XCTAssertEqual(error?.key, "keyPath")
    }

    func testServerNeedsACertificate() {
        let error = setupError { _ = try TLSServerSetup(config: TLSConfig(caServerName: "n"), label: "l") }
        XCTAssertEqual(error?.key, "certificatePath")
    }

    func testServerThatVerifiesClientsNeedsACABundle() throws {
        let error = setupError {
            _ = try TLSServerSetup(config: TLSConfig(
                certificatePath: try file("server.pem"), keyPath: try file("server.key")
            ), label: "l")
        }
        XCTAssertEqual(error?.key, "remoteCAPath")
    }

    func testServerVerifiesClientsUnlessSkipped() throws {
        let verifying = try XCTUnwrap(try TLSServerSetup(config: TLSConfig(
            certificatePath: try file("server.pem"), keyPath: try file("server.key"), remoteCAPath: try file("ca.pem")
        ), label: "l"))
        XCTAssertTrue(verifying.verifiesClients)
        let open = try XCTUnwrap(try TLSServerSetup(config: TLSConfig(
            certificatePath: try file("server.pem"), keyPath: try file("server.key"), skipCAVerification: true
        ), label: "l"))
        XCTAssertFalse(open.verifiesClients)
    }

    // MARK: - Files

    func testMissingFileNamesTheKeyAndThePath() throws {
        let error = setupError {
            _ = try TLSServerSetup(config: TLSConfig(
                certificatePath: "/nonexistent/server.pem", keyPath: try file("server.key"), skipCAVerification: true
            ), label: "clusterConnections[0].remote.tcpServer.tls")
        }
        XCTAssertEqual(error?.key, "certificatePath")
        XCTAssertEqual(
            error?.description,
            "clusterConnections[0].remote.tcpServer.tls.certificatePath: no such file \"/nonexistent/server.pem\" "
                + "(a relative path starts at the current directory, as in the Go proxy)"
        )
    }

    func testKeyOfAnotherCertificateIsRefused() throws {
        let error = setupError {
            _ = try TLSServerSetup(config: TLSConfig(
                certificatePath: try file("server.pem"), keyPath: try file("client.key"), skipCAVerification: true
            ), label: "l")
        }
        XCTAssertEqual(error?.key, "keyPath")
        XCTAssertTrue(
            error?.message.contains("does not match the certificate") ?? false, "\(String(describing: error))"
        )
    }

    func testFileWithoutAKeyIsRefused() throws {
        let error = setupError {
            _ = try TLSServerSetup(config: TLSConfig(
                certificatePath: try file("server.pem"), keyPath: try file("server.pem"), skipCAVerification: true
            ), label: "l")
        }
        XCTAssertEqual(error?.key, "keyPath")
    }

    func testCertificateFileWithoutACertificateIsRefused() throws {
        let error = setupError {
            _ = try TLSServerSetup(config: TLSConfig(
                certificatePath: try file("server.key"), keyPath: try file("server.key"), skipCAVerification: true
            ), label: "l")
        }
        XCTAssertEqual(error?.key, "certificatePath")
        XCTAssertTrue(error?.message.contains("no PEM CERTIFICATE block") ?? false)
    }

    // MARK: - CA bundle rules

    private func bundle(_ path: String) throws -> [Any] {
        try TLSFiles(label: "l").caBundle(at: path, key: "remoteCAPath")
    }

    func testCABundleOfOneCAIsAccepted() throws {
        XCTAssertEqual(try bundle(try file("ca.pem")).count, 1)
    }

    func testCABundleKeepsOnlyTheCAsOfAMixedBundle() throws {
        let mixed = try write("mixed.pem", try read("server.pem") + read("ca.pem") + read("other-ca.pem"))
        XCTAssertEqual(try bundle(mixed).count, 2)
    }

    func testCABundleSkipsBlocksThatAreNotCertificates() throws {
        let withKey = try write("with-key.pem", try read("ca.key") + "some comment\n" + read("ca.pem"))
        XCTAssertEqual(try bundle(withKey).count, 1)
    }

    func testCABundleOfLeavesOnlyIsRefused() throws {
        let leaves = try write("leaves.pem", try read("server.pem") + read("client.pem"))
        let error = setupError { _ = try bundle(leaves) }
        XCTAssertTrue(error?.message.hasPrefix("no usable CA certificates found in bundle") ?? false)
    }

    func testCABundleWithoutPEMIsRefused() throws {
        let empty = try write("empty.pem", "not a PEM file\n")
        let error = setupError { _ = try bundle(empty) }
        XCTAssertTrue(error?.message.hasPrefix("no usable CA certificates found in bundle") ?? false)
    }

    func testCABundleWithAnUnparsableCertificateIsAnError() throws {
        let broken = try write(
            "broken.pem",
            try read("ca.pem") + "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n"
        )
        let error = setupError { _ = try bundle(broken) }
        XCTAssertEqual(error?.key, "remoteCAPath")
        XCTAssertTrue(error?.message.contains("PEM block 2") ?? false, "\(String(describing: error))")
    }

    func testCABundleURLsAreRefusedWithoutFetching() {
        let https = setupError { _ = try bundle("https://certs.example/ca.pem") }
        XCTAssertTrue(https?.message.contains("not supported") ?? false)
        let http = setupError { _ = try bundle("http://certs.example/ca.pem") }
        XCTAssertTrue(http?.message.contains("plain http") ?? false)
    }

    func testBasicConstraintsDecoding() {
        XCTAssertTrue(NIOSSLCertificateCA.says([0x30, 0x03, 0x01, 0x01, 0xFF]))
        XCTAssertTrue(NIOSSLCertificateCA.says([0x30, 0x06, 0x01, 0x01, 0xFF, 0x02, 0x01, 0x00]))
        XCTAssertFalse(NIOSSLCertificateCA.says([0x30, 0x00]), "cA defaults to false")
        XCTAssertFalse(NIOSSLCertificateCA.says([0x30, 0x03, 0x01, 0x01, 0x00]))
        XCTAssertFalse(NIOSSLCertificateCA.says([0x30, 0x05, 0x01, 0x01, 0xFF]), "length beyond the value")
        XCTAssertFalse(NIOSSLCertificateCA.says([]))
    }

    func testPEMBlocksIgnoreHeadersAndUnterminatedBlocks() {
        let text = """
            junk
            -----BEGIN CERTIFICATE-----
            Proc-Type: 4,ENCRYPTED
            AAEC
            -----END CERTIFICATE-----
            -----BEGIN PRIVATE KEY-----
            AAEC
            """
        XCTAssertEqual(PEMBlock.blocks(in: text), [PEMBlock(label: "CERTIFICATE", der: [0, 1, 2])])
    }

    // MARK: - validate

    private func config(server tls: String, client clientTLS: String = "") -> String {
        """
        clusterConnections:
          - name: a
            local:
              connectionType: tcp
              tcpClient: {address: "a:1"\(clientTLS)}
              tcpServer: {address: ":2"}
            remote:
              connectionType: tcp
              tcpClient: {address: "b:1"}
              tcpServer:
                address: ":3"
                tls: \(tls)
        """
    }

    func testValidateReportsTLSProblemsAtTheirKeyAndLine() throws {
        let yaml = config(server: "{certificatePath: /nonexistent/c.pem, keyPath: /nonexistent/k.pem}")
        XCTAssertThrowsError(try ConfigLoader.parse(yaml: yaml, sourceName: "config.yaml")) { error in
            let errors = (error as? ConfigErrors)?.errors ?? []
            XCTAssertEqual(errors.map(\.keyPath), ["clusterConnections[0].remote.tcpServer.tls.certificatePath"])
            XCTAssertEqual(errors.first?.line, 12)
            XCTAssertTrue(errors.first?.message.contains("no such file") ?? false)
        }
    }

    func testValidateAcceptsWorkingTLSAndNoLongerCallsItUnsupported() throws {
        let server = "{certificatePath: \(try file("server.pem")), keyPath: \(try file("server.key")), "
            + "remoteCAPath: \(try file("ca.pem"))}"
        let client = ", tls: {remoteCAPath: \(try file("ca.pem")), caServerName: localhost}"
        let loaded = try ConfigLoader.parse(yaml: config(server: server, client: client), sourceName: "config.yaml")
        XCTAssertEqual(loaded.unsupported, [])
        XCTAssertEqual(loaded.warnings, [])
    }

    func testValidateWarnsWhenABlockLeavesTLSOff() throws {
        let loaded = try ConfigLoader.parse(
            yaml: config(server: "{remoteCAPath: \(try file("ca.pem"))}"), sourceName: "config.yaml"
        )
        XCTAssertEqual(loaded.unsupported, [])
        XCTAssertEqual(loaded.warnings.count, 1)
        XCTAssertTrue(
            loaded.warnings.first?.hasPrefix("config.yaml:12:") ?? false, "\(loaded.warnings)"
        )
        XCTAssertTrue(loaded.warnings.first?.contains("TLS stays off") ?? false)
    }

    // MARK: - Handshakes over loopback

    /// How one handshake went on each side, and what the server's observer logged.
    private struct Handshake {
        var client: Result<String?, Error>
        var server: Result<String?, Error>
        var serverLog: [String]

        var serverFailureLogged: String? { serverLog.first { $0.contains("TLS handshake failed") } }
    }

    private func handshake(server serverConfig: TLSConfig, client clientConfig: TLSConfig) async throws -> Handshake {
        let server = try XCTUnwrap(try TLSServerSetup(config: serverConfig, label: "server"))
        let client = try XCTUnwrap(try TLSClientSetup(config: clientConfig, label: "client"))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let logged = NIOLockedValueBox<[String]>([])
        let serverLogger = Logger(label: "server") { _ in TLSLogCapture(messages: logged) }
        let serverOutcome = loop.makePromise(of: String?.self)
        let clientOutcome = loop.makePromise(of: String?.self)
        var channels: [Channel] = []
        do {
            let listener = try await ServerBootstrap(group: group)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try server.addHandler(to: channel, logger: serverLogger)
                        try channel.pipeline.syncOperations.addHandler(HandshakeOutcome(promise: serverOutcome))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            channels.append(listener)
            let connection = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try client.addHandler(to: channel, logger: Logger(label: "client"))
                        try channel.pipeline.syncOperations.addHandler(HandshakeOutcome(promise: clientOutcome))
                    }
                }
                .connect(to: try XCTUnwrap(listener.localAddress)).get()
            channels.append(connection)
        } catch {
            clientOutcome.fail(error)
            serverOutcome.fail(error)
        }
        loop.scheduleTask(in: .seconds(10)) {
            clientOutcome.fail(ChannelError.connectTimeout(.seconds(10)))
            serverOutcome.fail(ChannelError.connectTimeout(.seconds(10)))
        }
        let clientResult = await outcome(of: clientOutcome.futureResult)
        let serverResult = await outcome(of: serverOutcome.futureResult)
        for channel in channels.reversed() {
            try? await channel.close()
        }
        try? await group.shutdownGracefully()
        return Handshake(client: clientResult, server: serverResult, serverLog: logged.withLockedValue { $0 })
    }

    private func outcome(of future: EventLoopFuture<String?>) async -> Result<String?, Error> {
        do {
            return .success(try await future.get())
        } catch {
            return .failure(error)
        }
    }

    private func tls(
        _ certificate: String?, ca: String? = nil, name: String = "", skip: Bool = false
    ) throws -> TLSConfig {
        try TLSTestCertificates.config(certificate, ca: ca, name: name, skip: skip)
    }

    private func failure(_ result: Result<String?, Error>, line: UInt = #line) -> String {
        switch result {
        case .success(let negotiated):
            XCTFail("the handshake succeeded (ALPN \(negotiated ?? "none"))", line: line)
            return ""
        case .failure(let error):
            return NetworkErrorDescription.describe(error)
        }
    }

    func testMutualTLSHandshakeNegotiatesH2() async throws {
        let outcome = try await handshake(
            server: try tls("server", ca: "ca"), client: try tls("client", ca: "ca", name: "localhost")
        )
        XCTAssertEqual(try outcome.client.get(), "h2")
        XCTAssertEqual(try outcome.server.get(), "h2")
    }

    func testServerNameAsIPAddressIsCheckedAgainstTheCertificate() async throws {
        let outcome = try await handshake(
            server: try tls("server", ca: "ca"), client: try tls("client", ca: "ca", name: "127.0.0.1")
        )
        XCTAssertEqual(try outcome.client.get(), "h2")
    }

    func testServerRefusesAClientWithoutCertificateAndLogsWhy() async throws {
        let outcome = try await handshake(
            server: try tls("server", ca: "ca"), client: try tls(nil, ca: "ca", name: "localhost")
        )
        _ = failure(outcome.server)
        let logged = try XCTUnwrap(outcome.serverFailureLogged, "\(outcome.serverLog)")
        XCTAssertTrue(logged.contains("the client sent no certificate"), logged)
        XCTAssertTrue(logged.contains("peer"), logged)
    }

    func testServerRefusesAClientCertificateOfAnotherCAAndLogsWhy() async throws {
        let outcome = try await handshake(
            server: try tls("server", ca: "ca"), client: try tls("other-client", ca: "ca", name: "localhost")
        )
        _ = failure(outcome.server)
        let logged = try XCTUnwrap(outcome.serverFailureLogged, "\(outcome.serverLog)")
        XCTAssertTrue(logged.contains("not issued by a trusted CA"), logged)
    }

    func testServerRefusesAPeerThatDoesNotSpeakTLS() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let logged = NIOLockedValueBox<[String]>([])
        let serverLogger = Logger(label: "server") { _ in TLSLogCapture(messages: logged) }
        let server = try XCTUnwrap(try TLSServerSetup(config: try tls("server", skip: true), label: "server"))
        let listener = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try server.addHandler(to: channel, logger: serverLogger) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let plain = try await ClientBootstrap(group: group).connect(to: try XCTUnwrap(listener.localAddress)).get()
        try await plain.writeAndFlush(ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
        try await plain.closeFuture.get()
        try? await listener.close()
        try? await group.shutdownGracefully()
        let message = logged.withLockedValue { $0 }.first { $0.contains("TLS handshake failed") } ?? ""
        XCTAssertTrue(message.contains("does not speak TLS"), message)
    }

    func testClientRefusesAServerOfAnotherCA() async throws {
        let outcome = try await handshake(
            server: try tls("other-server", skip: true), client: try tls(nil, ca: "ca", name: "localhost")
        )
        XCTAssertTrue(failure(outcome.client).contains("not issued by a trusted CA"))
    }

    func testClientChecksTheServerName() async throws {
        let named = try await handshake(
            server: try tls("named-server", skip: true), client: try tls(nil, ca: "ca", name: "localhost")
        )
        XCTAssertEqual(try named.client.get(), "h2")
        let other = try await handshake(
            server: try tls("named-server", skip: true), client: try tls(nil, ca: "ca", name: "elsewhere.example")
        )
        let reason = failure(other.client)
        XCTAssertTrue(reason.contains("not issued for the expected name"), reason)
    }

    func testClientThatSkipsVerificationAcceptsAnyServer() async throws {
        let outcome = try await handshake(
            server: try tls("other-server", skip: true), client: try tls("client", skip: true)
        )
        XCTAssertEqual(try outcome.client.get(), "h2")
    }
}

/// Decoding of the basic-constraints value, under a test-friendly name.
private enum NIOSSLCertificateCA {
    static func says(_ der: [UInt8]) -> Bool {
        NIOSSLCertificate.basicConstraintsSayCA(der)
    }
}

/// Completes `promise` with the negotiated ALPN protocol, or with the error that ended the handshake. A client whose
/// certificate is refused may see its handshake complete (TLS 1.3 ends the client's part first) and the refusal
/// arrive as an alert on the first read; the server side is where such refusals are asserted.
private final class HandshakeOutcome: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let promise: EventLoopPromise<String?>

    init(promise: EventLoopPromise<String?>) {
        self.promise = promise
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted(let negotiated) = event {
            promise.succeed(negotiated)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }
}

/// Keeps every logged line with its metadata.
private struct TLSLogCapture: LogHandler {
    let messages: NIOLockedValueBox<[String]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        messages.withLockedValue { $0.append("\(event.level): \(event.message) \(event.metadata ?? [:])") }
    }
}
