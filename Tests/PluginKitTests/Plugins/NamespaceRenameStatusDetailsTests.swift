// namespace-rename on a failed call's trailers (ABI 1.1 response metadata), driven with PluginKitTesting: the
// namespace inside Temporal's NamespaceNotFoundFailure (grpc-status-details-bin, a google.rpc.Status) is renamed
// toward the caller; everything else in the status — other details, unknown fields, the message — stays as sent.

import NamespaceRename
import PluginKit
import PluginKitTesting
import XCTest

final class NamespaceRenameStatusDetailsTests: XCTestCase {
    private static let describe = "/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace"
    private static let failurePrefix = "type.googleapis.com/temporal.api.errordetails.v1."

    /// google.rpc.Status: 1 code, 2 message, 3 details (google.protobuf.Any: 1 type_url, 2 value).
    private func status(_ details: [(type: String, value: [UInt8])], message: String = "namespace not found") -> [UInt8] {
        varintField(1, 5) + stringField(2, message)
            + details.flatMap { lengthDelimited(3, stringField(1, $0.type) + lengthDelimited(2, $0.value)) }
    }

    private func host() throws -> PluginTestHost<NamespaceRename> {
        try PluginTestHost(
            NamespaceRename.self, options: #"{"mappings": [{"local": "orders", "remote": "orders.remote"}]}"#,
            schema: TemporalFixtures.schemaBytes()
        )
    }

    func testTheNamespaceOfANamespaceFailureIsRenamedTowardTheCaller() throws {
        let host = try host()
        XCTAssertTrue(host.wants(method: Self.describe).contains(.errorTrailers))
        XCTAssertFalse(host.wants(method: Self.describe).contains(.responseMetadata), "successful calls cost nothing")
        // Inbound: the remote side called with its name, which went to Temporal as "orders"; the answer goes back.
        let call = host.startCall(method: Self.describe, side: .inbound, headers: [("temporal-namespace", "orders.remote")])
        XCTAssertEqual(call.header("temporal-namespace"), "orders")
        let other = (type: "type.googleapis.com/some.other.Detail", value: stringField(1, "orders") + varintField(9, 1))
        let sent = status([
            (Self.failurePrefix + "NamespaceNotFoundFailure", stringField(1, "orders") + varintField(7, 3)), other,
        ])
        let (outcome, trailers) = call.responseTrailers([("grpc-status", Array("5".utf8)), ("grpc-status-details-bin", sent)])
        XCTAssertEqual(outcome, .unchanged)
        let expected = status([
            (Self.failurePrefix + "NamespaceNotFoundFailure", stringField(1, "orders.remote") + varintField(7, 3)), other,
        ])
        XCTAssertEqual(trailers.first { $0.name == "grpc-status-details-bin" }?.value, expected)
        XCTAssertEqual(trailers.first { $0.name == "grpc-status" }?.value, Array("5".utf8))
        call.end(status: 5)
        XCTAssertEqual(host.counter("namespace_renames_total"), 2, "the header on the way in, the detail on the way out")
    }

    func testDetailsWithoutAMappedNameSuccessesAndHeadersAreLeftAlone() throws {
        let host = try host()
        let call = host.startCall(method: Self.describe, side: .outbound)
        let unmapped = status([(Self.failurePrefix + "NamespaceNotActiveFailure", stringField(1, "elsewhere"))])
        let failed: (String, [UInt8]) = ("grpc-status", Array("9".utf8))
        let (outcome, trailers) = call.responseTrailers([failed, ("grpc-status-details-bin", unmapped)])
        XCTAssertEqual(outcome, .unchanged)
        XCTAssertEqual(trailers.first { $0.name == "grpc-status-details-bin" }?.value, unmapped)
        XCTAssertEqual(call.responseHeaders([("x-any", "1")]).outcome, .notWanted)
        XCTAssertEqual(call.responseTrailers([("grpc-status", Array("0".utf8))]).outcome, .notWanted)
        // Malformed details are the plugin's failure (the entry's onError decides), never a crash.
        let (broken, _) = call.responseTrailers([failed, ("grpc-status-details-bin", [0x1A, 0x7F, 0x01])])
        guard case .failed = broken else { return XCTFail("\(broken)") }
    }
}
