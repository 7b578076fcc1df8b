// The example plugins as the host meets them: shared objects loaded with dlopen, entered through
// `s2s_plugin_entry`, and driven through their tables with a fake host.
//
// The C example is compiled here with `cc` and the exact flags docs/PLUGINS.md gives (warnings are errors), into a
// temporary directory; the test is skipped only where no `cc` exists. The Swift example is the package's
// `example-header-stamp` dynamic library, which `swift build` and `swift test` put next to the test bundle.
// Libraries are never closed, as in the host.

#if os(Linux)
import Foundation
import PluginABI
import XCTest

final class CExamplePluginTests: XCTestCase {
    private static let built = Result { try buildCExample() }
    private var hosts: [FakeHost] = []

    /// The library stays mapped after its file is removed, as the host's would.
    override class func tearDown() {
        if let path = try? built.get() {
            try? FileManager.default.removeItem(at: URL(fileURLWithPath: path).deletingLastPathComponent())
        }
        super.tearDown()
    }

    private func entry() throws -> s2s_plugin_entry_fn {
        let path = try Self.built.get()
        return try loadEntry(path)
    }

    private func driver() throws -> PluginDriver {
        PluginDriver(table: UnsafeRawPointer(try XCTUnwrap(try entry()(1, 0))))
    }

    private func config(_ driver: PluginDriver, _ options: String, host: FakeHost) throws -> UnsafeMutableRawPointer {
        hosts.append(host)
        return try driver.configNew(options, host: host).get()
    }

    func testEntryDescribesThePluginAndRefusesAnotherMajor() throws {
        let entry = try entry()
        XCTAssertNil(entry(2, 0))
        let driver = PluginDriver(table: UnsafeRawPointer(try XCTUnwrap(entry(1, 0))))
        XCTAssertEqual(driver.name, "method-guard")
        XCTAssertEqual(driver.version, "1.0.0")
        XCTAssertEqual(driver.table.pointee.abi_major, 1)
        XCTAssertEqual(driver.table.pointee.struct_size, UInt32(MemoryLayout<s2s_plugin_api_t>.size))
        XCTAssertNil(driver.table.pointee.schema_ready)
        XCTAssertNil(driver.table.pointee.on_message)
        XCTAssertNil(driver.table.pointee.call_end)
    }

    func testRejectsDeniedMethodsAndStampsTheHeaderOnOthers() throws {
        let driver = try driver()
        let host = FakeHost()
        let options = #"{"deny": ["/a.B/Denied", "/a.B/Other"], "header": "x-guard", "value": "ok \"quoted\""}"#
        let config = try config(driver, options, host: host)
        defer { driver.configDestroy(config) }
        XCTAssertEqual(driver.wants(config, method: "/a.B/Denied", side: S2S_SIDE_OUTBOUND), S2S_WANTS_CALL)
        XCTAssertEqual(host.metrics.map(\.name), ["method_guard_denied_total"])

        let denied = FakeCall()
        XCTAssertEqual(driver.callStart(config, call: denied, method: "/a.B/Denied"), S2S_REJECTED)
        XCTAssertEqual(denied.status, FakeCall.Status(code: 7, message: "method /a.B/Denied is denied by method-guard"))
        XCTAssertEqual(denied.edits, [])
        XCTAssertEqual(host.recorded.map(\.value), [1])
        XCTAssertEqual(host.logs.map(\.message), ["method /a.B/Denied is denied by method-guard"])

        let allowed = FakeCall()
        XCTAssertEqual(driver.callStart(config, call: allowed, method: "/a.B/Allowed"), S2S_OK)
        XCTAssertEqual(allowed.edits, [FakeCall.Edit(kind: "set", name: "x-guard", value: Array("ok \"quoted\"".utf8))])
        XCTAssertNil(allowed.status)
    }

