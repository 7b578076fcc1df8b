// The HTTP/2 connections from one event loop to one upstream target (`host:port` from the config).
//
// Every event loop has its own pool per upstream, so a call's downstream stream and upstream stream live on the same
// thread and no byte crosses threads. The pool resolves the name to all its addresses, keeps one connection per
// address, spreads new calls round-robin over the connected ones, and reconnects with exponential back-off. When no
// address is reachable it fails calls at once with the reason, instead of letting them wait for their deadlines.
//
// Confined to its event loop: every method must be called on `eventLoop`.

import Logging
import NIOCore
import NIOHTTP2
import NIOPosix

/// Why a call could not get an upstream stream.
public struct UpstreamUnavailableError: Error, CustomStringConvertible {
    /// The configured upstream `host:port`.
    public var target: HostAndPort
    /// What went wrong, for the caller's `grpc-message`.
    public var reason: String

    public var description: String { "upstream \(target) is unavailable: \(reason)" }
}

/// Connection settings of an upstream pool.
public struct UpstreamPoolSettings: Sendable {
    public var connectTimeout: TimeAmount
    public var backoffInitial: TimeAmount
    public var backoffMax: TimeAmount
    public var backoffMultiplier: Double = 1.6
    public var tuning: HTTP2Tuning
    /// TLS for every connection to the upstream (`tcpClient.tls`); nil for plain TCP.
    public var tls: TLSClientSetup?

    public init(
        connectTimeout: TimeAmount, backoffInitial: TimeAmount, backoffMax: TimeAmount, tuning: HTTP2Tuning,
        tls: TLSClientSetup? = nil
    ) {
        self.connectTimeout = connectTimeout
        self.backoffInitial = backoffInitial
        self.backoffMax = backoffMax
        self.tuning = tuning
        self.tls = tls
    }
}

/// One resolved address of an upstream target and the state of the pool's connection to it.
struct UpstreamEndpointSnapshot: Sendable, Equatable, Encodable {
    enum State: String, Sendable, Encodable {
        case idle, connecting, ready, draining, failed
    }

    var address: String
    var state: State
}

final class UpstreamConnectionPool {
    private enum EndpointState {
        case idle
        case connecting(EventLoopFuture<UpstreamConnection>)
        case ready(UpstreamConnection)
        case failed(reason: String)
    }

    private final class Endpoint {
        let address: SocketAddress
        /// The endpoint's own connection, kept and reconnected for as long as the address is listed.
        var state: EndpointState = .idle
        /// Further connections to the address, opened while every connection to it was at the peer's stream limit
        /// (SETTINGS_MAX_CONCURRENT_STREAMS). Kept until they close or drain; never reconnected.
        var overflow: [UpstreamConnection] = []
        /// An overflow connection being made; calls that found no room wait for it.
        var overflowAttempt: EventLoopFuture<UpstreamConnection>?
        init(address: SocketAddress) { self.address = address }

        /// A connection to the address with room for another stream, if any.
        var connectionWithRoom: UpstreamConnection? {
            if case .ready(let connection) = state, connection.canOpenStream { return connection }
            return overflow.first { $0.canOpenStream }
        }
    }

    /// The most connections a pool keeps to one address (its own and overflow ones): enough for 64 times a peer's
    /// stream limit of calls per event loop, and a bound when a peer allows few streams, or none.
    static let maxConnectionsPerAddress = 64

    let target: HostAndPort
    let eventLoop: EventLoop
    private let settings: UpstreamPoolSettings
    private let resolver: UpstreamAddressResolving
    private var logger: Logger
    /// `logger` as `tlsHandshake`, for the connections' TLS.
    private let tlsLogger: Logger

    private var endpoints: [Endpoint] = []
    private var nextEndpoint = 0
    private var resolution: EventLoopFuture<Void>?
    /// Set while every address failed: calls fail fast with this reason until a retry succeeds.
    private var lastFailure: String?
    private var consecutiveFailures = 0
    private var retryTask: Scheduled<Void>?
    /// When the last connection attempt to any address started: calls that arrive while every address has failed
    /// try again once this is `callRetryInterval` old, rather than wait out the back-off.
    private var lastAttemptStart: NIODeadline?

    /// How often calls may trigger a connection attempt to an upstream that is down (per event loop): often enough
    /// that a restarted upstream is found within a fraction of a second, seldom enough not to hammer a dead one.
    /// The back-off timer still retries when no call comes.
    static let callRetryInterval: TimeAmount = .milliseconds(250)
    private var isClosed = false

