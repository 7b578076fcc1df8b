// Random well-formed message trees: rewriting random strings at any depth must equal encoding the edited tree.
//
// The tree encoder below writes minimal varints only, so its output for the edited tree is exactly what the
// rewriter must produce from the original encoding.

import TestSupport
import PluginKit
import XCTest

final class ProtoWireRewriterPropertyTests: XCTestCase {
    private indirect enum FieldValue {
        case varint(UInt64)
        case fixed32(UInt32)
        case fixed64(UInt64)
        case string([UInt8])
        case message([(number: Int, value: FieldValue)])
    }

    private func encode(_ fields: [(number: Int, value: FieldValue)]) -> [UInt8] {
        var output: [UInt8] = []
        for (number, value) in fields {
            switch value {
            case .varint(let integer):
                ProtoVarint.append(ProtoFieldNumber.key(fieldNumber: number, wireType: .varint), to: &output)
                ProtoVarint.append(integer, to: &output)
            case .fixed32(let integer):
                ProtoVarint.append(ProtoFieldNumber.key(fieldNumber: number, wireType: .fixed32), to: &output)
                output.append(contentsOf: withUnsafeBytes(of: integer.littleEndian, Array.init))
            case .fixed64(let integer):
                ProtoVarint.append(ProtoFieldNumber.key(fieldNumber: number, wireType: .fixed64), to: &output)
                output.append(contentsOf: withUnsafeBytes(of: integer.littleEndian, Array.init))
            case .string(let payload):
                ProtoVarint.append(ProtoFieldNumber.key(fieldNumber: number, wireType: .lengthDelimited), to: &output)
                ProtoVarint.append(UInt64(payload.count), to: &output)
                output.append(contentsOf: payload)
            case .message(let children):
                let payload = encode(children)
                ProtoVarint.append(ProtoFieldNumber.key(fieldNumber: number, wireType: .lengthDelimited), to: &output)
                ProtoVarint.append(UInt64(payload.count), to: &output)
                output.append(contentsOf: payload)
            }
        }
        return output
    }

    private func randomMessage(
        depth: Int,
        using generator: inout SeededGenerator
    ) -> [(number: Int, value: FieldValue)] {
        (0..<Int.random(in: 0...5, using: &generator)).map { _ in
            let number = Bool.random(using: &generator)
                ? Int.random(in: 1...15, using: &generator)
                : Int.random(in: 16...ProtoFieldNumber.maximum, using: &generator)
            let value: FieldValue
            switch Int.random(in: 0...(depth < 4 ? 5 : 3), using: &generator) {
            case 0:
                let bitsDropped = UInt64.random(in: 0...63, using: &generator)
                value = .varint(UInt64.random(in: 0...UInt64.max, using: &generator) >> bitsDropped)
            case 1:
                value = .fixed32(UInt32.random(in: 0...UInt32.max, using: &generator))
            case 2:
                value = .fixed64(UInt64.random(in: 0...UInt64.max, using: &generator))
            case 3:
                value = .string(randomString(using: &generator))
            default:
                value = .message(randomMessage(depth: depth + 1, using: &generator))
            }
            return (number, value)
        }
    }

    private func randomString(using generator: inout SeededGenerator) -> [UInt8] {
        // Lengths around 127/128 and 16383/16384 make prefixes change size.
        let length = [0, 3, 126, 127, 128, 200, 16_384].randomElement(using: &generator)!
        return [UInt8](repeating: UInt8.random(in: 0x61...0x7A, using: &generator), count: length)
    }

    /// Walks the encoding alongside the tree, recording a replacement for about half the strings and applying
    /// the same change to the tree.
    private func editStrings(
        _ fields: inout [(number: Int, value: FieldValue)],
        encoded: [UInt8],
        range: Range<Int>,
        rewriter: inout ProtoWireRewriter,
        using generator: inout SeededGenerator
    ) throws {
        var scanner = ProtoWireScanner(bytes: encoded, range: range)
        for index in fields.indices {
            let field = try XCTUnwrap(try scanner.next())
            XCTAssertEqual(field.fieldNumber, fields[index].number)
            switch fields[index].value {
            case .string where Bool.random(using: &generator):
                let replacement = randomString(using: &generator)
                try rewriter.replacePayload(of: field, with: replacement)
                fields[index].value = .string(replacement)
            case .message(var children):
                try editStrings(
                    &children,
                    encoded: encoded,
                    range: field.payloadRange,
                    rewriter: &rewriter,
                    using: &generator
                )
                fields[index].value = .message(children)
            default:
                break
            }
        }
        XCTAssertNil(try scanner.next())
    }

    func testRewritingRandomTreesMatchesEncodingTheEditedTree() throws {
        var generator = SeededGenerator(seed: 20_261_129)
        for _ in 0..<300 {
            var tree = randomMessage(depth: 0, using: &generator)
            let encoded = encode(tree)
            var rewriter = ProtoWireRewriter(original: encoded)
            try editStrings(&tree, encoded: encoded, range: 0..<encoded.count, rewriter: &rewriter, using: &generator)
            XCTAssertEqual(try rewriter.rebuiltBytes(), encode(tree))
        }
    }
}
