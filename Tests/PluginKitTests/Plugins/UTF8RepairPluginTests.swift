// utf8-repair driven through its exported C table as the host drives it, with the real Temporal schema: valid
// messages pass untouched and uncopied, invalid UTF-8 is repaired deep in replication tasks and inside the history
// that DataBlobs carry, and the `fields` option narrows the repair to Failure messages.

import PluginABI
import PluginKit
import UTF8Repair
import XCTest

final class UTF8RepairPluginTests: XCTestCase {
    private let adminService = "/temporal.server.api.adminservice.v1.AdminService/"
    private let workflowService = "/temporal.api.workflowservice.v1.WorkflowService/"
    private let invalid: [UInt8] = [0xFF, 0xFE, 0xC3]
    private let replaced = Array("\u{FFFD}".utf8)

    // MARK: Messages built by field name against the fixture schema

    private enum Part {
        case bytes([UInt8])
        case varint(UInt64)
    }

    private func encode(_ type: String, _ parts: [(String, Part)]) throws -> [UInt8] {
        let schema = try TemporalFixtures.schema.get()
        let message = try XCTUnwrap(schema.message(named: type), type)
        return try parts.flatMap { name, part in
            let number = try XCTUnwrap(message.field(named: name)?.number, "\(type).\(name)")
            switch part {
            case .bytes(let payload): return lengthDelimited(number, payload)
            case .varint(let value): return varintField(number, value)
            }
        }
    }

    /// A replication stream response whose second task is a SyncActivity task with a failure chain; `cause` is the
    /// innermost failure's message and `workflowID` the task's workflow id.
    private func replicationResponse(
        cause: [UInt8], workflowID: [UInt8] = Array("wf".utf8), stackTrace: [UInt8] = Array("t".utf8)
    ) throws -> [UInt8] {
        let innerFailure = try encode("temporal.api.failure.v1.Failure", [
            ("message", .bytes(cause)), ("stack_trace", .bytes(stackTrace)),
        ])
        let outerFailure = try encode("temporal.api.failure.v1.Failure", [
            ("message", .bytes(utf8("activity failed"))), ("cause", .bytes(innerFailure)),
        ])
        let syncActivity = try encode("temporal.server.api.replication.v1.SyncActivityTaskAttributes", [
            ("namespace_id", .bytes(utf8("7f3c"))), ("workflow_id", .bytes(workflowID)),
            ("last_failure", .bytes(outerFailure)), ("attempt", .varint(3)),
        ])
        let firstTask = try encode("temporal.server.api.replication.v1.ReplicationTask", [
            ("task_type", .varint(1)), ("source_task_id", .varint(41)),
        ])
        let secondTask = try encode("temporal.server.api.replication.v1.ReplicationTask", [
            ("task_type", .varint(2)), ("source_task_id", .varint(42)),
            ("sync_activity_task_attributes", .bytes(syncActivity)),
        ])
        let messages = try encode("temporal.server.api.replication.v1.WorkflowReplicationMessages", [
            ("replication_tasks", .bytes(firstTask)), ("replication_tasks", .bytes(secondTask)),
            ("exclusive_high_watermark", .varint(43)),
        ])
        return try encode("temporal.server.api.adminservice.v1.StreamWorkflowReplicationMessagesResponse", [
            ("messages", .bytes(messages)),
        ])
    }

