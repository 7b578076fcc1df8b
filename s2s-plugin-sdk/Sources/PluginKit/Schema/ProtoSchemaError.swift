// Why a schema could not be built from descriptor bytes, or why it cannot answer what a plugin asked of it.
//
// Descriptor bytes come from the host (pulled from a Temporal frontend by reflection, or read from a file), so a
// plugin reports these errors when its configuration is created, naming the descriptor element at fault.

/// A `FileDescriptorSet` that does not decode or does not resolve, or a question the schema cannot answer (an
/// unknown message or method, a walk rule naming fields that do not exist).
public struct ProtoSchemaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What exactly was wrong.
    public enum Kind: Sendable, Equatable {
        /// The descriptor bytes are not valid protobuf.
        case malformedDescriptor(ProtoWireError)
        /// A descriptor field arrived with another wire type than `google/protobuf/descriptor.proto` declares.
        case descriptorWireTypeMismatch(fieldNumber: Int, expected: ProtoWireType, found: ProtoWireType)
        /// A name in the descriptors is not valid UTF-8.
        case invalidUTF8
        /// A file, message, field, enum, service or method has no name, or a field has no or an invalid number, or a
        /// oneof index its message does not declare.
        case incompleteDefinition
        /// A name is not what protoc accepts: letters, digits and underscores, not starting with a digit (a package:
        /// such names joined by dots). Full names are built by joining names with dots, so a dot inside one would
        /// make two definitions, or a definition and a lookup, disagree about a name.
        case invalidName(String)
        /// Two definitions share one fully qualified name.
        case duplicateDefinition(String)
        /// A field's or method's type name matches no message or enum of the set.
        case unresolvedTypeName(String)
        /// A field declares a message type but the name resolves to an enum, or the other way round.
        case typeKindMismatch(String)
        /// No message of that full name exists.
        case unknownMessage(String)
        /// No method with that gRPC path exists.
        case unknownMethod(String)
        /// A walk rule names a message or field that does not exist or does not have the type the rule needs.
        case invalidRule(String)
    }

    /// What was wrong.
    public let kind: Kind
    /// Where, e.g. `file "temporal/api/common/v1/message.proto", message "DataBlob", field #2`; empty when the
    /// error concerns a question rather than the descriptors.
    public let location: String

    /// Creates an error of `kind` at `location`.
    public init(_ kind: Kind, location: String = "") {
        self.kind = kind
        self.location = location
    }

    /// One line for logs and configuration errors.
    public var description: String {
        let what: String
        switch kind {
        case .malformedDescriptor(let wireError):
            what = "descriptor set is not valid protobuf (\(wireError))"
        case .descriptorWireTypeMismatch(let number, let expected, let found):
            what = "descriptor field #\(number) has wire type \(found.rawValue), expected \(expected.rawValue)"
        case .invalidUTF8:
            what = "a descriptor name is not valid UTF-8"
        case .incompleteDefinition:
            what = "a definition lacks its name, or a field its number or its oneof"
        case .invalidName(let name):
            what = "\"\(name)\" is not a protobuf name (letters, digits and underscores, not starting with a digit)"
        case .duplicateDefinition(let name):
            what = "\(name) is defined twice"
        case .unresolvedTypeName(let name):
            what = "type \(name) is not defined in the descriptor set (a file missing from it?)"
        case .typeKindMismatch(let name):
            what = "type \(name) is not the kind (message or enum) the field declares"
        case .unknownMessage(let name):
            what = "no message \(name) in the schema"
        case .unknownMethod(let path):
            what = "no method \(path) in the schema"
        case .invalidRule(let reason):
            what = "walk rule: \(reason)"
        }
        return location.isEmpty ? what : "\(what), at \(location)"
    }
}
