// Options as plugins read them: the JSON parser on valid and malformed text, typed accessors and their error
// messages, and the check for keys a plugin never asked for.

import TestSupport
import PluginKit
import XCTest

final class JSONValueTests: XCTestCase {
    func testParsesEveryKindOfValue() throws {
        let value = try JSONValue(parsing: #" {"a": [1, -2.5e2, true, false, null], "b": {"c": "d"}, "e": ""} "#)
        XCTAssertEqual(value, .object([
            "a": .array([.number(1), .number(-250), .bool(true), .bool(false), .null]),
            "b": .object(["c": .string("d")]),
            "e": .string(""),
        ]))
    }

    func testDecodesEscapesAndSurrogatePairs() throws {
        let value = try JSONValue(parsing: #""q\" b\\ s\/ \b\f\n\r\t \u00e9 \ud83d\ude80""#)
        XCTAssertEqual(value, .string("q\" b\\ s/ \u{8}\u{C}\n\r\t é 🚀"))
    }

    func testKeepsUTF8TextAsIs() throws {
        XCTAssertEqual(try JSONValue(parsing: #""名前空間""#), .string("名前空間"))
    }

    func testMalformedTextNamesTheOffsetAndTheProblem() {
        let cases: [(String, String)] = [
            ("", "invalid JSON at byte 0: the JSON text ends where a value was expected"),
            ("{", "invalid JSON at byte 1: expected a quoted object key, found the end of the text"),
            (#"{"a" 1}"#, "invalid JSON at byte 5: expected ':' after object key \"a\", found '1'"),
            (#"{"a": 1,}"#, "invalid JSON at byte 8: expected a quoted object key, found '}'"),
            ("[1 2]", "invalid JSON at byte 3: expected ',' or ']' after an array element, found '2'"),
            (#"{"a": 1, "a": 2}"#, "invalid JSON at byte 9: the key \"a\" appears twice in one object"),
            ("01", "invalid JSON at byte 1: unexpected '1' after the JSON value"),
            ("-", "invalid JSON at byte 1: expected a digit in a number"),
            ("1.", "invalid JSON at byte 2: expected a digit after the decimal point"),
            ("1e", "invalid JSON at byte 2: expected a digit in the exponent"),
            ("1e999", "invalid JSON at byte 0: the number 1e999 is out of range"),
            ("tru", "invalid JSON at byte 0: unexpected 't' where a JSON value was expected"),
            ("\"abc", "invalid JSON at byte 4: the JSON text ends inside a string"),
            ("\"a\u{1}\"", "invalid JSON at byte 2: control character 0x1 inside a string (escape it)"),
            (#""\x""#, "invalid JSON at byte 2: invalid escape sequence \\'x'"),
            (#""\u12g4""#, "invalid JSON at byte 5: expected four hex digits after \\u, found 'g'"),
            (#""\ud800""#, "invalid JSON at byte 7: unpaired UTF-16 high surrogate \\ud800"),
            (
                #""\ud800\u0041""#,
                "invalid JSON at byte 13: a UTF-16 high surrogate is followed by \\u41, not a low one"
            ),
            (#""\udc00""#, "invalid JSON at byte 7: unpaired UTF-16 low surrogate \\udc00"),
            ("[1] x", "invalid JSON at byte 4: unexpected 'x' after the JSON value"),
            ("é", "invalid JSON at byte 0: unexpected byte 0xc3 where a JSON value was expected"),
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try JSONValue(parsing: text), text) { error in
                XCTAssertEqual((error as? PluginConfigError)?.message, message, text)
            }
        }
    }

    func testDeepNestingIsAnErrorNotAStackOverflow() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try JSONValue(parsing: deep)) { error in
            XCTAssertEqual(
                (error as? PluginConfigError)?.message, "invalid JSON at byte 64: JSON nested deeper than 64 levels"
            )
        }
        let allowed = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        XCTAssertNoThrow(try JSONValue(parsing: allowed))
    }

    func testRandomBytesNeverTrap() {
        var generator = SeededGenerator(seed: 0x5EED)
        let alphabet = Array(#"{}[]",:\u0123456789-+.eEtrufalsn "#.utf8) + [0x00, 0xFF, 0xC3, 0xA9]
        for _ in 0..<20_000 {
            let count = Int(generator.next() % 24)
            let bytes = (0..<count).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }
            _ = try? JSONValue(parsing: bytes)
        }
    }
}

final class PluginOptionsTests: XCTestCase {
    func testTypedAccessorsReadPresentValuesAndNilForAbsentOrNull() throws {
        let options = try PluginOptions(json: #"""
            {"s": "x", "b": true, "i": 42, "d": 0.5, "list": ["a", "b"], "map": {"k": "v"}, "n": null}
            """#)
        XCTAssertEqual(try options.string(forKey: "s"), "x")
        XCTAssertEqual(try options.bool(forKey: "b"), true)
        XCTAssertEqual(try options.int(forKey: "i"), 42)
        XCTAssertEqual(try options.double(forKey: "i"), 42)
        XCTAssertEqual(try options.double(forKey: "d"), 0.5)
        XCTAssertEqual(try options.stringArray(forKey: "list"), ["a", "b"])
        XCTAssertEqual(try options.stringMap(forKey: "map"), ["k": "v"])
        XCTAssertNil(try options.string(forKey: "n"))
        XCTAssertNil(try options.string(forKey: "absent"))
        XCTAssertEqual(try options.string(forKey: "absent") ?? "default", "default")
        XCTAssertEqual(options.keys, ["b", "d", "i", "list", "map", "n", "s"])
        XCTAssertNoThrow(try options.checkForUnknownKeys())
    }

    func testWrongTypesAndMissingKeysSayWhatIsExpected() throws {
        let options = try PluginOptions(json: #"{"s": 1, "i": 1.5, "big": 1e300, "list": ["a", 2], "map": {"k": []}}"#)
        let cases: [(String, () throws -> Void)] = [
            ("options.s must be a string, not the number 1", { _ = try options.string(forKey: "s") }),
            ("options.i must be an integer, not the number 1.5", { _ = try options.int(forKey: "i") }),
            ("options.big must be an integer, not the number 1e+300", { _ = try options.int(forKey: "big") }),
            ("options.list[1] must be a string, not a number", { _ = try options.stringArray(forKey: "list") }),
            ("options.map.k must be a string, not an array", { _ = try options.stringMap(forKey: "map") }),
            ("options.s must be a mapping, not a number", { _ = try options.options(forKey: "s") }),
            ("options.missing is required", { _ = try options.requiredString(forKey: "missing") }),
            ("options.missing is required", { _ = try options.requiredStringArray(forKey: "missing") }),
        ]
        for (message, read) in cases {
            XCTAssertThrowsError(try read(), message) { error in
                XCTAssertEqual((error as? PluginConfigError)?.message, message)
            }
        }
    }

    func testNestedOptionsNameTheirPathAndAreCheckedForUnknownKeys() throws {
        let options = try PluginOptions(json: #"{"rules": [{"from": "a", "to": "b"}, {"from": "c", "too": "d"}]}"#)
        let rules = try options.requiredOptionsArray(forKey: "rules")
        XCTAssertEqual(rules.map(\.path), ["options.rules[0]", "options.rules[1]"])
        for rule in rules {
            _ = try rule.requiredString(forKey: "from")
            _ = try rule.string(forKey: "to")
        }
        XCTAssertThrowsError(try options.checkForUnknownKeys()) { error in
            XCTAssertEqual(
                (error as? PluginConfigError)?.message,
                "options.rules[1] has unknown key 'too'; this plugin reads: from, to"
            )
        }
    }

    /// An accessor that throws leaves nothing behind: a plugin that goes on without the rules (with a default, say)
    /// is not told that the first rule's keys are unknown (found by the options-json fuzz target).
    func testAListWithANonObjectLeavesNoHalfReadOptionsBehind() throws {
        let options = try PluginOptions(json: #"{"rules": [{"from": "a"}, 5]}"#)
        XCTAssertThrowsError(try options.optionsArray(forKey: "rules")) { error in
            XCTAssertEqual((error as? PluginConfigError)?.message, "options.rules[1] must be a mapping, not a number")
        }
        XCTAssertNoThrow(try options.checkForUnknownKeys())
    }

    func testUnknownKeysAtTheTopAreListed() throws {
        let options = try PluginOptions(json: #"{"header": "x", "valu": "y", "extra": 1}"#)
        _ = try options.string(forKey: "header")
        _ = try options.string(forKey: "value")
        XCTAssertThrowsError(try options.checkForUnknownKeys()) { error in
            XCTAssertEqual(
                (error as? PluginConfigError)?.message,
                "options has unknown keys 'extra', 'valu'; this plugin reads: header, value"
            )
        }
    }

    func testAllowingUnknownKeysCoversNestedOptions() throws {
        let options = try PluginOptions(json: #"{"nested": {"anything": 1}, "other": 2}"#)
        _ = try options.options(forKey: "nested")
        options.allowUnknownKeys()
        XCTAssertNoThrow(try options.checkForUnknownKeys())
    }

    func testStringMapKeysAreDataNotOptionNames() throws {
        let options = try PluginOptions(json: #"{"namespaces": {"prod": "prod-b", "dev": "dev-b"}}"#)
        XCTAssertEqual(try options.stringMap(forKey: "namespaces"), ["prod": "prod-b", "dev": "dev-b"])
        XCTAssertNoThrow(try options.checkForUnknownKeys())
    }

    func testOptionsMustBeAnObject() {
        XCTAssertThrowsError(try PluginOptions(json: "[]")) { error in
            XCTAssertEqual(
                (error as? PluginConfigError)?.message, "options must be a JSON object (a YAML mapping), not an array"
            )
        }
    }
}
