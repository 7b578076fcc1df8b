// The time plugins take and the Go proxy's translation figures: `DurationHistogram`'s buckets, and the bundled
// namespace-rename plugin run through the chain and runner as in the proxy, over messages captured from a Temporal
// dev server (Tests/Fixtures/walker), then rendered as `/metrics` renders them.

@testable import Host
import Foundation
import Logging
import NIOCore
import NIOHPACK
import PluginABI
import XCTest

final class PluginLatencyMetricsTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    private let workflowService = "/temporal.api.workflowservice.v1.WorkflowService/"
    private let workflowPackage = "temporal.api.workflowservice.v1."

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

    func testOnlyTheGoProxysTranslationsHaveAKind() {
        XCTAssertEqual(TranslationKind(pluginName: "namespace-rename"), .namespace)
        XCTAssertEqual(TranslationKind(pluginName: "search-attribute-rename")?.rawValue, "search-attribute")
        XCTAssertEqual(TranslationKind(pluginName: "utf8-repair")?.rawValue, "utf8repair")
        for other in ["acl", "cluster-adapter", "probe", "example-header-stamp"] {
            XCTAssertNil(TranslationKind(pluginName: other), other)
        }
    }

    // MARK: namespace-rename through the runner

    /// A namespace-rename entry mapping `walker-ns` (the fixtures' namespace) to `walker-ns.remote`, given the dev
    /// server's schema unless `withSchema` is false.
    private func namespaceRename(label: String = "clusterConnections[0].namespaceTranslation",
                                 policy: PluginFailurePolicy = .failClosed, withSchema: Bool = true) throws -> PluginEntry {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let entry = try PluginEntry(
            library: try BundledPluginLibrary.load("namespace-rename"), label: label, connectionName: "c", sides: .both,
            policy: policy, optionsJSON: #"{"mappings":[{"local":"walker-ns","remote":"walker-ns.remote"}]}"#,
            logger: logger, metrics: PluginMetricsRegistry()
        )
        if withSchema {
            entry.deliverSchema(try schema())
            XCTAssertEqual(entry.currentSchemaState, .ready)
        }
        return entry
    }

    private func schema() throws -> TemporalSchema {
        try TemporalSchema.load(file: Self.fixtures.appendingPathComponent("temporal-dev-schema.binpb").path)
    }

    private func message(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: Self.fixtures.appendingPathComponent("walker/messages/\(name).binpb")))
    }

    private func framed(_ payload: [UInt8], compressed: Bool = false) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(compressed ? 1 : 0))
        buffer.writeInteger(UInt32(payload.count))
        buffer.writeBytes(payload)
        return buffer
    }

    /// One unary call of the WorkflowService method `name` through `chain`: an empty request, then `response` if
    /// given; whether each message went on.
    private func call(_ chain: PluginChain, _ name: String, response: ByteBuffer?) throws -> [Bool] {
        let method = workflowService + name
        let runner = PluginCallRunner(plan: try XCTUnwrap(chain.plan(for: method)), method: method, side: chain.side, connection: "c")
        var headers = HPACKHeaders([(":method", "POST"), (":path", method)])
        guard case .proceed = runner.start(headers: &headers) else {
            XCTFail("call rejected")
            return []
        }
        var forwarded: [Bool] = []
        for (message, direction) in [(framed([]), S2S_DIRECTION_REQUEST), (response, S2S_DIRECTION_RESPONSE)] {
            guard let message else { continue }
            if case .forward = runner.message(message, direction: direction) { forwarded.append(true) } else { forwarded.append(false) }
        }
        runner.end(grpcStatus: 0)
        return forwarded
    }

    /// The value of the sample line that starts with `series`, nil if there is none.
    private func sample(_ text: String, _ series: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.dropFirst(series.count + 1)) }
    }

    func testTranslationsAreCountedPerMessageTypeAndSummedOverEntries() throws {
        // Two entries of the kind, as two cluster connections would have: their figures add up.
        let failingClosed = try namespaceRename(label: "clusterConnections[0].namespaceTranslation", policy: .failClosed)
        let failingOpen = try namespaceRename(label: "clusterConnections[1].namespaceTranslation", policy: .failOpen)
        // Responses on the inbound side go to the remote cluster: the local name in DescribeNamespace's is renamed.
        let first = PluginChain(side: .inbound, connectionName: "c", entries: [failingClosed])
        let second = PluginChain(side: .inbound, connectionName: "c", entries: [failingOpen])

        let describe = try message("DescribeNamespaceResponse")
        XCTAssertEqual(try call(first, "DescribeNamespace", response: framed(describe)), [true, true])
        XCTAssertEqual(try call(first, "PollWorkflowTaskQueue", response: framed(try message("PollWorkflowTaskQueueResponse"))),
                       [true, true])
        // A method the schema lacks: the plugin still sees its request, of no known type.
        XCTAssertEqual(try call(first, "NotInTheSchema", response: nil), [true])
        // A compressed message the proxy cannot inflate (no grpc-encoding): namespace-rename fails on it, and the
        // entry that fails open lets it go on.
        XCTAssertEqual(try call(second, "DescribeNamespace", response: framed(describe, compressed: true)), [true, true])

        var text = PrometheusText()
        ProxyMetrics.renderPluginLatencies([failingClosed, failingOpen], into: &text)
        func value(_ family: String, _ type: String) -> Double? {
            sample(text.text, family + #"{kind="namespace",message_type="\#(type)"}"#)
        }
        let success = "temporal_s2s_proxy_translation_success_total"
        let error = "temporal_s2s_proxy_translation_error_total"
        let latency = "temporal_s2s_proxy_translation_latency_count"
        let describeResponse = workflowPackage + "DescribeNamespaceResponse"
        XCTAssertEqual(value(success, describeResponse), 1, text.text)
        XCTAssertEqual(value(error, describeResponse), 1)
        XCTAssertEqual(value(latency, describeResponse), 2)
        XCTAssertEqual(value(success, workflowPackage + "DescribeNamespaceRequest"), 0, "an empty request has no name to change")
        XCTAssertEqual(value(latency, workflowPackage + "DescribeNamespaceRequest"), 2)
        XCTAssertEqual(value(success, workflowPackage + "PollWorkflowTaskQueueResponse"), 0)
        XCTAssertEqual(value(latency, workflowPackage + "PollWorkflowTaskQueueResponse"), 1)
        XCTAssertEqual(value(latency, "unknown"), 1)
        let seriesCount = text.text.split(separator: "\n").filter { $0.hasPrefix(success + "{") }.count
        XCTAssertEqual(seriesCount, 5, "only the types seen: DescribeNamespace's two, PollWorkflowTaskQueue's two, unknown")
        let buckets = text.text.split(separator: "\n").filter { $0.hasPrefix("temporal_s2s_proxy_translation_latency_bucket{") }
        XCTAssertEqual(buckets.count, 5 * (DurationHistogram.boundsInSeconds.count + 1))

        // The per-entry hook figures of the same traffic.
        let stats = failingClosed.stats
        XCTAssertEqual([stats.calls, stats.messages, stats.replaced, stats.failures], [3, 5, 1, 0])
        XCTAssertEqual(stats.messageDurations.count, stats.messages)
        XCTAssertEqual(stats.callStartDurations.count, stats.calls)
        XCTAssertEqual(stats.callEndDurations.count, stats.calls)
        let hook = #"s2s_proxy_plugin_hook_duration_seconds_count{plugin="namespace-rename",entry="clusterConnections[0].namespaceTranslation",connection="c",hook="on_message"}"#
        XCTAssertEqual(sample(text.text, hook), 5)
        XCTAssertEqual(failingOpen.stats.failures, 1)
    }

    func testAPlanMadeBeforeTheSchemaArrivedIsNotKept() throws {
        let entry = try namespaceRename(withSchema: false)
        let chain = PluginChain(side: .inbound, connectionName: "c", entries: [entry])
        let method = workflowService + "DescribeNamespace"
        XCTAssertNil(try XCTUnwrap(chain.plan(for: method)).steps[0].messageTypes, "no schema, no message types yet")
        entry.deliverSchema(try schema())
        XCTAssertNotNil(try XCTUnwrap(chain.plan(for: method)).steps[0].messageTypes)
        XCTAssertEqual(try call(chain, "DescribeNamespace", response: framed(try message("DescribeNamespaceResponse"))), [true, true])
        let counted = try XCTUnwrap(entry.translationSnapshot).seen.map { "\($0.messageType) \($0.counters.succeeded)" }
        XCTAssertEqual(counted, [workflowPackage + "DescribeNamespaceRequest 0", workflowPackage + "DescribeNamespaceResponse 1"])
    }
}
