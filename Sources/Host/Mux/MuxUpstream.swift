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

    /// How long a new stream's HTTP/2 connection may take to get the peer's SETTINGS.
    static let http2StartTimeout: TimeAmount = .seconds(10)

    private final class LoopState {
        /// Per session (by identity): its HTTP/2 connections, the first opened on first use, more while every one
        /// is at the peer's stream limit.
        var connections: [ObjectIdentifier: [Slot]] = [:]
        var next = 0
    }

    /// One HTTP/2 connection over a stream of a session: starting (`connection` nil) or started.
    private final class Slot {
        let future: EventLoopFuture<UpstreamConnection>
        var connection: UpstreamConnection?
        init(future: EventLoopFuture<UpstreamConnection>) { self.future = future }
    }

    /// The most HTTP/2 connections kept per session and event loop.
    static let maxConnectionsPerSession = 64

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
        // Round-robin over the sessions; within one, the first connection with room. A connection still starting
        // has room as far as anyone knows.
        let start = state.next
        state.next &+= 1
        var firstWithoutRoom: YamuxSession?
        for offset in 0..<sessions.count {
            let session = sessions[(start &+ offset) % sessions.count]
            let key = ObjectIdentifier(session)
            var slots = state.connections[key] ?? []
            slots.removeAll { slot in
                guard let connection = slot.connection else { return false }
                return connection.isDraining || !(connection.channel?.isActive ?? false)
            }
            state.connections[key] = slots
            if slots.isEmpty {
                return open(on: session, key: key, state: state, eventLoop: eventLoop)
            }
            for slot in slots {
                guard let connection = slot.connection else {
                    return slot.future.flatMap { _ in self.connection(on: eventLoop) }.flatMapError { error in
                        // A session that does not serve was closed: choose among the others.
                        guard error is MuxSessionNotServing else { return eventLoop.makeFailedFuture(error) }
                        return self.connection(on: eventLoop)
                    }
                }
                if connection.canOpenStream { return eventLoop.makeSucceededFuture(connection) }
            }
            if slots.count < Self.maxConnectionsPerSession {
                firstWithoutRoom = firstWithoutRoom ?? session
            }
        }
        guard let session = firstWithoutRoom else {
            return eventLoop.makeFailedFuture(UpstreamUnavailableError(
                target: target,
                reason: "every mux session's connections carry as many concurrent calls as the peer allows "
                    + "(SETTINGS_MAX_CONCURRENT_STREAMS); retry later"
            ))
        }
        logger.info("mux connection at the peer's stream limit; opening another on the session")
        return open(on: session, key: ObjectIdentifier(session), state: state, eventLoop: eventLoop)
    }

    /// Opens a connection on `session` and keeps it in the loop's state until it closes or fails.
    private func open(
        on session: YamuxSession, key: ObjectIdentifier, state: LoopState, eventLoop: EventLoop
    ) -> EventLoopFuture<UpstreamConnection> {
        // The calls waiting for a connection on a session that turned out not to serve go to another session.
        openConnection(on: session, key: key, state: state, eventLoop: eventLoop).flatMapError { error in
            guard error is MuxSessionNotServing else { return eventLoop.makeFailedFuture(error) }
            return self.connection(on: eventLoop)
        }
    }

    private func openConnection(
        on session: YamuxSession, key: ObjectIdentifier, state: LoopState, eventLoop: EventLoop
    ) -> EventLoopFuture<UpstreamConnection> {
        let opened = open(on: session, eventLoop: eventLoop)
        let slot = Slot(future: opened)
        state.connections[key, default: []].append(slot)
        opened.whenComplete { result in
            switch result {
            case .success(let connection):
                slot.connection = connection
                connection.channel?.closeFuture.whenComplete { _ in
                    Self.remove(slot, key: key, from: state)
                }
            case .failure:
                Self.remove(slot, key: key, from: state)
            }
        }
        return opened
    }

    private static func remove(_ slot: Slot, key: ObjectIdentifier, from state: LoopState) {
        state.connections[key]?.removeAll { $0 === slot }
        if state.connections[key]?.isEmpty == true {
            state.connections[key] = nil
        }
    }

    /// An HTTP/2 client connection on a new stream of `session`, once its preface is out.
    private func open(on session: YamuxSession, eventLoop: EventLoop) -> EventLoopFuture<UpstreamConnection> {
        let tuning = self.tuning
        let promise = eventLoop.makePromise(of: UpstreamConnection.self)
        session.openStream { stream in
            stream.eventLoop.makeCompletedFuture {
                let address = stream.remoteAddress ?? (try! SocketAddress(ipAddress: "0.0.0.0", port: 0))
                let connection = try UpstreamConnection.install(on: stream, address: address, tuning: tuning) { _ in }
                // A peer that takes the stream but never starts HTTP/2 on it must not hold the calls waiting here.
                let wait = MuxUpstream.http2StartTimeout
                let timedOut = NIOLoopBoundBox(false, eventLoop: stream.eventLoop)
                let deadline = stream.eventLoop.scheduleTask(in: wait) {
                    // A session whose peer takes streams and never serves them holds a slot a working peer needs
                    // (on a mux-server, anyone who can connect can take one): it ends, and its calls go elsewhere.
                    // Closing it fails the connection's start, which fails the promise below.
                    timedOut.value = true
                    self.logger.warning(
                        "closing a mux session whose peer took a stream but never started HTTP/2 on it; its slot is free for a peer that serves",
                        metadata: ["peer": "\(session.remoteAddress?.endpointDescription ?? "?")", "wait_s": "\(wait.secondsText)"]
                    )
                    session.close(code: .protocolError, immediately: true)
                }
                connection.activeFuture.whenComplete { result in
                    deadline.cancel()
                    switch result {
                    case .success:
                        promise.succeed(connection)
                    case .failure(let error):
                        promise.fail(timedOut.value ? MuxSessionNotServing(wait: wait) : error)
                    }
                }
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

/// A mux session's peer took a stream and never started HTTP/2 on it; the session was closed.
struct MuxSessionNotServing: Error, CustomStringConvertible {
    var wait: TimeAmount
    var description: String {
        "the mux peer sent no HTTP/2 SETTINGS on a new stream within \(wait.secondsText) s; its session was closed"
    }
}
