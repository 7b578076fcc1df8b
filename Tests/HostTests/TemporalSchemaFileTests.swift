// Loading and saving schema files: the dev-server fixture loads with its services and methods, and every kind of
// unusable file is refused with a message that names it and says what to do.

import Foundation
import SwiftProtobuf
import XCTest

@testable import Host

final class TemporalSchemaFileTests: XCTestCase {
    typealias Support = SchemaTestSupport

    private var directory: URL!

    override func setUpWithError() throws {
        directory = try Support.temporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func write(_ bytes: [UInt8], to name: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func loadError(_ path: String, line: UInt = #line) -> TemporalSchemaError? {
        do {
            let schema = try TemporalSchema.load(file: path)
            XCTFail("loaded \(schema.fileCount) files from \(path)", line: line)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Good files

    func testDevServerFixtureLoadsWithTheTemporalServices() throws {
        let schema = try TemporalSchema.load(file: Support.devServerFixturePath)
        XCTAssertEqual(schema.serviceNames, [
            "temporal.api.operatorservice.v1.OperatorService",
            "temporal.api.workflowservice.v1.WorkflowService",
            "temporal.server.api.adminservice.v1.AdminService",
        ])
        XCTAssertEqual(schema.source, "file \(Support.devServerFixturePath)")
        XCTAssertGreaterThan(schema.fileCount, 50)
        let workflowService = try XCTUnwrap(schema.services.first { $0.name.hasSuffix("WorkflowService") })
        XCTAssertEqual(workflowService.file, "temporal/api/workflowservice/v1/service.proto")
        let start = try XCTUnwrap(workflowService.methods.first { $0.name == "StartWorkflowExecution" })
        XCTAssertEqual(start.path, "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution")
        XCTAssertEqual(start.inputType, "temporal.api.workflowservice.v1.StartWorkflowExecutionRequest")
        XCTAssertFalse(start.clientStreaming || start.serverStreaming)
        let admin = try XCTUnwrap(schema.services.first { $0.name.hasSuffix("AdminService") })
        let replication = try XCTUnwrap(admin.methods.first { $0.name == "StreamWorkflowReplicationMessages" })
        XCTAssertTrue(replication.clientStreaming && replication.serverStreaming)
    }

    func testDevServerFixtureListsImportsBeforeImporters() throws {
        let set = try Google_Protobuf_FileDescriptorSet(
            serializedBytes: try TemporalSchema.load(file: Support.devServerFixturePath).descriptorSetBytes
        )
        var seen: Set<String> = []
        for file in set.file {
            for dependency in file.dependency {
                XCTAssertTrue(seen.contains(dependency), "\(file.name) comes before its import \(dependency)")
            }
            seen.insert(file.name)
        }
        XCTAssertTrue(set.file.contains { $0.messageType.contains { $0.name == "DataBlob" } && $0.package == "temporal.api.common.v1" })
    }

    func testWrittenSchemaLoadsBackIdentical() throws {
        let fixture = try TemporalSchema.load(file: Support.devServerFixturePath)
        let path = directory.appendingPathComponent("copy.binpb").path
        try fixture.write(to: path)
        let copy = try TemporalSchema.load(file: path)
        XCTAssertEqual(copy.descriptorSetBytes, fixture.descriptorSetBytes)
        XCTAssertEqual(copy.services, fixture.services)
    }

    // MARK: Unusable files

    func testMissingFileIsNamed() {
        let path = directory.appendingPathComponent("absent.binpb").path
        let error = loadError(path)
        XCTAssertEqual(error, .fileUnreadable(path: path, reason: "no such file"))
        XCTAssertTrue("\(error!)".contains("schema pull"), "\(error!)")
    }

    func testDirectoryIsRefused() {
        XCTAssertEqual(loadError(directory.path), .fileUnreadable(path: directory.path, reason: "it is a directory"))
    }

    func testGarbageIsNotADescriptorSet() throws {
        let path = try write(Array("this is not protobuf at all\n".utf8), to: "garbage.binpb")
        guard case .notADescriptorSet(let source, _) = loadError(path) else { return XCTFail("garbage loaded") }
        XCTAssertEqual(source, "file \(path)")
    }

    func testEmptyFileSaysItIsEmpty() throws {
        let path = try write([], to: "empty.binpb")
        XCTAssertEqual(loadError(path), .notADescriptorSet(source: "file \(path)", reason: "it is empty"))
    }

    func testSetWithOnlyUnknownFieldsHoldsNoFileDescriptor() throws {
        let path = try write(Support.varintField(5, 1), to: "unknown.binpb")
        XCTAssertEqual(loadError(path), .notADescriptorSet(source: "file \(path)", reason: "it holds no file descriptor"))
    }

    func testSetWithoutServicesIsRefused() throws {
        let path = try write(Support.descriptorSet([Support.file("a.proto"), Support.file("b.proto")]), to: "plain.binpb")
        let error = loadError(path)
        XCTAssertEqual(error, .noServices(source: "file \(path)", fileCount: 2))
        XCTAssertTrue("\(error!)".contains("holds 2 files but no service"), "\(error!)")
    }

    func testSetWithoutItsImportsNamesWhatIsMissing() throws {
        let service = Support.file("service.proto", imports: ["messages.proto", "google/protobuf/empty.proto"], services: ["S"])
        let path = try write(Support.descriptorSet([service]), to: "no-imports.binpb")
        let error = loadError(path)
        XCTAssertEqual(error, .missingImports(source: "file \(path)", missing: [
            .init(file: "service.proto", dependency: "messages.proto"),
            .init(file: "service.proto", dependency: "google/protobuf/empty.proto"),
        ]))
        XCTAssertTrue("\(error!)".contains("--include_imports"), "\(error!)")
    }

    func testUnwritablePathIsReported() throws {
        let schema = try TemporalSchema.load(file: Support.devServerFixturePath)
        let path = directory.appendingPathComponent("no/such/dir/x.binpb").path
        XCTAssertThrowsError(try schema.write(to: path)) { error in
            guard case .fileUnwritable(let reported, _) = error as? TemporalSchemaError else { return XCTFail("\(error)") }
            XCTAssertEqual(reported, path)
        }
    }
}
