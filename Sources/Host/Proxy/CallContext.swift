// What a forwarded call needs to know about where it came in and where it goes.

import Logging
import NIOCore
import NIOConcurrencyHelpers

/// Settings and shared state of one listener, handed to every call it accepts.
final class ListenerContext: Sendable {
    /// e.g. `a-to-b/outbound`.
    let name: String
    let upstream: UpstreamConnecting
    let maxMessageBytes: Int
    let tuning: HTTP2Tuning
    let logger: Logger
    let activeCalls: ActiveCallCounter
    /// The plugins that run on this listener's calls; nil when the connection configures none.
    let plugins: PluginChain?
    /// Where the listener's calls are counted for the metrics endpoint.
    let metrics: CallMetrics

    init(
        name: String, upstream: UpstreamConnecting, maxMessageBytes: Int, tuning: HTTP2Tuning = HTTP2Tuning(),
        logger: Logger, activeCalls: ActiveCallCounter, plugins: PluginChain? = nil, metrics: CallMetrics? = nil
    ) {
        self.metrics = metrics ?? CallMetrics(connection: name, direction: "")
        self.plugins = plugins.flatMap { $0.isEmpty ? nil : $0 }
        self.name = name
        self.upstream = upstream
        self.maxMessageBytes = maxMessageBytes
        self.tuning = tuning
        self.logger = logger
        self.activeCalls = activeCalls
    }
}

/// Where a listener's calls are forwarded to; `Upstream` in the proxy, a stand-in in tests.
protocol UpstreamConnecting: Sendable {
    /// The configured `host:port`, for messages.
    var target: HostAndPort { get }
    /// A connection to the upstream owned by `eventLoop`, the loop of the calling downstream connection.
    func connection(on eventLoop: EventLoop) -> EventLoopFuture<UpstreamConnection>
}

/// Counts calls in flight across all listeners, so shutdown can wait for them to drain.
public final class ActiveCallCounter: Sendable {
    private let count = NIOLockedValueBox(0)

    public init() {}

    public var value: Int { count.withLockedValue { $0 } }

    func increment() { count.withLockedValue { $0 += 1 } }
    func decrement() { count.withLockedValue { $0 -= 1 } }
}
