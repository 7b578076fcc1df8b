// The one error type of the wire layer and the walker: what was malformed, and at which byte offset of the
// caller's buffer.
//
// Every decoding path reports problems through this type instead of trapping, because the bytes come from the
// network and a plugin must answer a malformed message with a gRPC status, not a crash of the proxy.

/// A malformed protobuf encoding, a message the walker refuses (nested too deep, an embedded message in an
/// encoding its rule must not skip), or an edit that does not fit the message it was recorded against.
public struct ProtoWireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What exactly was wrong.
    public enum Kind: Sendable, Equatable {
        /// The buffer ended while a varint still had its continuation bit set.
        case truncatedVarint
        /// A varint continued past the tenth byte, the most a 64-bit value ever needs.
        case varintTooLong
        /// The tenth byte of a varint carries bits beyond the 64th.
        case varintOverflowsUInt64
        /// The field key names field number 0 or one above ``ProtoFieldNumber/maximum``.
        case invalidFieldNumber(UInt64)
        /// The field key uses wire type 3 or 4 (proto2 groups), which proto3 never produces.
        case groupWireTypeUnsupported(UInt8)
        /// The field key uses wire type 6 or 7, which do not exist.
        case invalidWireType(UInt8)
        /// A fixed32 or fixed64 value needs `needed` bytes but only `available` remain.
        case truncatedFixedWidthValue(needed: Int, available: Int)
        /// A length-delimited field declares `length` bytes but only `available` remain in its message.
        case lengthBeyondEnd(length: UInt64, available: Int)
        /// A length-delimited field declares a length larger than `Int.max`.
        case lengthOverflowsInt(UInt64)
        /// An edit was recorded for a field that is not length-delimited.
        case editOfNonLengthDelimitedField(ProtoWireType)
        /// An edit lies outside the rewriter's message or overlaps (or nests inside) another recorded edit.
        case overlappingOrOutOfBoundsEdit
        /// An edit's range is not the payload of a length-delimited field reachable by scanning the message.
        case editNotAtFieldBoundary
        /// The walker would have to descend into more than `limit` nested messages (protobuf's own parsers stop
        /// at 100 too); the field at the offset is the one too deep.
        case nestingTooDeep(limit: Int)
        /// An embedded-message rule that must not skip any holder met one whose encoding field says `encoding`,
        /// which is not one the rule walks (e.g. a JSON-encoded Temporal `DataBlob`).
        case embeddedEncodingNotWalked(encoding: UInt64)
    }

    /// Byte offset, in the caller's buffer, where the problem was found (the start of the offending item).
    public let offset: Int
    /// What was wrong.
    public let kind: Kind

    /// Creates an error for `kind` found at `offset`.
    public init(offset: Int, kind: Kind) {
        self.offset = offset
        self.kind = kind
    }

    /// A one-line explanation naming the offset, for logs and gRPC status messages.
    public var description: String {
        let what: String
        switch kind {
        case .truncatedVarint:
            what = "varint truncated by the end of the message"
        case .varintTooLong:
            what = "varint longer than 10 bytes"
        case .varintOverflowsUInt64:
            what = "varint overflows 64 bits"
        case .invalidFieldNumber(let number):
            what = "field number \(number) outside 1...\(ProtoFieldNumber.maximum)"
        case .groupWireTypeUnsupported(let wireType):
            what = "group wire type \(wireType) is not supported (proto3 never encodes groups)"
        case .invalidWireType(let wireType):
            what = "wire type \(wireType) does not exist"
        case .truncatedFixedWidthValue(let needed, let available):
            what = "fixed-width value needs \(needed) bytes, \(available) remain"
        case .lengthBeyondEnd(let length, let available):
            what = "length-delimited field declares \(length) bytes, \(available) remain"
        case .lengthOverflowsInt(let length):
            what = "length-delimited field declares \(length) bytes, more than any buffer can hold"
        case .editOfNonLengthDelimitedField(let wireType):
            what = "only length-delimited payloads can be replaced, this field has wire type \(wireType)"
        case .overlappingOrOutOfBoundsEdit:
            what = "edit overlaps another edit or lies outside the message"
        case .editNotAtFieldBoundary:
            what = "edit is not the payload of a length-delimited field of this message"
        case .nestingTooDeep(let limit):
            what = "messages nested deeper than \(limit) levels"
        case .embeddedEncodingNotWalked(let encoding):
            what = "embedded message in encoding \(encoding), which the walk rules do not read and must not skip"
        }
        return "malformed protobuf at byte \(offset): \(what)"
    }
}
