// The walker's rules and edge cases on a small hand-written schema, with hand-encoded messages: repeated
// strings, oneofs, map keys and values, embedded messages in bytes fields and in containers with an encoding
// gate, wire-type mismatches, unknown fields, length prefixes, nesting depth, and rules that name nothing.

import PluginKit
import XCTest

final class WalkerRuleTests: XCTestCase {
    /// package t;
    /// message Root { string namespace = 1; repeated string names = 2; Child child = 3; repeated Child children = 4;
    ///   map<string, string> labels = 5; Blob blob = 6; bytes raw = 7; oneof choice { string choice_a = 8;
    ///   Child choice_b = 9; } int64 count = 10; Root nested = 11; Blob other_blob = 12;
    ///   map<string, Child> tags = 13; string far = 600; }
    /// message Child { string namespace = 1; string note = 2; Child inner = 3; }
    /// message Blob { Encoding encoding = 1; bytes data = 2; }  enum Encoding { NONE = 0; PROTO = 1; JSON = 2; }
    private static let schemaBytes: [UInt8] = {
        let labels = Descriptor.mapField("labels", 5, entryName: "LabelsEntry", key: .string, value: .string)
        let tags = Descriptor.mapField(
            "tags",
            13,
            entryName: "TagsEntry",
            key: .string,
            value: .message,
            valueTypeName: ".t.Child"
        )
        let root = Descriptor.message(
            "Root",
            fields: [
                Descriptor.field("namespace", 1, .string),
                Descriptor.field("names", 2, .string, repeated: true),
                Descriptor.field("child", 3, .message, typeName: ".t.Child"),
                Descriptor.field("children", 4, .message, repeated: true, typeName: ".t.Child"),
                labels.field,
                Descriptor.field("blob", 6, .message, typeName: ".t.Blob"),
                Descriptor.field("raw", 7, .bytes),
                Descriptor.field("choice_a", 8, .string, oneofIndex: 0),
                Descriptor.field("choice_b", 9, .message, typeName: ".t.Child", oneofIndex: 0),
                Descriptor.field("count", 10, .int64),
                Descriptor.field("nested", 11, .message, typeName: ".t.Root"),
                Descriptor.field("other_blob", 12, .message, typeName: ".t.Blob"),
                tags.field,
                Descriptor.field("far", 600, .string),
            ],
            nested: [labels.entry, tags.entry],
            oneofs: ["choice"]
        )
        let child = Descriptor.message(
            "Child",
            fields: [
                Descriptor.field("namespace", 1, .string),
                Descriptor.field("note", 2, .string),
                Descriptor.field("inner", 3, .message, typeName: ".t.Child"),
            ]
        )
        let blob = Descriptor.message(
            "Blob",
            fields: [
                Descriptor.field("encoding", 1, .enumeration, typeName: ".t.Encoding"),
                Descriptor.field("data", 2, .bytes),
            ]
        )
        let encoding = Descriptor.enumeration("Encoding", values: [("NONE", 0), ("PROTO", 1), ("JSON", 2)])
        return Descriptor.set(
            Descriptor.file("t.proto", package: "t", messages: [root, child, blob], enums: [encoding])
        )
    }()

    private static let blobContainer = EmbeddedMessageRule.Container(
        messageName: "t.Blob",
        bytesField: "data",
        encodingField: "encoding",
        walkedEncodings: [0, 1]
    )

    private func rules(blobEncodings: EmbeddedMessageRule.OtherEncodings = .leaveUntouched) -> WalkRules {
        WalkRules(
            strings: [
                .named(["namespace"]),
                .field("names", of: "t.Root"),
                .field(number: 8, of: "t.Root"),
                .field("far", of: "t.Root"),
            ],
            mapKeys: [.field("labels", of: "t.Root")],
            mapValues: [.field("labels", of: "t.Root")],
            embeddedMessages: [
                EmbeddedMessageRule(
                    fields: .field("blob", of: "t.Root"),
                    container: Self.blobContainer,
                    messageName: "t.Child",
                    otherEncodings: blobEncodings
                ),
                EmbeddedMessageRule(fields: .field("raw", of: "t.Root"), container: nil, messageName: "t.Child"),
            ]
        )
    }

    private func rootPlan(
        _ rules: WalkRules? = nil,
        maximumDepth: Int = 100
    ) throws -> WalkPlan {
        let schema = try ProtoSchema(fileDescriptorSet: Self.schemaBytes)
        return try schema.walker(rules: rules ?? self.rules(), maximumDepth: maximumDepth).plan(message: "t.Root")
    }

