// The outcome of a rewriting walk before any output exists: the replaced values and the length prefixes that
// enclose them, as splices over the original buffer in ascending order, and the exact size of the result.
//
// Keeping the splices instead of building bytes during the walk means a message that nothing changes costs no
// allocation at all, and a changed one is written once, straight into memory the caller chooses (the host's
// allocator, in the plugin ABI), copying every untouched byte range with one memcpy.

/// The changes a rewriting walk found, ready to be applied to the buffer that was walked.
public struct WalkEdits: Sendable {
    /// A byte range of the original replaced by a range of ``WalkEdits/replacementBytes``; plain integers, so the
    /// walk can insert one in the middle of the list cheaply.
    struct Splice: Sendable {
        let original: Range<Int>
        let replacement: Range<Int>
    }

    /// In ascending order of ``Splice/original``; never overlapping.
    let splices: [Splice]
    /// The new bytes of every splice (length prefixes, and string values with their prefixes), in the order the
    /// walk produced them.
    let replacementBytes: [UInt8]
    /// The size of the buffer that was walked.
    public let originalCount: Int
    /// The size of the rewritten message.
    public let rewrittenCount: Int
    /// How many target values the callback replaced with a different value.
    public let replacedValueCount: Int

    /// Whether the walk changed nothing: the original bytes are the result.
    public var isEmpty: Bool {
        splices.isEmpty
    }

    /// Writes the rewritten message into `output` (at least ``rewrittenCount`` bytes), reading untouched bytes from
    /// `original`, which must be the buffer that was walked.
    public func write(applyingTo original: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) {
        precondition(original.count == originalCount, "edits applied to another buffer than the one walked")
        precondition(output.count >= rewrittenCount, "output smaller than rewrittenCount")
        replacementBytes.withUnsafeBytes { replacements in
            var read = 0
            var written = 0
            func append(_ source: UnsafeRawBufferPointer, _ range: Range<Int>) {
                UnsafeMutableRawBufferPointer(rebasing: output[written..<(written + range.count)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[range]))
                written += range.count
            }
            for splice in splices {
                append(original, read..<splice.original.lowerBound)
                append(replacements, splice.replacement)
                read = splice.original.upperBound
            }
            append(original, read..<original.count)
        }
    }

    /// The rewritten message as a new array; call it only when ``isEmpty`` is false, or keep the original.
    public func applied(to original: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: rewrittenCount) { buffer, initializedCount in
            write(applyingTo: original, into: UnsafeMutableRawBufferPointer(buffer))
            initializedCount = rewrittenCount
        }
    }
}
