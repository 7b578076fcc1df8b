// Connection-level watcher of one accepted downstream HTTP/2 connection: logs its life, closes it on protocol
// errors (garbage bytes, a client that is not HTTP/2), and sends GOAWAY when the proxy drains.

import Logging
import NIOCore
import NIOHTTP2

final class ServerConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let logger: Logger
    private var reportedError = false

    init(logger: Logger) {
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        logger.info("connection opened")
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        logger.info("connection closed")
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Connection-level frames (SETTINGS, PING, GOAWAY) are handled by the HTTP/2 handler; nothing to do.
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !reportedError {
            reportedError = true
            logger.warning("closing connection after protocol error", metadata: ["error": "\(NetworkErrorDescription.describe(error))"])
        }
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is DrainRequest {
            // Tell the client no new streams will be accepted; streams in flight continue.
            let goAway = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: .maxID, errorCode: .noError, opaqueData: nil))
            context.writeAndFlush(wrapOutboundOut(goAway), promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Sent down a connection's pipeline when the proxy starts draining.
struct DrainRequest {}
