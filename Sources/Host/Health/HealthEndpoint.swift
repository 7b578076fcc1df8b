// One HTTP/1.1 listener of a `localClusterHealthCheck` or `remoteClusterHealthCheck` block.
//
//   GET /health              200 `OK`, or 503 with what is missing (text/plain), for this connection and check
//   GET /debug/connections   the whole proxy's connections as JSON (ProxyDebugReport), on every health listener
//
// Each request is answered and the connection closed; load balancers poll with fresh connections anyway.
// Owns the socket and the routing; the verdicts and the report come from the closures it is given.

import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// An HTTP listener answering health checks and debug reports.
final class HealthEndpoint: Sendable {
    /// E.g. `itest/local health check`, for logs and errors.
    let name: String
    let bindTarget: HostAndPort
    private let routes: HealthRoutes
    private let logger: Logger
    private let serverChannel = NIOLockedValueBox<Channel?>(nil)

    init(
        name: String, bindTarget: HostAndPort, logger: Logger,
        check: @escaping @Sendable (EventLoop) -> EventLoopFuture<HealthVerdict>,
        debugReport: @escaping @Sendable (EventLoop) -> EventLoopFuture<ByteBuffer>
    ) {
        self.name = name
        self.bindTarget = bindTarget
        self.logger = logger
        routes = HealthRoutes(check: check, debugReport: debugReport)
    }

    /// The health listeners `connection` configures, answering `/health` for `status` and `/debug/connections`
    /// for every connection `allStatuses` returns. `connectionPath` is e.g. `clusterConnections[0]`, for errors.
    static func configured(
        by connection: ClusterConnectionConfig, at connectionPath: String, status: ClusterConnectionStatus,
        logger: Logger, counters: HealthCheckCounters? = nil,
        allStatuses: @escaping @Sendable () -> [ClusterConnectionStatus]
    ) throws -> [HealthEndpoint] {
        let blocks: [(key: String, check: HealthVerdict.Check, config: HealthCheckConfig?)] = [
            ("localClusterHealthCheck", .local, connection.localClusterHealthCheck),
            ("remoteClusterHealthCheck", .remote, connection.remoteClusterHealthCheck),
        ]
        return try blocks.compactMap { key, check, config in
            guard let config else { return nil }
            guard let target = HostAndPort(parsing: config.listenAddress) else {
                throw ProxyStartError(message: "\(connectionPath).\(key).listenAddress needs a host:port address")
            }
            let name = connection.name
            counters?.declare(configName: name, check: check)
            return HealthEndpoint(
                name: "\(name)/\(check.rawValue) health check", bindTarget: target, logger: logger,
                check: { loop in
                    let verdict = check == .local ? status.localVerdict(on: loop) : status.remoteVerdict(on: loop)
                    return verdict.map { verdict in
                        counters?.record(configName: name, check: check, healthy: verdict.statusCode == 200)
                        return verdict
                    }
                },
                debugReport: { loop in ProxyDebugReport.render(allStatuses(), on: loop) }
            )
        }
    }

    /// Binds the listener.
    func start(group: EventLoopGroup) async throws {
        let routes = self.routes
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(HealthRequestHandler(routes: routes))
                }
            }
        let host = bindTarget.host.isEmpty ? "0.0.0.0" : bindTarget.host
        let channel: Channel
        do {
            channel = try await bootstrap.bind(host: host, port: bindTarget.port).get()
        } catch {
            throw ListenerBindError(listener: name, address: bindTarget, underlying: error)
        }
        serverChannel.withLockedValue { $0 = channel }
        logger.info("listening", metadata: [
            "listener": "\(name)", "address": "\(channel.localAddress?.endpointDescription ?? "\(bindTarget)")",
        ])
    }

    /// Closes the listener; requests being answered finish on their own connections.
    func stop() async {
        let channel = serverChannel.withLockedValue { channel -> Channel? in
            defer { channel = nil }
            return channel
        }
        try? await channel?.close()
    }
}

/// What the endpoint answers, by path.
struct HealthRoutes: Sendable {
    let check: @Sendable (EventLoop) -> EventLoopFuture<HealthVerdict>
    let debugReport: @Sendable (EventLoop) -> EventLoopFuture<ByteBuffer>

    /// Status, content type and body for `method` and `uri`.
    func answer(method: HTTPMethod, uri: String, on loop: EventLoop) -> EventLoopFuture<HealthResponse> {
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first
            .map(String.init) ?? uri
        guard method == .GET || method == .HEAD else {
            return loop.makeSucceededFuture(.text(.methodNotAllowed, "use GET\n"))
        }
        switch path {
        case "/health":
            return check(loop).map { verdict in
                .text(HTTPResponseStatus(statusCode: verdict.statusCode), verdict.body)
            }
        case "/debug/connections":
            return debugReport(loop).map { HealthResponse(status: .ok, contentType: "application/json", body: $0) }
        default:
            return loop.makeSucceededFuture(.text(.notFound, "not found; try /health or /debug/connections\n"))
        }
    }
}

/// One HTTP answer.
struct HealthResponse: Sendable {
    var status: HTTPResponseStatus
    var contentType: String
    var body: ByteBuffer

    static func text(_ status: HTTPResponseStatus, _ text: String) -> HealthResponse {
        HealthResponse(status: status, contentType: "text/plain; charset=utf-8", body: ByteBuffer(string: text))
    }
}

/// Answers one request per connection, then closes it.
private final class HealthRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let routes: HealthRoutes
    private var head: HTTPRequestHead?

    init(routes: HealthRoutes) {
        self.routes = routes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
        case .body:
            break
        case .end:
            guard let requestHead = head else { return }
            head = nil
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            routes.answer(method: requestHead.method, uri: requestHead.uri, on: context.eventLoop).whenComplete {
                let (handler, context) = bound.value
                switch $0 {
                case .success(let response):
                    handler.write(response, for: requestHead, context: context)
                case .failure(let error):
                    handler.write(.text(.internalServerError, "\(error)\n"), for: requestHead,
                                  context: context)
                }
            }
        }
    }

    private func write(_ response: HealthResponse, for request: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: "\(response.body.readableBytes)")
        headers.add(name: "Connection", value: "close")
        let head = HTTPResponseHead(version: request.version, status: response.status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
