// Malformed encodings: each yields the right typed error at the right offset, and random bytes never trap.

import TestSupport
import PluginKit
import XCTest

final class ProtoWireMalformedInputTests: XCTestCase {
    private func assertScanFails(
        _ hex: String,
        with expected: ProtoWireError,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertThrowsError(try scanAll(bytes(hex)), file: file, line: line) { error in
            XCTAssertEqual(error as? ProtoWireError, expected, file: file, line: line)
        }
    }

    func testTruncatedVarintValue() {
        assertScanFails("08 96", with: ProtoWireError(offset: 1, kind: .truncatedVarint))
    }

    func testTruncatedKey() {
        assertScanFails("0A 00 80", with: ProtoWireError(offset: 2, kind: .truncatedVarint))
    }

    func testMissingVarintValue() {
        assertScanFails("08", with: ProtoWireError(offset: 1, kind: .truncatedVarint))
    }

    func testLengthBeyondEnd() {
        assertScanFails("0A 05 61 62", with: ProtoWireError(offset: 1, kind: .lengthBeyondEnd(length: 5, available: 2)))
    }

    func testElevenByteVarintValue() {
        assertScanFails("08 FF FF FF FF FF FF FF FF FF FF 01", with: ProtoWireError(offset: 1, kind: .varintTooLong))
    }

    func testTenthByteOverflow() {
        assertScanFails(
            "08 FF FF FF FF FF FF FF FF FF 7F",
            with: ProtoWireError(offset: 1, kind: .varintOverflowsUInt64)
        )
    }

    func testGroupWireTypesAreRejected() {
        assertScanFails("0B 0C", with: ProtoWireError(offset: 0, kind: .groupWireTypeUnsupported(3)))
        assertScanFails("08 01 0C", with: ProtoWireError(offset: 2, kind: .groupWireTypeUnsupported(4)))
    }

    func testNonexistentWireTypesAreRejected() {
        assertScanFails("0E", with: ProtoWireError(offset: 0, kind: .invalidWireType(6)))
        assertScanFails("0F", with: ProtoWireError(offset: 0, kind: .invalidWireType(7)))
    }

    func testFieldNumberZero() {
        assertScanFails("08 01 00 01", with: ProtoWireError(offset: 2, kind: .invalidFieldNumber(0)))
    }

    func testFieldNumberAboveMaximum() {
        // 2^29 << 3 = 2^32: 80 80 80 80 10.
        assertScanFails("80 80 80 80 10 01", with: ProtoWireError(offset: 0, kind: .invalidFieldNumber(1 << 29)))
    }

    func testLengthOverflowingInt() {
        assertScanFails(
            "0A FF FF FF FF FF FF FF FF FF 01",
            with: ProtoWireError(offset: 1, kind: .lengthOverflowsInt(UInt64.max))
        )
        assertScanFails(
            "0A 80 80 80 80 80 80 80 80 80 01",
            with: ProtoWireError(offset: 1, kind: .lengthOverflowsInt(1 << 63))
        )
    }

    func testLengthOfIntMaxIsBeyondEndWithoutOverflowingArithmetic() {
        assertScanFails(
            "0A FF FF FF FF FF FF FF FF 7F 61",
            with: ProtoWireError(offset: 1, kind: .lengthBeyondEnd(length: UInt64(Int.max), available: 1))
        )
    }

    func testTruncatedFixedWidthValues() {
        assertScanFails(
            "0D 01 02",
            with: ProtoWireError(offset: 1, kind: .truncatedFixedWidthValue(needed: 4, available: 2))
        )
        assertScanFails(
            "09 01 02 03 04 05 06 07",
            with: ProtoWireError(offset: 1, kind: .truncatedFixedWidthValue(needed: 8, available: 7))
        )
    }

    func testSubMessageErrorsReportOffsetsInTheWholeBuffer() throws {
        // Outer field 2 holds 3 bytes: a string field claiming 5 bytes with only 1 left inside the sub-message,
        // although the outer buffer has more bytes after it.
        let message = bytes("12 03 0A 05 61 62 63 64 65")
        var outer = ProtoWireScanner(bytes: message)
        let subMessage = try XCTUnwrap(try outer.next())
        XCTAssertEqual(subMessage.payloadRange, 2..<5)
        XCTAssertThrowsError(try scanAll(message, range: subMessage.payloadRange)) { error in
            let expected = ProtoWireError(offset: 3, kind: .lengthBeyondEnd(length: 5, available: 1))
            XCTAssertEqual(error as? ProtoWireError, expected)
        }
    }

    func testScannerRangeBeyondBufferIsClamped() throws {
        let scanner = ProtoWireScanner(bytes: bytes("08 01"), range: 0..<100)
        XCTAssertEqual(scanner.range, 0..<2)
    }

    func testErrorDescriptionNamesOffset() {
        let error = ProtoWireError(offset: 7, kind: .groupWireTypeUnsupported(3))
        XCTAssertTrue(error.description.contains("byte 7"), error.description)
    }

    /// Walks every length-delimited field as if it were a sub-message, and rewrites the first one found, so
    /// random bytes reach every code path of the scanner and the rewriter.
    private func exercise(_ buffer: [UInt8], range: Range<Int>, rewriter: inout ProtoWireRewriter, depth: Int) {
        var scanner = ProtoWireScanner(bytes: buffer, range: range)
        while true {
            let field: ProtoWireField
            do {
                guard let next = try scanner.next() else { return }
                field = next
            } catch {
                XCTAssertTrue(range.contains(error.offset) || error.offset == range.upperBound)
                return
            }
            XCTAssertTrue(range.lowerBound <= field.fieldRange.lowerBound)
            XCTAssertTrue(field.fieldRange.upperBound <= range.upperBound)
            guard field.wireType == .lengthDelimited else { continue }
            if !rewriter.hasEdits || field.payloadRange.count % 3 == 0 {
                try? rewriter.replacePayload(of: field, with: [0x61])
            }
            if depth < 8 {
                exercise(buffer, range: field.payloadRange, rewriter: &rewriter, depth: depth + 1)
            }
        }
    }

    func testRandomBytesNeverTrap() {
        var generator = SeededGenerator(seed: 0x5EED_2026)
        for _ in 0..<5_000 {
            let length = Int.random(in: 0...48, using: &generator)
            var buffer = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Bias some inputs towards plausible keys so the walk goes deeper than the first byte.
            if length > 2, Bool.random(using: &generator) {
                buffer[0] = 0x0A
                buffer[1] = UInt8(length - 2)
            }
            var rewriter = ProtoWireRewriter(original: buffer)
            exercise(buffer, range: 0..<buffer.count, rewriter: &rewriter, depth: 0)
            _ = try? rewriter.rebuiltBytes()
        }
    }
}
