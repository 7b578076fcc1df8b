// The time plugins take: `DurationHistogram`'s buckets.

@testable import Host
import XCTest

final class PluginLatencyMetricsTests: XCTestCase {
    // MARK: The histogram

    func testDurationsCountInTheBucketOfTheirUpperBound() {
        var histogram = DurationHistogram()
        for nanoseconds: UInt64 in [0, 1_000, 1_001, 99_999, 100_000_000, 100_000_001] {
            histogram.record(nanoseconds: nanoseconds)
        }
        XCTAssertEqual(DurationHistogram.boundsInSeconds.first, 0.000_001)
        XCTAssertEqual(DurationHistogram.boundsInSeconds.last, 0.1)
        XCTAssertEqual(histogram.count, 6)
        XCTAssertEqual(histogram.sumNanoseconds, 200_102_001)
        let buckets = histogram.cumulativeBuckets
        XCTAssertEqual(buckets.count, DurationHistogram.boundsInSeconds.count)
        XCTAssertEqual(buckets[0], 2, "0 and exactly 1 µs")
        XCTAssertEqual(buckets[1], 3, "1.001 µs is at most 2.5 µs")
        XCTAssertEqual(buckets[5], 3, "nothing up to 50 µs")
        XCTAssertEqual(buckets[6], 4, "99.999 µs is at most 100 µs")
        XCTAssertEqual(buckets.last, 5, "above 100 ms only +Inf counts it")

        var sum = DurationHistogram()
        sum.add(histogram)
        sum.add(histogram)
        XCTAssertEqual(sum.count, 12)
        XCTAssertEqual(sum.cumulativeBuckets, buckets.map { $0 * 2 })
        XCTAssertNotEqual(sum, histogram)
    }
}
