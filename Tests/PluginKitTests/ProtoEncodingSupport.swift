// Hand encoding for walker and schema tests: protobuf fields, and the descriptor messages of small test schemas
// (field numbers from google/protobuf/descriptor.proto), so each test shows the exact schema and bytes it uses.

import PluginKit

/// A length-delimited field: `number`, length, `payload`.
func lengthDelimited(_ number: Int, _ payload: [UInt8]) -> [UInt8] {
    var output: [UInt8] = []
    ProtoVarint.append(ProtoFieldNumber.key(fieldNumber: number, wireType: .lengthDelimited), to: &output)
    ProtoVarint.append(UInt64(payload.count), to: &output)
    return output + payload
}

/// A string field.
func stringField(_ number: Int, _ text: String) -> [UInt8] {
    lengthDelimited(number, Array(text.utf8))
}

/// A varint field.
func varintField(_ number: Int, _ value: UInt64) -> [UInt8] {
    var output: [UInt8] = []
    ProtoVarint.append(ProtoFieldNumber.key(fieldNumber: number, wireType: .varint), to: &output)
    ProtoVarint.append(value, to: &output)
    return output
}

/// Builders for `FileDescriptorSet` bytes.
enum Descriptor {
    /// `FieldDescriptorProto.Type` values used by the tests.
    enum FieldType: UInt64 {
        case int64 = 3, int32 = 5, bool = 8, string = 9, message = 11, bytes = 12, enumeration = 14
    }

    static func set(_ files: [UInt8]...) -> [UInt8] {
        files.flatMap { lengthDelimited(1, $0) }
    }

    static func file(
        _ name: String,
        package: String,
        dependencies: [String] = [],
        messages: [[UInt8]] = [],
        enums: [[UInt8]] = [],
        services: [[UInt8]] = []
    ) -> [UInt8] {
        stringField(1, name) + stringField(2, package) + dependencies.flatMap { stringField(3, $0) }
            + messages.flatMap { lengthDelimited(4, $0) } + enums.flatMap { lengthDelimited(5, $0) }
            + services.flatMap { lengthDelimited(6, $0) }
    }

    static func message(
        _ name: String,
        fields: [[UInt8]] = [],
        nested: [[UInt8]] = [],
        enums: [[UInt8]] = [],
        oneofs: [String] = [],
        mapEntry: Bool = false
    ) -> [UInt8] {
        stringField(1, name) + fields.flatMap { lengthDelimited(2, $0) } + nested.flatMap { lengthDelimited(3, $0) }
            + enums.flatMap { lengthDelimited(4, $0) }
            + (mapEntry ? lengthDelimited(7, varintField(7, 1)) : [])
            + oneofs.flatMap { lengthDelimited(8, stringField(1, $0)) }
    }

    static func field(
        _ name: String,
        _ number: Int,
        _ type: FieldType?,
        repeated: Bool = false,
        typeName: String? = nil,
        oneofIndex: Int? = nil
    ) -> [UInt8] {
        stringField(1, name) + varintField(3, UInt64(number)) + varintField(4, repeated ? 3 : 1)
            + (type.map { varintField(5, $0.rawValue) } ?? []) + (typeName.map { stringField(6, $0) } ?? [])
            + (oneofIndex.map { varintField(9, UInt64($0)) } ?? [])
    }

    /// A map field and its entry type, as protoc writes them: `map<key, value> name = number`.
    static func mapField(
        _ name: String,
        _ number: Int,
        entryName: String,
        key: FieldType,
        value: FieldType,
        valueTypeName: String? = nil
    ) -> (field: [UInt8], entry: [UInt8]) {
        let entry = message(
            entryName,
            fields: [field("key", 1, key), field("value", 2, value, typeName: valueTypeName)],
            mapEntry: true
        )
        return (field(name, number, .message, repeated: true, typeName: entryName), entry)
    }

    static func enumeration(_ name: String, values: [(String, Int)]) -> [UInt8] {
        stringField(1, name)
            + values.flatMap {
                lengthDelimited(2, stringField(1, $0.0) + varintField(2, UInt64(bitPattern: Int64($0.1))))
            }
    }

    static func service(_ name: String, methods: [(name: String, input: String, output: String)]) -> [UInt8] {
        stringField(1, name)
            + methods.flatMap {
                lengthDelimited(2, stringField(1, $0.name) + stringField(2, $0.input) + stringField(3, $0.output))
            }
    }
}
