// ProtoFieldOverrides on hand-encoded messages: values replaced in place, missing fields appended, repeated
// occurrences collapsed into the one a parser keeps, everything else byte for byte, and no copy when nothing changes.

import PluginKit
import XCTest

final class ProtoFieldOverridesTests: XCTestCase {
    private func apply(_ overrides: ProtoFieldOverrides, _ message: [UInt8]) throws -> [UInt8]? {
        try message.withUnsafeBytes { buffer in try overrides.apply(to: buffer) }
    }

    private var shardsAndAddress: ProtoFieldOverrides {
        var overrides = ProtoFieldOverrides()
        overrides.set(fieldNumber: 6, to: .varint(12))
        overrides.set(fieldNumber: 1, to: .lengthDelimited(utf8("proxy:7233")))
        return overrides
    }

    func testValuesAreReplacedWhereTheyAreAndOtherFieldsKeptByteForByte() throws {
        let unknownField = varintField(900, 1)
        let message = stringField(1, "remote:7233") + stringField(5, "name") + varintField(6, 4) + unknownField
        let output = try apply(shardsAndAddress, message)
        let expected = stringField(1, "proxy:7233") + stringField(5, "name") + varintField(6, 12) + unknownField
        XCTAssertEqual(output, expected)
    }

    func testMissingFieldsAreAppendedInTheOrderTheyWereSet() throws {
        let output = try apply(shardsAndAddress, stringField(5, "name"))
        XCTAssertEqual(output, stringField(5, "name") + varintField(6, 12) + stringField(1, "proxy:7233"))
        XCTAssertEqual(try apply(shardsAndAddress, []), varintField(6, 12) + stringField(1, "proxy:7233"))
    }

    func testRepeatedOccurrencesBecomeOneAtTheLastPosition() throws {
        let message = varintField(6, 1) + stringField(5, "n") + varintField(6, 2)
        var overrides = ProtoFieldOverrides()
        overrides.set(fieldNumber: 6, to: .varint(3))
        XCTAssertEqual(try apply(overrides, message), stringField(5, "n") + varintField(6, 3))
        overrides.set(fieldNumber: 6, to: .varint(2))
        XCTAssertEqual(try apply(overrides, message), stringField(5, "n") + varintField(6, 2), "duplicates still go")
    }

    func testMessageAlreadyCarryingTheValuesIsUnchanged() throws {
        let message = stringField(1, "proxy:7233") + varintField(6, 12)
        XCTAssertNil(try apply(shardsAndAddress, message))
        var overrides = ProtoFieldOverrides()
        overrides.set(fieldNumber: 6, to: .varint(12))
        XCTAssertNil(try apply(overrides, bytes("30 8C 00")), "a non-minimal varint of the same value is the value")
        XCTAssertNil(try apply(ProtoFieldOverrides(), bytes("FF FF")), "no overrides: not even parsed")
    }

    func testAFieldOfAnotherWireTypeIsReplaced() throws {
        var overrides = ProtoFieldOverrides()
        overrides.set(fieldNumber: 6, to: .varint(12))
        XCTAssertEqual(try apply(overrides, stringField(6, "x")), varintField(6, 12))
    }

    func testNegativeInt64IsWrittenAsTenBytes() throws {
        var overrides = ProtoFieldOverrides()
        overrides.set(fieldNumber: 10, to: .varint(UInt64(bitPattern: -1)))
        let output = try XCTUnwrap(try apply(overrides, []))
        XCTAssertEqual(output.count, 11)
    }

    func testMalformedTopLevelThrowsWithTheOffset() {
        var overrides = ProtoFieldOverrides()
        overrides.set(fieldNumber: 6, to: .varint(12))
        XCTAssertThrowsError(try apply(overrides, varintField(5, 1) + bytes("0A 05 61"))) { error in
            XCTAssertEqual((error as? ProtoWireError)?.offset, 3)
        }
    }
}
