// Rewriting payloads at depth: enclosing length prefixes follow, every other byte stays identical.

import PluginKit
import XCTest

final class ProtoWireRewriterTests: XCTestCase {
    /// The "ns-a" string field inside C, found by walking Outer.2 → A.3 → B.4 → C.1.
    private func namespaceField(in message: [UInt8]) throws -> ProtoWireField {
        let levelA = try XCTUnwrap(try scanAll(message).first { $0.fieldNumber == 2 })
        let levelB = try XCTUnwrap(try scanAll(message, range: levelA.payloadRange).first { $0.fieldNumber == 3 })
        let levelC = try XCTUnwrap(try scanAll(message, range: levelB.payloadRange).first { $0.fieldNumber == 4 })
        return try XCTUnwrap(try scanAll(message, range: levelC.payloadRange).first { $0.fieldNumber == 1 })
    }

    private func rewriteNamespace(to newValue: [UInt8]) throws -> [UInt8] {
        let message = NestedMessageVector.encoded
        var rewriter = ProtoWireRewriter(original: message)
        try rewriter.replacePayload(of: try namespaceField(in: message), with: newValue)
        return try rewriter.rebuiltBytes()
    }

    func testNoEditsReturnsOriginalStorage() throws {
        let message = NestedMessageVector.encoded
        let rewriter = ProtoWireRewriter(original: message)
        XCTAssertFalse(rewriter.hasEdits)
        let rebuilt = try rewriter.rebuiltBytes()
        XCTAssertEqual(rebuilt, message)
        let originalAddress = message.withUnsafeBufferPointer { $0.baseAddress }
        let rebuiltAddress = rebuilt.withUnsafeBufferPointer { $0.baseAddress }
        XCTAssertEqual(originalAddress, rebuiltAddress, "no edits must not copy the message")
    }

    func testLongerStringAtDepthThreeUpdatesEveryEnclosingPrefix() throws {
        let rebuilt = try rewriteNamespace(to: utf8("namespace-b"))
        // C grows by 7 (15 → 22), and so do B (22 → 29) and A (27 → 34).
        let expected = bytes(
            NestedMessageVector.outerBeforeA + " 12 22 " + NestedMessageVector.levelABeforeB + " 1A 1D "
                + NestedMessageVector.levelBBeforeC + " 22 16 "
                + "0A 0B 6E 61 6D 65 73 70 61 63 65 2D 62  49 11 22 33 44 55 66 77 88 "
                + NestedMessageVector.outerAfterA
        )
        XCTAssertEqual(rebuilt, expected)
        XCTAssertEqual(try namespaceField(in: rebuilt).payloadRange.count, 11)
    }

    func testShorterStringAtDepthThreeUpdatesEveryEnclosingPrefix() throws {
        let rebuilt = try rewriteNamespace(to: utf8("n"))
        let expected = bytes(
            NestedMessageVector.outerBeforeA + " 12 18 " + NestedMessageVector.levelABeforeB + " 1A 13 "
                + NestedMessageVector.levelBBeforeC + " 22 0C "
                + "0A 01 6E  49 11 22 33 44 55 66 77 88 "
                + NestedMessageVector.outerAfterA
        )
        XCTAssertEqual(rebuilt, expected)
    }

    func testEmptyStringAtDepthThree() throws {
        let rebuilt = try rewriteNamespace(to: [])
        let expected = bytes(
            NestedMessageVector.outerBeforeA + " 12 17 " + NestedMessageVector.levelABeforeB + " 1A 12 "
                + NestedMessageVector.levelBBeforeC + " 22 0B "
                + "0A 00  49 11 22 33 44 55 66 77 88 "
                + NestedMessageVector.outerAfterA
        )
        XCTAssertEqual(rebuilt, expected)
    }

    func testPrefixesGrowFromOneToTwoBytesPastLength127() throws {
        let longName = [UInt8](repeating: 0x78, count: 200)
        let rebuilt = try rewriteNamespace(to: longName)
        // The string's own prefix becomes C8 01 (200); C = 3 + 200 + 9 = 212 (D4 01);
        // B = 5 + 1 + 2 + 212 = 220 (DC 01); A = 3 + 1 + 2 + 220 = 226 (E2 01).
        let expected = bytes(NestedMessageVector.outerBeforeA + " 12 E2 01 " + NestedMessageVector.levelABeforeB
            + " 1A DC 01 " + NestedMessageVector.levelBBeforeC + " 22 D4 01 0A C8 01")
            + longName
            + bytes("49 11 22 33 44 55 66 77 88 " + NestedMessageVector.outerAfterA)
        XCTAssertEqual(rebuilt, expected)
        XCTAssertEqual(rebuilt.count, NestedMessageVector.encoded.count + (200 - 4) + 4)
        // Shrinking back below 128 restores the original bytes exactly.
        var shrink = ProtoWireRewriter(original: rebuilt)
        try shrink.replacePayload(of: try namespaceField(in: rebuilt), with: utf8("ns-a"))
        XCTAssertEqual(try shrink.rebuiltBytes(), NestedMessageVector.encoded)
    }

