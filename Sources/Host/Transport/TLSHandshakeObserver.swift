// The handler right behind the TLS handler of every TLS connection: it reports how the handshake went.
//
// Owns `TLSHandshakeObserver`. A failed handshake (wrong CA, no client certificate, a peer that does not speak TLS)
// is logged once at warning with the reason (at info when the peer only closed the connection before the
// handshake finished); the connection is closed and, on an accepted connection, the error
// goes no further, so the HTTP/2 or yamux handlers behind never see a connection that did not start. On a dialled
// connection the error is passed on: the dialler reports it as the reason the connect failed. It does not
// decide anything about certificates: NIOSSL and the `TLSConfiguration` built by `TLSServerSetup`/`TLSClientSetup`
// do.

import Logging
import NIOCore
import NIOSSL
import NIOTLS

final class TLSHandshakeObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    /// Which end of the handshake this connection is.
    enum Role: String {
        case server
        case client
    }

    private let role: Role
    private let label: String
    private let logger: Logger
    private var handshakeCompleted = false
    private var reportedFailure = false

    /// Observes one connection's handshake; `logger` is the `tlsHandshake` logger of the listener or upstream (lines
    /// name the peer themselves), `label` is the `tls:` block's key path.
    init(role: Role, label: String, logger: Logger) {
        self.role = role
        self.label = label
        self.logger = logger
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted(let negotiatedProtocol) = event {
            handshakeCompleted = true
            logger.debug("TLS handshake completed", metadata: [
                "tls": "\(label)",
                "peer": "\(context.channel.remoteAddress?.endpointDescription ?? "?")",
                "alpn": "\(negotiatedProtocol ?? "none")",
            ])
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard handshakeCompleted else {
            if !reportedFailure {
                reportedFailure = true
                // A peer that connects and leaves without a word (a TCP health probe, a port scan) refused nothing
                // and was refused nothing: worth a line, not a warning.
                let level: Logger.Level = Self.closedBeforeHandshake(error) ? .info : .warning
                logger.log(level: level, "TLS handshake failed", metadata: [
                    "tls": "\(label)",
                    "role": "\(role.rawValue)",
                    "peer": "\(context.channel.remoteAddress?.endpointDescription ?? "?")",
                    "reason": "\(TLSFailureDescription.describe(error))",
                ])
            }
            // The dialler hears the reason before the connection closes under it.
            if role == .client {
                context.fireErrorCaught(error)
            }
            context.close(promise: nil)
            return
        }
        if case NIOSSLError.uncleanShutdown = error {
            // The peer closed TCP without TLS close_notify. HTTP/2 frames its own ending (GOAWAY, END_STREAM), so no
            // data can have been cut off unnoticed; many clients close this way.
            logger.debug("TLS peer closed without close_notify", metadata: [
                "tls": "\(label)",
                "peer": "\(context.channel.remoteAddress?.endpointDescription ?? "?")",
            ])
            return
        }
        if error is BoringSSLError || error is NIOSSLError {
            // Under TLS 1.3 a server refuses a client certificate only after the client's side of the handshake
            // has ended: the refusal arrives here, as an alert on the first read.
            logger.warning("TLS connection failed", metadata: [
                "tls": "\(label)",
                "role": "\(role.rawValue)",
                "peer": "\(context.channel.remoteAddress?.endpointDescription ?? "?")",
                "reason": "\(TLSFailureDescription.describe(error))",
            ])
        }
        context.fireErrorCaught(error)
    }

    private static func closedBeforeHandshake(_ error: Error) -> Bool {
        if case NIOSSLError.handshakeFailed(.sslError(let stack)) = error {
            return stack == [.eofDuringHandshake]
        }
        return false
    }
}
