// The protobuf schema a plugin works against, built at run time from a serialized `FileDescriptorSet` (what the
// host pulls from Temporal's gRPC reflection or loads from a file), without compiled-in protos or SwiftProtobuf.
//
// It indexes messages by full name with their fields by number and name, resolves every type reference to a full
// name, marks map fields, and maps gRPC paths to their request and response types. Walk rules are compiled
// against it (``ProtoWalker``). Malformed or inconsistent descriptors are reported as ``ProtoSchemaError``.

/// Messages, enums and methods of a set of `.proto` files, resolved and indexed.
public struct ProtoSchema: Sendable {
    /// One `.proto` file of the set.
    public struct File: Sendable, Equatable {
        /// Its path (`temporal/api/common/v1/message.proto`).
        public let name: String
        /// Its package (`temporal.api.common.v1`).
        public let package: String
        /// The files it imports.
        public let dependencies: [String]
    }

    /// The files in the order of the set.
    public let files: [File]
    /// Every message, nested ones included, by full name.
    public let messages: [String: Message]
    /// Every enum, nested ones included, by full name.
    public let enumerations: [String: Enumeration]
    /// Every method of every service, by gRPC path.
    public let methods: [String: Method]

    /// Decodes and resolves a serialized `google.protobuf.FileDescriptorSet`.
    ///
    /// - Throws: ``ProtoSchemaError`` when the bytes are not a descriptor set, a definition is incomplete or
    ///   duplicated, or a type name matches nothing in the set (every import must be in it).
    public init(fileDescriptorSet bytes: [UInt8]) throws(ProtoSchemaError) {
        let decoded = try DescriptorSetDecoder(bytes: bytes).files()
        var builder = SchemaBuilder()
        try builder.register(decoded)
        files = decoded.map { File(name: $0.name, package: $0.package, dependencies: $0.dependencies) }
        messages = try builder.resolvedMessages()
        enumerations = builder.enumerations
        methods = try builder.resolvedMethods()
    }

    /// Decodes and resolves a `FileDescriptorSet` in a borrowed buffer (the host's schema bytes); copies it once.
    public init(fileDescriptorSet bytes: UnsafeRawBufferPointer) throws(ProtoSchemaError) {
        try self.init(fileDescriptorSet: [UInt8](bytes))
    }

    /// The message with this full name; a leading dot (`.temporal.api.common.v1.DataBlob`) is accepted.
    public func message(named name: String) -> Message? {
        messages[name.hasPrefix(".") ? String(name.dropFirst()) : name]
    }

    /// The method a gRPC `:path` (`/package.Service/Method`) calls, with its request and response types.
    public func method(path: String) -> Method? {
        methods[path]
    }
}

/// Collects definitions under their full names, then resolves type names the way protoc does: a name starting
/// with a dot is absolute; otherwise it is looked up in the enclosing scope, then in each scope further out.
private struct SchemaBuilder {
    private struct PendingMessage {
        let fullName: String
        let fileName: String
        let definition: DescriptorMessage
    }

    private struct PendingService {
        let fullName: String
        let fileName: String
        let package: String
        let definition: DescriptorService
    }

    private var pendingMessages: [PendingMessage] = []
    private var pendingServices: [PendingService] = []
    private var messageNames: Set<String> = []
    private(set) var enumerations: [String: ProtoSchema.Enumeration] = [:]
    private var definedNames: Set<String> = []

    mutating func register(_ files: [DescriptorFile]) throws(ProtoSchemaError) {
        for file in files {
            let location = "file \"\(file.name)\""
            guard !file.name.isEmpty else {
                throw ProtoSchemaError(.incompleteDefinition, location: "a file without a name")
            }
            guard file.package.isEmpty
                || file.package.split(separator: ".", omittingEmptySubsequences: false).allSatisfy(Self.isIdentifier)
            else {
                throw ProtoSchemaError(.invalidName(file.package), location: "\(location), its package")
            }
            for message in file.messages {
                try registerMessage(message, scope: file.package, fileName: file.name)
            }
            for enumeration in file.enums {
                try registerEnum(enumeration, scope: file.package, location: location)
            }
            for service in file.services {
                guard !service.name.isEmpty else {
                    throw ProtoSchemaError(.incompleteDefinition, location: "\(location), a service")
                }
                try Self.checkName(service.name, location: "\(location), a service")
                let fullName = Self.qualified(service.name, in: file.package)
                try define(fullName, location: location)
                pendingServices.append(
                    PendingService(fullName: fullName, fileName: file.name, package: file.package, definition: service)
                )
            }
        }
    }

