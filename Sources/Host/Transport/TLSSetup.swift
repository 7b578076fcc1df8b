// TLS for one endpoint of the configuration, built once at start from its `tls:` block.
//
// Owns `TLSServerSetup` (accepted connections of a listener) and `TLSClientSetup` (connections the proxy dials).
// Each checks its block, loads the files (`TLSFiles`) and builds one `NIOSSLContext` that every connection of the
// endpoint shares; `addHandler(to:logger:)` puts TLS at the front of a new connection's pipeline, with a
// `TLSHandshakeObserver` behind it. What runs above TLS (HTTP/2, yamux) is the caller's business.
//
// Enablement follows the Go proxy (`TLSConfig.isEnabled`): certificate and key both set, or caServerName set.
// One deliberate difference: a listener with `skipCAVerification: false` verifies client certificates against
// `remoteCAPath`, where the Go proxy only asks for one and accepts any (docs/ARCHITECTURE.md, "TLS").

import Logging
import NIOCore
import NIOSSL

/// The ALPN protocol both sides offer: gRPC needs HTTP/2, and the Go proxy advertises `h2` even on mux connections.
private let alpnProtocols = ["h2"]

/// How long a closing connection waits for the peer's TLS close_notify. Many peers (grpc-core among them) never
/// send one; HTTP/2 has said goodbye with GOAWAY by then, so a long wait only delays shutdown.
private let closeNotifyTimeout = TimeAmount.seconds(1)

/// TLS for the connections a listener accepts.
public struct TLSServerSetup: Sendable {
    /// The `tls:` block's key path, for logs and errors.
    public let label: String
    /// Whether clients must present a certificate issued by a CA of `remoteCAPath`.
    public let verifiesClients: Bool
    private let context: NIOSSLContext

    /// Builds the setup for the block `config`, labelled `label` (its key path); nil when the block leaves TLS off.
    ///
    /// Reads every file now: does blocking I/O, so call it at start-up, not on an event loop.
    /// - Throws: `TLSSetupError` naming the key at fault: no certificate or key, unreadable files, a key that does
    ///   not match its certificate, a missing or unusable CA bundle.
    public init?(config: TLSConfig, label: String) throws(TLSSetupError) {
        guard config.isEnabled else { return nil }
        let files = TLSFiles(label: label)
        guard !config.certificatePath.isEmpty, !config.keyPath.isEmpty else {
            let missing = config.certificatePath.isEmpty ? "certificatePath" : "keyPath"
            throw TLSSetupError(
                label: label, key: missing,
                message: "missing; a TLS listener presents a certificate, so it needs both certificatePath and keyPath"
            )
        }
        let chain = try files.certificateChain(at: config.certificatePath, key: "certificatePath")
        let key = try files.privateKey(at: config.keyPath, key: "keyPath")
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        tls.applyProxyDefaults()
        if config.skipCAVerification {
            tls.certificateVerification = .none
        } else {
            guard !config.remoteCAPath.isEmpty else {
                throw TLSSetupError(
                    label: label, key: "remoteCAPath",
                    message: "missing; with skipCAVerification false a TLS listener requires client certificates "
                        + "and verifies them against this CA bundle (set skipCAVerification: true to accept "
                        + "clients without a certificate)"
                )
            }
            tls.trustRoots = .certificates(try files.caBundle(at: config.remoteCAPath, key: "remoteCAPath"))
            // Requires a certificate and verifies its chain; clients have no host name to check.
            tls.certificateVerification = .noHostnameVerification
        }
        self.label = label
        self.verifiesClients = !config.skipCAVerification
        self.context = try makeContext(tls, label: label, keyPath: config.keyPath)
    }

    /// Puts the TLS server handler (and the handshake observer behind it) at the front of `channel`'s pipeline.
    ///
    /// Call on the channel's event loop, before the first read; `logger` should carry the peer address. A failed
    /// handshake is logged at warning and closes the connection; nothing reaches the handlers behind.
    public func addHandler(to channel: Channel, logger: Logger) throws {
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(TLSHandshakeObserver(role: .server, label: label, logger: logger), position: .first)
        try sync.addHandler(NIOSSLServerHandler(context: context), position: .first)
    }
}

/// TLS for the connections the proxy dials.
public struct TLSClientSetup: Sendable {
    /// The `tls:` block's key path, for logs and errors.
    public let label: String
    /// The name sent as SNI and checked against the server's certificate (`caServerName`); nil when it is empty
    /// or an IP address (no SNI; the certificate is then checked against the address dialled).
    public let serverHostname: String?
    /// Whether the server's certificate is verified at all (`skipCAVerification` false).
    public let verifiesServer: Bool
    private let context: NIOSSLContext

