// The replication-stream registry: open streams with their shard ids and message counts, totals that carry on after
// streams end, who ended them, their durations; the Go-named families rendered from it and the debug entries.

import Foundation
import NIOCore
import NIOHPACK
import XCTest

@testable import Host

final class ReplicationStreamRegistryTests: XCTestCase {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    private let startDate = Date(timeIntervalSince1970: 1_800_000_000)

    private func shardHeaders() -> HPACKHeaders {
        [
            ":path": ReplicationStreamRegistry.method,
            "temporal-client-cluster-id": "2", "temporal-client-shard-id": "7",
            "temporal-server-cluster-id": "1", "temporal-server-shard-id": "3",
        ]
    }

    func testAnOpenStreamShowsItsShardsTimesAndMessagesEachWay() {
        let registry = ReplicationStreamRegistry(connection: "a-to-b", direction: "outbound")
        let stream = registry.open(headers: shardHeaders(), now: start, date: startDate)
        stream.forwarded(requests: 2, at: start + .seconds(10))
        stream.forwarded(responses: 3, at: start + .seconds(20))
        stream.forwarded(requests: 0, at: start + .seconds(40))

        let snapshot = registry.snapshot(now: start + .seconds(65), date: startDate.addingTimeInterval(65))
        XCTAssertEqual(snapshot.open, [ReplicationStreamRegistry.OpenStream(
            id: "outbound-1", clientShard: "(id: 2, shard: 7)", serverShard: "(id: 1, shard: 3)",
            startDate: startDate, lastSeenDate: startDate.addingTimeInterval(20), totalSeconds: 65, idleSeconds: 45,
            requestMessages: 2, responseMessages: 3
        )])
        XCTAssertEqual(snapshot.totals.opened, 1)
        XCTAssertEqual(snapshot.totals.closed, 0)
        XCTAssertEqual(snapshot.totals.requestMessages, 2)
        XCTAssertEqual(snapshot.totals.responseMessages, 3)
    }

    func testShardsNeedBothTheClusterAndTheShardHeader() {
        let registry = ReplicationStreamRegistry(connection: "c", direction: "inbound")
        _ = registry.open(headers: ["temporal-client-shard-id": "4", "temporal-server-cluster-id": "1"])
        let open = registry.snapshot().open
        XCTAssertEqual(open.count, 1)
        XCTAssertNil(open[0].clientShard)
        XCTAssertNil(open[0].serverShard)
    }

    func testClosingMovesMessagesAndDurationIntoTheTotalsAndRecordsWhoEndedIt() {
        let registry = ReplicationStreamRegistry(connection: "c", direction: "inbound")
        let first = registry.open(headers: [:], now: start)
        let second = registry.open(headers: [:], now: start)
        let third = registry.open(headers: [:], now: start)
        first.forwarded(requests: 5)
        first.forwarded(responses: 8)
        second.forwarded(responses: 1)
        registry.close(first, endedBy: .client, now: start + .seconds(30))
        registry.close(second, endedBy: .upstream, now: start + .seconds(7200))

        let totals = registry.snapshot().totals
        XCTAssertEqual(totals.opened, 3)
        XCTAssertEqual(totals.closed, 2)
        XCTAssertEqual(totals.requestMessages, 5)
        XCTAssertEqual(totals.responseMessages, 9)
        XCTAssertEqual(totals.terminated, [.target: 1, .source: 1], "the client is the target, the upstream the source")
        XCTAssertEqual(totals.durationSum, 7230)
        let bounds = ReplicationStreamRegistry.durationBounds
        XCTAssertEqual(totals.durationBuckets[bounds.firstIndex(of: 60)!], 1, "30 s")
        XCTAssertEqual(totals.durationBuckets[bounds.firstIndex(of: 7200)!], 1, "2 h")
        XCTAssertEqual(totals.durationBuckets.reduce(0, +), 2)
        XCTAssertEqual(registry.snapshot().open.map(\.id), ["inbound-3"])
        _ = third
    }

    func testClosingTwiceCountsOnce() {
        let registry = ReplicationStreamRegistry(connection: "c", direction: "outbound")
        let stream = registry.open(headers: [:])
        stream.forwarded(requests: 1)
        registry.close(stream, endedBy: .client)
        registry.close(stream, endedBy: .upstream)
        let totals = registry.snapshot().totals
        XCTAssertEqual(totals.closed, 1)
        XCTAssertEqual(totals.requestMessages, 1)
        XCTAssertEqual(totals.terminated, [.target: 1])
    }

    func testStreamsLongerThanADayLandInTheLastBucket() {
        let registry = ReplicationStreamRegistry(connection: "c", direction: "outbound")
        registry.close(registry.open(headers: [:], now: start), endedBy: .upstream, now: start + .hours(25))
        XCTAssertEqual(registry.snapshot().totals.durationBuckets.last, 1)
    }

    func testOpenStreamsAreListedOldestFirst() {
        let registry = ReplicationStreamRegistry(connection: "c", direction: "outbound")
        _ = registry.open(headers: [:], now: start + .seconds(5))
        _ = registry.open(headers: [:], now: start)
        XCTAssertEqual(registry.snapshot(now: start + .seconds(10)).open.map(\.id), ["outbound-2", "outbound-1"])
    }

