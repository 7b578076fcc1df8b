// The walker on one workflow's real traffic and the real schema: its renames must equal what Python protobuf
// produces by field name (Tests/Fixtures/walker), untouched messages come back as the same storage, and visits
// report what an access check needs (values, fields, paths), including inside history blobs.

import PluginKit
import XCTest

final class WalkerTemporalMessageTests: XCTestCase {
    private func plan(_ rules: WalkRules, _ fixture: String) throws -> WalkPlan {
        let walker = try TemporalFixtures.schema.get().walker(rules: rules)
        return try walker.plan(message: try XCTUnwrap(TemporalFixtures.messageTypes[fixture]))
    }

    func testNamespaceRenameMatchesPythonProtobufOnEveryMessage() throws {
        let renames = try TemporalFixtures.renames().namespace
        let walker = try TemporalFixtures.schema.get().walker(rules: .temporalNamespaces())
        for (fixture, messageType) in TemporalFixtures.messageTypes.sorted(by: { $0.key < $1.key }) {
            let original = try TemporalFixtures.message(fixture)
            let renamed = try walker.plan(message: messageType).rewrite(original) { renames[$0.value] }
            XCTAssertEqual(renamed, try TemporalFixtures.expected("namespace-renamed", fixture), fixture)
        }
    }

    func testSearchAttributeRenameMatchesPythonProtobufOnEveryMessage() throws {
        let renames = try TemporalFixtures.renames().searchAttribute
        let walker = try TemporalFixtures.schema.get().walker(rules: .temporalSearchAttributes())
        for (fixture, messageType) in TemporalFixtures.messageTypes.sorted(by: { $0.key < $1.key }) {
            let original = try TemporalFixtures.message(fixture)
            let renamed = try walker.plan(message: messageType).rewrite(original) { renames[$0.value] }
            XCTAssertEqual(renamed, try TemporalFixtures.expected("search-attribute-renamed", fixture), fixture)
        }
    }

    func testUnchangedMessagesComeBackAsTheSameStorage() throws {
        let walker = try TemporalFixtures.schema.get().walker(rules: .temporalNamespaces())
        for (fixture, messageType) in TemporalFixtures.messageTypes {
            let original = try TemporalFixtures.message(fixture)
            let plan = try walker.plan(message: messageType)
            let identity = try plan.rewrite(original) { $0.value }
            let unmatched = try plan.rewrite(original) { _ in nil }
            for result in [identity, unmatched] {
                XCTAssertEqual(result, original, fixture)
                XCTAssertEqual(
                    result.withUnsafeBufferPointer { $0.baseAddress },
                    original.withUnsafeBufferPointer { $0.baseAddress },
                    "\(fixture): a new buffer was made"
                )
            }
            let borrowed = try original.withUnsafeBytes { try plan.rewrite($0) { $0.value } }
            XCTAssertNil(borrowed, "\(fixture): an unchanged borrowed message must be reported as unchanged")
        }
    }

    func testVisitSeesEveryNamespaceWithItsFieldAndPath() throws {
        let plan = try plan(.temporalNamespaces(), "StreamWorkflowReplicationMessagesResponse")
        var found: [(value: String, message: String, field: String, path: String)] = []
        try plan.visit(try TemporalFixtures.message("StreamWorkflowReplicationMessagesResponse")) { target in
            XCTAssertEqual(target.kind, .string)
            found.append((target.value, target.messageName, target.fieldName, target.pathDescription))
        }
        XCTAssertEqual(found.map(\.value), Array(repeating: "walker-ns", count: 4))
        XCTAssertEqual(
            found.map(\.field),
            ["namespace", "namespace", "namespace", "namespace"],
            "StartChild initiated, SignalExternal initiated, ChildWorkflow started, ExternalWorkflow signaled"
        )
        XCTAssertEqual(
            found.map(\.path).first { $0.contains("signal_external") },
            "messages.replication_tasks[2].history_task_attributes.events.data.events[2]"
                + ".signal_external_workflow_execution_initiated_event_attributes.namespace"
        )
    }

    func testPathElementsNameMessagesFieldsAndRepeatedIndexes() throws {
        let plan = try plan(.temporalNamespaces(), "RespondWorkflowTaskCompletedRequest")
        var paths: [[WalkPathElement]] = []
        try plan.visit(try TemporalFixtures.message("RespondWorkflowTaskCompletedRequest")) { paths.append($0.path) }
        XCTAssertEqual(paths.count, 3, "start-child and signal-external command namespaces, then the request's (#9)")
        XCTAssertEqual(
            paths[2],
            [
                WalkPathElement(
                    messageName: "temporal.api.workflowservice.v1.RespondWorkflowTaskCompletedRequest",
                    fieldName: "namespace",
                    fieldNumber: 9,
                    index: 0
                )
            ]
        )
        XCTAssertEqual(
            paths[1].map(\.fieldName),
            ["commands", "signal_external_workflow_execution_command_attributes", "namespace"]
        )
        XCTAssertEqual(paths[1].first?.index, 1, "the second command")
        XCTAssertEqual(paths[1][1].messageName, "temporal.api.command.v1.Command")
        XCTAssertEqual(paths[0].first?.index, 0)
    }