    /// Builds the setup for the block `config`, labelled `label` (its key path); nil when the block leaves TLS off.
    ///
    /// Reads every file (and, without `remoteCAPath`, the system trust store) now: call it at start-up.
    /// - Throws: `TLSSetupError` naming the key at fault: no caServerName while verifying, a certificate without
    ///   its key, unreadable files, a key that does not match its certificate, an unusable CA bundle.
    public init?(config: TLSConfig, label: String) throws(TLSSetupError) {
        guard config.isEnabled else { return nil }
        let files = TLSFiles(label: label)
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.applyProxyDefaults()
        if config.skipCAVerification {
            tls.certificateVerification = .none
        } else {
            guard !config.caServerName.isEmpty else {
                throw TLSSetupError(
                    label: label, key: "caServerName",
                    message: "missing; to verify the server, set the name its certificate is issued for (or set "
                        + "skipCAVerification: true to connect without verifying it)"
                )
            }
            tls.certificateVerification = .fullVerification
            if config.remoteCAPath.isEmpty {
                tls.trustRoots = .default
            } else {
                tls.trustRoots = .certificates(try files.caBundle(at: config.remoteCAPath, key: "remoteCAPath"))
            }
        }
        if !config.certificatePath.isEmpty || !config.keyPath.isEmpty {
            guard !config.certificatePath.isEmpty, !config.keyPath.isEmpty else {
                let missing = config.certificatePath.isEmpty ? "certificatePath" : "keyPath"
                throw TLSSetupError(
                    label: label, key: missing,
                    message: "missing; a client certificate needs both certificatePath and keyPath"
                )
            }
            let chain = try files.certificateChain(at: config.certificatePath, key: "certificatePath")
            tls.certificateChain = chain.map { .certificate($0) }
            tls.privateKey = .privateKey(try files.privateKey(at: config.keyPath, key: "keyPath"))
        }
        let name = config.caServerName
        self.label = label
        self.serverHostname = name.isEmpty || (try? SocketAddress(ipAddress: name, port: 0)) != nil ? nil : name
        self.verifiesServer = !config.skipCAVerification
        self.context = try makeContext(tls, label: label, keyPath: config.keyPath)
    }

    /// Puts the TLS client handler (and the handshake observer behind it) at the front of `channel`'s pipeline.
    ///
    /// Call on the channel's event loop, before it connects. The handler sends `TLSUserEvent.handshakeCompleted`
    /// down the pipeline once the server is verified; a failed handshake is logged at warning, passed on as an
    /// error and closes the connection.
    public func addHandler(to channel: Channel, logger: Logger) throws {
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(TLSHandshakeObserver(role: .client, label: label, logger: logger), position: .first)
        try sync.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverHostname), position: .first)
    }
}

extension TLSClientSetup {
    /// Starts a TLS handshake on the connected `channel` that is only checked, not used: the future succeeds when
    /// the server passes this setup's verification, and fails with the reason (wrong CA, wrong name, a peer that
    /// does not speak TLS, no answer within `timeout`). Nothing is logged. Call on the channel's event loop.
    func checkHandshake(on channel: Channel, timeout: TimeAmount) -> EventLoopFuture<Void> {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        do {
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverHostname))
            try sync.addHandler(TLSHandshakeCheck(promise: promise, timeout: timeout))
        } catch {
            promise.fail(TLSHandshakeCheckError(
                description: "cannot start TLS: \(TLSFailureDescription.describe(error))"
            ))
        }
        return promise.futureResult
    }
}

/// The shared context; a failure here after every file loaded means the key is not the certificate's.
private func makeContext(
    _ tls: TLSConfiguration, label: String, keyPath: String
) throws(TLSSetupError) -> NIOSSLContext {
    do {
        return try NIOSSLContext(configuration: tls)
    } catch NIOSSLError.failedToLoadPrivateKey {
        throw TLSSetupError(
            label: label, key: "keyPath",
            message: "the private key in \"\(keyPath)\" does not match the certificate of certificatePath; give the "
                + "key the certificate was issued for"
        )
    } catch {
        throw TLSSetupError(
            label: label, key: "", message: "cannot set up TLS: \(TLSFailureDescription.describe(error))"
        )
    }
}

extension TLSConfiguration {
    /// What every TLS connection of the proxy shares, listening or dialling: TLS 1.2 or later, ALPN `h2`, and a
    /// short wait for close_notify.
    fileprivate mutating func applyProxyDefaults() {
        minimumTLSVersion = .tlsv12
        applicationProtocols = alpnProtocols
        shutdownTimeout = closeNotifyTimeout
    }
}
