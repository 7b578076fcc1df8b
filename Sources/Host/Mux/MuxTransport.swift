// The mux side of a cluster connection (`remote.connectionType: mux-client` or `mux-server`): keeps `muxCount`
// yamux sessions with the peer proxy — dialing them, or accepting them — and gives each session its two roles:
// streams the peer opens carry calls into the local Temporal (the inbound listener's work, on the session), and
// the outbound listener's calls go out over new streams (`MuxUpstream`).
//
// mux-client dials each missing session again after its connection fails or ends, backing off from 1 s by 1.5 up to
// 30 s (the Go proxy's schedule); a session that lived a minute resets the back-off. mux-server accepts while it has
// fewer than `muxCount` sessions and closes the connections beyond, saying so in the log (counted when established:
// a port probe must not keep a session out). Each new session is
// pinged before it is used, as the Go proxy does; a session whose peer does not answer is closed and replaced.
// Neither waits for sessions to start: the outbound listener serves at once, its calls waiting for the first
// session.

import Logging
import Mux
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

final class MuxTransport: Sendable {
    enum Mode: Sendable {
        case client
        case server
    }

    /// TLS on the mux connections (`muxAddressInfo.tls`); inside, the streams carry plaintext HTTP/2.
    enum TLS: Sendable {
        case client(TLSClientSetup)
        case server(TLSServerSetup)
    }

    let mode: Mode
    let address: HostAndPort
    private let tls: TLS?
    let pool: MuxSessionPool
    private let configuration: YamuxConfiguration
    /// Sets up a stream the peer opened: the inbound listener's HTTP/2 server and call handling.
    private let inboundStream: @Sendable (Channel) throws -> Void
    private let logger: Logger
    /// `logger` as `tlsHandshake`, for the sessions' TLS.
    private let tlsLogger: Logger
    private let state = NIOLockedValueBox(State())

    private struct State {
        var stopped = false
        var acceptor: BalancedAcceptor?
        var retries: [Int: Scheduled<Void>] = [:]
    }

    init(
        mode: Mode, address: HostAndPort, pool: MuxSessionPool, configuration: YamuxConfiguration = YamuxConfiguration(),
        tls: TLS? = nil, logger: Logger, inboundStream: @escaping @Sendable (Channel) throws -> Void
    ) {
        self.mode = mode
        self.tls = tls
        self.address = address
        self.pool = pool
        self.configuration = configuration
        self.logger = logger
        self.tlsLogger = logger.component(.tlsHandshake)
        self.inboundStream = inboundStream
    }

    /// mux-client: starts dialing (returns at once). mux-server: binds the mux address (throws if it cannot).
    func start() async throws {
        switch mode {
        case .client:
            for slot in 0..<pool.wanted {
                dial(slot: slot, attempt: 0)
            }
            logger.info("dialing mux sessions", metadata: ["address": "\(address)", "sessions": "\(pool.wanted)"])
        case .server:
            let pool = self.pool
            let acceptor = BalancedAcceptor(logger: logger, chooseLoop: { pool.leastLoadedLoop() }) { channel in
                channel.eventLoop.makeCompletedFuture { try self.accepted(channel) }
            }
            let bound: SocketAddress
            do {
                bound = try acceptor.start(host: address.host, port: address.port, backlog: 256)
            } catch {
                throw ListenerBindError(listener: pool.name, address: address, underlying: error)
            }
            state.withLockedValue { $0.acceptor = acceptor }
            logger.info("accepting mux sessions", metadata: [
                "address": "\(bound.endpointDescription)", "sessions": "\(pool.wanted)",
            ])
        }
    }

    /// Stops dialing and accepting, and ends every session with go-away once its streams are done.
    func stop() async {
        let (acceptor, retries) = state.withLockedValue { state -> (BalancedAcceptor?, [Scheduled<Void>]) in
            state.stopped = true
            return (state.acceptor, Array(state.retries.values))
        }
        for retry in retries { retry.cancel() }
        acceptor?.stop()
        pool.close()
        for session in pool.all() {
            session.close(code: .normal)
        }
    }

    /// Ends every session at once (after the drain).
    func closeSessions() {
        for session in pool.all() {
            session.close(code: .normal, immediately: true)
        }
    }

