// The gRPC server reflection messages that a schema pull exchanges, encoded and decoded by hand.
//
// Owns `ReflectionRequest` and `ReflectionResponse` (grpc.reflection.v1 and v1alpha share their wire format) and
// the few lines of protobuf wire format they need. Only the three requests a pull makes and the answers to them are
// modelled; every other field is skipped. Descriptors stay opaque bytes here: `DescriptorSetAssembler` decodes them
// with SwiftProtobuf. It does no I/O.

/// One `ServerReflectionRequest`: the message the client sends on the `ServerReflectionInfo` stream.
enum ReflectionRequest: Hashable, Sendable, CustomStringConvertible {
    /// `list_services` (field 7): the names of every service the server registered.
    case listServices
    /// `file_containing_symbol` (field 4): the file that declares a fully-qualified symbol, with its imports.
    case fileContainingSymbol(String)
    /// `file_by_filename` (field 3): one file by the name other files import it by.
    case fileByFilename(String)

    /// The request as protobuf bytes.
    func encoded() -> [UInt8] {
        var writer = ReflectionWireWriter()
        switch self {
        case .listServices:
            // The server does not look at the content; "*" is what grpcurl and grpc_cli send.
            writer.appendString("*", field: 7)
        case .fileContainingSymbol(let symbol):
            writer.appendString(symbol, field: 4)
        case .fileByFilename(let name):
            writer.appendString(name, field: 3)
        }
        return writer.bytes
    }

    /// How error messages name the request, e.g. `file_containing_symbol "temporal.api.X"`.
    var description: String {
        switch self {
        case .listServices: return "list_services"
        case .fileContainingSymbol(let symbol): return "file_containing_symbol \"\(symbol)\""
        case .fileByFilename(let name): return "file_by_filename \"\(name)\""
        }
    }
}

/// One `ServerReflectionResponse`, reduced to the answer it carries.
enum ReflectionResponse: Equatable, Sendable {
    /// `list_services_response` (field 6): fully-qualified service names.
    case services([String])
    /// `file_descriptor_response` (field 4): serialized `FileDescriptorProto`s, possibly none (a server may leave
    /// out files it already sent on the same stream).
    case files([[UInt8]])
    /// `error_response` (field 7): a gRPC status code and message for this one request; the stream goes on.
    case error(code: Int, message: String)
    /// A response with no answer this client asked for (`all_extension_numbers_response`, or none at all).
    case unexpected(String)

    /// Decodes a response message.
    ///
    /// - Throws: `ReflectionWireError` when the bytes are not a well-formed protobuf message.
    init(decoding bytes: [UInt8]) throws(ReflectionWireError) {
        var reader = ReflectionWireReader(bytes[...])
        // message_response is a oneof: the last member on the wire wins.
        var answer = ReflectionResponse.unexpected("the response carries no answer")
        while let field = try reader.nextField() {
            switch (field.number, field.value) {
            case (4, .lengthDelimited(let payload)):
                answer = .files(try Self.fileDescriptorProtos(in: payload))
            case (5, .lengthDelimited):
                answer = .unexpected("all_extension_numbers_response, which was not asked for")
            case (6, .lengthDelimited(let payload)):
                answer = .services(try Self.serviceNames(in: payload))
            case (7, .lengthDelimited(let payload)):
                answer = try Self.errorResponse(in: payload)
            default:
                // valid_host (1), original_request (2) and fields of later versions.
                continue
            }
        }
        self = answer
    }

    /// `FileDescriptorResponse.file_descriptor_proto` (repeated bytes, field 1).
    private static func fileDescriptorProtos(in payload: ArraySlice<UInt8>) throws(ReflectionWireError) -> [[UInt8]] {
        var reader = ReflectionWireReader(payload)
        var files: [[UInt8]] = []
        while let field = try reader.nextField() {
            if field.number == 1, case .lengthDelimited(let file) = field.value {
                files.append(Array(file))
            }
        }
        return files
    }

    /// `ListServiceResponse.service` (field 1), each a `ServiceResponse` whose `name` is field 1.
    private static func serviceNames(in payload: ArraySlice<UInt8>) throws(ReflectionWireError) -> [String] {
        var reader = ReflectionWireReader(payload)
        var names: [String] = []
        while let field = try reader.nextField() {
            guard field.number == 1, case .lengthDelimited(let service) = field.value else { continue }
            var serviceReader = ReflectionWireReader(service)
            var name = ""
            while let serviceField = try serviceReader.nextField() {
                if serviceField.number == 1, case .lengthDelimited(let text) = serviceField.value {
                    name = String(decoding: text, as: UTF8.self)
                }
            }
            names.append(name)
        }
        return names
    }

