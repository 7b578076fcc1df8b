// The HTTP/1.1 listener on `metrics.prometheus.listenAddress`: `GET /metrics` answers with the Prometheus text
// of `ProxyMetrics`; other paths get 404, other methods 405. Plain TCP, like the Go proxy's endpoint.

import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves `/metrics` until stopped.
final class MetricsEndpoint: Sendable {
    let bindTarget: HostAndPort
    private let metrics: ProxyMetrics
    private let logger: Logger
    private let channel = NIOLockedValueBox<Channel?>(nil)

    init(bindTarget: HostAndPort, metrics: ProxyMetrics, logger: Logger) {
        self.bindTarget = bindTarget
        self.metrics = metrics
        self.logger = logger
    }

    /// Binds the socket; the error names the address when it cannot.
    func start(group: EventLoopGroup) async throws {
        let metrics = self.metrics
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(MetricsRequestHandler(metrics: metrics))
                }
            }
        let host = bindTarget.host.isEmpty ? "0.0.0.0" : bindTarget.host
        let bound: Channel
        do {
            bound = try await bootstrap.bind(host: host, port: bindTarget.port).get()
        } catch {
            throw ListenerBindError(listener: "metrics", address: bindTarget, underlying: error)
        }
        channel.withLockedValue { $0 = bound }
        logger.info("metrics endpoint listening", metadata: [
            "address": "\(bound.localAddress?.endpointDescription ?? "\(bindTarget)")",
        ])
    }

    func stop() async {
        let bound = channel.withLockedValue { value -> Channel? in
            defer { value = nil }
            return value
        }
        try? await bound?.close()
    }
}

/// Answers each HTTP request on one connection.
private final class MetricsRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let metrics: ProxyMetrics
    private var request: HTTPRequestHead?

    init(metrics: ProxyMetrics) {
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let status: HTTPResponseStatus
        let body: String
        var contentType = "text/plain; charset=utf-8"
        if path != "/metrics" {
            (status, body) = (.notFound, "not found; metrics are at /metrics\n")
        } else if head.method != .GET && head.method != .HEAD {
            (status, body) = (.methodNotAllowed, "use GET\n")
        } else {
            (status, body) = (.ok, metrics.render())
            contentType = "text/plain; version=0.0.4; charset=utf-8"
        }
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: String(buffer.readableBytes))
        if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
                      promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let keepAlive = head.isKeepAlive
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }
}
