// One field of a scanned message: its number, wire type and where its bytes are, as offsets into the caller's
// buffer.
//
// Offsets are absolute in the buffer the scanner was given, so a field found inside a sub-message can be handed
// straight to the rewriter of the outermost message without translating ranges.

/// The location of one field inside a protobuf-encoded buffer.
public struct ProtoWireField: Sendable, Equatable {
    /// The field number from the key (1...``ProtoFieldNumber/maximum``).
    public let fieldNumber: Int
    /// How the value is encoded.
    public let wireType: ProtoWireType
    /// The whole field: key, length prefix (for length-delimited fields) and value.
    public let fieldRange: Range<Int>
    /// The value alone: the varint bytes, the 4 or 8 fixed bytes, or the bytes after the length prefix.
    public let payloadRange: Range<Int>
    /// Where the key ends and, for length-delimited fields, the length prefix starts.
    let keyEnd: Int

    /// Creates a field description; the scanner is the normal source of these.
    init(fieldNumber: Int, wireType: ProtoWireType, fieldRange: Range<Int>, payloadRange: Range<Int>, keyEnd: Int) {
        self.fieldNumber = fieldNumber
        self.wireType = wireType
        self.fieldRange = fieldRange
        self.payloadRange = payloadRange
        self.keyEnd = keyEnd
    }
}