    private mutating func registerMessage(
        _ message: DescriptorMessage,
        scope: String,
        fileName: String
    ) throws(ProtoSchemaError) {
        guard !message.name.isEmpty else {
            throw ProtoSchemaError(.incompleteDefinition, location: "file \"\(fileName)\", a message in \(scope)")
        }
        try Self.checkName(message.name, location: "file \"\(fileName)\", a message in \(scope)")
        let fullName = Self.qualified(message.name, in: scope)
        try define(fullName, location: "file \"\(fileName)\"")
        messageNames.insert(fullName)
        pendingMessages.append(PendingMessage(fullName: fullName, fileName: fileName, definition: message))
        for nested in message.nestedMessages {
            try registerMessage(nested, scope: fullName, fileName: fileName)
        }
        for enumeration in message.enums {
            try registerEnum(enumeration, scope: fullName, location: "message \(fullName)")
        }
    }

    private mutating func registerEnum(
        _ enumeration: DescriptorEnum,
        scope: String,
        location: String
    ) throws(ProtoSchemaError) {
        guard !enumeration.name.isEmpty else {
            throw ProtoSchemaError(.incompleteDefinition, location: "\(location), an enum")
        }
        try Self.checkName(enumeration.name, location: "\(location), an enum")
        let fullName = Self.qualified(enumeration.name, in: scope)
        try define(fullName, location: location)
        enumerations[fullName] = ProtoSchema.Enumeration(fullName: fullName, values: enumeration.values)
    }

    private mutating func define(_ fullName: String, location: String) throws(ProtoSchemaError) {
        guard definedNames.insert(fullName).inserted else {
            throw ProtoSchemaError(.duplicateDefinition(fullName), location: location)
        }
    }

    func resolvedMessages() throws(ProtoSchemaError) -> [String: ProtoSchema.Message] {
        var mapEntries: Set<String> = []
        for pending in pendingMessages where pending.definition.isMapEntry {
            mapEntries.insert(pending.fullName)
        }
        var result: [String: ProtoSchema.Message] = [:]
        result.reserveCapacity(pendingMessages.count)
        for pending in pendingMessages {
            var fields: [ProtoSchema.Field] = []
            fields.reserveCapacity(pending.definition.fields.count)
            for declared in pending.definition.fields {
                let location = "message \(pending.fullName), field \"\(declared.name)\""
                // A oneof index must name one of the message's oneofs: plugins index `oneofNames` with it.
                if let index = declared.oneofIndex, !pending.definition.oneofNames.indices.contains(index) {
                    throw ProtoSchemaError(.incompleteDefinition, location: location)
                }
                fields.append(try resolve(declared, in: pending.fullName, mapEntries: mapEntries, location: location))
            }
            result[pending.fullName] = ProtoSchema.Message(
                fullName: pending.fullName,
                fileName: pending.fileName,
                fields: fields,
                oneofNames: pending.definition.oneofNames,
                isMapEntry: pending.definition.isMapEntry
            )
        }
        return result
    }