    /// Every target as `kind field=value`, in walk order.
    private func visited(_ message: [UInt8], _ plan: WalkPlan) throws -> [String] {
        var result: [String] = []
        try plan.visit(message) { target in
            result.append("\(target.kind) \(target.fieldName)=\(target.value)")
        }
        return result
    }

    // MARK: Targets

    func testRepeatedStringsOneofMembersAndFarFieldNumbersAreTargets() throws {
        let message =
            stringField(2, "a") + stringField(1, "ns") + stringField(2, "b") + stringField(8, "pick")
            + stringField(600, "far away")
        XCTAssertEqual(
            try visited(message, try rootPlan()),
            ["string names=a", "string namespace=ns", "string names=b", "string choice_a=pick", "string far=far away"]
        )
    }

    func testStringsInsideSubMessagesAndTheOtherOneofMember() throws {
        let child = stringField(2, "not a target") + stringField(1, "inside")
        let message =
            lengthDelimited(3, child) + lengthDelimited(4, child) + lengthDelimited(9, stringField(1, "chosen"))
        XCTAssertEqual(
            try visited(message, try rootPlan()),
            ["string namespace=inside", "string namespace=inside", "string namespace=chosen"]
        )
    }

    func testMapKeysAndValuesAndMessagesInMapValues() throws {
        let label = lengthDelimited(5, stringField(1, "team") + stringField(2, "payments"))
        let tag = lengthDelimited(13, stringField(1, "not-a-target-key") + lengthDelimited(2, stringField(1, "tagged")))
        var kinds: [WalkTarget.Kind] = []
        var names: [String] = []
        try rootPlan().visit(label + tag) { target in
            kinds.append(target.kind)
            names.append("\(target.messageName).\(target.fieldName)=\(target.value)")
        }
        XCTAssertEqual(kinds, [.mapKey, .mapValue, .string])
        XCTAssertEqual(names, ["t.Root.labels=team", "t.Root.labels=payments", "t.Child.namespace=tagged"])
    }

    func testMessagesInBytesFieldsAreWalkedWithTheirPath() throws {
        let message = lengthDelimited(7, lengthDelimited(3, stringField(1, "deep")))
        var paths: [String] = []
        try rootPlan().visit(message) { paths.append($0.pathDescription) }
        XCTAssertEqual(paths, ["raw.inner.namespace"])
    }

    // MARK: Rewriting

    func testRewriteGrowsLengthPrefixesAcross127AtEveryLevel() throws {
        let short = String(repeating: "s", count: 100)
        let long = String(repeating: "L", count: 300)
        func encode(_ value: String) -> [UInt8] {
            // child.inner.inner.namespace, with a sibling field at each level
            let innermost = stringField(2, "n") + stringField(1, value)
            let middle = lengthDelimited(3, innermost) + stringField(2, "m")
            return varintField(10, 7) + lengthDelimited(3, stringField(2, "o") + lengthDelimited(3, middle))
        }
        let rewritten = try rootPlan().rewrite(encode(short)) { $0.value == short ? long : nil }
        XCTAssertEqual(rewritten, encode(long))
        let back = try rootPlan().rewrite(rewritten) { $0.value == long ? short : nil }
        XCTAssertEqual(back, encode(short), "and shrinking back restores the original")
    }

    func testUnknownFieldsAndNonMinimalPrefixesOutsideEditsStayIdentical() throws {
        // field 99 varint, field 100 fixed32, field 98 length-delimited: none in the schema
        let unknown = varintField(99, 300) + [0xA5, 0x06, 1, 2, 3, 4] + lengthDelimited(98, [0xFF, 0xFE])
        let nonMinimalChild = [0x1A, 0x84, 0x00] + stringField(2, "ok")  // field 3, length 4 written in two bytes
        let prefix = unknown + nonMinimalChild
        let message = prefix + lengthDelimited(4, stringField(1, "old") + unknown)
        let rewritten = try rootPlan().rewrite(message) { $0.value == "old" ? "renamed" : nil }
        XCTAssertEqual(rewritten, prefix + lengthDelimited(4, stringField(1, "renamed") + unknown))
    }

    func testEmptyValuesCanBeReplacedAndProduced() throws {
        let message = lengthDelimited(3, stringField(1, "")) + stringField(2, "gone")
        let rewritten = try rootPlan().rewrite(message) { target in
            target.value.isEmpty ? "filled" : (target.value == "gone" ? "" : nil)
        }
        XCTAssertEqual(rewritten, lengthDelimited(3, stringField(1, "filled")) + stringField(2, ""))
    }

