import NIOHPACK
import XCTest

@testable import Host

final class HeaderAndAddressTests: XCTestCase {
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
