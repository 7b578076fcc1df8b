// The bundled search-attribute-rename plugin (libsearch-attribute-rename.so, built by `swift build` next to this test
// binary), loaded by the host and run through the same chain code as in the proxy, over real Temporal messages
// captured from a dev server (Tests/Fixtures/walker). The expected renames were computed independently by Python
// protobuf (CustomerId -> CustomerIdOnTheRemoteCluster, Keyword01 -> Keyword11).

@testable import Host
import Logging
import XCTest

final class SearchAttributeRenamePluginTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    private let workflowService = "/temporal.api.workflowservice.v1.WorkflowService/"
    private let adminService = "/temporal.server.api.adminservice.v1.AdminService/"
    /// The id of the fixtures' namespace, `walker-ns`.
    private let fixtureNamespaceID = "01a225c4-48c3-79ce-8e7b-135b5db83528"
    private let fieldMappings =
        #"[{"localFieldName":"CustomerId","remoteFieldName":"CustomerIdOnTheRemoteCluster"},"#
        + #"{"localFieldName":"Keyword01","remoteFieldName":"Keyword11"}]"#

    /// Fixture name -> (method, direction).
    private var cases: [(String, String, PluginHarness.Direction)] {
        [
            ("StartWorkflowExecutionRequest", workflowService + "StartWorkflowExecution", .request),
            ("RespondWorkflowTaskCompletedRequest", workflowService + "RespondWorkflowTaskCompleted", .request),
            ("GetWorkflowExecutionHistoryResponse", workflowService + "GetWorkflowExecutionHistory", .response),
            ("PollWorkflowTaskQueueResponse", workflowService + "PollWorkflowTaskQueue", .response),
            ("GetNamespaceReplicationMessagesResponse", adminService + "GetNamespaceReplicationMessages", .response),
            ("GetWorkflowExecutionRawHistoryV2Response", adminService + "GetWorkflowExecutionRawHistoryV2", .response),
            ("StreamWorkflowReplicationMessagesResponse", adminService + "StreamWorkflowReplicationMessages", .response),
        ]
    }

    private func library() throws -> PluginLibrary {
        try BundledPluginLibrary.load("search-attribute-rename")
    }

    private func bytes(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: Self.fixtures.appendingPathComponent(path)))
    }

    /// Options with one entry per (namespace key JSON, mappings JSON), e.g. (`"namespaceId":"x"`, fieldMappings).
    private func options(_ entries: [(String, String)], services: String? = nil) -> String {
        let list = entries.map { key, mappings in
            "{" + (key.isEmpty ? "" : key + ",") + #""mappings":"# + mappings + "}"
        }.joined(separator: ",")
        return #"{"namespaceMappings":["# + list + "]" + (services.map { #","services":"# + $0 } ?? "") + "}"
    }

    private var everyService: String { #"["AdminService","WorkflowService","OperatorService"]"# }

    private func run(
        _ message: [UInt8], method: String, side: PluginSide, direction: PluginHarness.Direction, options: String,
        headers: [(String, String)] = [], priorRequest: [UInt8]? = nil
    ) throws -> PluginHarness.Result {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        return try PluginHarness.run(
            library: try library(), optionsJSON: options, schema: try bytes("temporal-dev-schema.binpb"),
            method: method, side: side, direction: direction, headers: headers, message: message,
            priorRequest: priorRequest, logger: logger
        )
    }

    func testEverySearchAttributeKeyIsRenamedTowardTheClusterTheMessageGoesTo() throws {
        // One entry without a namespace: the Go proxy's single mapping, applied to every namespace.
        let options = options([("", fieldMappings)], services: everyService)
        for (name, method, direction) in cases {
            let original = try bytes("walker/messages/\(name).binpb")
            let renamed = try bytes("walker/search-attribute-renamed/\(name).binpb")
            let outward = try run(original, method: method, side: direction == .request ? .outbound : .inbound,
                                  direction: direction, options: options)
            // (The namespace replication task carries search attribute aliases, a map<string, string> that is not
            // renamed: nothing to do there, nothing copied.)
            XCTAssertEqual(outward.outcome, original == renamed ? .unchanged : .replaced, name)
            XCTAssertTrue(outward.output == renamed, name)
            let inward = try run(renamed, method: method, side: direction == .request ? .inbound : .outbound,
                                 direction: direction, options: options)
            XCTAssertTrue(inward.output == original, name)
        }
    }

    func testByDefaultOnlyAdminServiceIsTranslated() throws {
        let options = options([("", fieldMappings)])
        for (name, method, direction) in cases {
            let original = try bytes("walker/messages/\(name).binpb")
            let result = try run(original, method: method, side: direction == .request ? .outbound : .inbound,
                                 direction: direction, options: options)
            if method.hasPrefix(workflowService) {
                XCTAssertEqual(result.outcome, .notWanted, name)
            } else {
                XCTAssertTrue(result.output == (try bytes("walker/search-attribute-renamed/\(name).binpb")), name)
            }
        }
    }

    func testMemoAndOtherNamesAreNotTouchedAndNothingMatchedMeansNoCopy() throws {
        // `owner` is a memo key and `trace` a header key in the fixtures: maps of the same shape, not renamed.
        let other = #"[{"localFieldName":"SomethingElse","remoteFieldName":"Keyword99"},"#
            + #"{"localFieldName":"owner","remoteFieldName":"Keyword98"},"#
            + #"{"localFieldName":"trace","remoteFieldName":"Keyword97"}]"#
        for (name, method, direction) in cases {
            let original = try bytes("walker/messages/\(name).binpb")
            let result = try run(original, method: method, side: .outbound, direction: direction,
                                 options: options([("", other)], services: everyService))
            XCTAssertEqual(result.outcome, .unchanged, name)
            XCTAssertTrue(result.output == original, name)
        }
    }

    func testAnAttributeWithoutAValueAndEmptyMapsAreHandled() throws {
        let start = workflowService + "StartWorkflowExecution"
        let options = options([("", fieldMappings)], services: everyService)
        // StartWorkflowExecutionRequest{namespace: "ns", search_attributes: {indexed_fields: {"Keyword01": <none>}}}
        func request(_ key: String) -> [UInt8] {
            let entry = [UInt8(0x0A), UInt8(key.utf8.count)] + Array(key.utf8)
            let attributes = [UInt8(0x0A), UInt8(entry.count)] + entry
            return [0x0A, 2] + Array("ns".utf8) + [UInt8(15 << 3 | 2), UInt8(attributes.count)] + attributes
        }
        let renamed = try run(request("Keyword01"), method: start, side: .outbound, direction: .request, options: options)
        XCTAssertTrue(renamed.output == request("Keyword11"))
        // Empty search attributes, and an empty map entry: nothing to do.
        let empty: [UInt8] = [0x0A, 2] + Array("ns".utf8) + [UInt8(15 << 3 | 2), 0]
        XCTAssertEqual(try run(empty, method: start, side: .outbound, direction: .request, options: options).outcome, .unchanged)
        let emptyEntry: [UInt8] = [UInt8(15 << 3 | 2), 2, 0x0A, 0]
        XCTAssertEqual(try run(emptyEntry, method: start, side: .outbound, direction: .request, options: options).outcome, .unchanged)
    }

    func testTheMappingOfTheTasksOwnNamespaceApplies() throws {
        let stream = adminService + "StreamWorkflowReplicationMessages"
        let original = try bytes("walker/messages/StreamWorkflowReplicationMessagesResponse.binpb")
        let renamed = try bytes("walker/search-attribute-renamed/StreamWorkflowReplicationMessagesResponse.binpb")
        let elsewhere = #""namespaceId":"99999999-0000-0000-0000-000000000000""#
        let here = #""namespaceId":"\#(fixtureNamespaceID)""#
        let swapped = #"[{"localFieldName":"Keyword01","remoteFieldName":"Keyword77"}]"#
        // Keyed by the task's namespace id: renamed, even with another namespace's entry beside it.
        let byID = try run(original, method: stream, side: .inbound, direction: .response,
                           options: options([(elsewhere, swapped), (here, fieldMappings)]))
        XCTAssertTrue(byID.output == renamed)
        // Only another namespace's entry: the tasks are not that namespace's, nothing is renamed.
        let notOurs = try run(original, method: stream, side: .inbound, direction: .response,
                              options: options([(elsewhere, fieldMappings)]))
        XCTAssertEqual(notOurs.outcome, .unchanged)
        // Another namespace's entry and one for every other namespace: the latter applies.
        let fallback = try run(original, method: stream, side: .inbound, direction: .response,
                               options: options([(elsewhere, swapped), ("", fieldMappings)]))
        XCTAssertTrue(fallback.output == renamed)
    }

    func testTasksOfTwoNamespacesInOneBatchEachTakeTheirOwnMapping() throws {
        let stream = adminService + "StreamWorkflowReplicationMessages"
        let first = try bytes("walker/messages/StreamWorkflowReplicationMessagesResponse.binpb")
        // The same tasks for a second namespace: the id replaced by one of the same length, so nothing is reframed.
        let secondID = "22222222-48c3-79ce-8e7b-135b5db83528"
        let second = replacing(Array(fixtureNamespaceID.utf8), with: Array(secondID.utf8), in: first)
        XCTAssertNotEqual(first, second)
        let toA = #"[{"localFieldName":"Keyword01","remoteFieldName":"KeywordA"}]"#
        let toB = #"[{"localFieldName":"Keyword01","remoteFieldName":"KeywordBB"}]"#
        // Two serialized messages one after the other are one message holding both batches' tasks.
        let both = try run(first + second, method: stream, side: .inbound, direction: .response, options: options([
            (#""namespaceId":"\#(fixtureNamespaceID)""#, toA), (#""namespaceId":"\#(secondID)""#, toB),
        ]))
        let firstAlone = try run(first, method: stream, side: .inbound, direction: .response, options: options([("", toA)]))
        let secondAlone = try run(second, method: stream, side: .inbound, direction: .response, options: options([("", toB)]))
        XCTAssertEqual(firstAlone.outcome, .replaced)
        XCTAssertEqual(secondAlone.outcome, .replaced)
        XCTAssertTrue(both.output == firstAlone.output + secondAlone.output)
    }

    func testMutableStateAttributesAreRenamedPerNamespaceAndMemosStay() throws {
        // Built by Tests/Fixtures/search-attributes/generate.py: a versioned-transition task of namespace A whose
        // namespace_id comes after the state, and a workflow-state task of namespace B.
        let stream = adminService + "StreamWorkflowReplicationMessages"
        let original = try bytes("search-attributes/mutable-state.binpb")
        let renamed = try bytes("search-attributes/mutable-state-renamed.binpb")
        let options = options([
            (#""namespaceId":"aaaaaaaa-0000-4000-8000-000000000001""#,
             #"[{"localFieldName":"CustomerId","remoteFieldName":"Keyword05"}]"#),
            (#""namespaceId":"bbbbbbbb-0000-4000-8000-000000000002""#,
             #"[{"localFieldName":"CustomerId","remoteFieldName":"Text02"}]"#),
        ])
        let outward = try run(original, method: stream, side: .inbound, direction: .response, options: options)
        XCTAssertTrue(outward.output == renamed)
        let inward = try run(renamed, method: stream, side: .outbound, direction: .response, options: options)
        XCTAssertTrue(inward.output == original)
    }

    func testAResponseWithoutNamespaceTakesTheNamespaceOfItsRequest() throws {
        let method = adminService + "GetWorkflowExecutionRawHistoryV2"
        let original = try bytes("walker/messages/GetWorkflowExecutionRawHistoryV2Response.binpb")
        let renamed = try bytes("walker/search-attribute-renamed/GetWorkflowExecutionRawHistoryV2Response.binpb")
        let entries = options([(#""namespaceId":"\#(fixtureNamespaceID)""#, fieldMappings)])
        // The request's namespace_id (field 9).
        let request = [UInt8(9 << 3 | 2), UInt8(fixtureNamespaceID.utf8.count)] + Array(fixtureNamespaceID.utf8)
        let withRequest = try run(original, method: method, side: .inbound, direction: .response, options: entries,
                                  priorRequest: request)
        XCTAssertTrue(withRequest.output == renamed)
        XCTAssertEqual(occurrences(of: "Keyword01", in: withRequest.output), 0)
        // Without it, the workflow's own attributes have no namespace around them and no entry covers every
        // namespace: they stay. The child's, beside the child's namespace id in its initiated event, are renamed.
        let unknown = try run(original, method: method, side: .inbound, direction: .response, options: entries)
        XCTAssertGreaterThan(occurrences(of: "Keyword01", in: unknown.output), 0)
        XCTAssertGreaterThan(occurrences(of: "Keyword11", in: unknown.output), 0)
        XCTAssertLessThan(occurrences(of: "Keyword11", in: unknown.output), occurrences(of: "Keyword11", in: renamed))
        // The namespace header names it too.
        let byName = try run(original, method: method, side: .inbound, direction: .response,
                             options: options([(#""name":"walker-ns""#, fieldMappings)]),
                             headers: [("temporal-namespace", "walker-ns")])
        XCTAssertTrue(byName.output == renamed)
    }

    func testTheOptOutHeaderLeavesTheCallUntouched() throws {
        let stream = adminService + "StreamWorkflowReplicationMessages"
        let original = try bytes("walker/messages/StreamWorkflowReplicationMessagesResponse.binpb")
        for value in ["false", "0", "F"] {
            let result = try run(original, method: stream, side: .inbound, direction: .response,
                                 options: options([("", fieldMappings)]),
                                 headers: [("s2s-request-translation", value)])
            XCTAssertNotEqual(result.outcome, .replaced, value)
            XCTAssertTrue(result.output == original, value)
        }
        let enabled = try run(original, method: stream, side: .inbound, direction: .response,
                              options: options([("", fieldMappings)]), headers: [("s2s-request-translation", "true")])
        XCTAssertEqual(enabled.outcome, .replaced)
    }

    func testMistakesInTheOptionsAreReportedWithTheirEntries() throws {
        let cases: [(String, String)] = [
            (options([("", #"[{"localFieldName":"A","remoteFieldName":"X"},{"localFieldName":"B","remoteFieldName":"X"}]"#)]),
             "namespaceMappings[0].mappings[0] and namespaceMappings[0].mappings[1] both map the remote field X"),
            (options([(#""namespaceId":"n1""#, fieldMappings), (#""namespaceId":"n1""#, fieldMappings)]),
             "namespaceMappings[0] and namespaceMappings[1] both have namespaceId n1"),
            (options([("", fieldMappings), ("", fieldMappings)]),
             "namespaceMappings[0] and namespaceMappings[1] both apply to every namespace"),
            (options([("", fieldMappings)], services: #"["Admin/Service"]"#), "services: Admin/Service is not a service"),
            (#"{"namespaceMappings":[{"mappings":[],"namespaceID":"x"}]}"#, "namespaceID"),
        ]
        for (options, expected) in cases {
            XCTAssertThrowsError(try run([], method: "/a.B/C", side: .outbound, direction: .request, options: options)) {
                XCTAssertTrue("\($0)".contains(expected), "\($0) does not say \(expected)")
            }
        }
    }

    private func occurrences(of text: String, in bytes: [UInt8]) -> Int {
        let needle = Array(text.utf8)
        guard bytes.count >= needle.count else { return 0 }
        return (0...(bytes.count - needle.count)).filter { bytes[$0..<($0 + needle.count)].elementsEqual(needle) }.count
    }

    private func replacing(_ old: [UInt8], with new: [UInt8], in bytes: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        var index = 0
        while index < bytes.count {
            if index + old.count <= bytes.count, Array(bytes[index..<(index + old.count)]) == old {
                result += new
                index += old.count
            } else {
                result.append(bytes[index])
                index += 1
            }
        }
        return result
    }
}

import Foundation
