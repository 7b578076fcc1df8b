// One HTTP/2 client connection to one upstream address.
//
// Owns the TCP channel, the HTTP/2 handler and its stream multiplexer; tells its pool when the upstream says
// GOAWAY (no new streams) and when the connection is gone. It never retries anything itself: that is the pool's job.

import Logging
import NIOCore
import NIOHTTP2
import NIOPosix

/// An established HTTP/2 connection to an upstream, used for many calls at once.
final class UpstreamConnection {
    let channel: Channel
    let address: SocketAddress
    private let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    /// Set once the upstream sent GOAWAY: in-flight streams finish, new ones go elsewhere.
    private(set) var isDraining = false

    private init(channel: Channel, address: SocketAddress, multiplexer: NIOHTTP2Handler.StreamMultiplexer) {
        self.channel = channel
        self.address = address
        self.multiplexer = multiplexer
    }

    /// Connects to `address` on `eventLoop` and speaks HTTP/2 with prior knowledge.
    ///
    /// `onGoAway` runs on the event loop when the upstream announces it will accept no new streams.
    static func connect(
        to address: SocketAddress,
        on eventLoop: EventLoop,
        connectTimeout: TimeAmount,
        tuning: HTTP2Tuning,
        onGoAway: @escaping () -> Void
    ) -> EventLoopFuture<UpstreamConnection> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let multiplexer = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                        mode: .client,
                        connectionConfiguration: tuning.connectionConfiguration,
                        streamConfiguration: tuning.streamConfiguration,
                        inboundStreamInitializer: { pushed in
                            // gRPC never uses server push; refuse any pushed stream.
                            pushed.close()
                        }
                    )
                    try channel.pipeline.syncOperations.addHandler(ConnectionEventsHandler(onGoAway: onGoAway))
                    try channel.pipeline.syncOperations.addHandler(MultiplexerHolder(multiplexer))
                }
            }
        return bootstrap.connect(to: address).flatMapThrowing { channel in
            let holder = try channel.pipeline.syncOperations.handler(type: MultiplexerHolder.self)
            return UpstreamConnection(channel: channel, address: address, multiplexer: holder.multiplexer)
        }
    }

    /// Opens a new HTTP/2 stream; `initializer` configures its pipeline before any frame flows.
    func openStream(_ initializer: @escaping (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        multiplexer.createStreamChannel { channel in initializer(channel) }
    }

    func markDraining() {
        isDraining = true
    }

    /// Closes the connection; streams on it end.
    func close() {
        channel.close(promise: nil)
    }
}

/// Keeps the stream multiplexer reachable from the channel after the bootstrap's initializer returns.
private final class MultiplexerHolder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any
    let multiplexer: NIOHTTP2Handler.StreamMultiplexer

    init(_ multiplexer: NIOHTTP2Handler.StreamMultiplexer) {
        self.multiplexer = multiplexer
    }
}

/// Watches connection-level frames for GOAWAY and swallows what no one else needs.
private final class ConnectionEventsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    private let onGoAway: () -> Void

    init(onGoAway: @escaping () -> Void) {
        self.onGoAway = onGoAway
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if case .goAway = frame.payload {
            onGoAway()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A connection-level protocol error: the connection is unusable. Closing it lets the pool reconnect.
        context.close(promise: nil)
    }
}
