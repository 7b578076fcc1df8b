// The protocol logic of a schema pull, conversation by conversation: what is asked after each answer, the closure
// over imports, the dependency order of the result, and every way a server can leave the schema incomplete.

import SwiftProtobuf
import XCTest

@testable import Host

private struct PullDidNotFinish: Error {}

final class ReflectionPullTests: XCTestCase {
    typealias Support = SchemaTestSupport

    private let common = Support.file("common.proto", package: "test.common")
    private let enums = Support.file("enums.proto", package: "test.enums")
    private let messages = Support.file("messages.proto", imports: ["common.proto", "enums.proto"])
    private var service: Google_Protobuf_FileDescriptorProto {
        Support.file("service.proto", imports: ["messages.proto"], services: ["WorkflowService"])
    }

    private func start() -> ReflectionPull {
        var pull = ReflectionPull(address: "127.0.0.1:7233")
        XCTAssertEqual(pull.start(), [.listServices])
        return pull
    }

    private func files(_ files: Google_Protobuf_FileDescriptorProto...) -> [UInt8] {
        Support.filesResponse(files.map(Support.serialized))
    }

    private func schema(of action: ReflectionPull.Action, line: UInt = #line) throws -> TemporalSchema {
        guard case .finished(let schema) = action else {
            XCTFail("expected the pull to finish, got \(action)", line: line)
            throw PullDidNotFinish()
        }
        return schema
    }

    private func fileNames(_ schema: TemporalSchema) throws -> [String] {
        try Google_Protobuf_FileDescriptorSet(serializedBytes: schema.descriptorSetBytes).file.map(\.name)
    }

    // MARK: Conversations that succeed

    func testAsksForEachListedServiceExceptReflectionAndHealth() {
        var pull = start()
        let action = pull.receive(message: Support.servicesResponse([
            "grpc.reflection.v1.ServerReflection", "test.v1.WorkflowService", "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection", "test.v1.AdminService",
        ]))
        XCTAssertEqual(action, .send([
            .fileContainingSymbol("test.v1.WorkflowService"), .fileContainingSymbol("test.v1.AdminService"),
        ]))
    }

    func testFinishesWhenTheServerSendsAFileWithAllItsImports() throws {
        var pull = start()
        _ = pull.receive(message: Support.servicesResponse(["test.v1.WorkflowService"]))
        let schema = try schema(of: pull.receive(message: files(service, messages, common, enums)))
        XCTAssertEqual(schema.serviceNames, ["test.v1.WorkflowService"])
        XCTAssertEqual(schema.fileCount, 4)
        XCTAssertEqual(schema.source, "reflection from 127.0.0.1:7233")
        XCTAssertEqual(try fileNames(schema), ["common.proto", "enums.proto", "messages.proto", "service.proto"])
    }

    func testAsksByFilenameForImportsNotSentAndOrdersImportsFirst() throws {
        var pull = start()
        _ = pull.receive(message: Support.servicesResponse(["test.v1.WorkflowService"]))
        XCTAssertEqual(pull.receive(message: files(service)), .send([.fileByFilename("messages.proto")]))
        XCTAssertEqual(
            pull.receive(message: files(messages)),
            .send([.fileByFilename("common.proto"), .fileByFilename("enums.proto")])
        )
        XCTAssertEqual(pull.receive(message: files(enums)), .send([]), "one answer is still outstanding")
        let schema = try schema(of: pull.receive(message: files(common)))
        XCTAssertEqual(try fileNames(schema), ["common.proto", "enums.proto", "messages.proto", "service.proto"])
    }

    func testWaitsForEveryServiceBeforeAskingForImports() throws {
        var pull = start()
        let admin = Support.file("admin.proto", package: "test.admin", imports: ["common.proto"], services: ["AdminService"])
        _ = pull.receive(message: Support.servicesResponse(["test.v1.WorkflowService", "test.admin.AdminService"]))
        XCTAssertEqual(pull.receive(message: files(service, messages, enums)), .send([]))
        // A server may leave out files it already sent on the stream: common.proto is still missing, asked once.
        XCTAssertEqual(pull.receive(message: files(admin)), .send([.fileByFilename("common.proto")]))
        let schema = try schema(of: pull.receive(message: files(common)))
        XCTAssertEqual(schema.serviceNames, ["test.admin.AdminService", "test.v1.WorkflowService"])
        XCTAssertEqual(schema.fileCount, 5)
    }

    func testFilesSentTwiceAreKeptOnce() throws {
        var pull = start()
        let admin = Support.file("admin.proto", package: "test.admin", imports: ["common.proto"], services: ["AdminService"])
        _ = pull.receive(message: Support.servicesResponse(["test.v1.WorkflowService", "test.admin.AdminService"]))
        _ = pull.receive(message: files(service, messages, common, enums))
        let schema = try schema(of: pull.receive(message: files(admin, common)))
        XCTAssertEqual(schema.fileCount, 5)
    }

    func testProgressSaysWhereThePullStands() {
        var pull = start()
        XCTAssertEqual(pull.progress, "no list of services received yet")
        _ = pull.receive(message: Support.servicesResponse(["test.v1.WorkflowService"]))
        _ = pull.receive(message: files(service))
        XCTAssertEqual(pull.progress, "1 services listed, 1 file received, 1 requests unanswered")
    }