    func testEditsInSeveralBranchesAndLevelsTogether() throws {
        let message = NestedMessageVector.encoded
        var rewriter = ProtoWireRewriter(original: message)
        let topLevelString = try XCTUnwrap(try scanAll(message).first)
        try rewriter.replacePayload(of: try namespaceField(in: message), with: utf8("ns-b"))
        try rewriter.replacePayload(of: topLevelString, with: utf8("order"))
        let rebuilt = try rewriter.rebuiltBytes()
        var expected = message
        expected.replaceSubrange(0..<8, with: bytes("0A 05 6F 72 64 65 72"))
        expected[NestedMessageVector.namespacePayloadOffset - 1 + 3] = 0x62  // "ns-a" → "ns-b", one byte earlier.
        XCTAssertEqual(rebuilt, expected)
    }

    func testUntouchedNonMinimalVarintsAndUnknownFieldsSurvive() throws {
        // Field 7 (unknown) with a non-minimal key BA 00 and non-minimal length 83 00; field 1 "ab" whose key
        // is written non-minimally as 8A 00; a same-length edit keeps even a non-minimal prefix (82 00).
        let message = bytes("BA 00 83 00 01 02 03  8A 00 02 61 62  12 82 00 78 79  18 80 01")
        let fields = try scanAll(message)
        XCTAssertEqual(fields.map(\.fieldNumber), [7, 1, 2, 3])
        var rewriter = ProtoWireRewriter(original: message)
        try rewriter.replacePayload(of: fields[1], with: utf8("abc"))
        try rewriter.replacePayload(of: fields[2], with: utf8("zz"))
        XCTAssertEqual(
            try rewriter.rebuiltBytes(),
            bytes("BA 00 83 00 01 02 03  8A 00 03 61 62 63  12 82 00 7A 7A  18 80 01")
        )
    }

    func testRenamesMapKeyInsideEntryTwoLevelsDeep() throws {
        // Outer { 2: Config { 7: map<string, string> labels } }, two entries:
        //   entry { 1: "env", 2: "prod" }  = 3A 0B 0A 03 65 6E 76 12 04 70 72 6F 64
        //   entry { 1: "ns-a", 2: "x" }    = 3A 09 0A 04 6E 73 2D 61 12 01 78
        // Config = 24 bytes; Outer = 12 18 + Config, then field 3 varint 1.
        let message = bytes("12 18  3A 0B 0A 03 65 6E 76 12 04 70 72 6F 64  3A 09 0A 04 6E 73 2D 61 12 01 78  18 01")
        var rewriter = ProtoWireRewriter(original: message)
        try renameStrings(
            in: message,
            range: 0..<message.count,
            from: utf8("ns-a"),
            to: utf8("namespace-a"),
            rewriter: &rewriter
        )
        XCTAssertEqual(
            try rewriter.rebuiltBytes(),
            bytes(
                "12 1F  3A 0B 0A 03 65 6E 76 12 04 70 72 6F 64  "
                    + "3A 10 0A 0B 6E 61 6D 65 73 70 61 63 65 2D 61 12 01 78  18 01"
            )
        )
    }

    /// A schema-free stand-in for a translator's walk: field 2 of Outer is Config, field 7 of Config is a map
    /// entry, field 1 of an entry is its key; every other field is left alone.
    private func renameStrings(
        in message: [UInt8],
        range: Range<Int>,
        from oldValue: [UInt8],
        to newValue: [UInt8],
        rewriter: inout ProtoWireRewriter,
        depth: Int = 0
    ) throws {
        let subMessageFieldByDepth = [2, 7]
        var scanner = ProtoWireScanner(bytes: message, range: range)
        while let field = try scanner.next() {
            guard field.wireType == .lengthDelimited else { continue }
            if depth < subMessageFieldByDepth.count, field.fieldNumber == subMessageFieldByDepth[depth] {
                try renameStrings(
                    in: message,
                    range: field.payloadRange,
                    from: oldValue,
                    to: newValue,
                    rewriter: &rewriter,
                    depth: depth + 1
                )
            } else if depth == subMessageFieldByDepth.count, field.fieldNumber == 1,
                message[field.payloadRange].elementsEqual(oldValue)
            {
                try rewriter.replacePayload(of: field, with: newValue)
            }
        }
    }

