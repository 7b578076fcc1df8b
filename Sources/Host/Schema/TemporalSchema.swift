// The wire schema of the Temporal the proxy fronts, as a checked, immutable value.
//
// Owns `TemporalSchema` (a serialized `FileDescriptorSet` with the services it declares) and reading it from and
// writing it to a file. Whoever builds one, from reflection or from a file, goes through the same checks: the bytes
// decode, at least one service is declared, and every import is in the set. Plugins receive the bytes as they are.

import Foundation
import SwiftProtobuf

/// A checked `FileDescriptorSet` describing the Temporal services, and where it came from.
public struct TemporalSchema: Sendable, Equatable {
    /// The serialized `google.protobuf.FileDescriptorSet`, closed over imports (imported files before importers
    /// when it was pulled by reflection; a loaded file keeps its own order).
    public let descriptorSetBytes: [UInt8]
    /// Every service the set declares, sorted by full name.
    public let services: [SchemaService]
    /// How many `FileDescriptorProto`s the set holds.
    public let fileCount: Int
    /// Where the schema came from, for logs: `reflection from 127.0.0.1:7233` or `file temporal.binpb`.
    public let source: String

    /// The full names of `services`, e.g. `temporal.api.workflowservice.v1.WorkflowService`.
    public var serviceNames: [String] { services.map(\.name) }

    /// Checks `descriptorSetBytes` and summarizes its services.
    ///
    /// - Throws: `TemporalSchemaError` naming `source` when the bytes are not a `FileDescriptorSet`, declare no
    ///   service, or import a file the set does not hold.
    public init(descriptorSetBytes: [UInt8], source: String) throws(TemporalSchemaError) {
        let set: Google_Protobuf_FileDescriptorSet
        do {
            set = try Google_Protobuf_FileDescriptorSet(serializedBytes: descriptorSetBytes, partial: true)
        } catch {
            throw .notADescriptorSet(source: source, reason: "it does not decode: \(error)")
        }
        if set.file.isEmpty {
            let reason = descriptorSetBytes.isEmpty ? "it is empty" : "it holds no file descriptor"
            throw .notADescriptorSet(source: source, reason: reason)
        }
        var assembler = DescriptorSetAssembler()
        for file in set.file {
            assembler.add(file)
        }
        let missing = assembler.missingImports
        if !missing.isEmpty {
            throw .missingImports(source: source, missing: missing)
        }
        let services = set.file.flatMap { file in
            file.service.map { SchemaService(file: file, service: $0) }
        }
        if services.isEmpty {
            throw .noServices(source: source, fileCount: set.file.count)
        }
        self.descriptorSetBytes = descriptorSetBytes
        self.services = services.sorted { $0.name < $1.name }
        self.fileCount = set.file.count
        self.source = source
    }

    /// Loads a binary `FileDescriptorSet` file, as `s2s-proxy schema pull`, `buf build -o x.binpb` or
    /// `protoc --include_imports --descriptor_set_out=x.binpb` write them.
    ///
    /// - Throws: `TemporalSchemaError` naming `path` when it cannot be read or fails the checks of `init`.
    public static func load(file path: String) throws(TemporalSchemaError) -> TemporalSchema {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .fileUnreadable(path: path, reason: "no such file")
        }
        guard !isDirectory.boolValue else {
            throw .fileUnreadable(path: path, reason: "it is a directory")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let readable = FileManager.default.isReadableFile(atPath: path)
            let reason = readable ? error.localizedDescription : "permission denied"
            throw .fileUnreadable(path: path, reason: reason)
        }
        return try TemporalSchema(descriptorSetBytes: [UInt8](data), source: "file \(path)")
    }

    /// Writes `descriptorSetBytes` to `path`, replacing the file atomically.
    ///
    /// - Throws: `TemporalSchemaError.fileUnwritable` with the reason.
    public func write(to path: String) throws(TemporalSchemaError) {
        do {
            try Data(descriptorSetBytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .fileUnwritable(path: path, reason: error.localizedDescription)
        }
    }
}

/// A service the schema declares, with its methods in declaration order.
public struct SchemaService: Sendable, Equatable {
    /// Full name, e.g. `temporal.api.workflowservice.v1.WorkflowService`.
    public var name: String
    /// The file that declares it, e.g. `temporal/api/workflowservice/v1/service.proto`.
    public var file: String
    public var methods: [SchemaMethod]

    init(file: Google_Protobuf_FileDescriptorProto, service: Google_Protobuf_ServiceDescriptorProto) {
        name = file.package.isEmpty ? service.name : "\(file.package).\(service.name)"
        self.file = file.name
        let serviceName = name
        methods = service.method.map { method in
            SchemaMethod(
                name: method.name,
                path: "/\(serviceName)/\(method.name)",
                inputType: SchemaMethod.typeName(method.inputType),
                outputType: SchemaMethod.typeName(method.outputType),
                clientStreaming: method.clientStreaming,
                serverStreaming: method.serverStreaming
            )
        }
    }
}

/// One RPC of a `SchemaService`.
public struct SchemaMethod: Sendable, Equatable {
    /// The method name, e.g. `StartWorkflowExecution`.
    public var name: String
    /// The HTTP/2 `:path` of its calls, e.g. `/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution`.
    public var path: String
    /// Full name of the request message, without the leading dot.
    public var inputType: String
    /// Full name of the response message, without the leading dot.
    public var outputType: String
    /// Whether the client sends a stream of requests.
    public var clientStreaming: Bool
    /// Whether the server sends a stream of responses.
    public var serverStreaming: Bool

    /// Descriptors write fully-qualified type names with a leading "."; people and `:path`s do not.
    static func typeName(_ descriptorName: String) -> String {
        descriptorName.hasPrefix(".") ? String(descriptorName.dropFirst()) : descriptorName
    }
}
