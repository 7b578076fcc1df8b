// Builders for the schema tests: reflection responses encoded field by field, small FileDescriptorProtos, and the
// path of the dev-server schema fixture.

import Foundation
import SwiftProtobuf

@testable import Host

enum SchemaTestSupport {
    /// A varint as protobuf writes it.
    static func varint(_ value: UInt64) -> [UInt8] {
        var writer = ReflectionWireWriter()
        writer.appendVarint(value)
        return writer.bytes
    }

    /// A length-delimited field.
    static func field(_ number: Int, _ payload: [UInt8]) -> [UInt8] {
        varint(UInt64(number) << 3 | 2) + varint(UInt64(payload.count)) + payload
    }

    static func field(_ number: Int, _ text: String) -> [UInt8] {
        field(number, Array(text.utf8))
    }

    /// A varint field.
    static func varintField(_ number: Int, _ value: UInt64) -> [UInt8] {
        varint(UInt64(number) << 3) + varint(value)
    }

    /// `ServerReflectionResponse{list_services_response{service{name}...}}`, with `valid_host` in front as
    /// servers send it.
    static func servicesResponse(_ names: [String]) -> [UInt8] {
        field(1, "") + field(6, names.flatMap { field(1, field(1, $0)) })
    }

    /// `ServerReflectionResponse{file_descriptor_response{file_descriptor_proto...}}`.
    static func filesResponse(_ files: [[UInt8]]) -> [UInt8] {
        field(4, files.flatMap { field(1, $0) })
    }

    /// `ServerReflectionResponse{error_response{error_code, error_message}}`.
    static func errorResponse(code: Int32, message: String) -> [UInt8] {
        field(7, varintField(1, UInt64(bitPattern: Int64(code))) + field(2, message))
    }

    /// A `FileDescriptorProto` named `name` in package `package`, importing `imports`, declaring `services`
    /// (each with one unary method `Call` from `Request` to `Response`).
    static func file(
        _ name: String,
        package: String = "test.v1",
        imports: [String] = [],
        services: [String] = []
    ) -> Google_Protobuf_FileDescriptorProto {
        var file = Google_Protobuf_FileDescriptorProto()
        file.name = name
        file.package = package
        file.dependency = imports
        file.service = services.map { serviceName in
            var service = Google_Protobuf_ServiceDescriptorProto()
            service.name = serviceName
            var method = Google_Protobuf_MethodDescriptorProto()
            method.name = "Call"
            method.inputType = ".\(package).Request"
            method.outputType = ".\(package).Response"
            service.method = [method]
            return service
        }
        return file
    }

    static func serialized(_ file: Google_Protobuf_FileDescriptorProto) -> [UInt8] {
        try! file.serializedBytes()
    }

    static func descriptorSet(_ files: [Google_Protobuf_FileDescriptorProto]) -> [UInt8] {
        var set = Google_Protobuf_FileDescriptorSet()
        set.file = files
        return try! set.serializedBytes()
    }

    /// `Tests/Fixtures/temporal-dev-schema.binpb`: the dev server's schema (scripts/refresh-schema-fixture).
    static var devServerFixturePath: String {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("Fixtures/temporal-dev-schema.binpb")
            .path
    }

    /// A fresh empty directory under the system's temporary directory.
    static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("s2s-schema-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }
}
