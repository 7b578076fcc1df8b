// Scanning hand-encoded messages: field numbers, wire types and byte ranges at every depth.

import PluginKit
import XCTest

final class ProtoWireScannerTests: XCTestCase {
    func testScansSpecExampleString() throws {
        let fields = try scanAll(bytes("0A 06 6F 72 64 65 72 73"))
        XCTAssertEqual(fields.count, 1)
        XCTAssertEqual(fields[0].fieldNumber, 1)
        XCTAssertEqual(fields[0].wireType, .lengthDelimited)
        XCTAssertEqual(fields[0].fieldRange, 0..<8)
        XCTAssertEqual(fields[0].payloadRange, 2..<8)
    }

    func testEmptyMessageHasNoFields() throws {
        XCTAssertEqual(try scanAll([]), [])
    }

    func testScansTopLevelFieldsInOrderIncludingRepeatedAndUnknown() throws {
        let message = NestedMessageVector.encoded
        let fields = try scanAll(message)
        XCTAssertEqual(fields.map(\.fieldNumber), [1, 2, 3, 3, 1000, 5])
        XCTAssertEqual(fields.map(\.wireType), [.lengthDelimited, .lengthDelimited, .varint, .varint, .varint, .varint])
        XCTAssertEqual(fields[1].fieldRange, 8..<37)
        XCTAssertEqual(fields[1].payloadRange, 10..<37)
        XCTAssertEqual(fields[2].payloadRange, 38..<39)
        XCTAssertEqual(message[fields[3].payloadRange], [0x02])
        XCTAssertEqual(fields[4].fieldRange, 41..<44, "unknown field 1000 has a two-byte key")
        XCTAssertEqual(fields[5].payloadRange, 45..<55, "int64 -1 is a ten-byte varint")
        XCTAssertEqual(fields.last?.fieldRange.upperBound, message.count)
    }

    func testDescendsThreeLevelsWithAbsoluteOffsets() throws {
        let message = NestedMessageVector.encoded
        let outer = try scanAll(message)
        let levelA = try scanAll(message, range: outer[1].payloadRange)
        XCTAssertEqual(levelA.map(\.fieldNumber), [1, 3])
        let varintRange = levelA[0].payloadRange
        let varint = try ProtoVarint.decode(message, at: varintRange.lowerBound, end: varintRange.upperBound)
        XCTAssertEqual(varint.value, 150)

        var levelBScanner = ProtoWireScanner(bytes: message, subMessageOf: levelA[1])
        let fixed32 = try XCTUnwrap(try levelBScanner.next())
        XCTAssertEqual(fixed32.fieldNumber, 2)
        XCTAssertEqual(fixed32.wireType, .fixed32)
        XCTAssertEqual(message[fixed32.payloadRange], [0x04, 0x03, 0x02, 0x01])
        let levelCField = try XCTUnwrap(try levelBScanner.next())
        XCTAssertEqual(levelCField.fieldNumber, 4)
        XCTAssertNil(try levelBScanner.next())

        let levelC = try scanAll(message, range: levelCField.payloadRange)
        XCTAssertEqual(levelC.map(\.fieldNumber), [1, 9])
        XCTAssertEqual(levelC[0].payloadRange.lowerBound, NestedMessageVector.namespacePayloadOffset)
        XCTAssertEqual(message[levelC[0].payloadRange], utf8("ns-a")[...])
        XCTAssertEqual(levelC[1].wireType, .fixed64)
        XCTAssertEqual(message[levelC[1].payloadRange], bytes("11 22 33 44 55 66 77 88")[...])
    }

    func testPackedRepeatedFieldIsOneLengthDelimitedField() throws {
        // field 4, packed [3, 270, 86942]: 22 06 03 8E 02 9E A7 05 (the spec's packed example).
        let message = bytes("22 06 03 8E 02 9E A7 05")
        let fields = try scanAll(message)
        XCTAssertEqual(fields.count, 1)
        XCTAssertEqual(fields[0].wireType, .lengthDelimited)
        var values: [UInt64] = []
        var offset = fields[0].payloadRange.lowerBound
        while offset < fields[0].payloadRange.upperBound {
            let decoded = try ProtoVarint.decode(message, at: offset, end: fields[0].payloadRange.upperBound)
            values.append(decoded.value)
            offset += decoded.length
        }
        XCTAssertEqual(values, [3, 270, 86_942])
    }

    func testAcceptsLargestFieldNumberAndNonMinimalKey() throws {
        // (2^29 - 1) << 3 | 0 = 0xFFFFFFF8, then value 1; then field 1 varint with key 08 written as 88 00.
        let fields = try scanAll(bytes("F8 FF FF FF 0F 01  88 00 05"))
        XCTAssertEqual(fields.map(\.fieldNumber), [ProtoFieldNumber.maximum, 1])
        XCTAssertEqual(fields[1].fieldRange, 6..<9)
        XCTAssertEqual(fields[1].payloadRange, 8..<9)
    }

    func testEmptyLengthDelimitedPayload() throws {
        let fields = try scanAll(bytes("0A 00 10 01"))
        XCTAssertEqual(fields[0].payloadRange, 2..<2)
        XCTAssertEqual(fields[1].fieldNumber, 2)
    }

    func testKeyHelperMatchesSpec() {
        XCTAssertEqual(ProtoFieldNumber.key(fieldNumber: 1, wireType: .lengthDelimited), 0x0A)
        XCTAssertEqual(ProtoFieldNumber.key(fieldNumber: 9, wireType: .fixed64), 0x49)
        XCTAssertEqual(ProtoFieldNumber.key(fieldNumber: 2, wireType: .fixed32), 0x15)
    }
}
