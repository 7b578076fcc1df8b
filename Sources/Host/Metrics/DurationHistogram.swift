// A histogram of short durations in fixed-size storage, for timings taken on a call's path (plugin hooks): recording
// finds the bucket with a few integer comparisons and never allocates, so it can run under a lock once per hook.
//
// Owns the bucket layout (1 µs to 100 ms) and the arithmetic; the exposition is `PrometheusText.histogram`'s.

import NIOCore

/// Durations counted per bucket from 1 µs to 100 ms, the range of a plugin hook's work: a header edit takes a few
/// microseconds, a walk over a large batch of history events milliseconds. Longer ones count in the +Inf bucket.
public struct DurationHistogram: Sendable {
    /// Upper bounds of the buckets in nanoseconds (1, 2.5, 5 per decade); the +Inf bucket follows the last.
    static let boundsInNanoseconds: InlineArray<16, UInt64> = [
        1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
        1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000,
    ]

    /// The same bounds in seconds, as the `le` labels show them.
    public static let boundsInSeconds: [Double] = boundsInNanoseconds.indices.map {
        Double(boundsInNanoseconds[$0]) / 1e9
    }

    /// Observations per bucket, not cumulative: index i counts durations in (bound[i-1], bound[i]]; the last
    /// element (one more than there are bounds) counts those above 100 ms.
    private var perBucket = InlineArray<17, UInt64>(repeating: 0)
    /// How many durations were recorded.
    public private(set) var count: UInt64 = 0
    /// Their sum, in nanoseconds (wraps after 584 years of hook time).
    public private(set) var sumNanoseconds: UInt64 = 0

    public init() {}

    /// Counts one duration.
    mutating func record(nanoseconds: UInt64) {
        let bounds = Self.boundsInNanoseconds
        var index = 0
        while index < bounds.count, nanoseconds > bounds[index] {
            index += 1
        }
        perBucket[index] += 1
        count += 1
        sumNanoseconds &+= nanoseconds
    }

    /// Counts one measured duration; a negative one (impossible with the monotonic clock) counts as 0.
    mutating func record(_ elapsed: TimeAmount) {
        record(nanoseconds: UInt64(max(0, elapsed.nanoseconds)))
    }

    /// Adds another histogram's observations to this one (to sum series that share their labels).
    mutating func add(_ other: DurationHistogram) {
        for index in perBucket.indices {
            perBucket[index] += other.perBucket[index]
        }
        count += other.count
        sumNanoseconds &+= other.sumNanoseconds
    }

    /// Observations at or below each bound of `boundsInSeconds`, as Prometheus buckets count them; `count` is the
    /// +Inf bucket.
    public var cumulativeBuckets: [UInt64] {
        var running: UInt64 = 0
        return Self.boundsInNanoseconds.indices.map { index in
            running += perBucket[index]
            return running
        }
    }

    /// The sum in seconds, for `_sum`.
    public var sumSeconds: Double { Double(sumNanoseconds) / 1e9 }
}

extension DurationHistogram: Equatable {
    public static func == (lhs: DurationHistogram, rhs: DurationHistogram) -> Bool {
        lhs.count == rhs.count && lhs.sumNanoseconds == rhs.sumNanoseconds
            && lhs.perBucket.indices.allSatisfy { lhs.perBucket[$0] == rhs.perBucket[$0] }
    }
}
