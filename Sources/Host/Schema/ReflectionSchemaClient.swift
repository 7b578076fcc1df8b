// The host's own small gRPC client for one thing: pulling the Temporal schema by gRPC server reflection.
//
// Owns `ReflectionSchemaClient`: connecting to a `host:port` (plain TCP, or TLS with the local Temporal's
// `tcpClient.tls` setup), building the pipeline, and bounding the whole pull by a connect timeout and an overall
// timeout.
// What is said on the stream is `ReflectionStreamHandler`'s and `ReflectionPull`'s business. It keeps no state
// between pulls: every pull is one new connection, closed when the pull ends.

import Logging
import NIOCore
import NIOPosix

/// Pulls the schema of a gRPC server by server reflection (grpc.reflection.v1, falling back to v1alpha).
public struct ReflectionSchemaClient: Sendable {
    /// How the connection to the reflection server is secured.
    public enum TransportSecurity: Sendable {
        /// HTTP/2 over plain TCP with prior knowledge, as Temporal serves it without TLS.
        case plaintext
        /// HTTP/2 inside TLS set up by `setup`; failed handshakes are logged to `logger`.
        case tls(TLSClientSetup, logger: Logger)
    }

    /// How long the TCP connect may take.
    public var connectTimeout: TimeAmount
    /// How long the whole pull may take, connecting included.
    public var timeout: TimeAmount
    public var security: TransportSecurity

    public init(
        connectTimeout: TimeAmount = .seconds(5),
        timeout: TimeAmount = .seconds(30),
        security: TransportSecurity = .plaintext
    ) {
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.security = security
    }

    /// Connects to `target`, lists its services and collects the files that declare them, closed over imports.
    ///
    /// The future fails with a `TemporalSchemaError` that names `target` and says what to do: unreachable,
    /// no reflection (UNIMPLEMENTED for both versions), an error answer, a protocol violation, or the timeout.
    public func pull(from target: HostAndPort, on eventLoop: EventLoop) -> EventLoopFuture<TemporalSchema> {
        eventLoop.flatSubmit {
            startPull(from: target, on: eventLoop)
        }
    }

    private func startPull(from target: HostAndPort, on eventLoop: EventLoop) -> EventLoopFuture<TemporalSchema> {
        let scheme: String
        let tls: (setup: TLSClientSetup, logger: Logger)?
        switch security {
        case .plaintext:
            scheme = "http"
            tls = nil
        case .tls(let setup, let logger):
            scheme = "https"
            tls = (setup, logger)
        }
        let handler = ReflectionStreamHandler(target: target, scheme: scheme, timeout: timeout, eventLoop: eventLoop)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(min(connectTimeout, timeout))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try tls.setup.addHandler(to: channel, logger: tls.logger)
                    }
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(handler.engine)
                    try sync.addHandler(handler)
                }
            }
        // Go's dialer reads an empty host (":7233") as the local system; so does this client.
        let host = target.host.isEmpty ? "localhost" : target.host
        bootstrap.connect(host: host, port: target.port).whenFailure { error in
            handler.connectFailed(error)
        }
        return handler.result.futureResult
    }
}
