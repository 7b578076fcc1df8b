// The schema's vocabulary: messages, fields, enums and methods as a plugin sees them after decoding and
// resolution, with every type reference turned into a fully qualified name without the leading dot.
//
// These are plain values; the lookups between them go through ``ProtoSchema``.

extension ProtoSchema {
    /// The declared type of a field, numbered as in `google/protobuf/descriptor.proto`.
    public enum FieldType: Int, Sendable, Equatable {
        case double = 1
        case float, int64, uint64, int32, fixed64, fixed32, bool, string, group, message, bytes
        case uint32, enumeration, sfixed32, sfixed64, sint32, sint64

        /// The wire type a value of this type is encoded with when it is not packed; `nil` for proto2 groups,
        /// which this SDK does not decode.
        public var wireType: ProtoWireType? {
            switch self {
            case .double, .fixed64, .sfixed64:
                return .fixed64
            case .float, .fixed32, .sfixed32:
                return .fixed32
            case .int64, .uint64, .int32, .bool, .uint32, .enumeration, .sint32, .sint64:
                return .varint
            case .string, .bytes, .message:
                return .lengthDelimited
            case .group:
                return nil
            }
        }
    }

    /// One field of a message.
    public struct Field: Sendable, Equatable {
        /// The name as declared (`workflow_namespace`).
        public let name: String
        /// The field number.
        public let number: Int
        /// The declared type.
        public let type: FieldType
        /// Whether the field is `repeated` (maps included).
        public let isRepeated: Bool
        /// For message and enum fields, the full name of that type (`temporal.api.common.v1.DataBlob`).
        public let typeName: String?
        /// The index into the containing message's ``Message/oneofNames`` when the field is part of a oneof.
        public let oneofIndex: Int?
        /// Whether the field is a `map<K, V>`: a repeated field of a map-entry message (key 1, value 2).
        public let isMap: Bool
    }

    /// One message type.
    public struct Message: Sendable {
        /// The fully qualified name (`temporal.api.common.v1.DataBlob`).
        public let fullName: String
        /// The file that declares it.
        public let fileName: String
        /// The fields in declaration order.
        public let fields: [Field]
        /// The names of the oneofs, indexed by ``Field/oneofIndex``.
        public let oneofNames: [String]
        /// Whether this is the synthesized entry type of a map field (`option map_entry = true`).
        public let isMapEntry: Bool
        private let fieldIndexByNumber: [Int: Int]
        private let fieldIndexByName: [String: Int]

        init(fullName: String, fileName: String, fields: [Field], oneofNames: [String], isMapEntry: Bool) {
            self.fullName = fullName
            self.fileName = fileName
            self.fields = fields
            self.oneofNames = oneofNames
            self.isMapEntry = isMapEntry
            var byNumber: [Int: Int] = [:]
            var byName: [String: Int] = [:]
            for (index, field) in fields.enumerated() {
                byNumber[field.number] = byNumber[field.number] ?? index
                byName[field.name] = byName[field.name] ?? index
            }
            fieldIndexByNumber = byNumber
            fieldIndexByName = byName
        }

        /// The field with this number, if declared.
        public func field(number: Int) -> Field? {
            fieldIndexByNumber[number].map { fields[$0] }
        }

        /// The field with this name, if declared.
        public func field(named name: String) -> Field? {
            fieldIndexByName[name].map { fields[$0] }
        }

        /// The message's own name, the last component of ``fullName``.
        public var name: String {
            String(fullName.split(separator: ".").last ?? Substring(fullName))
        }
    }

    /// One enum type.
    public struct Enumeration: Sendable, Equatable {
        /// One named value.
        public struct Value: Sendable, Equatable {
            /// The value's name (`ENCODING_TYPE_PROTO3`).
            public let name: String
            /// Its number.
            public let number: Int32
        }

        /// The fully qualified name (`temporal.api.enums.v1.EncodingType`).
        public let fullName: String
        /// The values in declaration order.
        public let values: [Value]

        /// The number of the value with this name, if declared.
        public func number(of name: String) -> Int32? {
            values.first { $0.name == name }?.number
        }
    }

    /// One RPC of a service: where a gRPC `:path` leads.
    public struct Method: Sendable, Equatable {
        /// The gRPC path, `/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution`.
        public let path: String
        /// The service's full name.
        public let serviceName: String
        /// The method's name.
        public let name: String
        /// The full name of the request message type.
        public let inputType: String
        /// The full name of the response message type.
        public let outputType: String
        /// Whether the client sends a stream of requests.
        public let clientStreaming: Bool
        /// Whether the server sends a stream of responses.
        public let serverStreaming: Bool
    }
}
