// Decodes the part of `google.protobuf.FileDescriptorSet` a walker needs, with the wire scanner and no generated
// code: files (name, package, dependency, message_type, enum_type, service), messages (name, field, nested_type,
// enum_type, options.map_entry, oneof_decl), fields (name, number, label, type, type_name, oneof_index), enums
// (value names and numbers) and methods (name, input_type, output_type, streaming flags).
//
// Everything else (options, source info, extensions, reserved ranges) is skipped unread. Names stay as declared;
// resolving type names into full names is ProtoSchema's job. Field numbers below are those of descriptor.proto.

/// The decoded, unresolved content of one `FileDescriptorProto`.
struct DescriptorFile {
    var name = ""
    var package = ""
    var dependencies: [String] = []
    var messages: [DescriptorMessage] = []
    var enums: [DescriptorEnum] = []
    var services: [DescriptorService] = []
}

/// One `DescriptorProto`, nested types included.
struct DescriptorMessage {
    var name = ""
    var fields: [DescriptorField] = []
    var nestedMessages: [DescriptorMessage] = []
    var enums: [DescriptorEnum] = []
    var oneofNames: [String] = []
    var isMapEntry = false
}

/// One `FieldDescriptorProto`; `typeName` is as declared (usually `.pkg.Type`, possibly relative).
struct DescriptorField {
    var name = ""
    var number: Int?
    var isRepeated = false
    var type: Int?
    var typeName: String?
    var oneofIndex: Int?
}

/// One `EnumDescriptorProto`.
struct DescriptorEnum {
    var name = ""
    var values: [ProtoSchema.Enumeration.Value] = []
}

/// One `ServiceDescriptorProto`.
struct DescriptorService {
    var name = ""
    var methods: [DescriptorMethod] = []
}

/// One `MethodDescriptorProto`.
struct DescriptorMethod {
    var name = ""
    var inputType = ""
    var outputType = ""
    var clientStreaming = false
    var serverStreaming = false
}

/// Reads descriptor messages out of one buffer; every error names the descriptor element it was found in.
struct DescriptorSetDecoder {
    let bytes: [UInt8]

    /// The files of the `FileDescriptorSet` that fills `bytes`.
    func files() throws(ProtoSchemaError) -> [DescriptorFile] {
        var files: [DescriptorFile] = []
        try forEachField(in: 0..<bytes.count, location: "descriptor set") { (field) throws(ProtoSchemaError) in
            if field.fieldNumber == 1 {
                let location = "file #\(files.count + 1)"
                try files.append(file(try payload(of: field, location: location), location: location))
            }
        }
        return files
    }

    private func file(_ range: Range<Int>, location: String) throws(ProtoSchemaError) -> DescriptorFile {
        var file = DescriptorFile()
        try forEachField(in: range, location: location) { (field) throws(ProtoSchemaError) in
            let inner = file.name.isEmpty ? location : "file \"\(file.name)\""
            switch field.fieldNumber {
            case 1: file.name = try string(field, location: inner)
            case 2: file.package = try string(field, location: inner)
            case 3: file.dependencies.append(try string(field, location: inner))
            case 4:
                let messageLocation = "\(inner), message #\(file.messages.count + 1)"
                file.messages.append(try message(try payload(of: field, location: inner), location: messageLocation))
            case 5:
                let enumLocation = "\(inner), enum #\(file.enums.count + 1)"
                file.enums.append(try enumeration(try payload(of: field, location: inner), location: enumLocation))
            case 6:
                let serviceLocation = "\(inner), service #\(file.services.count + 1)"
                file.services.append(try service(try payload(of: field, location: inner), location: serviceLocation))
            default: break
            }
        }
        return file
    }

    private func message(_ range: Range<Int>, location: String) throws(ProtoSchemaError) -> DescriptorMessage {
        var message = DescriptorMessage()
        try forEachField(in: range, location: location) { (field) throws(ProtoSchemaError) in
            let inner = message.name.isEmpty ? location : "\(location) \"\(message.name)\""
            switch field.fieldNumber {
            case 1: message.name = try string(field, location: inner)
            case 2:
                let fieldLocation = "\(inner), field #\(message.fields.count + 1)"
                message.fields.append(try self.field(try payload(of: field, location: inner), location: fieldLocation))
            case 3:
                let nestedLocation = "\(inner), nested message #\(message.nestedMessages.count + 1)"
                message.nestedMessages.append(
                    try self.message(try payload(of: field, location: inner), location: nestedLocation)
                )
            case 4:
                let enumLocation = "\(inner), enum #\(message.enums.count + 1)"
                message.enums.append(try enumeration(try payload(of: field, location: inner), location: enumLocation))
            case 7:
                message.isMapEntry = try isMapEntry(options: try payload(of: field, location: inner), location: inner)
            case 8:
                let oneof = try payload(of: field, location: inner)
                message.oneofNames.append(try firstString(numbered: 1, in: oneof, location: inner) ?? "")
            default: break
            }
        }
        return message
    }