    func testReplacingWholeSubMessagePayload() throws {
        let message = NestedMessageVector.encoded
        let levelA = try XCTUnwrap(try scanAll(message).first { $0.fieldNumber == 2 })
        var rewriter = ProtoWireRewriter(original: message)
        try rewriter.replacePayload(of: levelA, with: bytes("08 01"))
        XCTAssertEqual(
            try rewriter.rebuiltBytes(),
            bytes(NestedMessageVector.outerBeforeA + " 12 02 08 01 " + NestedMessageVector.outerAfterA)
        )
    }

    func testRejectsEditOfNonLengthDelimitedField() throws {
        let message = NestedMessageVector.encoded
        let varintField = try scanAll(message)[2]
        var rewriter = ProtoWireRewriter(original: message)
        XCTAssertThrowsError(try rewriter.replacePayload(of: varintField, with: [1])) { error in
            let expected = ProtoWireError(offset: 37, kind: .editOfNonLengthDelimitedField(.varint))
            XCTAssertEqual(error as? ProtoWireError, expected)
        }
        XCTAssertFalse(rewriter.hasEdits)
    }

    func testRejectsDuplicateAndNestedEdits() throws {
        let message = NestedMessageVector.encoded
        let levelA = try XCTUnwrap(try scanAll(message).first { $0.fieldNumber == 2 })
        let namespace = try namespaceField(in: message)
        var rewriter = ProtoWireRewriter(original: message)
        try rewriter.replacePayload(of: namespace, with: [0x61])
        for conflicting in [namespace, levelA] {
            XCTAssertThrowsError(try rewriter.replacePayload(of: conflicting, with: [0x62])) { error in
                XCTAssertEqual((error as? ProtoWireError)?.kind, .overlappingOrOutOfBoundsEdit)
            }
        }
    }

    func testRejectsDuplicateEditOfEmptyPayload() throws {
        let message = bytes("0A 00")
        let field = try scanAll(message)[0]
        var rewriter = ProtoWireRewriter(original: message)
        try rewriter.replacePayload(of: field, with: [0x61])
        XCTAssertThrowsError(try rewriter.replacePayload(of: field, with: [0x62]))
        XCTAssertEqual(try rewriter.rebuiltBytes(), bytes("0A 01 61"))
    }

    func testEditsEmptyStringAtTheEndOfSubMessage() throws {
        // Outer { 2: Inner { 1: "" } }: the string's empty payload ends exactly where Inner ends.
        let message = bytes("12 02 0A 00  18 01")
        let inner = try scanAll(message)[0]
        let emptyString = try scanAll(message, range: inner.payloadRange)[0]
        XCTAssertEqual(emptyString.payloadRange, 4..<4)
        var rewriter = ProtoWireRewriter(original: message)
        try rewriter.replacePayload(of: emptyString, with: [0x61])
        XCTAssertEqual(try rewriter.rebuiltBytes(), bytes("12 03 0A 01 61  18 01"))
        // Replacing Inner as a whole as well would nest one edit inside the other.
        XCTAssertThrowsError(try rewriter.replacePayload(of: inner, with: [])) { error in
            XCTAssertEqual((error as? ProtoWireError)?.kind, .overlappingOrOutOfBoundsEdit)
        }
    }

    func testRejectsFieldFromAnotherBuffer() throws {
        let other = bytes("08 01 08 02 0A 01 61")
        let foreignField = try scanAll(other)[2]
        // In this message, bytes 6..<7 are the key of a varint field, not a payload.
        let message = bytes("08 01 08 02 08 03 08 04")
        var rewriter = ProtoWireRewriter(original: message)
        try rewriter.replacePayload(of: foreignField, with: [0x62])
        XCTAssertThrowsError(try rewriter.rebuiltBytes()) { error in
            XCTAssertEqual(error as? ProtoWireError, ProtoWireError(offset: 6, kind: .editNotAtFieldBoundary))
        }
        // Inside a string payload, the rewriter has to read the string as a sub-message, which fails instead.
        var insideString = ProtoWireRewriter(original: bytes("0A 06 6F 72 64 65 72 73"))
        try insideString.replacePayload(of: foreignField, with: [0x62])
        XCTAssertThrowsError(try insideString.rebuiltBytes())
        var outOfBounds = ProtoWireRewriter(original: bytes("08 01"))
        XCTAssertThrowsError(try outOfBounds.replacePayload(of: foreignField, with: [0x62])) { error in
            XCTAssertEqual((error as? ProtoWireError)?.kind, .overlappingOrOutOfBoundsEdit)
        }
    }
}
