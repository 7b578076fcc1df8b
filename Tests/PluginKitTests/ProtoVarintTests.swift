// Varint vectors from the protobuf encoding spec: decoding, minimal encoding, and the rejected encodings.

import PluginKit
import XCTest

final class ProtoVarintTests: XCTestCase {
    func testDecodesSpecVectors() throws {
        let vectors: [(String, UInt64)] = [
            ("00", 0), ("01", 1), ("7F", 127), ("80 01", 128), ("96 01", 150), ("AC 02", 300),
            ("FF FF FF FF 0F", UInt64(UInt32.max)),
            ("FF FF FF FF FF FF FF FF FF 01", UInt64.max),
        ]
        for (hex, expected) in vectors {
            let encoded = bytes(hex)
            let decoded = try ProtoVarint.decode(encoded, at: 0, end: encoded.count)
            XCTAssertEqual(decoded.value, expected, hex)
            XCTAssertEqual(decoded.length, encoded.count, hex)
        }
    }

    func testEncodesMinimallyAndRoundTrips() throws {
        let values: [UInt64] = [0, 1, 127, 128, 150, 16_383, 16_384, UInt64(Int.max), UInt64.max]
        for value in values {
            var encoded: [UInt8] = []
            ProtoVarint.append(value, to: &encoded)
            XCTAssertEqual(encoded.count, ProtoVarint.encodedLength(of: value))
            let decoded = try ProtoVarint.decode(encoded, at: 0, end: encoded.count)
            XCTAssertEqual(decoded.value, value)
        }
        var encoded150: [UInt8] = []
        ProtoVarint.append(150, to: &encoded150)
        XCTAssertEqual(encoded150, bytes("96 01"))
        XCTAssertEqual(ProtoVarint.encodedLength(of: 127), 1)
        XCTAssertEqual(ProtoVarint.encodedLength(of: 128), 2)
        XCTAssertEqual(ProtoVarint.encodedLength(of: UInt64.max), 10)
    }

    func testAcceptsNonMinimalEncoding() throws {
        let encoded = bytes("80 80 00")
        let decoded = try ProtoVarint.decode(encoded, at: 0, end: encoded.count)
        XCTAssertEqual(decoded.value, 0)
        XCTAssertEqual(decoded.length, 3)
    }

    func testDecodesAtOffsetWithinEnd() throws {
        let buffer = bytes("FF 96 01 FF")
        let decoded = try ProtoVarint.decode(buffer, at: 1, end: 3)
        XCTAssertEqual(decoded.value, 150)
        XCTAssertEqual(decoded.length, 2)
    }

    func testRejectsVarintTruncatedByEnd() {
        let buffer = bytes("96 01")
        XCTAssertThrowsError(try ProtoVarint.decode(buffer, at: 0, end: 1)) { error in
            XCTAssertEqual(error as? ProtoWireError, ProtoWireError(offset: 0, kind: .truncatedVarint))
        }
        XCTAssertThrowsError(try ProtoVarint.decode(buffer, at: 2, end: 2)) { error in
            XCTAssertEqual(error as? ProtoWireError, ProtoWireError(offset: 2, kind: .truncatedVarint))
        }
    }

    func testRejectsElevenByteVarint() {
        let buffer = bytes("FF FF FF FF FF FF FF FF FF FF 01")
        XCTAssertThrowsError(try ProtoVarint.decode(buffer, at: 0, end: buffer.count)) { error in
            XCTAssertEqual(error as? ProtoWireError, ProtoWireError(offset: 0, kind: .varintTooLong))
        }
    }

    func testRejectsTenthByteBeyondSixtyFourBits() {
        let buffer = bytes("FF FF FF FF FF FF FF FF FF 02")
        XCTAssertThrowsError(try ProtoVarint.decode(buffer, at: 0, end: buffer.count)) { error in
            XCTAssertEqual(error as? ProtoWireError, ProtoWireError(offset: 0, kind: .varintOverflowsUInt64))
        }
    }
}