    /// `ErrorResponse`: `error_code` (int32, field 1) and `error_message` (field 2).
    private static func errorResponse(in payload: ArraySlice<UInt8>) throws(ReflectionWireError) -> ReflectionResponse {
        var reader = ReflectionWireReader(payload)
        var code = 0
        var message = ""
        while let field = try reader.nextField() {
            switch (field.number, field.value) {
            case (1, .varint(let value)):
                // int32 on the wire is the low 32 bits of a sign-extended varint.
                code = Int(Int32(truncatingIfNeeded: value))
            case (2, .lengthDelimited(let text)):
                message = String(decoding: text, as: UTF8.self)
            default:
                continue
            }
        }
        return .error(code: code, message: message)
    }
}

/// A reflection message that is not well-formed protobuf.
struct ReflectionWireError: Error, Equatable, CustomStringConvertible {
    /// Byte offset of the problem inside the message (or inside the sub-message being read).
    var offset: Int
    var problem: String

    var description: String { "malformed reflection message at byte \(offset): \(problem)" }
}

/// Appends protobuf fields to a byte array; only what the requests need (length-delimited strings).
struct ReflectionWireWriter {
    private(set) var bytes: [UInt8] = []

    mutating func appendString(_ text: String, field: Int) {
        appendVarint(UInt64(field) << 3 | 2)
        appendVarint(UInt64(text.utf8.count))
        bytes.append(contentsOf: text.utf8)
    }

    mutating func appendVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }
}

/// Reads the fields of one protobuf message in order, with the values of the wire types reflection uses.
struct ReflectionWireReader {
    /// One field as it appears on the wire.
    struct Field {
        enum Value {
            case varint(UInt64)
            case lengthDelimited(ArraySlice<UInt8>)
            /// A fixed32 or fixed64 value, which no reflection field uses: skipped.
            case fixed
        }

        var number: Int
        var value: Value
    }

    private let bytes: ArraySlice<UInt8>
    private var index: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.index = bytes.startIndex
    }

    /// The next field, or nil at the end of the message.
    mutating func nextField() throws(ReflectionWireError) -> Field? {
        guard index < bytes.endIndex else { return nil }
        let keyOffset = index
        let key = try readVarint()
        let number = key >> 3
        guard number >= 1, number <= (1 << 29) - 1 else {
            throw error("field number \(number) is out of range", at: keyOffset)
        }
        switch key & 7 {
        case 0:
            return Field(number: Int(number), value: .varint(try readVarint()))
        case 1:
            try skip(8)
            return Field(number: Int(number), value: .fixed)
        case 2:
            let lengthOffset = index
            let length = try readVarint()
            guard length <= UInt64(bytes.endIndex - index) else {
                throw error("length \(length) runs past the end of the message", at: lengthOffset)
            }
            let start = index
            index += Int(length)
            return Field(number: Int(number), value: .lengthDelimited(bytes[start..<index]))
        case 5:
            try skip(4)
            return Field(number: Int(number), value: .fixed)
        case let wireType:
            throw error(
                "wire type \(wireType) of field \(number) is not supported (groups are not used here)", at: keyOffset
            )
        }
    }

    private mutating func readVarint() throws(ReflectionWireError) -> UInt64 {
        let start = index
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while index < bytes.endIndex {
            let byte = bytes[index]
            index += 1
            if shift == 63 && byte > 1 {
                throw error("varint does not fit 64 bits", at: start)
            }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
            if shift > 63 {
                throw error("varint is longer than 10 bytes", at: start)
            }
        }
        throw error("varint runs past the end of the message", at: start)
    }

    private mutating func skip(_ count: Int) throws(ReflectionWireError) {
        guard bytes.endIndex - index >= count else {
            throw error("fixed-width value runs past the end of the message", at: index)
        }
        index += count
    }

    private func error(_ problem: String, at position: Int) -> ReflectionWireError {
        ReflectionWireError(offset: position - bytes.startIndex, problem: problem)
    }
}
