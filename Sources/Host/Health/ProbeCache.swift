// Keeps a reachability probe's answer for a short while, so a load balancer that polls `/health` often (or several
// polling at once) costs at most one probe connection per interval.

import NIOConcurrencyHelpers
import NIOCore

/// The last answer of an asynchronous probe, reused while younger than `maxAge`.
final class ProbeCache: Sendable {
    private let maxAge: TimeAmount
    private let last = NIOLockedValueBox<(at: NIODeadline, failure: String?)?>(nil)

    init(maxAge: TimeAmount = .seconds(1)) {
        self.maxAge = maxAge
    }

    /// The cached answer when fresh, else `probe()`'s (then cached). Nil means reachable.
    func value(
        now: NIODeadline = .now(), on loop: EventLoop, probe: () -> EventLoopFuture<String?>
    ) -> EventLoopFuture<String?> {
        if let cached = last.withLockedValue({ $0 }), now - cached.at < maxAge {
            return loop.makeSucceededFuture(cached.failure)
        }
        return probe().hop(to: loop).map { failure in
            self.last.withLockedValue { $0 = (NIODeadline.now(), failure) }
            return failure
        }
    }
}
