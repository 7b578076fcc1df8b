// The Go s2s-proxy's own translation test cases (its behaviour reference, section 4.5) run through our bundled
// plugins (the .so files `swift build` puts next to this test binary) with the same chain code as in the proxy.
// Tests/Fixtures/go-cases/generate.py builds each case with Python protobuf, independently of the Swift walker, as
// the local cluster sends it and as it must leave the proxy toward the remote cluster; the Go tests' matrix
// applies: the mapping renames exactly what is expected and back, other names change nothing, no mapping wants
// nothing.

@testable import Host
import Logging
import XCTest

final class GoObjectCaseTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")
    private static let workflowService = "/temporal.api.workflowservice.v1.WorkflowService/"
    private static let adminService = "/temporal.server.api.adminservice.v1.AdminService/"

    private struct GoCase {
        let name: String
        let method: String
        let direction: PluginHarness.Direction
        /// Whether the mapping renames something in the message; if not, the expected bytes are the original's.
        let renames: Bool
        var originalPath: String? = nil

        var original: String { originalPath ?? "go-cases/\(name).binpb" }
        var expected: String { "go-cases/\(name).renamed.binpb" }
        /// Toward the remote cluster: requests on the outbound side, responses on the inbound side.
        var towardRemote: PluginSide { direction == .request ? .outbound : .inbound }
        var towardLocal: PluginSide { direction == .request ? .inbound : .outbound }
    }

    private static func admin(_ name: String, _ method: String, renames: Bool = true) -> GoCase {
        GoCase(name: name, method: adminService + method, direction: .response, renames: renames)
    }

    private static func workflow(_ name: String, _ method: String, _ direction: PluginHarness.Direction) -> GoCase {
        GoCase(name: name, method: workflowService + method, direction: direction, renames: true)
    }

    private static let namespaceCases: [GoCase] = [
        workflow("ns-respond-workflow-task-completed", "RespondWorkflowTaskCompleted", .request),
        workflow("ns-poll-workflow-task-queue", "PollWorkflowTaskQueue", .response),
        workflow("ns-poll-activity-task-queue", "PollActivityTaskQueue", .response),
        admin("ns-raw-history-two-blobs", "GetWorkflowExecutionRawHistoryV2"),
        workflow("ns-describe-namespace", "DescribeNamespace", .response),
        workflow("ns-update-namespace", "UpdateNamespace", .response),
        workflow("ns-list-namespaces", "ListNamespaces", .response),
        admin("ns-stream-history-task", "StreamWorkflowReplicationMessages"),
        admin("ns-stream-sync-workflow-state", "StreamWorkflowReplicationMessages"),
        admin("ns-stream-backfill-history", "StreamWorkflowReplicationMessages"),
        admin("ns-stream-sync-versioned-transition", "StreamWorkflowReplicationMessages"),
        admin("ns-namespace-replication-empty", "GetNamespaceReplicationMessages", renames: false),
        admin("ns-namespace-replication-no-tasks", "GetNamespaceReplicationMessages", renames: false),
        admin("ns-namespace-replication-task-without-attributes", "GetNamespaceReplicationMessages", renames: false),
        admin("ns-namespace-replication-attributes-without-info", "GetNamespaceReplicationMessages", renames: false),
        admin("ns-namespace-replication-full", "GetNamespaceReplicationMessages"),
        workflow("ns-history-event-links", "GetWorkflowExecutionHistory", .response),
    ]

    private static let searchAttributeCases: [GoCase] = [
        admin("sa-stream-history-task", "StreamWorkflowReplicationMessages"),
        GoCase(name: "sa-mutable-state-memo", method: adminService + "StreamWorkflowReplicationMessages",
               direction: .response, renames: true, originalPath: "search-attributes/mutable-state.binpb"),
    ]

    private static let utf8Case = admin("utf8-raw-history-invalid-failure", "GetWorkflowExecutionRawHistoryV2")

    private enum Options {
        static let namespaces = #"{"mappings":[{"local":"orders","remote":"orders.cloud"}]}"#
        static let otherNamespaces = #"{"mappings":[{"local":"payments","remote":"payments.cloud"}]}"#
        static let noNamespaces = #"{"mappings":[]}"#
        static let attributes = fallback(#"{"localFieldName":"CustomerId","remoteFieldName":"Keyword05"}"#)
        static let otherAttributes = fallback(#"{"localFieldName":"Region","remoteFieldName":"Keyword09"}"#)
        static let noAttributes = #"{"namespaceMappings":[]}"#
        static let failureMessages = #"{"fields":"failureMessages"}"#

        /// One entry without a namespace: the Go proxy's single mapping, applied to every namespace.
        private static func fallback(_ mapping: String) -> String {
            #"{"namespaceMappings":[{"mappings":["# + mapping + "]}]}"
        }
    }

    func testNamespaceCasesAreRenamedExactlyAndBack() throws {
        try assertRenamedExactlyAndBack(Self.namespaceCases, plugin: "namespace-rename", options: Options.namespaces)
    }

    func testNamespaceCasesWithOtherNamesAreForwardedAsTheyCameAndWithoutNamesAreNotWanted() throws {
        try assertLeftAlone(Self.namespaceCases, plugin: "namespace-rename", otherNames: Options.otherNamespaces,
                            noMapping: Options.noNamespaces)
    }

    func testSearchAttributeCasesAreRenamedExactlyAndBack() throws {
        try assertRenamedExactlyAndBack(Self.searchAttributeCases, plugin: "search-attribute-rename",
                                        options: Options.attributes)
    }

    func testSearchAttributeCasesWithOtherNamesAreForwardedAsTheyCameAndWithoutNamesAreNotWanted() throws {
        try assertLeftAlone(Self.searchAttributeCases, plugin: "search-attribute-rename",
                            otherNames: Options.otherAttributes, noMapping: Options.noAttributes)
    }

    func testTheMemoBesideMutableStateSearchAttributesKeepsItsKeys() throws {
        let memoCase = try XCTUnwrap(Self.searchAttributeCases.first { $0.name == "sa-mutable-state-memo" })
        let result = try run("search-attribute-rename", options: Options.attributes, memoCase,
                             side: memoCase.towardRemote, message: try bytes(memoCase.original))
        // Two tasks, each with a memo entry named CustomerId: both stay, only the search attributes are renamed.
        XCTAssertEqual(occurrences(of: "CustomerId", in: result.output), 2)
        XCTAssertEqual(occurrences(of: "Keyword05", in: result.output), 2)
    }

    func testInvalidUTF8SurvivesTheRenameAndTheRepairEntryAfterItReplacesEachRun() throws {
        let goCase = Self.utf8Case
        let original = try bytes(goCase.original)
        let renamed = try bytes(goCase.expected)
        let repaired = try bytes("go-cases/\(goCase.name).repaired.binpb")
        let invalid: [UInt8] = [0xFF, 0xFE, 0xC3]
        XCTAssertEqual(occurrences(of: invalid, in: original), 2)
        XCTAssertEqual(occurrences(of: invalid, in: renamed), 2)
        XCTAssertEqual(occurrences(of: invalid, in: repaired), 0)

        // The rename keeps the invalid bytes as they are (the Go proxy would repair them in the same pass)...
        try assertRenamedExactlyAndBack([goCase], plugin: "namespace-rename", options: Options.namespaces)
        try assertLeftAlone([goCase], plugin: "namespace-rename", otherNames: Options.otherNamespaces,
                            noMapping: Options.noNamespaces)
        // ...and the repair entry after it makes each run of them one U+FFFD, as the Go proxy's result reads.
        let repair = try run("utf8-repair", options: Options.failureMessages, goCase, side: goCase.towardRemote,
                             message: renamed)
        XCTAssertEqual(repair.outcome, .replaced)
        XCTAssertTrue(repair.output == repaired)
        let again = try run("utf8-repair", options: Options.failureMessages, goCase, side: goCase.towardRemote,
                            message: repaired)
        XCTAssertEqual(again.outcome, .unchanged)
        XCTAssertTrue(again.output == repaired)
    }

    func testEveryGeneratedFixtureIsRunByATest() throws {
        let directory = Self.fixtures.appendingPathComponent("go-cases")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".binpb") }
        let generated = Set(files.map { String($0.prefix { $0 != "." }) })
        let tested = Set((Self.namespaceCases + Self.searchAttributeCases + [Self.utf8Case]).map(\.name))
        XCTAssertEqual(generated, tested)
    }

    // MARK: - The Go tests' matrix

    /// The mapping renames exactly the expected bytes toward the remote cluster, and the other side renames them
    /// back into the original.
    private func assertRenamedExactlyAndBack(_ cases: [GoCase], plugin: String, options: String) throws {
        for goCase in cases {
            let original = try bytes(goCase.original)
            let expected = try bytes(goCase.expected)
            // A case meant to rename something whose expected bytes equal the original would prove nothing.
            XCTAssertEqual(original != expected, goCase.renames, goCase.name)
            let outward = try run(plugin, options: options, goCase, side: goCase.towardRemote, message: original)
            XCTAssertEqual(outward.outcome, goCase.renames ? .replaced : .unchanged, goCase.name)
            XCTAssertTrue(outward.output == expected, goCase.name)
            let inward = try run(plugin, options: options, goCase, side: goCase.towardLocal, message: expected)
            XCTAssertEqual(inward.outcome, goCase.renames ? .replaced : .unchanged, goCase.name)
            XCTAssertTrue(inward.output == original, goCase.name)
        }
    }

    /// A mapping of other names forwards each message as it came, without a copy; an empty one wants no call.
    private func assertLeftAlone(_ cases: [GoCase], plugin: String, otherNames: String, noMapping: String) throws {
        for goCase in cases {
            let original = try bytes(goCase.original)
            for side in [goCase.towardRemote, goCase.towardLocal] {
                let other = try run(plugin, options: otherNames, goCase, side: side, message: original)
                XCTAssertEqual(other.outcome, .unchanged, goCase.name)
                XCTAssertTrue(other.output == original, goCase.name)
                let none = try run(plugin, options: noMapping, goCase, side: side, message: original)
                XCTAssertEqual(none.outcome, .notWanted, goCase.name)
            }
        }
    }

    // MARK: - Running a plugin

    private func run(_ plugin: String, options: String, _ goCase: GoCase, side: PluginSide,
                     message: [UInt8]) throws -> PluginHarness.Result {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        return try PluginHarness.run(
            library: try library(plugin), optionsJSON: options, schema: try bytes("temporal-dev-schema.binpb"),
            method: goCase.method, side: side, direction: goCase.direction, headers: [], message: message,
            logger: logger
        )
    }

    private func library(_ plugin: String) throws -> PluginLibrary {
        try BundledPluginLibrary.load(plugin)
    }

    private func bytes(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: Self.fixtures.appendingPathComponent(path)))
    }

    private func occurrences(of text: String, in bytes: [UInt8]) -> Int {
        occurrences(of: Array(text.utf8), in: bytes)
    }

    private func occurrences(of needle: [UInt8], in bytes: [UInt8]) -> Int {
        guard bytes.count >= needle.count else { return 0 }
        return (0...(bytes.count - needle.count)).filter { bytes[$0..<($0 + needle.count)].elementsEqual(needle) }
            .count
    }
}

import Foundation