    func testStreamsRecordFromManyThreadsAtOnce() {
        let registry = ReplicationStreamRegistry(connection: "c", direction: "outbound")
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            let stream = registry.open(headers: [:])
            for _ in 0..<1000 {
                stream.forwarded(requests: 1)
                stream.forwarded(responses: 2)
                _ = registry.snapshot()
            }
            registry.close(stream, endedBy: .client)
        }
        let totals = registry.snapshot().totals
        XCTAssertEqual(totals.requestMessages, 8000)
        XCTAssertEqual(totals.responseMessages, 16000)
        XCTAssertEqual(totals.closed, 8)
        XCTAssertEqual(registry.snapshot().open, [])
    }

    // MARK: What the metrics endpoint renders

    func testMetricsUseTheGoProxyNamesWithDirectionAndConfigName() {
        let metrics = ProxyMetrics()
        let registry = ReplicationStreamRegistry(connection: "a-to-b", direction: "outbound")
        metrics.add(registry)
        let open = registry.open(headers: [:])
        open.forwarded(requests: 2)
        open.forwarded(responses: 5)
        let ended = registry.open(headers: [:], now: start)
        registry.close(ended, endedBy: .upstream, now: start + .seconds(90))

        let text = metrics.render()
        let labels = #"direction="outbound",config_name="a-to-b""#
        for line in [
            "temporal_s2s_proxy_admin_service_streams_active{\(labels)} 1",
            "temporal_s2s_proxy_admin_service_streams_opened_count_total{\(labels)} 2",
            "temporal_s2s_proxy_admin_service_streams_closed_count_total{\(labels)} 1",
            // Named as in the Go proxy: requests are the replication messages sent to the stream's opener.
            "temporal_s2s_proxy_admin_service_stream_request_count_total{\(labels)} 5",
            "temporal_s2s_proxy_admin_service_stream_response_count_total{\(labels)} 2",
            "temporal_s2s_proxy_admin_service_stream_terminated_count_total{\(labels),terminated_by=\"source\"} 1",
            "temporal_s2s_proxy_admin_service_stream_terminated_count_total{\(labels),terminated_by=\"target\"} 0",
            "temporal_s2s_proxy_admin_service_stream_duration_bucket{\(labels),le=\"60\"} 0",
            "temporal_s2s_proxy_admin_service_stream_duration_bucket{\(labels),le=\"300\"} 1",
            "temporal_s2s_proxy_admin_service_stream_duration_bucket{\(labels),le=\"86400\"} 1",
            "temporal_s2s_proxy_admin_service_stream_duration_bucket{\(labels),le=\"+Inf\"} 1",
            "temporal_s2s_proxy_admin_service_stream_duration_sum{\(labels)} 90",
            "temporal_s2s_proxy_admin_service_stream_duration_count{\(labels)} 1",
            "# TYPE temporal_s2s_proxy_admin_service_streams_active gauge",
            "# TYPE temporal_s2s_proxy_admin_service_stream_duration histogram",
            "# TYPE temporal_s2s_proxy_admin_service_stream_terminated_count_total counter",
        ] {
            XCTAssertTrue(text.contains(line + "\n"), "missing: \(line)\n\(text)")
        }
    }

    // MARK: What /debug/connections shows

    func testDebugEntriesUseTheGoFieldNamesAndHumanDurations() throws {
        let registry = ReplicationStreamRegistry(connection: "c", direction: "inbound")
        let stream = registry.open(headers: shardHeaders(), now: start, date: startDate)
        stream.forwarded(responses: 1, at: start + .seconds(3))
        let open = registry.snapshot(now: start + .seconds(3723)).open[0]
        let info = ConnectionDebugInfo.ReplicationStreamInfo(open, direction: "inbound")
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(info)) as? [String: Any]
        XCTAssertEqual(json?["id"] as? String, "inbound-1")
        XCTAssertEqual(json?["method"] as? String, ReplicationStreamRegistry.method)
        XCTAssertEqual(json?["direction"] as? String, "inbound")
        XCTAssertEqual(json?["client_shard"] as? String, "(id: 2, shard: 7)")
        XCTAssertEqual(json?["server_shard"] as? String, "(id: 1, shard: 3)")
        XCTAssertEqual(json?["start_time"] as? String, "2027-01-15T08:00:00Z")
        XCTAssertEqual(json?["last_seen"] as? String, "2027-01-15T08:00:03Z")
        XCTAssertEqual(json?["total_duration"] as? String, "1h2m3s")
        XCTAssertEqual(json?["idle_duration"] as? String, "1h2m0s")
        XCTAssertEqual(json?["request_messages"] as? Int, 0)
        XCTAssertEqual(json?["response_messages"] as? Int, 1)
    }

    func testDebugEntriesLeaveOutShardsTheCallDidNotCarry() throws {
        let registry = ReplicationStreamRegistry(connection: "c", direction: "inbound")
        _ = registry.open(headers: [:])
        let info = ConnectionDebugInfo.ReplicationStreamInfo(registry.snapshot().open[0], direction: "inbound")
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(info)) as? [String: Any]
        XCTAssertNil(json?["client_shard"])
        XCTAssertNil(json?["server_shard"])
    }

    func testDurationsReadLikeGoDurationsInWholeSeconds() {
        let format = ConnectionDebugInfo.ReplicationStreamInfo.duration(seconds:)
        XCTAssertEqual(format(0), "0s")
        XCTAssertEqual(format(0.9), "0s")
        XCTAssertEqual(format(45), "45s")
        XCTAssertEqual(format(120), "2m0s")
        XCTAssertEqual(format(3607), "1h0m7s")
        XCTAssertEqual(format(90061), "25h1m1s")
        XCTAssertEqual(format(-5), "0s")
        XCTAssertEqual(format(.nan), "0s")
    }
}