    /// A raw-history response with one protobuf DataBlob holding two events, the second a workflow failure.
    private func rawHistoryResponse(failureMessage: [UInt8]) throws -> [UInt8] {
        let failure = try encode("temporal.api.failure.v1.Failure", [("message", .bytes(failureMessage))])
        let attributes = try encode("temporal.api.history.v1.WorkflowExecutionFailedEventAttributes", [
            ("failure", .bytes(failure)), ("retry_state", .varint(2)),
        ])
        let events = try [
            encode("temporal.api.history.v1.HistoryEvent", [("event_id", .varint(1))]),
            encode("temporal.api.history.v1.HistoryEvent", [
                ("event_id", .varint(2)), ("workflow_execution_failed_event_attributes", .bytes(attributes)),
            ]),
        ]
        let history = try encode("temporal.api.history.v1.History", events.map { ("events", .bytes($0)) })
        let blob = try encode("temporal.api.common.v1.DataBlob", [
            ("encoding_type", .varint(1)), ("data", .bytes(history)),
        ])
        return try encode("temporal.server.api.adminservice.v1.GetWorkflowExecutionRawHistoryV2Response", [
            ("history_batches", .bytes(blob)), ("history_node_ids", .varint(5)),
        ])
    }

    // MARK: Driving the plugin

    private struct Loaded {
        let driver: PluginDriver
        let host: FakeHost
        let config: UnsafeMutableRawPointer
    }

    private func load(options: String = "{}") throws -> Loaded {
        let table = try XCTUnwrap(PluginExport.table(for: UTF8Repair.self, hostMajor: 1, hostMinor: 0))
        let driver = PluginDriver(table: table)
        let host = FakeHost()
        let config = try driver.configNew(options, host: host).get()
        var error = [CChar](repeating: 0, count: 256)
        let schema = try TemporalFixtures.schemaBytes()
        let ready = schema.withUnsafeBufferPointer {
            driver.table.pointee.schema_ready!(config, s2s_bytes_t(data: $0.baseAddress, len: $0.count), &error, 256)
        }
        XCTAssertEqual(ready, S2S_OK, String(cString: error))
        return Loaded(driver: driver, host: host, config: config)
    }

    /// What one call's message came to: the outcome, the replacement if any, the status message if any.
    private typealias CallResult = (outcome: s2s_outcome_t, replacement: [UInt8]?, status: String?)

    /// One call of `method` carrying `payload` in `direction`: the outcome and the replacement, if any.
    private func run(
        _ loaded: Loaded, method: String, direction: s2s_direction_t, payload: [UInt8], compressed: Bool = false
    ) -> CallResult {
        let call = FakeCall()
        XCTAssertEqual(loaded.driver.callStart(loaded.config, call: call, method: method), S2S_OK)
        let outcome = loaded.driver.onMessage(
            loaded.config, call: call, direction: direction, payload: payload, compressed: compressed
        )
        loaded.driver.callEnd(loaded.config, call: call, grpcStatus: 0)
        return (outcome, call.replacement, call.status?.message)
    }

    private func replicationCall(_ loaded: Loaded, _ payload: [UInt8]) -> CallResult {
        run(loaded, method: adminService + "StreamWorkflowReplicationMessages", direction: S2S_DIRECTION_RESPONSE,
            payload: payload)
    }

    private func rawHistoryCall(_ loaded: Loaded, _ payload: [UInt8]) -> CallResult {
        run(loaded, method: adminService + "GetWorkflowExecutionRawHistoryV2", direction: S2S_DIRECTION_RESPONSE,
            payload: payload)
    }

    private func repairsCounted(_ host: FakeHost) -> Double {
        guard let index = host.metrics.firstIndex(where: { $0.name == "utf8_repairs_total" }) else { return -1 }
        return host.recorded.filter { $0.id == UInt32(index + 1) }.reduce(0) { $0 + $1.value }
    }

    // MARK: Tests

    func testWantsEveryMessageOfEveryMethodOnBothSides() throws {
        let loaded = try load()
        defer { loaded.driver.configDestroy(loaded.config) }
        for side in [S2S_SIDE_INBOUND, S2S_SIDE_OUTBOUND] {
            let methods = [
                workflowService + "StartWorkflowExecution", adminService + "StreamWorkflowReplicationMessages",
                "/x.Y/Z",
            ]
            for method in methods {
                XCTAssertEqual(
                    loaded.driver.wants(loaded.config, method: method, side: side),
                    S2S_WANTS_CALL | S2S_WANTS_REQUEST_MESSAGES | S2S_WANTS_RESPONSE_MESSAGES,
                    method
                )
            }
        }
    }