    // MARK: Conversations that fail

    func testErrorAnswerNamesTheRequestAndStatus() {
        var pull = start()
        _ = pull.receive(message: Support.servicesResponse(["test.v1.WorkflowService"]))
        let action = pull.receive(message: Support.errorResponse(code: 5, message: "unknown symbol"))
        XCTAssertEqual(action, .failed(.requestFailed(
            address: "127.0.0.1:7233", request: "file_containing_symbol \"test.v1.WorkflowService\"",
            status: "NOT_FOUND", message: "unknown symbol"
        )))
    }

    func testListingWithOnlyGRPCServicesIsNotTemporal() {
        var pull = start()
        let action = pull.receive(message: Support.servicesResponse(["grpc.health.v1.Health"]))
        guard case .failed(.protocolViolation(_, let detail)) = action else { return XCTFail("\(action)") }
        XCTAssertEqual(detail, "reflection lists only grpc.health.v1.Health; this is not a Temporal frontend")
    }

    func testImportStillMissingAfterAskingForItFails() {
        var pull = start()
        _ = pull.receive(message: Support.servicesResponse(["test.v1.WorkflowService"]))
        _ = pull.receive(message: files(service))
        let action = pull.receive(message: Support.filesResponse([]))
        guard case .failed(.protocolViolation(_, let detail)) = action else { return XCTFail("\(action)") }
        XCTAssertTrue(detail.contains("file_by_filename \"messages.proto\""), detail)
    }

    func testListedServiceThatNoFileDeclaresFails() {
        var pull = start()
        _ = pull.receive(message: Support.servicesResponse(["test.v1.WorkflowService"]))
        let unrelated = Support.file("other.proto", services: ["OtherService"])
        let action = pull.receive(message: files(unrelated))
        guard case .failed(.protocolViolation(_, let detail)) = action else { return XCTFail("\(action)") }
        XCTAssertTrue(detail.contains("test.v1.WorkflowService is listed"), detail)
    }

    func testAnswerThatDoesNotMatchTheRequestFails() {
        var pull = start()
        guard case .failed(.protocolViolation) = pull.receive(message: files(service)) else {
            return XCTFail("files in answer to list_services")
        }
    }

    func testUndecodableFileDescriptorFails() {
        var pull = start()
        _ = pull.receive(message: Support.servicesResponse(["test.v1.WorkflowService"]))
        guard case .failed(.notADescriptorSet) = pull.receive(message: Support.filesResponse([[0xFF, 0xFF]])) else {
            return XCTFail("garbage descriptor accepted")
        }
    }

    func testMalformedMessageFails() {
        var pull = start()
        guard case .failed(.protocolViolation(_, let detail)) = pull.receive(message: [0x32, 0x09]) else {
            return XCTFail("malformed message accepted")
        }
        XCTAssertTrue(detail.hasPrefix("malformed reflection message"), detail)
    }

    func testAnswerNobodyAskedForFails() throws {
        var pull = start()
        _ = pull.receive(message: Support.servicesResponse(["test.v1.WorkflowService"]))
        _ = try schema(of: pull.receive(message: files(service, messages, common, enums)))
        guard case .failed(.protocolViolation) = pull.receive(message: files(common)) else {
            return XCTFail("an extra answer was accepted")
        }
    }

    // MARK: Assembler

    func testMissingImportsAreListedOnceInTheOrderFirstNamed() {
        var assembler = DescriptorSetAssembler()
        assembler.add(messages)
        assembler.add(Support.file("more.proto", imports: ["enums.proto", "other.proto"]))
        XCTAssertEqual(assembler.missingImports, [
            .init(file: "messages.proto", dependency: "common.proto"),
            .init(file: "messages.proto", dependency: "enums.proto"),
            .init(file: "more.proto", dependency: "other.proto"),
        ])
    }

    func testImportCycleDoesNotLoopForever() {
        var assembler = DescriptorSetAssembler()
        assembler.add(Support.file("a.proto", imports: ["b.proto"]))
        assembler.add(Support.file("b.proto", imports: ["a.proto"]))
        XCTAssertEqual(assembler.filesInDependencyOrder.map(\.name), ["b.proto", "a.proto"])
    }

    /// A server can answer with a long chain of imports (its messages may hold 64 MiB): ordering it must not recurse
    /// once per link, which overflowed the stack (found with the reflection fuzz target's file mode and a 200 000-file
    /// chain; its inputs are capped far below that).
    func testALongImportChainIsOrderedWithoutRecursion() {
        var assembler = DescriptorSetAssembler()
        let count = 100_000
        for index in 0..<count {
            var file = Google_Protobuf_FileDescriptorProto()
            file.name = "f\(index).proto"
            if index + 1 < count { file.dependency = ["f\(index + 1).proto"] }
            assembler.add(file)
        }
        let ordered = assembler.filesInDependencyOrder
        XCTAssertEqual(ordered.count, count)
        XCTAssertEqual(ordered.first?.name, "f\(count - 1).proto")
        XCTAssertEqual(ordered.last?.name, "f0.proto")
    }
}