    private func field(_ range: Range<Int>, location: String) throws(ProtoSchemaError) -> DescriptorField {
        var result = DescriptorField()
        try forEachField(in: range, location: location) { (field) throws(ProtoSchemaError) in
            switch field.fieldNumber {
            case 1: result.name = try string(field, location: location)
            case 3: result.number = Int(Int32(truncatingIfNeeded: try varint(field, location: location)))
            case 4: result.isRepeated = try varint(field, location: location) == 3  // LABEL_REPEATED
            case 5: result.type = Int(Int32(truncatingIfNeeded: try varint(field, location: location)))
            case 6: result.typeName = try string(field, location: location)
            case 9: result.oneofIndex = Int(Int32(truncatingIfNeeded: try varint(field, location: location)))
            default: break
            }
        }
        return result
    }

    private func enumeration(_ range: Range<Int>, location: String) throws(ProtoSchemaError) -> DescriptorEnum {
        var result = DescriptorEnum()
        try forEachField(in: range, location: location) { (field) throws(ProtoSchemaError) in
            switch field.fieldNumber {
            case 1: result.name = try string(field, location: location)
            case 2:
                let valueRange = try payload(of: field, location: location)
                var name = ""
                var number: Int32 = 0
                try forEachField(in: valueRange, location: location) { (valueField) throws(ProtoSchemaError) in
                    switch valueField.fieldNumber {
                    case 1: name = try string(valueField, location: location)
                    case 2: number = Int32(truncatingIfNeeded: try varint(valueField, location: location))
                    default: break
                    }
                }
                result.values.append(ProtoSchema.Enumeration.Value(name: name, number: number))
            default: break
            }
        }
        return result
    }

    private func service(_ range: Range<Int>, location: String) throws(ProtoSchemaError) -> DescriptorService {
        var result = DescriptorService()
        try forEachField(in: range, location: location) { (field) throws(ProtoSchemaError) in
            switch field.fieldNumber {
            case 1: result.name = try string(field, location: location)
            case 2:
                let methodRange = try payload(of: field, location: location)
                let methodLocation = "\(location) \"\(result.name)\", method #\(result.methods.count + 1)"
                var method = DescriptorMethod()
                try forEachField(in: methodRange, location: methodLocation) { (methodField) throws(ProtoSchemaError) in
                    switch methodField.fieldNumber {
                    case 1: method.name = try string(methodField, location: methodLocation)
                    case 2: method.inputType = try string(methodField, location: methodLocation)
                    case 3: method.outputType = try string(methodField, location: methodLocation)
                    case 5: method.clientStreaming = try varint(methodField, location: methodLocation) != 0
                    case 6: method.serverStreaming = try varint(methodField, location: methodLocation) != 0
                    default: break
                    }
                }
                result.methods.append(method)
            default: break
            }
        }
        return result
    }

    /// `MessageOptions.map_entry` (field 7); the last occurrence wins, as in any protobuf parser.
    private func isMapEntry(options: Range<Int>, location: String) throws(ProtoSchemaError) -> Bool {
        var isMapEntry = false
        try forEachField(in: options, location: location) { (field) throws(ProtoSchemaError) in
            if field.fieldNumber == 7 {
                isMapEntry = try varint(field, location: location) != 0
            }
        }
        return isMapEntry
    }

    private func firstString(
        numbered number: Int,
        in range: Range<Int>,
        location: String
    ) throws(ProtoSchemaError) -> String? {
        var found: String?
        try forEachField(in: range, location: location) { (field) throws(ProtoSchemaError) in
            if field.fieldNumber == number, found == nil {
                found = try string(field, location: location)
            }
        }
        return found
    }

    // MARK: Primitive reads

    private func forEachField(
        in range: Range<Int>,
        location: String,
        _ body: (ProtoWireField) throws(ProtoSchemaError) -> Void
    ) throws(ProtoSchemaError) {
        var scanner = ProtoWireScanner(bytes: bytes, range: range)
        while true {
            let next: ProtoWireField?
            do {
                next = try scanner.next()
            } catch {
                throw ProtoSchemaError(.malformedDescriptor(error), location: location)
            }
            guard let field = next else {
                return
            }
            try body(field)
        }
    }

    private func payload(of field: ProtoWireField, location: String) throws(ProtoSchemaError) -> Range<Int> {
        try expect(field, .lengthDelimited, location: location)
        return field.payloadRange
    }

    private func string(_ field: ProtoWireField, location: String) throws(ProtoSchemaError) -> String {
        let range = try payload(of: field, location: location)
        guard let text = String(validating: bytes[range], as: UTF8.self) else {
            throw ProtoSchemaError(.invalidUTF8, location: location)
        }
        return text
    }

    private func varint(_ field: ProtoWireField, location: String) throws(ProtoSchemaError) -> UInt64 {
        try expect(field, .varint, location: location)
        do {
            return try ProtoVarint.decode(bytes, at: field.payloadRange.lowerBound, end: field.payloadRange.upperBound)
                .value
        } catch {
            throw ProtoSchemaError(.malformedDescriptor(error), location: location)
        }
    }

    /// Descriptors are the host's own data, so a field in an unexpected wire type is an error here rather than an
    /// unknown field to skip: silently losing a field name would make rules match nothing without saying why.
    private func expect(
        _ field: ProtoWireField,
        _ wireType: ProtoWireType,
        location: String
    ) throws(ProtoSchemaError) {
        guard field.wireType == wireType else {
            throw ProtoSchemaError(
                .descriptorWireTypeMismatch(fieldNumber: field.fieldNumber, expected: wireType, found: field.wireType),
                location: location
            )
        }
    }
}
