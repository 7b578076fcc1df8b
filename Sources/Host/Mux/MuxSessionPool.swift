// The live yamux sessions of one cluster connection in mux mode, by event loop.
//
// A session lives on the event loop of its TCP connection, and so do the streams on it; a call can only use an
// upstream connection on its own loop (see ProxyCall). So the pool answers "which sessions are on this loop", and
// helps keep every loop supplied: dialing and accepting pick the loop with the fewest sessions, and the outbound
// listener hands local Temporal's connections to loops that have one (through a `BalancedAcceptor`).
//
// Thread-safe: sessions are added and removed from their own loops, read from any.

import Logging
import Mux
import NIOConcurrencyHelpers
import NIOCore

final class MuxSessionPool: Sendable {
    /// e.g. `itest/mux`.
    let name: String
    /// How many sessions the configuration asks for (`muxCount`).
    let wanted: Int
    let loops: [EventLoop]
    private let state = NIOLockedValueBox(State())
    private let roundRobin = NIOLockedValueBox(0)

    private struct State {
        var sessions: [ObjectIdentifier: [YamuxSession]] = [:]
        var count = 0
        /// Sessions added and removed since start, for the metrics endpoint.
        var established: UInt64 = 0
        var ended: UInt64 = 0
        var everConnected = false
        /// What the metrics endpoint shows per live session, by session.
        var sessionInfo: [ObjectIdentifier: SessionInfo] = [:]
        /// Sessions that could not be established, by the Go proxy's `error` label.
        var establishErrors: [MuxEstablishError: UInt64] = [:]
        var waiters: [ObjectIdentifier: [EventLoopPromise<Void>]] = [:]
        var closed = false
    }

    init(name: String, wanted: Int, loops: [EventLoop]) {
        self.name = name
        self.wanted = wanted
        self.loops = loops
    }

    /// Sessions established now.
    var count: Int { state.withLockedValue { $0.count } }

    /// Sessions established now, established since start, and ended since start.
    var counts: (active: Int, established: UInt64, ended: UInt64) {
        state.withLockedValue { ($0.count, $0.established, $0.ended) }
    }

    /// The two ends of a live session and its open streams, for the metrics endpoint.
    struct SessionInfo: Sendable, Hashable {
        /// Hosts only (no ports), as the Go proxy labels its session gauges.
        var localHost: String
        var remoteHost: String
        var streams = 0
    }

    /// Live sessions and their open streams, summed per pair of hosts (sessions between the same two hosts
    /// differ only by port, which the labels leave out); and the establishment failures so far.
    var sessionMetrics: (byHosts: [(localHost: String, remoteHost: String, sessions: Int, streams: Int)],
                         errors: [MuxEstablishError: UInt64]) {
        state.withLockedValue { state in
            var sums: [String: (localHost: String, remoteHost: String, sessions: Int, streams: Int)] = [:]
            for info in state.sessionInfo.values {
                let key = info.localHost + "\u{0}" + info.remoteHost
                var sum = sums[key] ?? (info.localHost, info.remoteHost, 0, 0)
                sum.sessions += 1
                sum.streams += info.streams
                sums[key] = sum
            }
            return (sums.keys.sorted().map { sums[$0]! }, state.establishErrors)
        }
    }

    /// A session could not be established (the dial failed, or the new session did not answer its ping).
    func recordEstablishError(_ error: MuxEstablishError) {
        state.withLockedValue { $0.establishErrors[error, default: 0] += 1 }
    }

    /// A live session's open stream count changed.
    func streamCountChanged(_ session: YamuxSession, count: Int) {
        state.withLockedValue { state in
            state.sessionInfo[ObjectIdentifier(session)]?.streams = count
        }
    }

    /// Whether any session was ever established (before the first, calls wait; after the last is lost, they fail).
    var everConnected: Bool { state.withLockedValue { $0.everConnected } }

    /// Adds a session that answered its first ping; called on the session's loop.
    func add(_ session: YamuxSession, localHost: String, remoteHost: String) {
        let key = ObjectIdentifier(session.eventLoop)
        let info = SessionInfo(localHost: localHost, remoteHost: remoteHost, streams: session.streamCount)
        let waiters = state.withLockedValue { state -> [EventLoopPromise<Void>] in
            state.sessions[key, default: []].append(session)
            state.sessionInfo[ObjectIdentifier(session)] = info
            state.count += 1
            state.established += 1
            state.everConnected = true
            // A session on any loop wakes every waiter: one on another loop may now be handed a connection.
            let all = state.waiters.values.flatMap { $0 }
            state.waiters = [:]
            return all
        }
        for waiter in waiters { waiter.succeed(()) }
    }