    init(target: HostAndPort, eventLoop: EventLoop, settings: UpstreamPoolSettings, resolver: UpstreamAddressResolving, logger: Logger) {
        self.target = target
        self.eventLoop = eventLoop
        self.settings = settings
        self.resolver = resolver
        var logger = logger
        logger[metadataKey: "upstream"] = "\(target)"
        self.logger = logger
        self.tlsLogger = logger.component(.tlsHandshake)
    }

    /// A connected, non-draining connection to the upstream, or why there is none.
    func acquire() -> EventLoopFuture<UpstreamConnection> {
        eventLoop.preconditionInEventLoop()
        if isClosed {
            return eventLoop.makeFailedFuture(UpstreamUnavailableError(target: target, reason: "the proxy is shutting down"))
        }
        return connection()
    }

    /// A connected, non-draining connection with room for a call, if one is ready now; nil sends the caller to
    /// `acquire`, which also connects, waits and explains.
    func acquireReady() -> UpstreamConnection? {
        eventLoop.preconditionInEventLoop()
        guard !isClosed, !endpoints.isEmpty else { return nil }
        retryNowIfDue()
        return roundRobinConnectionWithRoom().connection
    }

    /// Round-robin over the addresses with a ready connection that has room for another stream; else the first
    /// address whose ready connection is full, if any.
    private func roundRobinConnectionWithRoom() -> (connection: UpstreamConnection?, full: Endpoint?) {
        var full: Endpoint?
        for offset in 0..<endpoints.count {
            let endpoint = endpoints[(nextEndpoint + offset) % endpoints.count]
            guard case .ready(let primary) = endpoint.state, !primary.isDraining else { continue }
            if let connection = endpoint.connectionWithRoom {
                nextEndpoint = (nextEndpoint + offset + 1) % endpoints.count
                connectIdleEndpoints()
                return (connection, nil)
            }
            full = full ?? endpoint
        }
        return (nil, full)
    }

    /// Each resolved address of the target and its connection state, for `/debug/connections` and health checks.
    func snapshot() -> [UpstreamEndpointSnapshot] {
        eventLoop.preconditionInEventLoop()
        return endpoints.map { endpoint in
            let state: UpstreamEndpointSnapshot.State
            switch endpoint.state {
            case .idle: state = .idle
            case .connecting: state = .connecting
            case .ready(let connection): state = connection.isDraining ? .draining : .ready
            case .failed: state = .failed
            }
            let description = endpoint.address.endpointDescription
            return [UpstreamEndpointSnapshot(address: description, state: state)]
                + endpoint.overflow.map {
                    UpstreamEndpointSnapshot(address: description, state: $0.isDraining ? .draining : .ready)
                }
        }.flatMap { $0 }
    }

    /// Closes every connection and stops reconnecting.
    func close() {
        eventLoop.preconditionInEventLoop()
        isClosed = true
        retryTask?.cancel()
        for endpoint in endpoints {
            if case .ready(let connection) = endpoint.state {
                connection.close()
            }
            endpoint.overflow.forEach { $0.close() }
        }
    }

    /// A connected, non-draining connection, or the reason there is none.
    private func connection() -> EventLoopFuture<UpstreamConnection> {
        retryNowIfDue()
        if endpoints.isEmpty {
            if let lastFailure, retryTask != nil {
                return eventLoop.makeFailedFuture(UpstreamUnavailableError(target: target, reason: lastFailure))
            }
            return resolve().flatMap { self.connection() }
        }
        let (ready, full) = roundRobinConnectionWithRoom()
        if let ready { return eventLoop.makeSucceededFuture(ready) }
        connectIdleEndpoints()
        if let full {
            // Every ready connection is at the peer's stream limit: another connection, rather than a call waiting
            // inside NIOHTTP2 for one of the others to end.
            return overflowConnection(to: full)
        }
        // Nothing ready: wait for the first attempt in progress.
        for endpoint in endpoints {
            if case .connecting(let attempt) = endpoint.state {
                return attempt.flatMapError { _ in
                    self.connectionAfterAttempts()
                }
            }
        }
        return eventLoop.makeFailedFuture(
            UpstreamUnavailableError(target: target, reason: lastFailure ?? "no connection could be made")
        )
    }

