// The protobuf wire types this walker understands, and the limits on field numbers.
//
// Proto3 encodes every field with one of four wire types; the two group wire types (3 and 4) exist only in
// proto2 and are rejected by the scanner rather than modelled here.

/// How a field's value is encoded on the wire: the low three bits of the field key.
public enum ProtoWireType: UInt8, Sendable, Equatable {
    /// A base-128 varint (int32, int64, uint32, uint64, sint32, sint64, bool, enum).
    case varint = 0
    /// Eight little-endian bytes (fixed64, sfixed64, double).
    case fixed64 = 1
    /// A varint byte count followed by that many bytes (string, bytes, sub-message, packed repeated, map entry).
    case lengthDelimited = 2
    /// Four little-endian bytes (fixed32, sfixed32, float).
    case fixed32 = 5
}

/// Limits of the protobuf field key.
public enum ProtoFieldNumber {
    /// The largest field number the protobuf encoding allows (2^29 - 1); 0 is never valid.
    public static let maximum = (1 << 29) - 1

    /// The key that starts a field with the given number and wire type: `(fieldNumber << 3) | wireType`.
    public static func key(fieldNumber: Int, wireType: ProtoWireType) -> UInt64 {
        UInt64(fieldNumber) << 3 | UInt64(wireType.rawValue)
    }
}
