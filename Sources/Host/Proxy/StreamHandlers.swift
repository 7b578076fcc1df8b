// The two channel handlers of a forwarded call. They only translate channel events into `ProxyCall` calls; the
// call holds the logic.

import NIOCore
import NIOHTTP2

/// Sits on a downstream (client-initiated) HTTP/2 stream channel.
final class DownstreamStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let call: ProxyCall

    init(call: ProxyCall) {
        self.call = call
    }

    func handlerAdded(context: ChannelHandlerContext) {
        call.downstreamAdded(context)
        if context.channel.isActive {
            call.downstreamActive()
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        call.downstreamActive()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        call.downstreamRead(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        call.downstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        call.downstreamWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Stream-level errors (a reset from the client) are followed by channelInactive, which ends the call.
    }

    func channelInactive(context: ChannelHandlerContext) {
        call.downstreamInactive()
        context.fireChannelInactive()
    }
}

/// Sits on the upstream (proxy-initiated) HTTP/2 stream channel of a call.
final class UpstreamStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let call: ProxyCall

    init(call: ProxyCall) {
        self.call = call
    }

    func handlerAdded(context: ChannelHandlerContext) {
        call.upstreamAdded(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        call.upstreamRead(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        call.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        call.upstreamWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        call.upstreamError(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        call.upstreamInactive()
        context.fireChannelInactive()
    }
}