    func testSearchAttributeKeysAreReportedAsMapKeysOfTheirMap() throws {
        let plan = try plan(.temporalSearchAttributes(), "GetWorkflowExecutionRawHistoryV2Response")
        var keys: [String] = []
        try plan.visit(try TemporalFixtures.message("GetWorkflowExecutionRawHistoryV2Response")) { target in
            XCTAssertEqual(target.kind, .mapKey)
            XCTAssertEqual(target.messageName, "temporal.api.common.v1.SearchAttributes")
            XCTAssertEqual(target.fieldName, "indexed_fields")
            XCTAssertEqual(target.path.last?.fieldName, "key")
            keys.append(target.value)
        }
        let internalName = try XCTUnwrap(try TemporalFixtures.renames().searchAttribute.keys.first { $0 != "CustomerId" })
        XCTAssertEqual(keys, [internalName, internalName, internalName], "started, start-child, upsert events")
    }

    func testMemoAndHeaderMapsAreNotSearchAttributes() throws {
        let plan = try plan(.temporalSearchAttributes(), "StartWorkflowExecutionRequest")
        var keys: [String] = []
        try plan.visit(try TemporalFixtures.message("StartWorkflowExecutionRequest")) { keys.append($0.value) }
        XCTAssertEqual(keys, ["CustomerId"], "memo key owner and header key trace are no targets")
    }

    func testNamespaceInfoNameIsATargetOnlyInNamespaceInfo() throws {
        let plan = try plan(.temporalNamespaces(), "GetNamespaceReplicationMessagesResponse")
        var targets: [String] = []
        try plan.visit(try TemporalFixtures.message("GetNamespaceReplicationMessagesResponse")) { target in
            targets.append("\(target.messageName).\(target.fieldName)=\(target.value)")
        }
        XCTAssertEqual(targets, ["temporal.api.namespace.v1.NamespaceInfo.name=walker-ns"])
    }

    func testMethodPlansPickTheRequestOrResponseType() throws {
        let walker = try TemporalFixtures.schema.get().walker(rules: .temporalNamespaces())
        let path = "/temporal.api.workflowservice.v1.WorkflowService/PollActivityTaskQueue"
        let request = try walker.plan(method: path, direction: .request)
        let response = try walker.plan(method: path, direction: .response)
        XCTAssertEqual(request.messageName, "temporal.api.workflowservice.v1.PollActivityTaskQueueRequest")
        XCTAssertEqual(response.messageName, "temporal.api.workflowservice.v1.PollActivityTaskQueueResponse")
        var values: [String] = []
        try response.visit(try TemporalFixtures.message("PollActivityTaskQueueResponse")) { target in
            values.append("\(target.fieldName)=\(target.value)")
        }
        XCTAssertEqual(values, ["workflow_namespace=walker-ns"])
        XCTAssertThrowsError(try walker.plan(method: "/no.Such/Method", direction: .request)) { error in
            XCTAssertEqual((error as? ProtoSchemaError)?.kind, .unknownMethod("/no.Such/Method"))
        }
    }

    func testPlansOfAMethodAreBothDirectionsInOneLookup() throws {
        let schema = try TemporalFixtures.schema.get()
        let walker = try schema.walker(rules: .temporalNamespaces())
        // Every method of the schema, both directions, the same plans as the one-direction lookup gives.
        for path in schema.methods.keys {
            let plans = try XCTUnwrap(walker.plans(method: path), path)
            XCTAssertEqual(plans.request.messageName, try walker.plan(method: path, direction: .request).messageName)
            XCTAssertEqual(plans.response.messageName, try walker.plan(method: path, direction: .response).messageName)
            XCTAssertEqual(plans.request.canMatch, try walker.plan(method: path, direction: .request).canMatch)
        }
        XCTAssertNil(walker.plans(method: "/no.Such/Method"))
        // A message's plan by its full name, with or without the leading dot; an unknown name throws.
        let blob = try walker.plan(message: ".temporal.api.common.v1.DataBlob")
        XCTAssertEqual(blob.messageName, "temporal.api.common.v1.DataBlob")
        XCTAssertThrowsError(try walker.plan(message: "no.Such")) { error in
            XCTAssertEqual((error as? ProtoSchemaError)?.kind, .unknownMessage("no.Such"))
        }
    }

    func testMessagesThatCannotHoldATargetAreNotWalked() throws {
        let walker = try TemporalFixtures.schema.get().walker(rules: .temporalNamespaces())
        let plan = try walker.plan(message: "temporal.api.common.v1.Payload")
        XCTAssertFalse(plan.canMatch)
        var called = false
        try plan.visit([0xFF, 0xFF, 0xFF]) { _ in called = true }  // not even looked at
        XCTAssertFalse(called)
        XCTAssertTrue(try walker.plan(message: "temporal.api.history.v1.HistoryEvent").canMatch)
    }

    func testEditsWriteStraightIntoCallerMemory() throws {
        let plan = try plan(.temporalNamespaces(), "StartWorkflowExecutionRequest")
        let original = try TemporalFixtures.message("StartWorkflowExecutionRequest")
        let expected = try TemporalFixtures.expected("namespace-renamed", "StartWorkflowExecutionRequest")
        let renames = try TemporalFixtures.renames().namespace
        try original.withUnsafeBytes { raw in
            let edits = try plan.edits(raw) { renames[$0.value] }
            XCTAssertEqual(edits.replacedValueCount, 1)
            XCTAssertEqual(edits.rewrittenCount, expected.count)
            let output = UnsafeMutableRawBufferPointer.allocate(byteCount: edits.rewrittenCount, alignment: 1)
            defer { output.deallocate() }
            edits.write(applyingTo: raw, into: output)
            XCTAssertEqual(Array(output), expected)
        }
    }
}