    // MARK: Sessions

    /// Installs a session on `channel`, to be pinged once active; `onEnd` runs when the session ends.
    private func makeSession(role: YamuxRole, on channel: Channel, onEnd: @escaping @Sendable () -> Void) throws {
        let inboundStream = self.inboundStream
        let session = YamuxSession(role: role, eventLoop: channel.eventLoop, configuration: configuration) { stream in
            stream.eventLoop.makeCompletedFuture { try inboundStream(stream) }
        }
        let observer = SessionObserver(transport: self, peer: channel.remoteAddress, onEnd: onEnd)
        session.delegate = observer
        switch tls {
        case .client(let setup):
            try setup.addHandler(to: channel, logger: tlsLogger)
        case .server(let setup):
            try setup.addHandler(to: channel, logger: tlsLogger)
        case nil:
            break
        }
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(YamuxFrameDecoder(maximumPayload: max(configuration.receiveWindow, 1 << 20))),
            session,
        ])
        // Keeps the observer alive as long as the connection.
        channel.closeFuture.whenComplete { _ in _ = observer }
    }

    /// The Go proxy pings a new session before using it: a peer that accepted the TCP connection but is not
    /// serving (a connection queued beyond its muxCount) answers nothing and is dropped.
    fileprivate func checkNewSession(_ session: YamuxSession, observer: SessionObserver) {
        let peer = observer.peer?.endpointDescription ?? "?"
        session.ping().whenComplete { result in
            switch result {
            case .success(let rtt):
                if self.mode == .server, self.pool.count >= self.pool.wanted {
                    self.logger.warning("mux session refused: all sessions are up", metadata: [
                        "peer": "\(peer)", "sessions": "\(self.pool.wanted)",
                    ])
                    session.close(code: .normal, immediately: true)
                    return
                }
                observer.established = true
                self.pool.add(
                    session, localHost: session.localAddress?.ipAddress ?? "?",
                    remoteHost: session.remoteAddress?.ipAddress ?? "?"
                )
                self.logger.info("mux session established", metadata: [
                    "peer": "\(peer)", "rtt_us": "\(rtt.nanoseconds / 1000)", "sessions": "\(self.pool.count)",
                ])
            case .failure(let error):
                self.logger.warning("mux session did not answer its first ping; closing it", metadata: [
                    "peer": "\(peer)", "error": "\(error)",
                ])
                observer.failureCounted = true
                // The session's own errors here mean the ping went unanswered, unless the session closed under it.
                let unanswered = error is YamuxSessionError && (error as? YamuxSessionError) != .sessionClosed
                self.countEstablishFailure(unanswered ? .timeout : MuxEstablishError(classifying: error))
                session.close(code: .normal, immediately: true)
            }
        }
    }

    /// Counts a session that could not be established. A mux-server does not count peers that hung up: port
    /// probes (load balancers, readiness checks) connect and leave.
    fileprivate func countEstablishFailure(_ kind: MuxEstablishError) {
        if mode == .client || kind != .disconnected {
            pool.recordEstablishError(kind)
        }
    }

    final class SessionObserver: YamuxSessionDelegate, @unchecked Sendable {
        let transport: MuxTransport
        /// The peer's address; a dialled connection has none until it is active.
        var peer: SocketAddress?
        let onEnd: @Sendable () -> Void
        var established = false
        /// The session's failure to establish is already in the metrics.
        var failureCounted = false
        /// The connection came up (a dialled one may fail before).
        var becameActive = false

        init(transport: MuxTransport, peer: SocketAddress?, onEnd: @escaping @Sendable () -> Void) {
            self.transport = transport
            self.peer = peer
            self.onEnd = onEnd
        }

        func yamuxSessionBecameActive(_ session: YamuxSession) {
            becameActive = true
            if peer == nil { peer = session.remoteAddress }
            transport.checkNewSession(session, observer: self)
        }

        func yamuxSessionEnded(_ session: YamuxSession, error: Error?) {
            if established {
                transport.pool.remove(session)
                var metadata: Logger.Metadata = [
                    "peer": "\(peer?.endpointDescription ?? "?")", "sessions": "\(transport.pool.count)",
                ]
                if let error { metadata["error"] = "\(error)" }
                transport.logger.warning("mux session ended", metadata: metadata)
            } else if becameActive, !failureCounted, let error {
                // (A dial that failed never became active; the dial counted it.)
                // Ended before its first ping came back: a TLS failure, or a peer that hung up.
                failureCounted = true
                transport.countEstablishFailure(MuxEstablishError(classifying: error))
            }
            onEnd()
        }

        func yamuxSession(_ session: YamuxSession, streamCountChanged count: Int) {
            if established { transport.pool.streamCountChanged(session, count: count) }
        }

        func yamuxSessionReceivedGoAway(_ session: YamuxSession, code: UInt32) {
            transport.logger.info("mux peer sent go-away; its session takes no new calls", metadata: [
                "peer": "\(peer?.endpointDescription ?? "?")", "code": "\(code)",
            ])
        }
    }

    // MARK: mux-client

    private func dial(slot: Int, attempt: Int) {
        guard !state.withLockedValue({ $0.stopped }) else { return }
        let loop = pool.leastLoadedLoop()
        let started = NIODeadline.now()
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(5))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.makeSession(role: .client, on: channel) {
                        // A session that lived a minute starts the back-off afresh.
                        let lived = NIODeadline.now() - started > .seconds(60)
                        self.redial(slot: slot, attempt: lived ? 0 : attempt + 1)
                    }
                }
            }
        let host = address.host.isEmpty ? "127.0.0.1" : address.host
        bootstrap.connect(host: host, port: address.port).whenFailure { error in
            self.pool.recordEstablishError(MuxEstablishError(classifying: error))
            if attempt == 0 {
                self.logger.warning("cannot reach the mux peer; retrying", metadata: [
                    "address": "\(self.address)", "error": "\(NetworkErrorDescription.describe(error))",
                ])
            }
            self.redial(slot: slot, attempt: attempt + 1)
        }
    }

    private func redial(slot: Int, attempt: Int) {
        let delay = Self.backoff(attempt: attempt)
        let loop = pool.loops[slot % pool.loops.count]
        state.withLockedValue { state in
            guard !state.stopped else { return }
            state.retries[slot]?.cancel()
            state.retries[slot] = loop.scheduleTask(in: delay) { self.dial(slot: slot, attempt: attempt) }
        }
    }

    /// 0 for the first attempt after a session that lived, then 1 s, ×1.5 per failure, at most 30 s.
    static func backoff(attempt: Int) -> TimeAmount {
        guard attempt > 0 else { return .zero }
        var seconds = 1.0
        for _ in 1..<attempt { seconds = min(seconds * 1.5, 30) }
        return .nanoseconds(Int64(seconds * 1e9))
    }

    // MARK: mux-server

    private func accepted(_ channel: Channel) throws {
        // Counted when established, not when accepted: a connection that never becomes a session (a port probe, a
        // peer that is not yamux) must not keep a real one out.
        guard !state.withLockedValue({ $0.stopped }), pool.count < pool.wanted else {
            refuse(channel)
            return
        }
        try makeSession(role: .server, on: channel, onEnd: {})
    }

    private func refuse(_ channel: Channel) {
        logger.warning("mux connection refused: all sessions are up", metadata: [
            "peer": "\(channel.remoteAddress?.endpointDescription ?? "?")", "sessions": "\(pool.wanted)",
        ])
        // Not from inside the initializer: the channel is registered after it.
        channel.eventLoop.execute { channel.close(promise: nil) }
    }
}

extension MuxEstablishError {
    /// The label for a dial or session failure: a timeout, a refused or reset connection, or anything else.
    init(classifying error: Error) {
        switch error {
        case ChannelError.connectTimeout:
            self = .timeout
        case let error as IOError:
            self = error.errnoCode == ETIMEDOUT ? .timeout : .disconnected
        case let error as NIOConnectionError:
            let timedOut = error.connectionErrors.contains { ($0.error as? IOError)?.errnoCode == ETIMEDOUT }
            self = timedOut ? .timeout : .disconnected
        case let error as YamuxSessionError where error == .sessionClosed:
            self = .disconnected
        case ChannelError.eof, ChannelError.ioOnClosedChannel, ChannelError.outputClosed:
            self = .disconnected
        default:
            self = .unknown
        }
    }
}