    func testValidMessagesAreForwardedUnchangedWithoutACopy() throws {
        let loaded = try load()
        defer { loaded.driver.configDestroy(loaded.config) }
        let fixtures: [(String, String, s2s_direction_t)] = [
            ("StartWorkflowExecutionRequest", workflowService + "StartWorkflowExecution", S2S_DIRECTION_REQUEST),
            ("PollWorkflowTaskQueueResponse", workflowService + "PollWorkflowTaskQueue", S2S_DIRECTION_RESPONSE),
            (
                "GetWorkflowExecutionHistoryResponse", workflowService + "GetWorkflowExecutionHistory",
                S2S_DIRECTION_RESPONSE
            ),
            (
                "GetWorkflowExecutionRawHistoryV2Response", adminService + "GetWorkflowExecutionRawHistoryV2",
                S2S_DIRECTION_RESPONSE
            ),
            (
                "StreamWorkflowReplicationMessagesResponse", adminService + "StreamWorkflowReplicationMessages",
                S2S_DIRECTION_RESPONSE
            ),
        ]
        for (name, method, direction) in fixtures {
            let result = run(loaded, method: method, direction: direction, payload: try TemporalFixtures.message(name))
            XCTAssertEqual(result.outcome, S2S_OK, name)
            XCTAssertNil(result.replacement, name)
        }
        let built = try replicationResponse(cause: utf8("all valid: café"))
        let result = replicationCall(loaded, built)
        XCTAssertEqual(result.outcome, S2S_OK)
        XCTAssertNil(result.replacement)
        XCTAssertEqual(repairsCounted(loaded.host), 0)
    }

    func testInvalidFailureMessageDeepInAReplicationTaskIsRepaired() throws {
        let loaded = try load()
        defer { loaded.driver.configDestroy(loaded.config) }
        let input = try replicationResponse(cause: utf8("bad ") + invalid + utf8(" end"))
        let expected = try replicationResponse(cause: utf8("bad ") + replaced + utf8(" end"))
        let result = replicationCall(loaded, input)
        XCTAssertEqual(result.outcome, S2S_REPLACED)
        XCTAssertEqual(result.replacement, expected)
        XCTAssertEqual(repairsCounted(loaded.host), 1)
        XCTAssertTrue(
            loaded.host.logs.contains {
                $0.level == S2S_LOG_DEBUG.rawValue && $0.message.contains("last_failure.cause.message")
            },
            "\(loaded.host.logs)"
        )
    }

    func testInvalidFailureMessageInsideAHistoryBlobIsRepaired() throws {
        let loaded = try load()
        defer { loaded.driver.configDestroy(loaded.config) }
        let input = try rawHistoryResponse(failureMessage: utf8("boom ") + invalid)
        let result = rawHistoryCall(loaded, input)
        XCTAssertEqual(result.outcome, S2S_REPLACED)
        XCTAssertEqual(result.replacement, try rawHistoryResponse(failureMessage: utf8("boom ") + replaced))
    }

