// JSON Pointer lookups (RFC 6901) as the host's option readers and Swift plugins make them: the RFC's own examples
// (section 5), what names nothing, and the sorted key order option_key walks.

import PluginKit
import XCTest

final class JSONPointerTests: XCTestCase {
    private let document = try! JSONValue(parsing: #"""
        {"foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4, "i\\j": 5, "k\"l": 6, " ": 7,
         "m~n": 8}
        """#)

    func testTheRFCsExamples() {
        XCTAssertEqual(document.value(atPointer: ""), document)
        XCTAssertEqual(document.value(atPointer: "/foo"), .array([.string("bar"), .string("baz")]))
        XCTAssertEqual(document.value(atPointer: "/foo/0"), .string("bar"))
        let numbered: [(String, Double)] = [
            ("/", 0), ("/a~1b", 1), ("/c%d", 2), ("/e^f", 3), ("/g|h", 4), (#"/i\j"#, 5), (#"/k"l"#, 6), ("/ ", 7),
            ("/m~0n", 8),
        ]
        for (pointer, number) in numbered {
            XCTAssertEqual(document.value(atPointer: pointer), .number(number), pointer)
        }
    }

    func testWhatNamesNothing() {
        for pointer in ["foo", "/nope", "/foo/2", "/foo/-", "/foo/01", "/foo/-1", "/foo/0/x", "/m~2n", "/m~", "/a~1b/c"] {
            XCTAssertNil(document.value(atPointer: pointer), pointer)
        }
    }

    func testKeysInAscendingByteOrder() {
        XCTAssertEqual(document.sortedKeys, ["", " ", "a/b", "c%d", "e^f", "foo", "g|h", #"i\j"#, #"k"l"#, "m~n"])
        XCTAssertEqual(JSONValue.array([]).sortedKeys, [])
    }
}
