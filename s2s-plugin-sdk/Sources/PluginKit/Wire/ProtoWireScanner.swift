// Walks the fields of one protobuf message, or of one sub-message inside a larger buffer, without copying.
//
// The scanner knows nothing of schemas: it reports each field's number, wire type and byte ranges, and a caller
// that knows a length-delimited field holds a sub-message (or a packed array, or a map entry) scans its payload
// with a new scanner over the same buffer. It never reads outside its range and never traps on malformed input.

/// An iterator over the fields encoded in `range` of a byte buffer.
public struct ProtoWireScanner: Sendable {
    /// The buffer holding the message; shared, never copied.
    public let bytes: [UInt8]
    /// The part of `bytes` that holds the message being scanned.
    public let range: Range<Int>
    private var position: Int

    /// Scans the message that occupies all of `bytes`.
    public init(bytes: [UInt8]) {
        self.bytes = bytes
        self.range = 0..<bytes.count
        self.position = 0
    }

    /// Scans the message in `range` of `bytes`, e.g. the payload of a length-delimited field; a range reaching
    /// outside `bytes` is clamped to it.
    public init(bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        self.range = range.clamped(to: 0..<bytes.count)
        self.position = self.range.lowerBound
    }

    /// Scans the payload of `field`, a length-delimited field of `bytes`, as a sub-message.
    public init(bytes: [UInt8], subMessageOf field: ProtoWireField) {
        self.init(bytes: bytes, range: field.payloadRange)
    }

    /// The next field, or `nil` once the message's range is exhausted.
    ///
    /// - Throws: ``ProtoWireError`` naming the offset of the malformed key, length or value; after an error the
    ///   scanner stays at the offending field.
    public mutating func next() throws(ProtoWireError) -> ProtoWireField? {
        guard position < range.upperBound else {
            return nil
        }
        let field = try bytes.withUnsafeBufferPointer { (buffer) throws(ProtoWireError) in
            try Self.field(in: UnsafeRawBufferPointer(buffer), at: position, end: range.upperBound)
        }
        position = field.fieldRange.upperBound
        return field
    }

    /// Decodes the field that starts at `fieldStart` and must end by `end` (at most `bytes.count`): the one decoding
    /// routine of the scanner and of the schema-driven walker.
    ///
    /// - Throws: ``ProtoWireError`` naming the offset of the malformed key, length or value.
    @inline(__always)
    static func field(
        in bytes: UnsafeRawBufferPointer,
        at fieldStart: Int,
        end: Int
    ) throws(ProtoWireError) -> ProtoWireField {
        let (key, keyLength) = try ProtoVarint.decodeInline(bytes, at: fieldStart, end: end)
        let fieldNumber = key >> 3
        guard fieldNumber != 0, fieldNumber <= UInt64(ProtoFieldNumber.maximum) else {
            throw ProtoWireError(offset: fieldStart, kind: .invalidFieldNumber(fieldNumber))
        }
        let keyEnd = fieldStart + keyLength
        let wireType = try Self.wireType(fromKey: key, at: fieldStart)
        let payloadRange: Range<Int>
        switch wireType {
        case .varint:
            let valueLength = try ProtoVarint.length(in: bytes, at: keyEnd, end: end)
            payloadRange = keyEnd..<(keyEnd + valueLength)
        case .fixed64:
            payloadRange = try Self.fixedWidthPayload(at: keyEnd, width: 8, end: end)
        case .fixed32:
            payloadRange = try Self.fixedWidthPayload(at: keyEnd, width: 4, end: end)
        case .lengthDelimited:
            let (length, prefixLength) = try ProtoVarint.decodeInline(bytes, at: keyEnd, end: end)
            guard length <= UInt64(Int.max) else {
                throw ProtoWireError(offset: keyEnd, kind: .lengthOverflowsInt(length))
            }
            let payloadStart = keyEnd + prefixLength
            let available = end - payloadStart
            guard Int(length) <= available else {
                throw ProtoWireError(offset: keyEnd, kind: .lengthBeyondEnd(length: length, available: available))
            }
            payloadRange = payloadStart..<(payloadStart + Int(length))
        }
        return ProtoWireField(
            fieldNumber: Int(fieldNumber),
            wireType: wireType,
            fieldRange: fieldStart..<payloadRange.upperBound,
            payloadRange: payloadRange,
            keyEnd: keyEnd
        )
    }

    @inline(__always)
    private static func wireType(fromKey key: UInt64, at offset: Int) throws(ProtoWireError) -> ProtoWireType {
        let rawWireType = UInt8(key & 0x7)
        switch rawWireType {
        case 0: return .varint
        case 1: return .fixed64
        case 2: return .lengthDelimited
        case 5: return .fixed32
        default: break
        }
        if rawWireType == 3 || rawWireType == 4 {
            throw ProtoWireError(offset: offset, kind: .groupWireTypeUnsupported(rawWireType))
        }
        throw ProtoWireError(offset: offset, kind: .invalidWireType(rawWireType))
    }

    private static func fixedWidthPayload(at start: Int, width: Int, end: Int) throws(ProtoWireError) -> Range<Int> {
        let available = end - start
        guard width <= available else {
            throw ProtoWireError(offset: start, kind: .truncatedFixedWidthValue(needed: width, available: available))
        }
        return start..<(start + width)
    }
}
