// LatencyHistogram: a fixed-size log-linear histogram of latencies in nanoseconds, so recording a sample is an
// index computation and an increment (no allocation, no sorting) and per-connection histograms merge by adding
// counts. Each power of two is split into 64 buckets, which bounds the error of a reported percentile to under 1%.

/// Latency samples in log-linear buckets.
struct LatencyHistogram: Sendable {
    /// Sub-buckets per power of two, as a bit count: 2^6 = 64 buckets, under 1% relative width each.
    private static let subBucketBits = 6
    private static let subBucketCount = 1 << subBucketBits
    /// Values below `subBucketCount` get one exact bucket each; above, 64 buckets per power of two up to 2^64.
    private static let bucketCount = subBucketCount + (64 - subBucketBits) * subBucketCount

    private var counts = [UInt64](repeating: 0, count: LatencyHistogram.bucketCount)

    /// Samples recorded.
    private(set) var sampleCount: UInt64 = 0
    /// The largest sample, exact.
    private(set) var maximum: UInt64 = 0

    /// Records one latency.
    mutating func record(nanoseconds: UInt64) {
        self.counts[Self.bucketIndex(of: nanoseconds)] += 1
        self.sampleCount += 1
        self.maximum = max(self.maximum, nanoseconds)
    }

    /// Adds every sample of `other` to this histogram.
    mutating func merge(_ other: LatencyHistogram) {
        for index in other.counts.indices where other.counts[index] != 0 {
            self.counts[index] += other.counts[index]
        }
        self.sampleCount += other.sampleCount
        self.maximum = max(self.maximum, other.maximum)
    }

    /// The latency that `fraction` (0...1) of the samples do not exceed, at bucket precision; 0 when empty.
    func percentile(_ fraction: Double) -> UInt64 {
        guard self.sampleCount > 0 else {
            return 0
        }
        let rank = max(1, UInt64((fraction * Double(self.sampleCount)).rounded(.up)))
        var seen: UInt64 = 0
        for (index, count) in self.counts.enumerated() where count != 0 {
            seen += count
            if seen >= rank {
                return min(Self.midpoint(ofBucket: index), self.maximum)
            }
        }
        return self.maximum
    }

    private static func bucketIndex(of value: UInt64) -> Int {
        if value < UInt64(Self.subBucketCount) {
            return Int(value)
        }
        let exponent = 63 - value.leadingZeroBitCount
        let shift = exponent - Self.subBucketBits
        let subBucket = Int(value >> UInt64(shift)) - Self.subBucketCount
        return Self.subBucketCount + shift * Self.subBucketCount + subBucket
    }

    private static func midpoint(ofBucket index: Int) -> UInt64 {
        if index < Self.subBucketCount {
            return UInt64(index)
        }
        let shift = (index - Self.subBucketCount) / Self.subBucketCount
        let subBucket = (index - Self.subBucketCount) % Self.subBucketCount
        let lowerBound = UInt64(Self.subBucketCount + subBucket) << UInt64(shift)
        return lowerBound + (UInt64(1) << UInt64(shift)) / 2
    }
}
