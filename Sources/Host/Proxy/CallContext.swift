// What a forwarded call needs to know about where it came in and where it goes.

import Logging
import NIOCore
import NIOConcurrencyHelpers

/// Settings and shared state of one listener, handed to every call it accepts.
final class ListenerContext: Sendable {
    /// Replaces the plugin chain for calls that start from now on; calls in flight keep theirs.
    func replacePlugins(_ chain: PluginChain?) {
        pluginChain.withLockedValue { $0 = chain.flatMap { $0.isEmpty ? nil : $0 } }
    }

    /// e.g. `a-to-b/outbound`.
    let name: String
    let upstream: UpstreamConnecting
    /// Where replication streams go instead of `upstream` in shard-count mode routing (the listener's
    /// `RoutingDirection`, docs/design/routing.md); nil otherwise. Set once, before the listener starts.
    var replicationUpstream: UpstreamConnecting? {
        get { routing.withLockedValue { $0 } }
        set { routing.withLockedValue { $0 = newValue } }
    }
    private let routing = NIOLockedValueBox<UpstreamConnecting?>(nil)
    let maxMessageBytes: Int
    let tuning: HTTP2Tuning
    /// The listener's lines and its connections' (`tcpServer` in the proxy); calls log as their service's component.
    let logger: Logger
    /// `logger` as `tlsHandshake`, made once for every TLS connection the listener accepts.
    let tlsLogger: Logger
    let activeCalls: ActiveCallCounter
    /// The plugins that run on this listener's calls; nil when the connection configures none. Read once per call;
    /// a reload (SIGHUP) swaps it for the calls that start after.
    var plugins: PluginChain? { pluginChain.withLockedValue { $0 } }
    private let pluginChain: NIOLockedValueBox<PluginChain?>
    /// The cluster connection and side, to find this listener's chain in a new plugin setup.
    let connectionIndex: Int
    let side: PluginSide
    /// Where the listener's calls are counted for the metrics endpoint.
    let metrics: CallMetrics
    /// The listener's replication streams (`StreamWorkflowReplicationMessages` calls), open and ended.
    let replicationStreams: ReplicationStreamRegistry

    init(
        name: String, upstream: UpstreamConnecting, maxMessageBytes: Int, tuning: HTTP2Tuning = HTTP2Tuning(),
        logger: Logger, activeCalls: ActiveCallCounter, plugins: PluginChain? = nil, connectionIndex: Int = 0,
        side: PluginSide = .outbound, metrics: CallMetrics? = nil, replicationStreams: ReplicationStreamRegistry? = nil
    ) {
        self.metrics = metrics ?? CallMetrics(connection: name, direction: side.rawValue)
        self.replicationStreams = replicationStreams
            ?? ReplicationStreamRegistry(connection: name, direction: side.rawValue)
        self.pluginChain = NIOLockedValueBox(plugins.flatMap { $0.isEmpty ? nil : $0 })
        self.connectionIndex = connectionIndex
        self.side = side
        self.name = name
        self.upstream = upstream
        self.maxMessageBytes = maxMessageBytes
        self.tuning = tuning
        self.logger = logger
        self.tlsLogger = logger.component(.tlsHandshake)
        self.activeCalls = activeCalls
    }
}

/// Where a listener's calls are forwarded to; `Upstream` in the proxy, a stand-in in tests.
protocol UpstreamConnecting: Sendable {
    /// The configured `host:port`, for messages.
    var target: HostAndPort { get }
    /// A connection to the upstream owned by `eventLoop`, the loop of the calling downstream connection.
    func connection(on eventLoop: EventLoop) -> EventLoopFuture<UpstreamConnection>
    /// A connection owned by `eventLoop` that can take a call now, if there is one: the common case, answered
    /// without a future. Nil sends the call to `connection(on:)`.
    func readyConnection(on eventLoop: EventLoop) -> UpstreamConnection?
}

extension UpstreamConnecting {
    func readyConnection(on eventLoop: EventLoop) -> UpstreamConnection? { nil }
}

/// Counts calls in flight across all listeners, so shutdown can wait for them to drain.
public final class ActiveCallCounter: Sendable {
    private let count = NIOLockedValueBox(0)

    public init() {}

    public var value: Int { count.withLockedValue { $0 } }

    func increment() { count.withLockedValue { $0 += 1 } }
    func decrement() { count.withLockedValue { $0 -= 1 } }
}

/// The two ends of a forwarded call, to say which one an event came from.
enum CallSide: Sendable {
    /// The downstream peer that opened the call on the listener.
    case client
    /// The upstream the call is forwarded to (its connection included).
    case upstream
}
