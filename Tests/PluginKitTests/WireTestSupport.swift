// Test vectors helpers: hex literals to bytes, and a seeded random generator for the robustness loop.

import PluginKit

/// The bytes written as hex pairs, spaces ignored: `bytes("0A 06 6F")`.
func bytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.filter { !$0.isWhitespace })
    precondition(digits.count % 2 == 0, "odd number of hex digits in test vector")
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

/// The UTF-8 bytes of `text`.
func utf8(_ text: String) -> [UInt8] {
    Array(text.utf8)
}

/// Every field of the message in `range` of `buffer`, in order; fails the test by throwing if it is malformed.
func scanAll(_ buffer: [UInt8], range: Range<Int>? = nil) throws -> [ProtoWireField] {
    var scanner = ProtoWireScanner(bytes: buffer, range: range ?? 0..<buffer.count)
    var fields: [ProtoWireField] = []
    while let field = try scanner.next() {
        fields.append(field)
    }
    return fields
}