    /// A further connection to `endpoint`'s address (or the one being made), once it is up; the calls waiting for it
    /// choose again then, since others may have taken its room first.
    private func overflowConnection(to endpoint: Endpoint) -> EventLoopFuture<UpstreamConnection> {
        if let attempt = endpoint.overflowAttempt {
            return attempt.flatMap { _ in self.connection() }
        }
        let address = endpoint.address.endpointDescription
        let count = 1 + endpoint.overflow.count
        guard count < Self.maxConnectionsPerAddress else {
            var limit = "its limit"
            if case .ready(let primary) = endpoint.state, primary.peerMaxConcurrentStreams != Int.max {
                limit = "its limit of \(primary.peerMaxConcurrentStreams)"
            }
            return eventLoop.makeFailedFuture(UpstreamUnavailableError(
                target: target,
                reason: "all \(count) connections of this proxy thread to \(address) carry as many concurrent calls as "
                    + "the upstream allows (\(limit), SETTINGS_MAX_CONCURRENT_STREAMS); retry later, or raise the upstream's limit"
            ))
        }
        let attempt = UpstreamConnection.connect(
            to: endpoint.address, on: eventLoop, connectTimeout: settings.connectTimeout, tuning: settings.tuning,
            tls: settings.tls.map { ($0, tlsLogger) },
            onGoAway: { [weak endpoint] connection in
                // Its calls finish on it; new calls go elsewhere.
                endpoint?.overflow.removeAll { $0 === connection }
            }
        )
        let made = attempt.always { result in
            endpoint.overflowAttempt = nil
            guard case .success(let connection) = result else { return }
            if self.isClosed {
                connection.close()
                return
            }
            endpoint.overflow.append(connection)
            self.logger.info(
                "upstream connection at its stream limit; opened another",
                metadata: [
                    "address": "\(address)", "connections": "\(1 + endpoint.overflow.count)",
                    "limit": "\(connection.peerMaxConcurrentStreams == Int.max ? "none" : "\(connection.peerMaxConcurrentStreams)")",
                ]
            )
            connection.channel?.closeFuture.whenComplete { [weak endpoint] _ in
                endpoint?.overflow.removeAll { $0 === connection }
            }
        }
        .flatMapErrorThrowing { error -> UpstreamConnection in
            throw UpstreamUnavailableError(
                target: self.target,
                reason: "every connection to \(address) is at the upstream's stream limit and another could not be made: "
                    + NetworkErrorDescription.describe(error)
            )
        }
        endpoint.overflowAttempt = made
        return made.flatMap { _ in self.connection() }
    }

    /// After an attempt failed: another address may have connected meanwhile, or still be trying.
    private func connectionAfterAttempts() -> EventLoopFuture<UpstreamConnection> {
        for endpoint in endpoints {
            switch endpoint.state {
            case .ready(let connection) where !connection.isDraining:
                return eventLoop.makeSucceededFuture(connection)
            case .connecting(let attempt):
                return attempt.flatMapError { _ in self.connectionAfterAttempts() }
            default:
                continue
            }
        }
        return eventLoop.makeFailedFuture(
            UpstreamUnavailableError(target: target, reason: lastFailure ?? "no connection could be made")
        )
    }

    private func resolve() -> EventLoopFuture<Void> {
        if let resolution { return resolution }
        let promise = eventLoop.makePromise(of: Void.self)
        // Registered before the lookup starts: an IP literal resolves synchronously, inside `whenComplete`.
        resolution = promise.futureResult
        resolver.resolve(target, on: eventLoop).whenComplete { result in
            self.resolution = nil
            switch result {
            case .success(let addresses):
                self.adopt(addresses)
                promise.succeed(())
            case .failure(let error):
                let reason = NetworkErrorDescription.describe(error)
                self.recordFailure(reason)
                promise.fail(UpstreamUnavailableError(target: self.target, reason: reason))
            }
        }
        return promise.futureResult
    }

    /// Replaces the address list, keeping connections to addresses that are still listed.
    private func adopt(_ addresses: [SocketAddress]) {
        let kept = endpoints.filter { addresses.contains($0.address) }
        for endpoint in endpoints where !addresses.contains(endpoint.address) {
            if case .ready(let connection) = endpoint.state {
                connection.close()
            }
        }
        var updated = kept
        for address in addresses where !kept.contains(where: { $0.address == address }) {
            updated.append(Endpoint(address: address))
        }
        endpoints = updated
        nextEndpoint = 0
        for endpoint in endpoints {
            if case .failed = endpoint.state { endpoint.state = .idle }
        }
        connectIdleEndpoints()
    }

