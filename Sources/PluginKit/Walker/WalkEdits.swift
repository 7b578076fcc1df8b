// The outcome of a rewriting walk before any output exists: the replaced values and the length prefixes that
// enclose them, as splices over the original buffer in ascending order, and the exact size of the result.
//
// Keeping the splices instead of building bytes during the walk means a message that nothing changes costs no
// allocation at all, and a changed one is written once, straight into memory the caller chooses (the host's
// allocator, in the plugin ABI), copying every untouched byte range with one memcpy.

/// The changes a rewriting walk found, ready to be applied to the buffer that was walked.
public struct WalkEdits: Sendable {
    /// A replaced byte range; plain integers, so the walk can insert one in the middle of the list cheaply.
    struct Splice: Sendable {
        enum Kind: Sendable {
            /// A length prefix rewritten for a changed payload (minimal encoding); `value` is the new length.
            case length
            /// A string field's length prefix and value; `value` indexes ``WalkEdits/strings``.
            case string
        }

        let range: Range<Int>
        let kind: Kind
        let value: Int
    }

    let splices: [Splice]
    /// The replacement strings, in the order the walk met them.
    let strings: [String]
    /// The size of the buffer that was walked.
    public let originalCount: Int
    /// The size of the rewritten message.
    public let rewrittenCount: Int
    /// How many target values the callback replaced with a different value.
    public var replacedValueCount: Int {
        strings.count
    }

    /// Whether the walk changed nothing: the original bytes are the result.
    public var isEmpty: Bool {
        splices.isEmpty
    }

    /// Writes the rewritten message into `output` (at least ``rewrittenCount`` bytes), reading untouched bytes from
    /// `original`, which must be the buffer that was walked.
    public func write(applyingTo original: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) {
        precondition(original.count == originalCount, "edits applied to another buffer than the one walked")
        precondition(output.count >= rewrittenCount, "output smaller than rewrittenCount")
        var read = 0
        var written = 0
        func copy(_ count: Int) {
            UnsafeMutableRawBufferPointer(rebasing: output[written..<(written + count)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: original[read..<(read + count)]))
            written += count
        }
        for splice in splices {
            copy(splice.range.lowerBound - read)
            switch splice.kind {
            case .length:
                written = ProtoVarint.write(UInt64(splice.value), into: output, at: written)
            case .string:
                var text = strings[splice.value]
                written = ProtoVarint.write(UInt64(text.utf8.count), into: output, at: written)
                text.withUTF8 { utf8 in
                    UnsafeMutableRawBufferPointer(rebasing: output[written..<(written + utf8.count)])
                        .copyMemory(from: UnsafeRawBufferPointer(utf8))
                    written += utf8.count
                }
            }
            read = splice.range.upperBound
        }
        copy(original.count - read)
    }

    /// The rewritten message as a new array; call it only when ``isEmpty`` is false, or keep the original.
    public func applied(to original: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: rewrittenCount) { buffer, initializedCount in
            write(applyingTo: original, into: UnsafeMutableRawBufferPointer(buffer))
            initializedCount = rewrittenCount
        }
    }
}