    func remove(_ session: YamuxSession) {
        let key = ObjectIdentifier(session.eventLoop)
        state.withLockedValue { state in
            guard var list = state.sessions[key], let index = list.firstIndex(where: { $0 === session }) else { return }
            list.remove(at: index)
            state.sessions[key] = list
            state.sessionInfo[ObjectIdentifier(session)] = nil
            state.count -= 1
            state.ended += 1
        }
    }

    /// The sessions on `loop` that can open streams.
    func sessions(on loop: EventLoop) -> [YamuxSession] {
        state.withLockedValue { $0.sessions[ObjectIdentifier(loop)] ?? [] }
    }

    /// Succeeds when a session is added (or fails when the pool closes); made on `loop`.
    func waitForSession(on loop: EventLoop) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        let closed = state.withLockedValue { state -> Bool in
            if state.closed { return true }
            state.waiters[ObjectIdentifier(loop), default: []].append(promise)
            return false
        }
        if closed { promise.fail(MuxUnavailableError(reason: "the proxy is shutting down")) }
        return promise.futureResult
    }

    /// The loop with the fewest sessions (ties: the earliest), for the next dial or accepted connection.
    func leastLoadedLoop() -> EventLoop {
        state.withLockedValue { state in
            loops.min { (state.sessions[ObjectIdentifier($0)]?.count ?? 0) < (state.sessions[ObjectIdentifier($1)]?.count ?? 0) }!
        }
    }

    /// The loop for a new connection of local Temporal's: round-robin over the loops that have a session (all
    /// loops while none has).
    func loopForConnection() -> EventLoop {
        let candidates = loopsWithSessions()
        let choices = candidates.isEmpty ? loops : candidates
        let index = roundRobin.withLockedValue { value -> Int in
            value &+= 1
            return value
        }
        return choices[index % choices.count]
    }

    /// The loops that have a session now.
    func loopsWithSessions() -> [EventLoop] {
        state.withLockedValue { state in loops.filter { !(state.sessions[ObjectIdentifier($0)]?.isEmpty ?? true) } }
    }

    /// Every session, for shutdown.
    func all() -> [YamuxSession] {
        state.withLockedValue { $0.sessions.values.flatMap { $0 } }
    }

    /// Every session's state, each read on its own loop, for `/debug/connections`.
    func snapshot(on loop: EventLoop) -> EventLoopFuture<[MuxSessionSnapshot]> {
        let futures = all().map { session in
            session.eventLoop.submit {
                MuxSessionSnapshot(
                    remoteAddress: session.remoteAddress?.endpointDescription,
                    streams: session.streamCount,
                    canOpenStreams: session.canOpenStreams
                )
            }
        }
        return EventLoopFuture.whenAllSucceed(futures, on: loop)
    }

    /// Fails waiters; no more waiting.
    func close() {
        let waiters = state.withLockedValue { state -> [EventLoopPromise<Void>] in
            state.closed = true
            let all = state.waiters.values.flatMap { $0 }
            state.waiters = [:]
            return all
        }
        for waiter in waiters { waiter.fail(MuxUnavailableError(reason: "the proxy is shutting down")) }
    }
}

/// One yamux session as `/debug/connections` shows it.
struct MuxSessionSnapshot: Sendable, Encodable {
    /// The peer proxy's address of the session's TCP connection.
    var remoteAddress: String?
    /// Streams open on the session now (HTTP/2 connections over the tunnel, both directions).
    var streams: Int
    /// False once either side sent a go-away.
    var canOpenStreams: Bool
}

/// Why a mux session could not be established: the Go proxy's `error` label of `mux_errors`.
enum MuxEstablishError: String, Sendable, Hashable, CaseIterable {
    /// The dial or the first ping timed out.
    case timeout
    /// The peer refused or closed the connection before the session was up.
    case disconnected
    /// Anything else (a TLS handshake failure, for one).
    case unknown
}

/// No mux session can carry a call.
struct MuxUnavailableError: Error, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}