    private func resolve(
        _ declared: DescriptorField,
        in messageName: String,
        mapEntries: Set<String>,
        location: String
    ) throws(ProtoSchemaError) -> ProtoSchema.Field {
        guard !declared.name.isEmpty, let number = declared.number, number >= 1,
            number <= ProtoFieldNumber.maximum
        else {
            throw ProtoSchemaError(.incompleteDefinition, location: location)
        }
        try Self.checkName(declared.name, location: location)
        var type = declared.type.flatMap(ProtoSchema.FieldType.init(rawValue:))
        var typeName: String?
        if let declaredName = declared.typeName, !declaredName.isEmpty {
            guard let resolved = resolveTypeName(declaredName, scope: messageName) else {
                throw ProtoSchemaError(.unresolvedTypeName(declaredName), location: location)
            }
            let isMessage = messageNames.contains(resolved)
            guard isMessage || enumerations[resolved] != nil else {
                throw ProtoSchemaError(.typeKindMismatch(resolved), location: location)  // e.g. a service's name
            }
            switch type {
            case nil:
                type = isMessage ? .message : .enumeration  // descriptors written before resolution omit it
            case .message?, .group?:
                guard isMessage else {
                    throw ProtoSchemaError(.typeKindMismatch(resolved), location: location)
                }
            case .enumeration?:
                guard !isMessage else {
                    throw ProtoSchemaError(.typeKindMismatch(resolved), location: location)
                }
            default:
                break
            }
            typeName = resolved
        }
        guard let fieldType = type else {
            throw ProtoSchemaError(.incompleteDefinition, location: location)
        }
        if fieldType == .message || fieldType == .enumeration || fieldType == .group, typeName == nil {
            throw ProtoSchemaError(.incompleteDefinition, location: location)
        }
        return ProtoSchema.Field(
            name: declared.name,
            number: number,
            type: fieldType,
            isRepeated: declared.isRepeated,
            typeName: typeName,
            oneofIndex: declared.oneofIndex,
            isMap: declared.isRepeated && fieldType == .message && typeName.map(mapEntries.contains) == true
        )
    }

    func resolvedMethods() throws(ProtoSchemaError) -> [String: ProtoSchema.Method] {
        var result: [String: ProtoSchema.Method] = [:]
        for service in pendingServices {
            for method in service.definition.methods {
                let location = "service \(service.fullName), method \"\(method.name)\""
                guard !method.name.isEmpty else {
                    throw ProtoSchemaError(.incompleteDefinition, location: location)
                }
                try Self.checkName(method.name, location: location)
                let input = try resolveMessageName(method.inputType, scope: service.package, location: location)
                let output = try resolveMessageName(method.outputType, scope: service.package, location: location)
                let path = "/\(service.fullName)/\(method.name)"
                result[path] = ProtoSchema.Method(
                    path: path,
                    serviceName: service.fullName,
                    name: method.name,
                    inputType: input,
                    outputType: output,
                    clientStreaming: method.clientStreaming,
                    serverStreaming: method.serverStreaming
                )
            }
        }
        return result
    }

    private func resolveMessageName(
        _ name: String,
        scope: String,
        location: String
    ) throws(ProtoSchemaError) -> String {
        guard let resolved = resolveTypeName(name, scope: scope) else {
            throw ProtoSchemaError(.unresolvedTypeName(name), location: location)
        }
        guard messageNames.contains(resolved) else {
            throw ProtoSchemaError(.typeKindMismatch(resolved), location: location)
        }
        return resolved
    }

    private func resolveTypeName(_ name: String, scope: String) -> String? {
        if name.hasPrefix(".") {
            let absolute = String(name.dropFirst())
            return definedNames.contains(absolute) ? absolute : nil
        }
        var scope = Substring(scope)
        while true {
            let candidate = scope.isEmpty ? name : "\(scope).\(name)"
            if definedNames.contains(candidate) {
                return candidate
            }
            guard let lastDot = scope.lastIndex(of: ".") else {
                return scope.isEmpty ? nil : (definedNames.contains(name) ? name : nil)
            }
            scope = scope[..<lastDot]
        }
    }

    private static func checkName(_ name: String, location: String) throws(ProtoSchemaError) {
        guard isIdentifier(Substring(name)) else {
            throw ProtoSchemaError(.invalidName(name), location: location)
        }
    }

    /// protoc's identifier: ASCII letters, digits and underscores, not starting with a digit.
    private static func isIdentifier(_ name: Substring) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            return false
        }
        return name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"):
                true
            default:
                false
            }
        }
    }

    private static func qualified(_ name: String, in scope: String) -> String {
        scope.isEmpty ? name : "\(scope).\(name)"
    }
}
