// The hand-written reflection codec: requests byte for byte, responses from hand-encoded bytes, and malformed
// responses rejected with an offset instead of crashing.

import TestSupport
import XCTest

@testable import Host

final class ReflectionMessagesTests: XCTestCase {
    typealias Support = SchemaTestSupport

    // MARK: Requests

    func testListServicesIsField7WithAnAsterisk() {
        XCTAssertEqual(ReflectionRequest.listServices.encoded(), [0x3A, 0x01, UInt8(ascii: "*")])
    }

    func testFileContainingSymbolIsField4() {
        XCTAssertEqual(ReflectionRequest.fileContainingSymbol("a.B").encoded(), [0x22, 0x03] + Array("a.B".utf8))
    }

    func testFileByFilenameIsField3WithAMultiByteLength() {
        let name = String(repeating: "x", count: 200) + ".proto"
        XCTAssertEqual(ReflectionRequest.fileByFilename(name).encoded(), [0x1A, 0xCE, 0x01] + Array(name.utf8))
    }

    // MARK: Responses

    func testServiceListingKeepsOrderAndSkipsValidHostAndOriginalRequest() throws {
        let bytes = Support.field(1, "localhost") + Support.field(2, ReflectionRequest.listServices.encoded())
            + Support.field(6, Support.field(1, Support.field(1, "a.A")) + Support.field(1, Support.field(1, "b.B")))
        XCTAssertEqual(try ReflectionResponse(decoding: bytes), .services(["a.A", "b.B"]))
    }

    func testFileDescriptorResponseCarriesEveryFileAsItsBytes() throws {
        let first: [UInt8] = [0x0A, 0x01, 0x61]
        let second: [UInt8] = []
        XCTAssertEqual(try ReflectionResponse(decoding: Support.filesResponse([first, second])), .files([first, second]))
    }

    func testEmptyFileDescriptorResponseIsNoFiles() throws {
        XCTAssertEqual(try ReflectionResponse(decoding: Support.field(4, [])), .files([]))
    }

    func testErrorResponseDecodesCodeAndMessage() throws {
        XCTAssertEqual(
            try ReflectionResponse(decoding: Support.errorResponse(code: 5, message: "symbol not found")),
            .error(code: 5, message: "symbol not found")
        )
    }

    func testNegativeErrorCodeIsReadAsInt32() throws {
        XCTAssertEqual(
            try ReflectionResponse(decoding: Support.errorResponse(code: -1, message: "")),
            .error(code: -1, message: "")
        )
    }

    func testUnknownFieldsOfEveryWireTypeAreSkipped() throws {
        let unknown = Support.varintField(20, 300) + [0xA9, 0x01] + [UInt8](repeating: 0, count: 8)  // field 21 fixed64
            + [0xB5, 0x01, 1, 2, 3, 4]  // field 22 fixed32
        XCTAssertEqual(try ReflectionResponse(decoding: unknown + Support.servicesResponse(["x.Y"])), .services(["x.Y"]))
    }

    func testLastMemberOfTheOneofWins() throws {
        let bytes = Support.servicesResponse(["x.Y"]) + Support.errorResponse(code: 13, message: "late")
        XCTAssertEqual(try ReflectionResponse(decoding: bytes), .error(code: 13, message: "late"))
    }

    func testResponseWithoutAnswerIsUnexpected() throws {
        guard case .unexpected = try ReflectionResponse(decoding: Support.field(1, "host")) else {
            return XCTFail("a response with only valid_host carries no answer")
        }
    }

    func testExtensionNumbersResponseIsUnexpected() throws {
        guard case .unexpected(let what) = try ReflectionResponse(decoding: Support.field(5, [])) else {
            return XCTFail("all_extension_numbers_response was never asked for")
        }
        XCTAssertTrue(what.contains("all_extension_numbers_response"), what)
    }

    // MARK: Malformed responses

    func testLengthPastTheEndIsRejectedWithItsOffset() {
        XCTAssertThrowsError(try ReflectionResponse(decoding: [0x32, 0x05, 0x0A])) { error in
            XCTAssertEqual(error as? ReflectionWireError, ReflectionWireError(
                offset: 1, problem: "length 5 runs past the end of the message"
            ))
        }
    }

    func testMalformedNestedMessageIsRejectedWithItsOffsetInside() {
        // list_services_response whose ServiceResponse claims 9 bytes but holds 1.
        XCTAssertThrowsError(try ReflectionResponse(decoding: Support.field(6, [0x0A, 0x09, 0x00]))) { error in
            XCTAssertEqual((error as? ReflectionWireError)?.offset, 1)
        }
    }

    func testTruncatedVarintIsRejected() {
        XCTAssertThrowsError(try ReflectionResponse(decoding: [0x08, 0xFF])) { error in
            XCTAssertEqual((error as? ReflectionWireError)?.problem, "varint runs past the end of the message")
        }
    }

    func testElevenByteVarintIsRejected() {
        let bytes: [UInt8] = [0x08] + [UInt8](repeating: 0xFF, count: 10) + [0x01]
        XCTAssertThrowsError(try ReflectionResponse(decoding: bytes))
    }

    func testGroupWireTypeIsRejected() {
        XCTAssertThrowsError(try ReflectionResponse(decoding: [0x0B])) { error in
            XCTAssertTrue("\(error)".contains("wire type 3"), "\(error)")
        }
    }

    func testFieldNumberZeroIsRejected() {
        XCTAssertThrowsError(try ReflectionResponse(decoding: [0x02, 0x00]))
    }

    func testRandomBytesNeverCrash() {
        var generator = SeededGenerator(seed: 0x5EED_0001)
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? ReflectionResponse(decoding: bytes)
        }
    }
}
