// Sets scalar fields at the top level of a protobuf message to fixed values: an override of a number or a string
// in a response or request the plugin has no generated code for (a cluster's shard count, an address).
//
// ``ProtoWireRewriter`` replaces the payloads of length-delimited fields where they are; an override also has to
// change varint fields and to add a field the message does not carry (proto3 leaves zero and empty values out).
// Every other field is copied byte for byte in its place. A message that already carries exactly the wanted
// values is reported as unchanged, so it is forwarded without a copy.

/// Values for top-level scalar fields of a message, applied to encoded messages.
public struct ProtoFieldOverrides: Sendable, Equatable {
    /// A value as it is encoded on the wire.
    public enum Value: Sendable, Equatable {
        /// A varint field (int32, int64, uint32, uint64, bool, enum); negative int32 and int64 values are written
        /// as their 64-bit two's complement, as protobuf does.
        case varint(UInt64)
        /// A length-delimited field (string, bytes): the payload without its length prefix.
        case lengthDelimited([UInt8])

        var wireType: ProtoWireType {
            switch self {
            case .varint: return .varint
            case .lengthDelimited: return .lengthDelimited
            }
        }
    }

    /// One overridden field.
    public struct Override: Sendable, Equatable {
        /// The field's number.
        public let fieldNumber: Int
        /// Its new value.
        public internal(set) var value: Value
    }

    /// The overrides in the order they were set; one per field number.
    public private(set) var values: [Override] = []

    /// No overrides: ``apply(to:)`` reports every message unchanged.
    public init() {}

    /// Whether no field is overridden.
    public var isEmpty: Bool { values.isEmpty }

    /// Sets field `fieldNumber` (1...``ProtoFieldNumber/maximum``) to `value`, replacing an earlier override of it.
    public mutating func set(fieldNumber: Int, to value: Value) {
        precondition((1...ProtoFieldNumber.maximum).contains(fieldNumber), "field number \(fieldNumber) is invalid")
        if let index = values.firstIndex(where: { $0.fieldNumber == fieldNumber }) {
            values[index].value = value
        } else {
            values.append(Override(fieldNumber: fieldNumber, value: value))
        }
    }

    /// `message` with every overridden field set: an overridden field the message carries once or more is written
    /// once, with the new value, where its last occurrence was (the one a parser keeps); one it lacks is appended.
    ///
    /// - Returns: the new message, or `nil` when it already carries every value exactly once, as given (varints
    ///   compared by value, so a non-minimal encoding of the same number counts as carrying it).
    /// - Throws: ``ProtoWireError`` if the top level of `message` is malformed; sub-messages are not read.
    public func apply(to message: UnsafeRawBufferPointer) throws(ProtoWireError) -> [UInt8]? {
        guard !values.isEmpty else { return nil }
        var fields: [ProtoWireField] = []
        var position = 0
        while position < message.count {
            let field = try ProtoWireScanner.field(in: message, at: position, end: message.count)
            fields.append(field)
            position = field.fieldRange.upperBound
        }
        guard try !carriesEveryValue(fields, in: message) else { return nil }

        var lastOccurrence: [Int: Int] = [:]
        for (index, field) in fields.enumerated() where overrideValue(for: field.fieldNumber) != nil {
            lastOccurrence[field.fieldNumber] = index
        }
        var output: [UInt8] = []
        output.reserveCapacity(message.count + 16)
        for (index, field) in fields.enumerated() {
            guard let value = overrideValue(for: field.fieldNumber) else {
                output.append(contentsOf: message[field.fieldRange])
                continue
            }
            if lastOccurrence[field.fieldNumber] == index {
                Self.append(fieldNumber: field.fieldNumber, value: value, to: &output)
            }
        }
        for entry in values where lastOccurrence[entry.fieldNumber] == nil {
            Self.append(fieldNumber: entry.fieldNumber, value: entry.value, to: &output)
        }
        return output
    }

    private func overrideValue(for fieldNumber: Int) -> Value? {
        values.first { $0.fieldNumber == fieldNumber }?.value
    }

    /// Whether each overridden field occurs exactly once, with its wire type and value.
    private func carriesEveryValue(
        _ fields: [ProtoWireField],
        in message: UnsafeRawBufferPointer
    ) throws(ProtoWireError) -> Bool {
        for entry in values {
            let occurrences = fields.filter { $0.fieldNumber == entry.fieldNumber }
            guard occurrences.count == 1, let field = occurrences.first, field.wireType == entry.value.wireType else {
                return false
            }
            switch entry.value {
            case .varint(let wanted):
                let (carried, _) = try ProtoVarint.decode(
                    message, at: field.payloadRange.lowerBound, end: field.payloadRange.upperBound
                )
                if carried != wanted { return false }
            case .lengthDelimited(let wanted):
                if !message[field.payloadRange].elementsEqual(wanted) { return false }
            }
        }
        return true
    }

    private static func append(fieldNumber: Int, value: Value, to output: inout [UInt8]) {
        ProtoVarint.append(ProtoFieldNumber.key(fieldNumber: fieldNumber, wireType: value.wireType), to: &output)
        switch value {
        case .varint(let number):
            ProtoVarint.append(number, to: &output)
        case .lengthDelimited(let payload):
            ProtoVarint.append(UInt64(payload.count), to: &output)
            output.append(contentsOf: payload)
        }
    }
}
