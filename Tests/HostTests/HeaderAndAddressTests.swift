import NIOHPACK
import XCTest

@testable import Host

final class HeaderAndAddressTests: XCTestCase {
    func testHopByHopHeadersAreDroppedAndMetadataKept() {
        let headers: HPACKHeaders = [
            ":path": "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution",
            "te": "trailers",
            "connection": "keep-alive",
            "temporal-namespace": "orders",
            "grpc-timeout": "10S",
            "custom-bin": "AAEC",
        ]
        let forwarded = HeaderFilter.forwardable(headers)
        XCTAssertNil(forwarded.first(name: "connection"))
        XCTAssertEqual(forwarded.first(name: "te"), "trailers")
        XCTAssertEqual(forwarded.first(name: "temporal-namespace"), "orders")
        XCTAssertEqual(forwarded.first(name: "grpc-timeout"), "10S")
        XCTAssertEqual(forwarded.first(name: "custom-bin"), "AAEC")
        XCTAssertEqual(forwarded.count, headers.count - 1)
    }

    func testTEOtherThanTrailersIsDropped() {
        let forwarded = HeaderFilter.forwardable([":path": "/a/b", "te": "gzip"])
        XCTAssertNil(forwarded.first(name: "te"))
    }

    func testHostAndPortParsesTheShapesConfigsUse() {
        XCTAssertEqual(HostAndPort(parsing: "127.0.0.1:7233"), HostAndPort(host: "127.0.0.1", port: 7233))
        XCTAssertEqual(HostAndPort(parsing: "0.0.0.0:0"), HostAndPort(host: "0.0.0.0", port: 0))
        XCTAssertEqual(HostAndPort(parsing: ":6233"), HostAndPort(host: "", port: 6233))
        XCTAssertEqual(HostAndPort(parsing: "frontend.temporal.svc:7233"), HostAndPort(host: "frontend.temporal.svc", port: 7233))
        XCTAssertEqual(HostAndPort(parsing: "[::1]:7233"), HostAndPort(host: "::1", port: 7233))
        XCTAssertEqual(HostAndPort(parsing: "[::1]:7233")?.description, "[::1]:7233")
        XCTAssertNil(HostAndPort(parsing: "localhost"))
        XCTAssertNil(HostAndPort(parsing: "localhost:http"))
        XCTAssertNil(HostAndPort(parsing: "localhost:70000"))
        XCTAssertNil(HostAndPort(parsing: "::1:7233"))
    }
}