    func testDefaultsStampAHeaderWithoutOptions() throws {
        let driver = try driver()
        let config = try config(driver, "{}", host: FakeHost())
        defer { driver.configDestroy(config) }
        let call = FakeCall()
        XCTAssertEqual(driver.callStart(config, call: call, method: "/a.B/C"), S2S_OK)
        XCTAssertEqual(
            call.edits, [FakeCall.Edit(kind: "set", name: "x-s2s-method-guard", value: Array("passed".utf8))]
        )
    }

    func testOptionsItDoesNotUnderstandFailConfigNewWithAMessage() throws {
        let driver = try driver()
        let cases: [(String, String)] = [
            (#"{"denied": []}"#, "unknown option 'denied'; method-guard reads deny, header and value"),
            (#"{"deny": "/a.B/C"}"#, #"options.deny must be a list of method paths, e.g. ["/pkg.Service/Method"]"#),
            (#"{"deny": ["a.B/C"]}"#, "options.deny: 'a.B/C' is not a method path like /package.Service/Method"),
            (#"{"header": "X-Upper"}"#, "options.header 'X-Upper' is not a lowercase header name such as x-team"),
            (#"{"value": 1}"#, "options.value must be a string"),
            (#"{"deny": ["/a.B/C", 7]}"#, "every entry of options.deny must be a string"),
            ("[]", "options must be a mapping (a JSON object)"),
        ]
        for (options, message) in cases {
            XCTAssertEqual(driver.configNew(options, host: FakeHost()).failureValue?.message, message, options)
        }
    }

    /// The options come through the host's option readers (ABI 1.1), which decode what a hand-written scanner
    /// would not (escapes, nested keys); a 1.0 host, which has none, gets a message naming what is needed, and its
    /// table is not read past its size.
    func testOptionsAreReadThroughTheHostsReaders() throws {
        let driver = try driver()
        let host = FakeHost()
        let config = try driver.configNew(#"{"deny": ["/a.B/\u00e9"], "value": "caf\u00e9 \/ ok"}"#, host: host).get()
        defer { driver.configDestroy(config) }
        let call = FakeCall()
        XCTAssertEqual(driver.callStart(config, call: call, method: "/a.B/C"), S2S_OK)
        XCTAssertEqual(call.edits.first?.value, Array("café / ok".utf8))
        XCTAssertEqual(driver.callStart(config, call: FakeCall(), method: "/a.B/é"), S2S_REJECTED)

        let old = FakeHost(structSize: MemoryLayout<s2s_host_api_t>.offset(of: \.option_type)!, abiMinor: 0)
        XCTAssertEqual(
            driver.configNew("{}", host: old).failureValue?.message,
            "method-guard needs an s2s-proxy with plugin ABI 1.1 or later (this one has 1.0)"
        )
        XCTAssertEqual(old.violations, [])
    }

    func testLongErrorsAreTruncatedToTheBuffer() throws {
        let driver = try driver()
        let error = driver.configNew(#"{"nonsense": 1}"#, host: FakeHost(), errorCapacity: 8).failureValue
        XCTAssertEqual(error, ConfigNewError(message: "unknown", terminated: true))
    }
}

final class SwiftExamplePluginTests: XCTestCase {
    private var hosts: [FakeHost] = []

    private func driver() throws -> PluginDriver {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent()
        let path = directory.appendingPathComponent("libexample-header-stamp.so").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw PluginTestError(message: "\(path) is not built; `swift build` and `swift test` build it")
        }
        let entry = try loadEntry(path)
        XCTAssertNil(entry(2, 0))
        return PluginDriver(table: UnsafeRawPointer(try XCTUnwrap(entry(1, 0))))
    }

    private func config(_ driver: PluginDriver, _ options: String, host: FakeHost) throws -> UnsafeMutableRawPointer {
        hosts.append(host)
        return try driver.configNew(options, host: host).get()
    }

    func testLoadsAndDescribesItself() throws {
        let driver = try driver()
        XCTAssertEqual(driver.name, "example-header-stamp")
        XCTAssertEqual(driver.version, "1.0.0")
        XCTAssertEqual(
            driver.description, "Adds a request header to every call and rejects the calls of configured methods"
        )
        XCTAssertNil(driver.table.pointee.schema_ready)
    }

    func testStampsTheHeaderAndRejectsConfiguredMethods() throws {
        let driver = try driver()
        let host = FakeHost()
        let config = try config(driver, #"{"value": "cluster-a", "rejectMethods": ["/a.B/Denied"]}"#, host: host)
        defer { driver.configDestroy(config) }
        XCTAssertEqual(driver.wants(config, method: "/a.B/C", side: S2S_SIDE_INBOUND), S2S_WANTS_CALL)
        XCTAssertEqual(host.metrics.map(\.name), ["header_stamp_calls_total", "header_stamp_rejected_total"])

        let allowed = FakeCall()
        XCTAssertEqual(driver.callStart(config, call: allowed, method: "/a.B/C"), S2S_OK)
        XCTAssertEqual(allowed.edits, [FakeCall.Edit(kind: "set", name: "x-s2s-proxy", value: Array("cluster-a".utf8))])

        let denied = FakeCall()
        XCTAssertEqual(driver.callStart(config, call: denied, method: "/a.B/Denied"), S2S_REJECTED)
        XCTAssertEqual(
            denied.status, FakeCall.Status(code: 7, message: "/a.B/Denied is not allowed through this proxy")
        )
        XCTAssertEqual(host.logs.map(\.message), ["rejecting /a.B/Denied from the inbound side"])
        XCTAssertEqual(host.recorded.map(\.id), [1, 2])
        driver.callEnd(config, call: allowed, grpcStatus: 0)
    }

    func testReportsMissingAndUnknownOptions() throws {
        let driver = try driver()
        XCTAssertEqual(driver.configNew("{}", host: FakeHost()).failureValue?.message, "options.value is required")
        XCTAssertEqual(
            driver.configNew(#"{"value": "v", "rejectMethod": []}"#, host: FakeHost()).failureValue?.message,
            "options has unknown key 'rejectMethod'; this plugin reads: header, rejectMethods, value"
        )
        XCTAssertEqual(
            driver.configNew(#"{"value": "v", "header": "X-Big"}"#, host: FakeHost()).failureValue?.message,
            "options.header must be a lowercase header name such as x-s2s-proxy, not 'X-Big'"
        )
    }
}

/// Compiles examples/plugins/c-method-guard with the documented command into a new temporary directory.
private func buildCExample() throws -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    let candidates = ["/usr/bin/cc", "/usr/local/bin/cc", "/bin/cc"]
    guard let compiler = candidates.first(where: FileManager.default.isExecutableFile) else {
        throw XCTSkip("no C compiler (cc) on this machine")
    }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("s2s-plugin-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let output = directory.appendingPathComponent("libmethod-guard.so").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: compiler)
    process.arguments = [
        "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
        "-I", root.appendingPathComponent("s2s-plugin-sdk/Sources/PluginABI/include").path,
        "-o", output, root.appendingPathComponent("examples/plugins/c-method-guard/method_guard.c").path,
    ]
    let diagnostics = Pipe()
    process.standardError = diagnostics
    try process.run()
    let text = String(decoding: diagnostics.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw PluginTestError(message: "cc exited with \(process.terminationStatus):\n\(text)")
    }
    return output
}

private struct PluginTestError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// dlopens `path` as the host does and returns its entry point.
private func loadEntry(_ path: String) throws -> s2s_plugin_entry_fn {
    guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
        throw PluginTestError(message: "dlopen \(path): \(String(cString: dlerror()))")
    }
    let symbol = try XCTUnwrap(dlsym(handle, S2S_PLUGIN_ENTRY_SYMBOL), "no \(S2S_PLUGIN_ENTRY_SYMBOL) in \(path)")
    return unsafeBitCast(symbol, to: s2s_plugin_entry_fn.self)
}
#endif
