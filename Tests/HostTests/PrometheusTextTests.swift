// The Prometheus text exposition: family headers, escaping, histogram shape; and the call metrics behind it.

import NIOPosix
import XCTest

@testable import Host

final class PrometheusTextTests: XCTestCase {
    func testFamilyHasHelpAndTypeLinesBeforeItsSamples() {
        var text = PrometheusText()
        text.family("s2s_proxy_calls_in_flight", .gauge, help: "Calls being forwarded now.")
        text.sample("s2s_proxy_calls_in_flight", [("connection", "a"), ("direction", "inbound")], 3)
        XCTAssertEqual(text.text, """
            # HELP s2s_proxy_calls_in_flight Calls being forwarded now.
            # TYPE s2s_proxy_calls_in_flight gauge
            s2s_proxy_calls_in_flight{connection="a",direction="inbound"} 3

            """)
    }

    func testLabelValuesEscapeBackslashQuoteAndLineFeed() {
        var text = PrometheusText()
        text.sample("m", [("method", "a\\b\"c\nd")], 1)
        XCTAssertEqual(text.text, #"m{method="a\\b\"c\nd"} 1"# + "\n")
    }

    func testHelpEscapesBackslashAndLineFeedButNotQuotes() {
        var text = PrometheusText()
        text.family("m", .counter, help: "say \"hi\"\\\nbye")
        XCTAssertEqual(text.text, "# HELP m say \"hi\"\\\\\\nbye\n# TYPE m counter\n")
    }

    func testSampleValuesAreIntegersFractionsOrSpelledInfinities() {
        XCTAssertEqual(PrometheusText.format(42), "42")
        XCTAssertEqual(PrometheusText.format(0.25), "0.25")
        XCTAssertEqual(PrometheusText.format(.infinity), "+Inf")
        XCTAssertEqual(PrometheusText.format(-.infinity), "-Inf")
        XCTAssertEqual(PrometheusText.format(.nan), "NaN")
    }

    func testHistogramIsCumulativeBucketsThenInfSumAndCount() {
        var text = PrometheusText()
        text.histogram("d", [("m", "x")], bounds: [0.1, 1], cumulativeBuckets: [1, 3], sum: 2.5, count: 4)
        XCTAssertEqual(text.text, """
            d_bucket{m="x",le="0.1"} 1
            d_bucket{m="x",le="1"} 3
            d_bucket{m="x",le="+Inf"} 4
            d_sum{m="x"} 2.5
            d_count{m="x"} 4

            """)
    }

    func testCallMetricsCountByMethodAndStatusAndKeepInFlight() {
        let metrics = CallMetrics(connection: "c", direction: "outbound")
        for shard in [0, 5, 5] { metrics.callStarted(shard: shard) }
        metrics.callEnded(shard: 0, method: "/s/A", status: 0, failedInProxy: false, seconds: 0.003)
        metrics.callEnded(shard: 5, method: "/s/A", status: 14, failedInProxy: true, seconds: 2)
        let snapshot = metrics.snapshot
        XCTAssertEqual(snapshot.inFlight, 1)
        XCTAssertEqual(snapshot.methods["/s/A"]?.callsByCode, [0: 1, 14: 1])
        XCTAssertEqual(snapshot.methods["/s/A"]?.durationSum ?? 0, 2.003, accuracy: 1e-9)
        XCTAssertEqual(snapshot.failedInProxyByCode, [14: 1])
        let buckets = snapshot.methods["/s/A"]!.durationBuckets
        XCTAssertEqual(buckets[CallMetrics.durationBounds.firstIndex(of: 0.005)!], 1)
        XCTAssertEqual(buckets[CallMetrics.durationBounds.firstIndex(of: 2.5)!], 1)
    }

    func testMethodsBeyondTheLimitAreCountedAsOther() {
        let metrics = CallMetrics(connection: "c", direction: "inbound")
        for index in 0..<(CallMetrics.methodLimit + 10) {
            metrics.callStarted(shard: index % 3)
            metrics.callEnded(shard: index % 3, method: "/s/M\(index)", status: 0, failedInProxy: false, seconds: 0)
        }
        let methods = metrics.snapshot.methods
        XCTAssertEqual(methods.count, CallMetrics.methodLimit + 1)
        XCTAssertEqual(methods.values.reduce(0) { $0 + ($1.callsByCode[0] ?? 0) }, UInt64(CallMetrics.methodLimit + 10))
        XCTAssertNotNil(methods["other"])
    }

    func testRenderedCallFamiliesNameStatusCodes() {
        let proxy = ProxyMetrics()
        let calls = CallMetrics(connection: "c", direction: "outbound")
        proxy.add(calls)
        calls.callStarted(shard: 1)
        calls.callEnded(shard: 1, method: "/s/A", status: 5, failedInProxy: false, seconds: 0.01)
        let text = proxy.render()
        let labels = #"connection="c",direction="outbound",method="/s/A""#
        XCTAssertTrue(text.contains("s2s_proxy_calls_total{\(labels),grpc_code=\"NOT_FOUND\"} 1"), text)
        XCTAssertTrue(text.contains("s2s_proxy_call_duration_seconds_count{\(labels)} 1"), text)
        XCTAssertTrue(text.contains("# TYPE s2s_proxy_call_duration_seconds histogram\n"), text)
    }
}
