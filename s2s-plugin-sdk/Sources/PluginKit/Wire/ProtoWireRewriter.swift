// Rebuilds a protobuf message after replacing the payloads of some of its length-delimited fields, at any depth.
//
// A translator scans a message, descends into sub-messages with new scanners over the same buffer, and records
// here the payloads it wants replaced (a renamed namespace string, a re-encoded history blob). Only at the end
// are new bytes built: every enclosing length prefix on the path to an edit is recomputed, and everything else —
// unknown fields, field order, non-minimal varints, untouched sub-messages — is copied byte for byte. With no
// edits, the original buffer itself is returned, so a message that no rule touches is never copied.

/// Collects payload replacements for one message buffer and produces the rewritten message.
public struct ProtoWireRewriter: Sendable {
    private struct PayloadReplacement: Sendable {
        let range: Range<Int>
        let newPayload: [UInt8]
    }

    /// The message as it was received; field ranges passed to this rewriter are offsets into it.
    public let original: [UInt8]
    private var replacements: [PayloadReplacement] = []

    /// Starts a rewrite of `original`, the bytes of a whole message.
    public init(original: [UInt8]) {
        self.original = original
    }

    /// Whether any replacement has been recorded; without one, ``rebuiltBytes()`` returns ``original`` as is.
    public var hasEdits: Bool {
        !replacements.isEmpty
    }

    /// Records that the payload of `field` (a length-delimited field found by scanning ``original`` or one of
    /// its sub-messages) becomes `newPayload`.
    ///
    /// - Throws: ``ProtoWireError`` if the field is not length-delimited, lies outside ``original``, or overlaps,
    ///   contains or lies inside the payload of an already recorded edit.
    public mutating func replacePayload(of field: ProtoWireField, with newPayload: [UInt8]) throws(ProtoWireError) {
        let range = field.payloadRange
        guard field.wireType == .lengthDelimited else {
            throw ProtoWireError(
                offset: field.fieldRange.lowerBound,
                kind: .editOfNonLengthDelimitedField(field.wireType)
            )
        }
        guard range.lowerBound >= 0, range.upperBound <= original.count,
            !replacements.contains(where: { Self.conflict($0.range, range) })
        else {
            throw ProtoWireError(offset: field.fieldRange.lowerBound, kind: .overlappingOrOutOfBoundsEdit)
        }
        replacements.append(PayloadReplacement(range: range, newPayload: newPayload))
    }

    /// The message with every recorded replacement applied and every enclosing length prefix updated.
    ///
    /// - Returns: ``original`` itself (same storage) when no edit was recorded.
    /// - Throws: ``ProtoWireError`` if the bytes on the path to an edit are malformed, or an edit's range is not
    ///   the payload of a field reachable by scanning ``original`` (a field taken from another buffer).
    public func rebuiltBytes() throws(ProtoWireError) -> [UInt8] {
        guard hasEdits else {
            return original
        }
        let sorted = replacements.sorted { $0.range.lowerBound < $1.range.lowerBound }
        let sizeChange = replacements.reduce(0) { $0 + $1.newPayload.count - $1.range.count }
        var output: [UInt8] = []
        output.reserveCapacity(max(0, original.count + sizeChange) + 16)
        try appendMessage(in: 0..<original.count, applying: sorted[...], to: &output)
        return output
    }

    /// Appends the message in `range` of ``original`` to `output`, applying `edits` (sorted, all inside `range`).
    private func appendMessage(
        in range: Range<Int>,
        applying edits: ArraySlice<PayloadReplacement>,
        to output: inout [UInt8]
    ) throws(ProtoWireError) {
        var scanner = ProtoWireScanner(bytes: original, range: range)
        var pending = edits
        var copiedUpTo = range.lowerBound
        while let nextEdit = pending.first {
            guard let field = try scanner.next() else {
                throw ProtoWireError(offset: nextEdit.range.lowerBound, kind: .editNotAtFieldBoundary)
            }
            // An empty payload can end exactly where its enclosing field ends; no later field can own it, since
            // a later field's payload starts after its key.
            let editsInField = pending.prefix {
                $0.range.lowerBound < field.fieldRange.upperBound
                    || ($0.range.isEmpty && $0.range.lowerBound == field.fieldRange.upperBound)
            }
            guard !editsInField.isEmpty else {
                continue
            }
            for edit in editsInField
            where field.wireType != .lengthDelimited || !field.payloadRange.contains(rangeOrEmpty: edit.range) {
                throw ProtoWireError(offset: edit.range.lowerBound, kind: .editNotAtFieldBoundary)
            }
            output.append(contentsOf: original[copiedUpTo..<field.keyEnd])
            if editsInField.count == 1, let whole = editsInField.first, whole.range == field.payloadRange {
                appendLengthPrefix(of: field, newLength: whole.newPayload.count, to: &output)
                output.append(contentsOf: whole.newPayload)
            } else {
                var subMessage: [UInt8] = []
                try appendMessage(in: field.payloadRange, applying: editsInField, to: &subMessage)
                appendLengthPrefix(of: field, newLength: subMessage.count, to: &output)
                output.append(contentsOf: subMessage)
            }
            copiedUpTo = field.fieldRange.upperBound
            pending = pending.dropFirst(editsInField.count)
        }
        output.append(contentsOf: original[copiedUpTo..<range.upperBound])
    }

    /// Keeps the original prefix bytes when the length did not change (even a non-minimal encoding), otherwise
    /// writes the minimal encoding of the new length.
    private func appendLengthPrefix(of field: ProtoWireField, newLength: Int, to output: inout [UInt8]) {
        if newLength == field.payloadRange.count {
            output.append(contentsOf: original[field.keyEnd..<field.payloadRange.lowerBound])
        } else {
            ProtoVarint.append(UInt64(newLength), to: &output)
        }
    }

    /// Two payload edits conflict when they share a byte, or when an empty payload lies within or at either end
    /// of the other: no field's payload can start or end there, so it must be nested inside it. Two different
    /// empty payloads never conflict.
    private static func conflict(_ first: Range<Int>, _ second: Range<Int>) -> Bool {
        switch (first.isEmpty, second.isEmpty) {
        case (true, true):
            return first == second
        case (true, false):
            return second.lowerBound <= first.lowerBound && first.lowerBound <= second.upperBound
        case (false, true):
            return first.lowerBound <= second.lowerBound && second.lowerBound <= first.upperBound
        case (false, false):
            return first.overlaps(second)
        }
    }
}

extension Range where Bound == Int {
    /// Whether `other` lies within this range; unlike `Range.contains(_:)` for ranges, an empty `other` counts
    /// only at positions from `lowerBound` through `upperBound`.
    fileprivate func contains(rangeOrEmpty other: Range<Int>) -> Bool {
        lowerBound <= other.lowerBound && other.upperBound <= upperBound
    }
}
