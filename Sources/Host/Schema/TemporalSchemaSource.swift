// Where one cluster connection gets its Temporal schema, and whether it has it yet.
//
// Owns `TemporalSchemaSource`: loads a saved file once, or pulls by gRPC reflection and retries with back-off
// (upstream.reconnectBackoff*, x1.6, as the upstream pools do) until a pull succeeds, since the local Temporal may
// still be starting. The plugin host starts one only when a plugin of the connection needs the schema, asks for
// `currentState` per call (to answer UNAVAILABLE with the pending reason) and registers `whenReady` to hand the
// schema to plugins. Thread-safe: every method may be called from any thread.

import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The Temporal schema of one cluster connection: loaded from a file, or pulled by reflection with retries.
public final class TemporalSchemaSource: Sendable {
    /// Where the schema comes from.
    public enum Origin: Sendable, Equatable, CustomStringConvertible {
        /// gRPC reflection of the server at this address.
        case reflection(HostAndPort)
        /// A saved binary FileDescriptorSet at this path.
        case file(String)

        /// The origin `connection` configures: `schema.file`, else `schema.reflectionAddress`, else the local
        /// Temporal (`local.tcpClient.address`). Nil when none of them is set or the address does not parse
        /// (a configuration that passed validation always has one for a tcp local side).
        public init?(connection: ClusterConnectionConfig) {
            if let file = connection.schema?.file {
                self = .file(file)
                return
            }
            let address = connection.schema?.reflectionAddress ?? connection.local.tcpClient?.address ?? ""
            guard let target = HostAndPort(parsing: address) else { return nil }
            self = .reflection(target)
        }

        public var description: String {
            switch self {
            case .reflection(let target): return "gRPC reflection at \(target)"
            case .file(let path): return "file \(path)"
            }
        }
    }

    /// Whether the schema is there.
    public enum State: Sendable, Equatable {
        /// Not yet; `reason` says why, in words fit for a caller's UNAVAILABLE status.
        case pending(reason: String)
        /// Here it is.
        case ready(TemporalSchema)
        /// A file origin that cannot be used; there are no retries. Reflection origins never end here.
        case failed(TemporalSchemaError)
    }

    /// Timing of pulls and retries.
    public struct Settings: Sendable, Equatable {
        /// The TCP connect of one pull.
        public var connectTimeout: TimeAmount
        /// One whole pull.
        public var pullTimeout: TimeAmount
        /// The delay after the first failed pull; each further failure multiplies it by `backoffMultiplier`.
        public var backoffInitial: TimeAmount
        /// The longest delay between pulls.
        public var backoffMax: TimeAmount
        public var backoffMultiplier: Double = 1.6

        public init(
            connectTimeout: TimeAmount,
            pullTimeout: TimeAmount = .seconds(30),
            backoffInitial: TimeAmount,
            backoffMax: TimeAmount
        ) {
            self.connectTimeout = connectTimeout
            self.pullTimeout = pullTimeout
            self.backoffInitial = backoffInitial
            self.backoffMax = backoffMax
        }

        /// Timeouts and back-off from the `upstream:` block, the same the upstream connections use.
        public init(upstream: UpstreamConfig) {
            self.init(
                connectTimeout: .nanoseconds(Int64(upstream.connectTimeoutSeconds * 1e9)),
                backoffInitial: .nanoseconds(Int64(upstream.reconnectBackoffInitialSeconds * 1e9)),
                backoffMax: .nanoseconds(Int64(upstream.reconnectBackoffMaxSeconds * 1e9))
            )
        }

        /// The delay before the next pull after `failures` failed ones in a row (at least 1).
        func delay(afterFailures failures: Int) -> TimeAmount {
            var delay = Double(backoffInitial.nanoseconds)
            for _ in 1..<max(1, failures) {
                delay *= backoffMultiplier
            }
            return .nanoseconds(Int64(min(delay, Double(backoffMax.nanoseconds))))
        }
    }

    private struct Inner {
        var state: State
        var callbacks: [@Sendable (TemporalSchema) -> Void] = []
        var started = false
        var stopped = false
        var failures = 0
        var retry: Scheduled<Void>?
    }

    /// Where this source gets the schema.
    public let origin: Origin
    private let settings: Settings
    /// How reflection pulls connect: TLS when the local Temporal is reached over TLS.
    private let security: ReflectionSchemaClient.TransportSecurity
    private let logger: Logger
    private let inner: NIOLockedValueBox<Inner>

