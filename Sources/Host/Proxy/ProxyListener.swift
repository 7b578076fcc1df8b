// One listening socket of a cluster connection (outbound: `local.tcpServer`; inbound: `remote.tcpServer`).
//
// Every accepted connection speaks HTTP/2 (prior knowledge, as gRPC does in cleartext; inside TLS when the listener's
// `tls:` block enables it); every stream on it becomes a `ProxyCall` to this listener's upstream.

import Logging
import NIOConcurrencyHelpers
import HTTP2Forwarding
import NIOCore
import NIOHTTP2
import NIOPosix

final class ProxyListener: Sendable {
    let context: ListenerContext
    let bindTarget: HostAndPort
    private let tuning: HTTP2Tuning
    /// Picks the loop of each accepted connection; nil: the proxy's group, round-robin. A mux connection's
    /// outbound listener hands them to loops that have a mux session (through a `BalancedAcceptor`).
    private let chooseLoop: (@Sendable () -> EventLoop)?
    /// TLS for accepted connections; nil for plain TCP.
    private let tls: TLSServerSetup?
    private let state = NIOLockedValueBox(State())

    private struct State {
        var serverChannel: Channel?
        var acceptor: BalancedAcceptor?
        var connections: [ObjectIdentifier: Channel] = [:]
    }

    init(
        context: ListenerContext, bindTarget: HostAndPort, tuning: HTTP2Tuning,
        chooseLoop: (@Sendable () -> EventLoop)? = nil, tls: TLSServerSetup? = nil
    ) {
        self.context = context
        self.bindTarget = bindTarget
        self.tuning = tuning
        self.chooseLoop = chooseLoop
        self.tls = tls
    }

    /// Binds the socket and starts accepting.
    func start(group: EventLoopGroup) async throws {
        let context = self.context
        let tuning = self.tuning
        let tls = self.tls
        if let chooseLoop {
            try startBalanced(chooseLoop: chooseLoop)
            return
        }
        let acceptFailures = AcceptFailureReporter(logger: context.logger)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler())
                    try channel.pipeline.syncOperations.addHandler(AcceptFailureLogger(reporter: acceptFailures))
                }
            }
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                self.track(channel)
                return channel.eventLoop.makeCompletedFuture {
                    try ProxyListener.configureConnection(channel, context: context, tuning: tuning, tls: tls)
                }
            }
        let host = bindTarget.host.isEmpty ? "0.0.0.0" : bindTarget.host
        let channel: Channel
        do {
            channel = try await bootstrap.bind(host: host, port: bindTarget.port).get()
        } catch {
            throw ListenerBindError(listener: context.name, address: bindTarget, underlying: error)
        }
        state.withLockedValue { $0.serverChannel = channel }
        logListening(at: channel.localAddress?.endpointDescription ?? "\(bindTarget)")
    }

    private func startBalanced(chooseLoop: @escaping @Sendable () -> EventLoop) throws {
        let context = self.context
        let tuning = self.tuning
        let tls = self.tls
        let acceptor = BalancedAcceptor(logger: context.logger, chooseLoop: chooseLoop) { channel in
            self.track(channel)
            return channel.eventLoop.makeCompletedFuture {
                try ProxyListener.configureConnection(channel, context: context, tuning: tuning, tls: tls)
            }
        }
        let bound: SocketAddress
        do {
            bound = try acceptor.start(host: bindTarget.host, port: bindTarget.port)
        } catch {
            throw ListenerBindError(listener: context.name, address: bindTarget, underlying: error)
        }
        state.withLockedValue { $0.acceptor = acceptor }
        logListening(at: bound.endpointDescription)
    }

    private func logListening(at address: String) {
        context.logger.info("listening", metadata: [
            "address": "\(address)",
            "upstream": "\(context.upstream.target)",
            "tls": "\(tls.map { $0.verifiesClients ? "on, client certificates verified" : "on" } ?? "off")",
        ])
    }

    /// Sets up an accepted connection: TLS when `tls` is set, HTTP/2 server side, then the handler that turns each
    /// stream into a `ProxyCall`. Must run on the channel's event loop.
    static func configureConnection(
        _ channel: Channel, context: ListenerContext, tuning: HTTP2Tuning, tls: TLSServerSetup? = nil
    ) throws {
        // The handshake observer names the peer itself, so TLS lines need no logger per connection.
        try tls?.addHandler(to: channel, logger: context.tlsLogger)
        var logger = context.logger
        logger[metadataKey: "peer"] = "\(channel.remoteAddress?.endpointDescription ?? "?")"
        let sync = channel.pipeline.syncOperations
        let engine = H2ConnectionHandler(configuration: tuning.engineConfiguration(for: .server))
        try sync.addHandler(engine)
        try sync.addHandler(DownstreamConnectionHandler(listener: context, logger: logger, tuning: tuning, engine: engine))
    }

    private func track(_ channel: Channel) {
        let id = ObjectIdentifier(channel)
        state.withLockedValue { $0.connections[id] = channel }
        channel.closeFuture.whenComplete { _ in
            self.state.withLockedValue { _ = $0.connections.removeValue(forKey: id) }
        }
    }

    /// Stops accepting and asks every open connection's client to open no new streams.
    func stopAccepting() async {
        let (server, acceptor, connections) = state.withLockedValue {
            ($0.serverChannel, $0.acceptor, Array($0.connections.values))
        }
        try? await server?.close()
        acceptor?.stop()
        for connection in connections {
            connection.pipeline.fireUserInboundEventTriggered(DrainRequest())
        }
    }

    /// Closes every remaining connection (and with them their streams).
    func closeConnections() async {
        let connections = state.withLockedValue { Array($0.connections.values) }
        for connection in connections {
            try? await connection.close()
        }
    }
}

/// A listener that could not bind its address.
public struct ListenerBindError: Error, CustomStringConvertible {
    public var listener: String
    public var address: HostAndPort
    public var underlying: Error

    public var description: String {
        "cannot listen on \(address) for \(listener): \(NetworkErrorDescription.describe(underlying)) (is another process using the port?)"
    }
}
