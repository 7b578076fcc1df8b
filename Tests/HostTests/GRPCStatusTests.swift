import NIOHPACK
import XCTest

@testable import Host

final class GRPCStatusTests: XCTestCase {
    func testTrailersOnlyResponseCarriesStatusLineAndContentType() {
        let headers = GRPCStatus(.unavailable, "upstream down").trailers(trailersOnly: true)
        XCTAssertEqual(headers.first(name: ":status"), "200")
        XCTAssertEqual(headers.first(name: "content-type"), "application/grpc")
        XCTAssertEqual(headers.first(name: "grpc-status"), "14")
        XCTAssertEqual(headers.first(name: "grpc-message"), "upstream down")
    }

    func testTrailersAfterResponseHeadersCarryOnlyTheStatus() {
        let headers = GRPCStatus(.resourceExhausted, "too big").trailers(trailersOnly: false)
        XCTAssertNil(headers.first(name: ":status"))
        XCTAssertEqual(headers.first(name: "grpc-status"), "8")
    }

    func testMessagePercentEncodingFollowsTheGRPCSpec() {
        XCTAssertEqual(GRPCStatus.percentEncode("plain text: ok"), "plain text: ok")
        XCTAssertEqual(GRPCStatus.percentEncode("100%"), "100%25")
        XCTAssertEqual(GRPCStatus.percentEncode("é\n"), "%C3%A9%0A")
    }
}