    /// A source that does nothing until `start`. `logger` should carry the cluster connection's name; `security`
    /// applies to a reflection origin.
    public init(
        origin: Origin, settings: Settings, security: ReflectionSchemaClient.TransportSecurity = .plaintext,
        logger: Logger
    ) {
        self.origin = origin
        self.settings = settings
        self.security = security
        var logger = logger
        logger[metadataKey: "schemaSource"] = "\(origin)"
        self.logger = logger
        inner = NIOLockedValueBox(Inner(state: .pending(reason: "the Temporal schema (\(origin)) is not loaded yet")))
    }

    /// The state now. Cheap enough to ask per call.
    public var currentState: State {
        inner.withLockedValue { $0.state }
    }

    /// Loads the file (at once, on the calling thread), or starts pulling by reflection on one of `group`'s event
    /// loops, retrying until a pull succeeds or `stop` is called. A second call does nothing.
    public func start(group: EventLoopGroup) {
        let first = inner.withLockedValue { inner in
            defer { inner.started = true }
            return !inner.started && !inner.stopped
        }
        guard first else { return }
        switch origin {
        case .file(let path):
            do {
                succeeded(try TemporalSchema.load(file: path))
            } catch {
                inner.withLockedValue { $0.state = .failed(error) }
                logger.error("cannot load the Temporal schema", metadata: ["reason": "\(error)"])
            }
        case .reflection(let target):
            inner.withLockedValue { $0.state = .pending(reason: "the Temporal schema is being pulled from \(origin)") }
            pull(from: target, on: group.next())
        }
    }

    /// Calls `callback` with the schema once it is ready: at once (on the calling thread) if it already is,
    /// otherwise on the thread that completes the load or pull. Never called after `stop`, nor for a `.failed`
    /// file origin.
    public func whenReady(_ callback: @escaping @Sendable (TemporalSchema) -> Void) {
        let ready: TemporalSchema? = inner.withLockedValue { inner in
            if case .ready(let schema) = inner.state { return schema }
            if !inner.stopped { inner.callbacks.append(callback) }
            return nil
        }
        if let ready {
            callback(ready)
        }
    }

    /// Cancels the next retry and forgets the waiting callbacks; a pull in flight is left to finish unheard.
    public func stop() {
        let retry = inner.withLockedValue { inner in
            inner.stopped = true
            inner.callbacks = []
            defer { inner.retry = nil }
            return inner.retry
        }
        retry?.cancel()
    }

    // MARK: Pulling

    private func pull(from target: HostAndPort, on eventLoop: EventLoop) {
        let client = ReflectionSchemaClient(
            connectTimeout: settings.connectTimeout, timeout: settings.pullTimeout, security: security
        )
        client.pull(from: target, on: eventLoop).whenComplete { result in
            switch result {
            case .success(let schema):
                self.succeeded(schema)
            case .failure(let error):
                self.failed(error, target: target, eventLoop: eventLoop)
            }
        }
    }

    private func failed(_ error: Error, target: HostAndPort, eventLoop: EventLoop) {
        let delay: TimeAmount? = inner.withLockedValue { inner in
            guard !inner.stopped else { return nil }
            inner.failures += 1
            let delay = settings.delay(afterFailures: inner.failures)
            inner.state = .pending(reason: "the Temporal schema is not available yet: \(error)")
            inner.retry = eventLoop.scheduleTask(in: delay) {
                self.pull(from: target, on: eventLoop)
            }
            return delay
        }
        guard let delay else { return }
        logger.warning("cannot pull the Temporal schema yet; retrying", metadata: [
            "reason": "\(error)",
            "retryInSeconds": "\(Double(delay.nanoseconds / 1_000_000) / 1000)",
        ])
    }

    private func succeeded(_ schema: TemporalSchema) {
        let callbacks: [@Sendable (TemporalSchema) -> Void]? = inner.withLockedValue { inner in
            guard !inner.stopped else { return nil }
            inner.state = .ready(schema)
            inner.retry = nil
            defer { inner.callbacks = [] }
            return inner.callbacks
        }
        guard let callbacks else { return }
        logger.info("Temporal schema ready", metadata: [
            "source": "\(schema.source)",
            "services": "\(schema.services.count)",
            "files": "\(schema.fileCount)",
            "bytes": "\(schema.descriptorSetBytes.count)",
        ])
        for callback in callbacks {
            callback(schema)
        }
    }
}
