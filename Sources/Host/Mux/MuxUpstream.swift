// Where the outbound listener of a mux connection sends its calls: HTTP/2 connections over yamux streams of the
// cluster connection's sessions, as the Go proxy's gRPC client keeps one connection per session.
//
// Per event loop it keeps one upstream connection per session on that loop (opened on first use, replaced when it
// closes or its peer sends GOAWAY) and spreads calls round-robin over them. Before the first session exists, calls
// wait for one (at most `firstSessionWait`; the caller's deadline usually ends the wait first); once sessions have
// existed and none is left, calls fail at once with UNAVAILABLE.

import Logging
import Mux
import NIOCore

final class MuxUpstream: UpstreamConnecting {
    /// The mux address, for messages.
    let target: HostAndPort
    private let pool: MuxSessionPool
    private let tuning: HTTP2Tuning
    private let firstSessionWait: TimeAmount
    private let logger: Logger
    // Immutable after init; each state is used only on its own loop.
    nonisolated(unsafe) private let loopStates: [ObjectIdentifier: LoopState]

    private final class LoopState {
        var connections: [ObjectIdentifier: EventLoopFuture<UpstreamConnection>] = [:]
        var next = 0
    }

    init(target: HostAndPort, pool: MuxSessionPool, tuning: HTTP2Tuning, firstSessionWait: TimeAmount, logger: Logger) {
        self.target = target
        self.pool = pool
        self.tuning = tuning
        self.firstSessionWait = firstSessionWait
        self.logger = logger
        var states: [ObjectIdentifier: LoopState] = [:]
        for loop in pool.loops {
            states[ObjectIdentifier(loop)] = LoopState()
        }
        self.loopStates = states
    }

    func connection(on eventLoop: EventLoop) -> EventLoopFuture<UpstreamConnection> {
        eventLoop.preconditionInEventLoop()
        guard let state = loopStates[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("no mux upstream state for event loop \(eventLoop)")
        }
        let sessions = pool.sessions(on: eventLoop).filter(\.canOpenStreams)
        guard !sessions.isEmpty else {
            return noSession(on: eventLoop)
        }
        let session = sessions[state.next % sessions.count]
        state.next &+= 1
        let key = ObjectIdentifier(session)
        if let existing = state.connections[key] {
            return existing.flatMap { connection in
                if connection.isDraining || !(connection.channel?.isActive ?? false) {
                    state.connections[key] = nil
                    return self.connection(on: eventLoop)
                }
                return eventLoop.makeSucceededFuture(connection)
            }
        }
        let opened = open(on: session, eventLoop: eventLoop)
        state.connections[key] = opened
        opened.whenComplete { result in
            switch result {
            case .success(let connection):
                connection.channel?.closeFuture.whenComplete { _ in
                    if state.connections[key] === opened {
                        state.connections[key] = nil
                    }
                }
            case .failure:
                if state.connections[key] === opened {
                    state.connections[key] = nil
                }
            }
        }
        return opened
    }

    /// An HTTP/2 client connection on a new stream of `session`, once its preface is out.
    private func open(on session: YamuxSession, eventLoop: EventLoop) -> EventLoopFuture<UpstreamConnection> {
        let tuning = self.tuning
        let promise = eventLoop.makePromise(of: UpstreamConnection.self)
        session.openStream { stream in
            stream.eventLoop.makeCompletedFuture {
                let address = stream.remoteAddress ?? (try! SocketAddress(ipAddress: "0.0.0.0", port: 0))
                let connection = try UpstreamConnection.install(on: stream, address: address, tuning: tuning) { _ in }
                connection.activeFuture.map { connection }.cascade(to: promise)
            }
        }.whenFailure { error in
            promise.fail(MuxUnavailableError(reason: "cannot open a stream on the mux session: \(error)"))
        }
        return promise.futureResult
    }

    private func noSession(on eventLoop: EventLoop) -> EventLoopFuture<UpstreamConnection> {
        if pool.everConnected {
            let reason = pool.count == 0
                ? "no mux session to \(target) is connected (all \(pool.wanted) lost; reconnecting)"
                : "no mux session on this proxy thread; \(pool.count) of \(pool.wanted) sessions are up"
            return eventLoop.makeFailedFuture(UpstreamUnavailableError(target: target, reason: reason))
        }
        // Nothing connected yet: wait for the first session.
        let promise = eventLoop.makePromise(of: UpstreamConnection.self)
        var settled = false
        let wait = firstSessionWait
        let timeout = eventLoop.scheduleTask(in: wait) {
            guard !settled else { return }
            settled = true
            promise.fail(UpstreamUnavailableError(
                target: self.target, reason: "no mux session connected within \(wait.nanoseconds / 1_000_000_000) s"))
        }
        pool.waitForSession(on: eventLoop).whenComplete { result in
            guard !settled else { return }
            settled = true
            timeout.cancel()
            switch result {
            case .success:
                self.connection(on: eventLoop).cascade(to: promise)
            case .failure(let error):
                promise.fail(UpstreamUnavailableError(target: self.target, reason: "\(error)"))
            }
        }
        return promise.futureResult
    }
}