    func testManyEditsInOneMessageKeepTheirOrder() throws {
        let values = (0..<50).map { "v\($0)" }
        let message = values.flatMap { stringField(2, $0) }
        let rewritten = try rootPlan().rewrite(message) { target in
            Int(target.value.dropFirst()).map {
                $0.isMultiple(of: 3) ? String(repeating: "x", count: $0 * 5) : target.value
            }
        }
        let expected = values.enumerated().flatMap { index, value in
            stringField(2, index.isMultiple(of: 3) ? String(repeating: "x", count: index * 5) : value)
        }
        XCTAssertEqual(rewritten, expected)
    }

    func testInvalidUTF8StaysUnlessTheCallbackReturnsTheRepairedValue() throws {
        let message = lengthDelimited(1, [0x61, 0xFF, 0x62])
        var seen: [(String, Bool)] = []
        try rootPlan().visit(message) { seen.append(($0.value, $0.isValidUTF8)) }
        XCTAssertEqual(seen.map(\.0), ["a\u{FFFD}b"])
        XCTAssertEqual(seen.map(\.1), [false])
        XCTAssertEqual(try rootPlan().rewrite(message) { _ in nil }, message)
        XCTAssertEqual(try rootPlan().rewrite(message) { $0.value }, stringField(1, "a\u{FFFD}b"))
    }

    // MARK: Embedded containers and their encoding gate

    func testContainerIsWalkedWhenItsEncodingIsUnsetOrWalked() throws {
        let held = lengthDelimited(3, stringField(1, "in blob"))
        for blob in [
            lengthDelimited(2, held),
            varintField(1, 1) + lengthDelimited(2, held),
            lengthDelimited(2, held) + varintField(1, 1),  // the encoding after the data
            varintField(1, 2) + lengthDelimited(2, held) + varintField(1, 1),  // the last occurrence wins
        ] {
            XCTAssertEqual(try visited(lengthDelimited(6, blob), try rootPlan()), ["string namespace=in blob"])
            XCTAssertEqual(try visited(lengthDelimited(12, blob), try rootPlan()), [], "other_blob is not selected")
        }
    }

    func testContainerInAnotherEncodingIsLeftUntouchedOrFailsAsTheRuleSays() throws {
        let data = lengthDelimited(2, lengthDelimited(3, stringField(1, "json?")))
        let message = stringField(1, "top") + lengthDelimited(6, varintField(1, 2) + data)
        XCTAssertEqual(try visited(message, try rootPlan()), ["string namespace=top"])
        XCTAssertEqual(
            try rootPlan().rewrite(message) { _ in "changed" },
            stringField(1, "changed") + Array(message.dropFirst(5))
        )

        let strict = try rootPlan(rules(blobEncodings: .fail))
        XCTAssertThrowsError(try visited(message, strict)) { error in
            XCTAssertEqual(
                error as? ProtoWireError,
                ProtoWireError(offset: 9, kind: .embeddedEncodingNotWalked(encoding: 2))
            )
        }
    }

    // MARK: Wire-type mismatches and malformed input

    func testFieldsInAnotherWireTypeThanTheSchemaSaysAreUnknownFields() throws {
        // namespace (1) as a varint and child (3) as a fixed32: a protobuf parser keeps both as unknown fields
        let message = varintField(1, 5) + [0x1D, 1, 2, 3, 4] + stringField(2, "still seen")
        XCTAssertEqual(try visited(message, try rootPlan()), ["string names=still seen"])
        let rewritten = try rootPlan().rewrite(message) { $0.value == "still seen" ? "renamed" : nil }
        XCTAssertEqual(rewritten, varintField(1, 5) + [0x1D, 1, 2, 3, 4] + stringField(2, "renamed"))
    }

    func testMalformedBytesOnTheWalkedPathReportTheirOffset() throws {
        let cases: [([UInt8], ProtoWireError)] = [
            ([0x0A, 0x05, 0x61], ProtoWireError(offset: 1, kind: .lengthBeyondEnd(length: 5, available: 1))),
            (
                lengthDelimited(3, [0x0A, 0x09, 0x61]),
                ProtoWireError(offset: 3, kind: .lengthBeyondEnd(length: 9, available: 1))
            ),
            (lengthDelimited(3, [0x08]), ProtoWireError(offset: 3, kind: .truncatedVarint)),
            ([0x08] + Array(repeating: 0xFF, count: 10) + [0x01], ProtoWireError(offset: 1, kind: .varintTooLong)),
            (lengthDelimited(4, [0x0B]), ProtoWireError(offset: 2, kind: .groupWireTypeUnsupported(3))),
            ([0x00, 0x01], ProtoWireError(offset: 0, kind: .invalidFieldNumber(0))),
        ]
        for (message, expected) in cases {
            XCTAssertThrowsError(try visited(message, try rootPlan()), "\(message)") { error in
                XCTAssertEqual(error as? ProtoWireError, expected)
            }
        }
    }

