// What utf8-repair writes in place of invalid UTF-8: one U+FFFD per maximal run of invalid bytes, as Go's
// strings.ToValidUTF8 does, where Swift's own decoder writes one per maximal subpart.

import UTF8Repair
import TestSupport
import XCTest

final class InvalidUTF8RunsTests: XCTestCase {
    private let replacement = "\u{FFFD}"

    func testValidUTF8NeedsNoRepair() {
        let texts = ["", "plain ascii", "naïve café", "日本語", "emoji 😀 and \u{10FFFF}", "a literal \u{FFFD} stays"]
        for text in texts {
            XCTAssertNil(InvalidUTF8Runs.repaired(Array(text.utf8)), text)
        }
    }

    func testEachRunOfInvalidBytesBecomesOneReplacementCharacter() {
        // The Go proxy's documented example: "abc\xff\xff" -> "abc\uFFFD".
        XCTAssertEqual(InvalidUTF8Runs.repaired(utf8("abc") + [0xFF, 0xFF]), "abc" + replacement)
        XCTAssertEqual(
            InvalidUTF8Runs.repaired([0xFF] + utf8("a") + [0xFE, 0xFD] + utf8("b") + [0x80]),
            replacement + "a" + replacement + "b" + replacement
        )
    }

    func testInvalidSequencesOfEveryKindAreInvalidBytes() {
        let cases: [(String, [UInt8])] = [
            ("lone continuation byte", [0x80]),
            ("truncated three-byte sequence", [0xE2, 0x82]),
            ("truncated sequence followed by an invalid byte", [0xE2, 0x82, 0xFF]),
            ("overlong encoding of '/'", [0xC0, 0xAF]),
            ("overlong three-byte form", [0xE0, 0x80, 0xAF]),
            ("UTF-16 surrogate", [0xED, 0xA0, 0x80]),
            ("above U+10FFFF", [0xF4, 0x90, 0x80, 0x80]),
            ("never a lead byte", [0xF8, 0x88, 0x80, 0x80, 0x80]),
        ]
        for (name, invalid) in cases {
            XCTAssertEqual(InvalidUTF8Runs.repaired(utf8("<") + invalid + utf8(">")), "<\(replacement)>", name)
        }
    }

    func testValidCharactersNextToARunStayIntact() {
        // A truncated emoji, then a complete one: the complete one is kept byte for byte.
        let input = utf8("x") + [0xF0, 0x9F, 0x98] + Array("😀".utf8) + [0xC3] + Array("é".utf8)
        XCTAssertEqual(InvalidUTF8Runs.repaired(input), "x\(replacement)😀\(replacement)é")
    }

    func testSwiftsDecoderReplacesPerSubpartWhereTheRepairCollapsesTheRun() {
        // Documents why the plugin does not return WalkTarget.value: it would write two U+FFFD here.
        let input: [UInt8] = [0x61, 0xFF, 0xFE]
        XCTAssertEqual(String(decoding: input, as: UTF8.self), "a" + replacement + replacement)
        XCTAssertEqual(InvalidUTF8Runs.repaired(input), "a" + replacement)
    }

    func testAgreesWithSwiftsDecoderUpToCollapsedRunsOnRandomBytes() {
        // Swift's decoder is the reference for which bytes are valid; the repair must differ from it only in
        // writing one U+FFFD where Swift writes several in a row.
        var generator = SeededGenerator(seed: 0x07F8)
        // Bytes at the edges of every range of Unicode table 3-7; no EF, so no literal U+FFFD can appear.
        let alphabet: [UInt8] = [
            0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xF0,
            0xF1, 0xF3, 0xF4, 0xF5, 0xFF,
        ]
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...12, using: &generator)
            let input = (0..<count).map { _ in alphabet.randomElement(using: &generator)! }
            let swift = String(decoding: input, as: UTF8.self)
            let collapsed = swift.unicodeScalars.reduce(into: "") { text, scalar in
                if scalar == "\u{FFFD}", text.unicodeScalars.last == "\u{FFFD}" { return }
                text.unicodeScalars.append(scalar)
            }
            let isValid = String(validating: input, as: UTF8.self) != nil
            XCTAssertEqual(InvalidUTF8Runs.repaired(input), isValid ? nil : collapsed, "\(input)")
        }
    }
}
