// What a forwarded call needs to know about where it came in and where it goes.

import Logging
import NIOCore
import NIOConcurrencyHelpers

/// Settings and shared state of one listener, handed to every call it accepts.
final class ListenerContext: Sendable {
    /// e.g. `a-to-b/outbound`.
    let name: String
    let upstream: UpstreamStreamOpening
    let maxMessageBytes: Int
    let logger: Logger
    let activeCalls: ActiveCallCounter

    init(name: String, upstream: UpstreamStreamOpening, maxMessageBytes: Int, logger: Logger, activeCalls: ActiveCallCounter) {
        self.name = name
        self.upstream = upstream
        self.maxMessageBytes = maxMessageBytes
        self.logger = logger
        self.activeCalls = activeCalls
    }
}

/// Where a listener's calls are forwarded to; `Upstream` in the proxy, a stand-in in tests.
protocol UpstreamStreamOpening: Sendable {
    /// The configured `host:port`, for messages.
    var target: HostAndPort { get }
    /// Opens a stream to the upstream from `eventLoop`, configuring its pipeline with `initializer`.
    func openStream(on eventLoop: EventLoop, _ initializer: @escaping (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel>
}

/// Counts calls in flight across all listeners, so shutdown can wait for them to drain.
public final class ActiveCallCounter: Sendable {
    private let count = NIOLockedValueBox(0)

    public init() {}

    public var value: Int { count.withLockedValue { $0 } }

    func increment() { count.withLockedValue { $0 += 1 } }
    func decrement() { count.withLockedValue { $0 -= 1 } }
}