    func testSubtreesThatCannotHoldTargetsAreNotInspected() throws {
        let garbage: [UInt8] = [0xFF, 0xFF, 0x0B, 0x00]
        let message = lengthDelimited(12, garbage) + stringField(1, "seen")  // other_blob: no target inside
        XCTAssertEqual(try visited(message, try rootPlan()), ["string namespace=seen"])
        XCTAssertEqual(try rootPlan().rewrite(message) { _ in nil }, message)
    }

    func testNestingDeeperThanTheLimitFails() throws {
        func nested(_ levels: Int) -> [UInt8] {
            (0..<levels).reduce(stringField(1, "bottom")) { inner, _ in lengthDelimited(11, inner) }
        }
        XCTAssertEqual(try visited(nested(100), try rootPlan()), ["string namespace=bottom"])
        XCTAssertThrowsError(try visited(nested(101), try rootPlan())) { error in
            XCTAssertEqual((error as? ProtoWireError)?.kind, .nestingTooDeep(limit: 100))
        }
        XCTAssertThrowsError(try visited(nested(4), try rootPlan(maximumDepth: 3))) { error in
            XCTAssertEqual(error as? ProtoWireError, ProtoWireError(offset: 6, kind: .nestingTooDeep(limit: 3)))
        }
    }

    func testRewritesDeepInsideNestedMessagesUpdateEveryEnclosingLength() throws {
        // Deeper than the frames a walk keeps on the stack, so the frame stack moves to the heap mid-walk.
        func nested(_ levels: Int, value: String) -> [UInt8] {
            (0..<levels).reduce(stringField(1, value)) { inner, level in
                lengthDelimited(11, inner) + stringField(1, "level \(level)")
            }
        }
        let long = String(repeating: "z", count: 200)
        let rewritten = try rootPlan().rewrite(nested(60, value: "bottom")) { $0.value == "bottom" ? long : nil }
        XCTAssertEqual(rewritten, nested(60, value: long))
        var paths: [Int] = []
        try rootPlan().visit(rewritten) { paths.append($0.path.count) }
        XCTAssertEqual(paths.first, 61, "the bottom value's path names all 60 nested fields and itself")
    }

    // MARK: Rules the schema cannot satisfy

    func testRulesNamingWhatTheSchemaLacksAreRejected() throws {
        let schema = try ProtoSchema(fileDescriptorSet: Self.schemaBytes)
        let invalid: [WalkRules] = [
            WalkRules(strings: [.field("namespace", of: "t.Missing")]),
            WalkRules(strings: [.field("missing", of: "t.Root")]),
            WalkRules(strings: [.field("count", of: "t.Root")]),
            WalkRules(strings: [FieldSelector(fieldNumbers: [1])]),
            WalkRules(mapKeys: [.field("children", of: "t.Root")]),
            WalkRules(mapValues: [.field("tags", of: "t.Root")]),
            WalkRules(embeddedMessages: [
                EmbeddedMessageRule(fields: .named(["raw"]), container: nil, messageName: "t.Nope")
            ]),
            WalkRules(embeddedMessages: [
                EmbeddedMessageRule(fields: .field("child", of: "t.Root"), container: nil, messageName: "t.Child")
            ]),
            WalkRules(embeddedMessages: [.dataBlobs(.named(["blob"]), holding: "t.Child")]),  // no DataBlob here
            WalkRules(embeddedMessages: [
                EmbeddedMessageRule(
                    fields: .named(["blob"]),
                    container: .init(
                        messageName: "t.Blob",
                        bytesField: "encoding",
                        encodingField: nil,
                        walkedEncodings: []
                    ),
                    messageName: "t.Child"
                )
            ]),
        ]
        for rules in invalid {
            XCTAssertThrowsError(try schema.walker(rules: rules), "\(rules)") { error in
                guard case .invalidRule? = (error as? ProtoSchemaError)?.kind else {
                    return XCTFail("unexpected \(error)")
                }
            }
        }
        XCTAssertNoThrow(try schema.walker(rules: WalkRules(strings: [.named(["no_such_field_anywhere"])])))
        XCTAssertThrowsError(try schema.walker(rules: rules()).plan(message: "t.Nothing")) { error in
            XCTAssertEqual((error as? ProtoSchemaError)?.kind, .unknownMessage("t.Nothing"))
        }
    }
}
