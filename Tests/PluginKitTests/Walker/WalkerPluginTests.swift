// The walker inside a TranslatorPlugin, driven through the exported C table as the host drives it: the schema
// arrives in schema_ready, each call picks its plans by method path, and messages come back replaced or unchanged.
// The plugin here is the shape docs/PLUGINS.md shows for a namespace rename.

import PluginABI
import PluginKit
import XCTest

/// Renames one namespace: `from` to `to` in requests, back in responses.
final class NamespaceRenamePlugin: TranslatorPlugin {
    static let name = "test-namespace-rename"
    static let version = "1.0.0"
    static let needsSchema = true

    struct CallState {
        var request: WalkPlan?
        var response: WalkPlan?
    }

    let from: String
    let to: String
    let walker = SchemaDerived<ProtoWalker>()

    init(options: PluginOptions, host: PluginHost) throws {
        from = try options.requiredString(forKey: "from")
        to = try options.requiredString(forKey: "to")
    }

    func schemaReady(_ fileDescriptorSet: UnsafeRawBufferPointer) throws {
        walker.value = try ProtoSchema(fileDescriptorSet: fileDescriptorSet).walker(rules: .temporalNamespaces())
    }

    func wants(method: String, side: CallSide) -> Wants {
        method.hasPrefix("/temporal.") ? .allMessages : .nothing
    }

    func startCall(_ call: borrowing CallStart) throws -> CallDecision<CallState> {
        // A method the schema does not know (a newer Temporal than the schema) passes untouched.
        let plans = walker.value?.plans(method: call.method)
        return .proceed(with: CallState(request: plans?.request, response: plans?.response))
    }

    func message(_ message: borrowing MessageView, state: inout CallState) throws -> MessageDecision {
        let isRequest = message.direction == .request
        guard let plan = isRequest ? state.request : state.response, plan.canMatch, !message.isCompressed else {
            return .unchanged
        }
        let (old, new) = isRequest ? (from, to) : (to, from)
        let renamed = try plan.rewrite(message.payload) { $0.value == old ? new : nil }
        return renamed.map(MessageDecision.replaced) ?? .unchanged
    }
}

final class WalkerPluginTests: XCTestCase {
    private let workflowService = "/temporal.api.workflowservice.v1.WorkflowService/"

    func testNamespaceRenamePluginRewritesRequestsAndLeavesOtherMessagesAlone() throws {
        let table = try XCTUnwrap(PluginExport.table(for: NamespaceRenamePlugin.self, hostMajor: 1, hostMinor: 0))
        let driver = PluginDriver(table: table)
        let host = FakeHost()
        let renamed = try XCTUnwrap(try TemporalFixtures.renames().namespace["walker-ns"])
        let config = try driver.configNew(#"{"from": "walker-ns", "to": "\#(renamed)"}"#, host: host).get()
        defer { driver.configDestroy(config) }

        var error = [CChar](repeating: 0, count: 256)
        let schema = try TemporalFixtures.schemaBytes()
        let ready = schema.withUnsafeBufferPointer {
            driver.table.pointee.schema_ready!(config, s2s_bytes_t(data: $0.baseAddress, len: $0.count), &error, 256)
        }
        XCTAssertEqual(ready, S2S_OK, String(cString: error))

        let call = FakeCall()
        XCTAssertEqual(driver.callStart(config, call: call, method: workflowService + "StartWorkflowExecution"), S2S_OK)
        let request = try TemporalFixtures.message("StartWorkflowExecutionRequest")
        XCTAssertEqual(
            driver.onMessage(config, call: call, direction: S2S_DIRECTION_REQUEST, payload: request),
            S2S_REPLACED
        )
        XCTAssertEqual(
            call.replacement,
            try TemporalFixtures.expected("namespace-renamed", "StartWorkflowExecutionRequest")
        )
        call.replacement = nil
        let unrelated = try TemporalFixtures.message("PollWorkflowTaskQueueResponse")  // no namespace field at all
        XCTAssertEqual(
            driver.onMessage(config, call: call, direction: S2S_DIRECTION_RESPONSE, payload: unrelated),
            S2S_OK
        )
        XCTAssertNil(call.replacement, "an unchanged message is forwarded as it came")
        driver.callEnd(config, call: call, grpcStatus: 0)

        let responseCall = FakeCall()
        XCTAssertEqual(
            driver.callStart(config, call: responseCall, method: workflowService + "PollActivityTaskQueue"),
            S2S_OK
        )
        let renamedResponse = try TemporalFixtures.expected("namespace-renamed", "PollActivityTaskQueueResponse")
        XCTAssertEqual(
            driver.onMessage(config, call: responseCall, direction: S2S_DIRECTION_RESPONSE, payload: renamedResponse),
            S2S_REPLACED
        )
        XCTAssertEqual(responseCall.replacement, try TemporalFixtures.message("PollActivityTaskQueueResponse"))
        driver.callEnd(config, call: responseCall, grpcStatus: 0)
    }

    func testMalformedMessageIsAPluginFailureNotACrash() throws {
        let table = try XCTUnwrap(PluginExport.table(for: NamespaceRenamePlugin.self, hostMajor: 1, hostMinor: 0))
        let driver = PluginDriver(table: table)
        let config = try driver.configNew(#"{"from": "a", "to": "b"}"#, host: FakeHost()).get()
        defer { driver.configDestroy(config) }
        var error = [CChar](repeating: 0, count: 256)
        let schema = try TemporalFixtures.schemaBytes()
        _ = schema.withUnsafeBufferPointer {
            driver.table.pointee.schema_ready!(config, s2s_bytes_t(data: $0.baseAddress, len: $0.count), &error, 256)
        }
        let call = FakeCall()
        XCTAssertEqual(driver.callStart(config, call: call, method: workflowService + "StartWorkflowExecution"), S2S_OK)
        let truncated = Array(try TemporalFixtures.message("StartWorkflowExecutionRequest").dropLast(7))
        XCTAssertEqual(
            driver.onMessage(config, call: call, direction: S2S_DIRECTION_REQUEST, payload: truncated),
            S2S_ERROR
        )
        XCTAssertTrue(
            call.status?.message.contains("malformed protobuf at byte") ?? false,
            "\(String(describing: call.status))"
        )
        driver.callEnd(config, call: call, grpcStatus: 13)
    }
}
