// The `schema:` block of a cluster connection: decoded with the other keys, relative files resolved against the
// config file's directory, and every mistake reported with its key path and line.

import Foundation
import Host
import XCTest

final class SchemaConfigTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = try SchemaTestSupport.temporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A one-connection config whose connection ends with `schemaBlock` (indented as a connection key).
    private func config(_ schemaBlock: String) -> String {
        """
        clusterConnections:
          - name: a
            local:
              connectionType: tcp
              tcpClient: { address: "127.0.0.1:7233" }
              tcpServer: { address: "127.0.0.1:6233" }
            remote:
              connectionType: tcp
              tcpClient: { address: "127.0.0.1:7234" }
              tcpServer: { address: "127.0.0.1:6234" }
        \(schemaBlock)
        """
    }

    private func errors(_ yaml: String, line: UInt = #line) -> [String] {
        do {
            let loaded = try ConfigLoader.parse(yaml: yaml, sourceName: "config.yaml", baseDirectory: directory.path)
            XCTFail("expected errors, but it loaded: \(loaded.summary)", line: line)
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    func testNoSchemaBlockMeansNone() throws {
        let loaded = try ConfigLoader.parse(yaml: config(""), sourceName: "config.yaml")
        XCTAssertNil(loaded.config.clusterConnections[0].schema)
    }

    func testReflectionAddressIsRead() throws {
        let loaded = try ConfigLoader.parse(yaml: config("    schema:\n      reflectionAddress: 10.1.2.3:7233"), sourceName: "config.yaml")
        XCTAssertEqual(loaded.config.clusterConnections[0].schema, SchemaConfig(reflectionAddress: "10.1.2.3:7233"))
        XCTAssertEqual(loaded.unsupported, [])
    }

    func testEmptySchemaBlockMeansTheLocalTemporal() throws {
        let loaded = try ConfigLoader.parse(yaml: config("    schema: {}"), sourceName: "config.yaml")
        XCTAssertEqual(loaded.config.clusterConnections[0].schema, SchemaConfig())
    }

    func testRelativeFileResolvesAgainstTheConfigFilesDirectory() throws {
        let schemas = directory.appendingPathComponent("schemas")
        try FileManager.default.createDirectory(at: schemas, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: SchemaTestSupport.devServerFixturePath, toPath: schemas.appendingPathComponent("temporal.binpb").path
        )
        let configPath = directory.appendingPathComponent("proxy.yaml").path
        try config("    schema:\n      file: schemas/temporal.binpb").write(toFile: configPath, atomically: true, encoding: .utf8)
        let loaded = try ConfigLoader.load(path: configPath)
        XCTAssertEqual(loaded.config.clusterConnections[0].schema?.file, "\(directory.path)/schemas/temporal.binpb")
    }

    func testAbsoluteFileIsKeptAsWritten() throws {
        let path = SchemaTestSupport.devServerFixturePath
        let loaded = try ConfigLoader.parse(yaml: config("    schema:\n      file: \(path)"), sourceName: "config.yaml", baseDirectory: "/elsewhere")
        XCTAssertEqual(loaded.config.clusterConnections[0].schema?.file, path)
    }

    func testMissingFileIsAnErrorAtItsLine() {
        XCTAssertEqual(errors(config("    schema:\n      file: nowhere.binpb")), [
            "config.yaml:12:7: clusterConnections[0].schema.file: no such file \"\(directory.path)/nowhere.binpb\"; "
                + "save one with `s2s-proxy schema pull --address HOST:PORT --out FILE` (a relative path starts at "
                + "the config file's directory)",
        ])
    }

    func testDirectoryIsNotASchemaFile() {
        XCTAssertEqual(errors(config("    schema:\n      file: \(directory.path)")), [
            "config.yaml:12:7: clusterConnections[0].schema.file: \"\(directory.path)\" is a directory; name the "
                + "FileDescriptorSet file in it",
        ])
    }

    func testFileAndReflectionAddressAreMutuallyExclusive() {
        let path = SchemaTestSupport.devServerFixturePath
        XCTAssertEqual(errors(config("    schema:\n      file: \(path)\n      reflectionAddress: 127.0.0.1:7233")), [
            "config.yaml:13:7: clusterConnections[0].schema.reflectionAddress: set either file or reflectionAddress, "
                + "not both: clusterConnections[0].schema.file (line 12) already names the schema",
        ])
    }

    func testMisspelledKeyGetsASuggestion() {
        XCTAssertEqual(errors(config("    schema:\n      reflectionAdress: 127.0.0.1:7233")), [
            "config.yaml:12:7: clusterConnections[0].schema.reflectionAdress: unknown key \"reflectionAdress\"; "
                + "did you mean \"reflectionAddress\"?",
        ])
    }

    func testBadAddressSaysHowToWriteIt() {
        XCTAssertEqual(errors(config("    schema:\n      reflectionAddress: temporal")), [
            "config.yaml:12:7: clusterConnections[0].schema.reflectionAddress: \"temporal\" has no port; write it as "
                + "host:port, e.g. \"temporal:7233\"",
        ])
    }

    func testEmptyValuesAreErrors() {
        XCTAssertEqual(errors(config("    schema:\n      file: \"\"")), [
            "config.yaml:12:7: clusterConnections[0].schema.file: empty; set the path of a saved FileDescriptorSet, "
                + "or remove the key",
        ])
        XCTAssertEqual(errors(config("    schema:\n      reflectionAddress: \"\"")), [
            "config.yaml:12:7: clusterConnections[0].schema.reflectionAddress: empty; set the host:port of a server "
                + "with gRPC reflection, or remove the key",
        ])
    }

    func testWrongShapesAreReported() {
        XCTAssertEqual(errors(config("    schema: temporal.binpb")), [
            "config.yaml:11:5: clusterConnections[0].schema: expected a mapping (file, reflectionAddress), found "
                + "\"temporal.binpb\"",
        ])
        XCTAssertEqual(errors(config("    schema:\n      file: [a, b]")).count, 1)
    }

    func testMisspelledSchemaKeyGetsASuggestion() {
        XCTAssertEqual(errors(config("    shema:\n      file: x")), [
            "config.yaml:11:5: clusterConnections[0].shema: unknown key \"shema\"; did you mean \"schema\"?",
        ])
    }
}