    private func connectIdleEndpoints() {
        for endpoint in endpoints {
            if case .idle = endpoint.state {
                connect(endpoint)
            }
        }
    }

    /// While every address has failed, a call that arrives `callRetryInterval` after the last attempt starts a new
    /// one (and waits for it) instead of failing until the back-off timer fires: a restarted upstream is back for
    /// calls at once, not after up to `reconnectBackoffMaxSeconds`.
    private func retryNowIfDue() {
        guard lastFailure != nil, !isClosed, !endpoints.isEmpty else { return }
        let busy = endpoints.contains {
            switch $0.state {
            case .ready, .connecting: return true
            case .idle, .failed: return false
            }
        }
        guard !busy else { return }
        if let lastAttemptStart, NIODeadline.now() - lastAttemptStart < Self.callRetryInterval { return }
        for endpoint in endpoints {
            if case .failed = endpoint.state { endpoint.state = .idle }
        }
        connectIdleEndpoints()
    }

    private func connect(_ endpoint: Endpoint) {
        lastAttemptStart = .now()
        let attempt = UpstreamConnection.connect(
            to: endpoint.address,
            on: eventLoop,
            connectTimeout: settings.connectTimeout,
            tuning: settings.tuning,
            tls: settings.tls.map { ($0, tlsLogger) },
            onGoAway: { [weak self, weak endpoint] _ in
                guard let self, let endpoint else { return }
                self.goAwayReceived(endpoint)
            }
        )
        endpoint.state = .connecting(attempt)
        attempt.whenComplete { result in
            switch result {
            case .success(let connection):
                if self.isClosed {
                    connection.close()
                    return
                }
                endpoint.state = .ready(connection)
                if self.lastFailure != nil {
                    self.logger.info("upstream connection restored", metadata: ["address": "\(endpoint.address.endpointDescription)"])
                } else {
                    self.logger.debug("upstream connection established", metadata: ["address": "\(endpoint.address.endpointDescription)"])
                }
                self.lastFailure = nil
                self.consecutiveFailures = 0
                connection.channel?.closeFuture.whenComplete { _ in
                    self.connectionLost(connection, reason: connection.endReason ?? "connection closed")
                }
            case .failure(let error):
                endpoint.state = .failed(reason: "\(error)")
                self.recordFailure("connect to \(endpoint.address.endpointDescription) failed: \(NetworkErrorDescription.describe(error))")
            }
        }
    }

    private func goAwayReceived(_ endpoint: Endpoint) {
        guard case .ready = endpoint.state else { return }
        logger.info("upstream sent GOAWAY; new calls use a new connection", metadata: ["address": "\(endpoint.address.endpointDescription)"])
        // In-flight streams keep the old connection; the endpoint gets a fresh one for new calls.
        endpoint.state = .idle
        connectIdleEndpoints()
    }

    private func connectionLost(_ connection: UpstreamConnection, reason: String) {
        guard let endpoint = endpoints.first(where: {
            if case .ready(let current) = $0.state { return current === connection }
            return false
        }) else { return }
        endpoint.state = .idle
        if isClosed { return }
        logger.warning("upstream connection lost", metadata: ["address": "\(connection.address.endpointDescription)", "reason": "\(reason)"])
        // Reconnect straight away once; failures from there on back off.
        connect(endpoint)
    }

    /// Notes a failed attempt; when no address is usable, schedules the next attempt with back-off.
    private func recordFailure(_ reason: String) {
        let anyUsable = endpoints.contains {
            switch $0.state {
            case .ready, .connecting: return true
            case .idle, .failed: return false
            }
        }
        if anyUsable { return }
        if lastFailure == nil {
            logger.warning("upstream unavailable", metadata: ["reason": "\(reason)"])
        }
        lastFailure = reason
        consecutiveFailures += 1
        scheduleRetry()
    }

    private func scheduleRetry() {
        guard !isClosed else { return }
        retryTask?.cancel()
        let initial = Double(settings.backoffInitial.nanoseconds)
        let exponent = Double(max(0, consecutiveFailures - 1))
        var delay = initial
        for _ in 0..<Int(exponent) { delay *= settings.backoffMultiplier }
        delay = min(delay, Double(settings.backoffMax.nanoseconds))
        retryTask = eventLoop.scheduleTask(in: .nanoseconds(Int64(delay))) {
            self.retryTask = nil
            // Re-resolve: the name may point elsewhere now.
            _ = self.resolve()
        }
    }
}
