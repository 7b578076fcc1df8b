// What a forwarded call needs to know about where it came in and where it goes.

import Logging
import NIOConcurrencyHelpers

/// Settings and shared state of one listener, handed to every call it accepts.
final class ListenerContext: Sendable {
    /// e.g. `a-to-b/outbound`.
    let name: String
    let upstream: Upstream
    let maxMessageBytes: Int
    let logger: Logger
    let activeCalls: ActiveCallCounter

    init(name: String, upstream: Upstream, maxMessageBytes: Int, logger: Logger, activeCalls: ActiveCallCounter) {
        self.name = name
        self.upstream = upstream
        self.maxMessageBytes = maxMessageBytes
        self.logger = logger
        self.activeCalls = activeCalls
    }
}

/// Counts calls in flight across all listeners, so shutdown can wait for them to drain.
public final class ActiveCallCounter: Sendable {
    private let count = NIOLockedValueBox(0)

    public init() {}

    public var value: Int { count.withLockedValue { $0 } }

    func increment() { count.withLockedValue { $0 += 1 } }
    func decrement() { count.withLockedValue { $0 -= 1 } }
}