    func testAllFieldsModeRepairsEveryStringField() throws {
        let loaded = try load(options: #"{"fields": "all"}"#)
        defer { loaded.driver.configDestroy(loaded.config) }
        let input = try replicationResponse(cause: invalid, workflowID: utf8("wf-") + invalid, stackTrace: invalid)
        let result = replicationCall(loaded, input)
        XCTAssertEqual(
            result.replacement,
            try replicationResponse(cause: replaced, workflowID: utf8("wf-") + replaced, stackTrace: replaced)
        )
        XCTAssertEqual(repairsCounted(loaded.host), 3)
    }

    func testFailureMessagesModeRepairsOnlyFailureMessages() throws {
        let loaded = try load(options: #"{"fields": "failureMessages"}"#)
        defer { loaded.driver.configDestroy(loaded.config) }
        let input = try replicationResponse(cause: invalid, workflowID: utf8("wf-") + invalid, stackTrace: invalid)
        let result = replicationCall(loaded, input)
        XCTAssertEqual(
            result.replacement,
            try replicationResponse(cause: replaced, workflowID: utf8("wf-") + invalid, stackTrace: invalid)
        )
        XCTAssertEqual(repairsCounted(loaded.host), 1)

        let onlyElsewhere = try replicationResponse(cause: utf8("ok"), workflowID: invalid, stackTrace: invalid)
        let untouched = replicationCall(loaded, onlyElsewhere)
        XCTAssertEqual(untouched.outcome, S2S_OK)
        XCTAssertNil(untouched.replacement)

        let blob = try rawHistoryResponse(failureMessage: invalid)
        let repairedBlob = rawHistoryCall(loaded, blob)
        XCTAssertEqual(repairedBlob.replacement, try rawHistoryResponse(failureMessage: replaced))
    }

    func testMapKeysAndValuesAreRepairedInAllFieldsMode() throws {
        let loaded = try load()
        defer { loaded.driver.configDestroy(loaded.config) }
        // NamespaceInfo.data is a map<string, string>: both key and value are strings a strict decoder checks.
        func response(key: [UInt8], value: [UInt8]) throws -> [UInt8] {
            let entry = lengthDelimited(1, key) + lengthDelimited(2, value)
            let info = try encode("temporal.api.namespace.v1.NamespaceInfo", [
                ("name", .bytes(utf8("orders"))), ("data", .bytes(entry)),
            ])
            return try encode(
                "temporal.api.workflowservice.v1.DescribeNamespaceResponse", [("namespace_info", .bytes(info))]
            )
        }
        let input = try response(key: utf8("k") + invalid, value: invalid + utf8("v"))
        let result = run(
            loaded, method: workflowService + "DescribeNamespace", direction: S2S_DIRECTION_RESPONSE, payload: input
        )
        XCTAssertEqual(result.replacement, try response(key: utf8("k") + replaced, value: replaced + utf8("v")))
    }

    func testUnknownMethodsAndCompressedMessages() throws {
        let loaded = try load()
        defer { loaded.driver.configDestroy(loaded.config) }
        let unknown = run(
            loaded, method: workflowService + "NotInTheSchema", direction: S2S_DIRECTION_REQUEST,
            payload: lengthDelimited(1, invalid)
        )
        XCTAssertEqual(unknown.outcome, S2S_OK, "a method the schema does not know passes untouched")
        XCTAssertNil(unknown.replacement)

        let compressed = run(
            loaded, method: workflowService + "StartWorkflowExecution", direction: S2S_DIRECTION_REQUEST,
            payload: try TemporalFixtures.message("StartWorkflowExecutionRequest"), compressed: true
        )
        XCTAssertEqual(compressed.outcome, S2S_ERROR, "a compressed message cannot be checked; onError decides")
        XCTAssertTrue(compressed.status?.contains("compressed") ?? false, "\(String(describing: compressed.status))")
    }

    func testOptionsAreChecked() throws {
        let table = try XCTUnwrap(PluginExport.table(for: UTF8Repair.self, hostMajor: 1, hostMinor: 0))
        let driver = PluginDriver(table: table)
        for (options, complaint) in [
            (#"{"fields": "failures"}"#, "fields must be \"all\" or \"failureMessages\""),
            (#"{"fields": 1}"#, "fields"),
            (#"{"feilds": "all"}"#, "feilds"),
        ] {
            switch driver.configNew(options, host: FakeHost()) {
            case .success(let config):
                driver.configDestroy(config)
                XCTFail("\(options) was accepted")
            case .failure(let error):
                XCTAssertTrue(error.message.contains(complaint), "\(options): \(error.message)")
            }
        }
    }
}
