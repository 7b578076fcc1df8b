// The bundled namespace-rename plugin (libnamespace-rename.so, built by `swift build` next to this test binary),
// loaded by the host and run through the same chain code as in the proxy, over real Temporal messages captured from
// a dev server (Tests/Fixtures/walker). The expected renames were computed independently by Python protobuf.

@testable import Host
import Logging
import XCTest

final class NamespaceRenamePluginTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    private let local = "walker-ns"
    private let remote = "walker-ns.renamed-for-the-remote-cluster"
    private let workflowService = "/temporal.api.workflowservice.v1.WorkflowService/"
    private let adminService = "/temporal.server.api.adminservice.v1.AdminService/"

    /// Fixture name -> (method, direction).
    private var cases: [(String, String, PluginHarness.Direction)] {
        [
            ("StartWorkflowExecutionRequest", workflowService + "StartWorkflowExecution", .request),
            ("RespondWorkflowTaskCompletedRequest", workflowService + "RespondWorkflowTaskCompleted", .request),
            ("DescribeNamespaceResponse", workflowService + "DescribeNamespace", .response),
            ("GetWorkflowExecutionHistoryResponse", workflowService + "GetWorkflowExecutionHistory", .response),
            ("PollActivityTaskQueueResponse", workflowService + "PollActivityTaskQueue", .response),
            ("PollWorkflowTaskQueueResponse", workflowService + "PollWorkflowTaskQueue", .response),
            ("GetNamespaceReplicationMessagesResponse", adminService + "GetNamespaceReplicationMessages", .response),
            ("GetWorkflowExecutionRawHistoryV2Response", adminService + "GetWorkflowExecutionRawHistoryV2", .response),
            ("StreamWorkflowReplicationMessagesResponse", adminService + "StreamWorkflowReplicationMessages", .response),
        ]
    }

    private func library() throws -> PluginLibrary {
        try BundledPluginLibrary.load("namespace-rename")
    }

    private func bytes(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: Self.fixtures.appendingPathComponent(path)))
    }

    private func run(_ message: [UInt8], method: String, side: PluginSide, direction: PluginHarness.Direction,
                     options: String? = nil, headers: [(String, String)] = []) throws -> PluginHarness.Result {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        return try PluginHarness.run(
            library: try library(),
            optionsJSON: options ?? #"{"mappings":[{"local":"\#(local)","remote":"\#(remote)"}]}"#,
            schema: try bytes("temporal-dev-schema.binpb"), method: method, side: side, direction: direction,
            headers: headers, message: message, logger: logger
        )
    }

    func testEveryNamespaceFieldIsRenamedTowardTheClusterTheMessageGoesTo() throws {
        for (name, method, direction) in cases {
            let original = try bytes("walker/messages/\(name).binpb")
            let renamed = try bytes("walker/namespace-renamed/\(name).binpb")
            // Toward the remote cluster: requests on the outbound side, responses on the inbound side.
            let outward = try run(original, method: method, side: direction == .request ? .outbound : .inbound, direction: direction)
            // (PollWorkflowTaskQueueResponse carries no namespace field: nothing to rename, nothing copied.)
            XCTAssertEqual(outward.outcome, original == renamed ? .unchanged : .replaced, name)
            XCTAssertEqual(outward.output, renamed, name)
            // And back: the other side turns the remote names into local ones.
            let inward = try run(renamed, method: method, side: direction == .request ? .inbound : .outbound, direction: direction)
            XCTAssertEqual(inward.output, original, name)
        }
    }

    func testNamesOutsideTheMappingAndEmptyMappingsLeaveMessagesAsTheyCame() throws {
        for (name, method, direction) in cases {
            let original = try bytes("walker/messages/\(name).binpb")
            let other = try run(original, method: method, side: .outbound, direction: direction,
                                options: #"{"mappings":[{"local":"other","remote":"other.remote"}]}"#)
            XCTAssertEqual(other.outcome, .unchanged, name)
            XCTAssertEqual(other.output, original, name)
            let none = try run(original, method: method, side: .outbound, direction: direction, options: #"{"mappings":[]}"#)
            XCTAssertEqual(none.outcome, .notWanted, name)
        }
    }

    func testTheNamespaceHeaderIsRenamed() throws {
        let result = try run([], method: workflowService + "StartWorkflowExecution", side: .outbound, direction: .request,
                             headers: [("temporal-namespace", local)])
        XCTAssertTrue(result.headers.contains { $0.name == "temporal-namespace" && $0.value == remote })
        let back = try run([], method: workflowService + "StartWorkflowExecution", side: .inbound, direction: .request,
                           headers: [("temporal-namespace", remote)])
        XCTAssertTrue(back.headers.contains { $0.name == "temporal-namespace" && $0.value == local })
    }

    func testTheOptOutHeaderLeavesMessagesAndTheNamespaceHeaderAlone() throws {
        for (name, method, direction) in cases {
            let original = try bytes("walker/messages/\(name).binpb")
            let result = try run(original, method: method, side: direction == .request ? .outbound : .inbound,
                                 direction: direction,
                                 headers: [("s2s-request-translation", "false"), ("temporal-namespace", local)])
            XCTAssertNotEqual(result.outcome, .replaced, name)
            XCTAssertTrue(result.output == original, name)
            XCTAssertTrue(result.headers.contains { $0.name == "temporal-namespace" && $0.value == local }, name)
        }
    }

    func testMappingsMustBeOneToOne() throws {
        XCTAssertThrowsError(try run([], method: "/a.B/C", side: .outbound, direction: .request,
                                     options: #"{"mappings":[{"local":"a","remote":"x"},{"local":"b","remote":"x"}]}"#)) { error in
            XCTAssertTrue("\(error)".contains("mappings[0] and mappings[1] both map the remote namespace x"), "\(error)")
        }
    }
}

import Foundation
