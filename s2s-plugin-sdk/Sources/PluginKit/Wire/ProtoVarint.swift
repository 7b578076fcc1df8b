// Base-128 varint decoding and encoding, the integer encoding under every protobuf field key and length prefix.
//
// Decoding reads only inside the bounds it is given and reports truncation and overlong encodings as
// ``ProtoWireError``; it accepts non-minimal encodings (e.g. `80 00` for 0), as every protobuf parser does.

/// Reads and writes protobuf varints in byte arrays and borrowed buffers without copying them.
public enum ProtoVarint {
    /// The most bytes a varint may occupy: ten 7-bit groups cover 64 bits.
    public static let maximumLength = 10

    /// Decodes the varint that starts at `offset` and must end before `end`.
    ///
    /// - Returns: the value and the number of bytes it occupied.
    /// - Throws: ``ProtoWireError`` at `offset` if the varint is truncated, longer than ten bytes, or overflows
    ///   64 bits.
    public static func decode(
        _ bytes: [UInt8],
        at offset: Int,
        end: Int
    ) throws(ProtoWireError) -> (value: UInt64, length: Int) {
        try bytes.withUnsafeBufferPointer { (buffer) throws(ProtoWireError) in
            try decode(UnsafeRawBufferPointer(buffer), at: offset, end: end)
        }
    }

    /// Decodes the varint that starts at `offset` of `bytes` and must end before `end`; the same contract as the
    /// array version, for buffers the caller does not own (a message the plugin host lends for one hook).
    public static func decode(
        _ bytes: UnsafeRawBufferPointer,
        at offset: Int,
        end: Int
    ) throws(ProtoWireError) -> (value: UInt64, length: Int) {
        let limit = min(end, bytes.count)
        guard offset >= 0 else {
            throw ProtoWireError(offset: offset, kind: .truncatedVarint)
        }
        // Field keys and short lengths are one byte: the common case leaves before the loop.
        if offset < limit, bytes[offset] < 0x80 {
            return (UInt64(bytes[offset]), 1)
        }
        var value: UInt64 = 0
        var index = offset
        var shift: UInt64 = 0
        while index < limit {
            let byte = bytes[index]
            let consumed = index - offset + 1
            if consumed == maximumLength {
                if byte & 0x80 != 0 {
                    throw ProtoWireError(offset: offset, kind: .varintTooLong)
                }
                if byte > 1 {
                    throw ProtoWireError(offset: offset, kind: .varintOverflowsUInt64)
                }
            }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                return (value, consumed)
            }
            shift += 7
            index += 1
        }
        throw ProtoWireError(offset: offset, kind: .truncatedVarint)
    }

    /// ``decode(_:at:end:)`` with its one- and two-byte cases inlined into the caller: field keys, most lengths.
    @inline(__always)
    static func decodeInline(
        _ bytes: UnsafeRawBufferPointer,
        at offset: Int,
        end: Int
    ) throws(ProtoWireError) -> (value: UInt64, length: Int) {
        let limit = min(end, bytes.count)
        if offset >= 0, offset < limit {
            let first = bytes[offset]
            if first < 0x80 {
                return (UInt64(first), 1)
            }
            if offset + 1 < limit {
                let second = bytes[offset + 1]
                if second < 0x80 {
                    return (UInt64(first & 0x7F) | UInt64(second) << 7, 2)
                }
            }
        }
        return try decode(bytes, at: offset, end: end)
    }

    /// The length of the varint at `offset` without computing its value: how a scanner steps over varint fields.
    /// Malformed varints throw exactly what ``decode(_:at:end:)`` throws.
    @inline(__always)
    static func length(
        in bytes: UnsafeRawBufferPointer,
        at offset: Int,
        end: Int
    ) throws(ProtoWireError) -> Int {
        // Nine bytes never overflow; a tenth byte needs decode's overflow check.
        let limit = min(end, bytes.count, offset + maximumLength - 1)
        var index = max(offset, 0)
        while index < limit {
            if bytes[index] < 0x80 {
                return index - offset + 1
            }
            index += 1
        }
        return try decode(bytes, at: offset, end: end).length
    }

    /// The number of bytes the minimal encoding of `value` occupies (1...10).
    public static func encodedLength(of value: UInt64) -> Int {
        let significantBits = 64 - value.leadingZeroBitCount
        return max(1, (significantBits + 6) / 7)
    }

    /// Appends the minimal encoding of `value` to `output`.
    public static func append(_ value: UInt64, to output: inout [UInt8]) {
        var remaining = value
        while remaining >= 0x80 {
            output.append(UInt8(truncatingIfNeeded: remaining) | 0x80)
            remaining >>= 7
        }
        output.append(UInt8(remaining))
    }
}
