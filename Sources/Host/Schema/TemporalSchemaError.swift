// Why the Temporal schema could not be had, worded for the operator who has to fix it.
//
// Owns `TemporalSchemaError`, thrown by the schema file loader and returned by the reflection client. Every
// message names the address or file and says what to do next.

/// A failure to load or pull the Temporal schema.
public enum TemporalSchemaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No TCP connection to the reflection address (refused, timed out, name not resolved).
    case unreachable(address: String, reason: String)
    /// The server answered UNIMPLEMENTED for both reflection service versions.
    case reflectionUnavailable(address: String)
    /// The reflection call ended with a gRPC status other than OK (and other than UNIMPLEMENTED, see above).
    case callFailed(address: String, status: String, message: String)
    /// The server answered one reflection request with an error (the stream itself went on).
    case requestFailed(address: String, request: String, status: String, message: String)
    /// The server broke the gRPC or reflection protocol, or the connection ended before the schema was complete.
    case protocolViolation(address: String, detail: String)
    /// The pull did not finish within its overall timeout.
    case timedOut(address: String, seconds: Double, progress: String)
    /// The schema file cannot be read.
    case fileUnreadable(path: String, reason: String)
    /// A pulled schema cannot be saved.
    case fileUnwritable(path: String, reason: String)
    /// The bytes are not a binary `FileDescriptorSet` (or one of its files is not a `FileDescriptorProto`).
    case notADescriptorSet(source: String, reason: String)
    /// The descriptor set declares no service at all.
    case noServices(source: String, fileCount: Int)
    /// A file of the set imports a file that the set does not contain.
    case missingImports(source: String, missing: [MissingImport])

    /// One import that a descriptor set lacks.
    public struct MissingImport: Sendable, Equatable {
        /// The file that imports it.
        public var file: String
        /// The imported file name.
        public var dependency: String

        public init(file: String, dependency: String) {
            self.file = file
            self.dependency = dependency
        }
    }

    public var description: String {
        switch self {
        case .unreachable(let address, let reason):
            return "cannot pull the Temporal schema from \(address): \(reason); check that a Temporal frontend "
                + "listens there (plain TCP, gRPC over HTTP/2)"
        case .reflectionUnavailable(let address):
            return "no gRPC reflection at \(address): server answered UNIMPLEMENTED for "
                + "grpc.reflection.v1.ServerReflection and v1alpha; save a schema with `s2s-proxy schema pull` "
                + "where reflection works and set schema.file"
        case .callFailed(let address, let status, let message):
            let detail = message.isEmpty ? "" : ": \(message)"
            return "the gRPC reflection call to \(address) failed with \(status)\(detail); check that \(address) "
                + "is a Temporal frontend, or save a schema with `s2s-proxy schema pull` and set schema.file"
        case .requestFailed(let address, let request, let status, let message):
            let detail = message.isEmpty ? "" : ": \(message)"
            return "gRPC reflection at \(address) could not answer \(request) (\(status)\(detail)); the server's "
                + "reflection is incomplete: save a schema with `s2s-proxy schema pull` from a complete server "
                + "and set schema.file"
        case .protocolViolation(let address, let detail):
            return "gRPC reflection at \(address) failed: \(detail)"
        case .timedOut(let address, let seconds, let progress):
            return "pulling the Temporal schema from \(address) timed out after \(Self.seconds(seconds)) "
                + "(\(progress)); check that \(address) is a Temporal frontend that answers, or allow more time"
        case .fileUnreadable(let path, let reason):
            return "cannot read the schema file \(path): \(reason); check schema.file, or save a schema with "
                + "`s2s-proxy schema pull --address HOST:PORT --out \(path)`"
        case .fileUnwritable(let path, let reason):
            return "cannot write the schema file \(path): \(reason); check that its directory exists and is writable"
        case .notADescriptorSet(let source, let reason):
            return "\(source) is not a binary FileDescriptorSet (\(reason)); write one with `s2s-proxy schema pull`, "
                + "`buf build -o FILE.binpb` or `protoc --include_imports --descriptor_set_out=FILE`"
        case .noServices(let source, let fileCount):
            return "\(source) holds \(fileCount) file\(fileCount == 1 ? "" : "s") but no service; the schema must "
                + "describe the Temporal services (WorkflowService, OperatorService, AdminService)"
        case .missingImports(let source, let missing):
            let listed = missing.prefix(3).map { "\($0.file) imports \($0.dependency)" }.joined(separator: ", ")
            let more = missing.count > 3 ? " and \(missing.count - 3) more" : ""
            return "\(source) is not closed over its imports (\(listed)\(more), which the set lacks); save it "
                + "with `s2s-proxy schema pull`, or with --include_imports when using protoc"
        }
    }

    private static func seconds(_ value: Double) -> String {
        value.rounded() == value ? "\(Int(value)) s" : "\(value) s"
    }
}
