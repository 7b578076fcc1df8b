// Tests of the plugin host against real shared objects: the probe test plugin (Tests/Plugins/probe_plugin.c) is
// compiled with `cc` against the ABI header in its build variants, loaded with dlopen, and driven through the same
// chain and runner that ProxyCall uses.

@testable import Host
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHPACK
import PluginABI
import enum PluginKit.SwiftRelease
import Foundation
import XCTest

/// Collects log lines, to see what plugins wrote through the host's logger.
private final class LogCapture: @unchecked Sendable {
    let lines = NIOLockedValueBox<[String]>([])

    var logger: Logger {
        var logger = Logger(label: "test") { _ in CapturingHandler(capture: self) }
        logger.logLevel = .debug
        return logger
    }

    struct CapturingHandler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            capture.lines.withLockedValue { $0.append("\(event.level) \(event.message)") }
        }
    }
}

final class PluginHostTests: XCTestCase {
    private static let variants: [String: [String]] = [
        "probe": [], "probe-schema": ["-DPROBE_NEEDS_SCHEMA"], "probe-abi2": ["-DPROBE_ABI_MAJOR=2"],
        "probe-no-entry": ["-DPROBE_NO_ENTRY"], "probe-refuse-entry": ["-DPROBE_REFUSE_ENTRY"],
        "probe-bad-name": ["-DPROBE_BAD_NAME"], "probe-abi-1-0": ["-DPROBE_ABI_1_0"],
        "probe-swift-5-9": ["-DPROBE_SWIFT_RELEASE=\"5.9\""], "probe-swift-current": ["-DPROBE_SWIFT_RELEASE=\"\(SwiftRelease.current)\""],
    ]
    private static let built = NIOLockedValueBox<[String: String]?>(nil)

    /// Builds every probe variant once per test run; returns paths by variant.
    private func plugins() throws -> [String: String] {
        try Self.built.withLockedValue { built in
            if let built { return built }
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("s2s-plugin-tests-\(getpid())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            var paths: [String: String] = [:]
            for (name, defines) in Self.variants {
                let output = directory.appendingPathComponent("lib\(name).so").path
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                                     "-I", root.appendingPathComponent("s2s-plugin-sdk/Sources/PluginABI/include").path] + defines
                    + ["-o", output, root.appendingPathComponent("Tests/Plugins/probe_plugin.c").path]
                try process.run()
                process.waitUntilExit()
                guard process.terminationStatus == 0 else { throw XCTSkip("cc could not build the probe plugin") }
                paths[name] = output
            }
            built = paths
            return paths
        }
    }

    private func entry(_ variant: String = "probe", options: String = "{}", policy: PluginFailurePolicy = .failClosed,
                       sides: PluginSides = .both, logger: Logger = Logger(label: "test"), metrics: PluginMetricsRegistry = PluginMetricsRegistry()) throws -> PluginEntry {
        let library = try PluginLibrary.load(path: try XCTUnwrap(plugins()[variant]))
        return try PluginEntry(library: library, label: "test.plugins[0]", connectionName: "c", sides: sides, policy: policy,
                               optionsJSON: options, logger: logger, metrics: metrics)
    }

    private func framed(_ text: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(text.utf8.count))
        buffer.writeString(text)
        return buffer
    }

    private func text(_ framed: ByteBuffer) -> String {
        String(decoding: framed.readableBytesView.dropFirst(5), as: UTF8.self)
    }

    private func requestHeaders(_ extra: [(String, String)] = []) -> HPACKHeaders {
        HPACKHeaders([(":method", "POST"), (":path", "/a.B/C"), ("content-type", "application/grpc")] + extra)
    }

    // MARK: Loading

    func testLoadErrorsSayWhatIsWrong() throws {
        let paths = try plugins()
        func kind(_ path: String) -> PluginLoadError.Kind? {
            do {
                _ = try PluginLibrary.load(path: path)
                return nil
            } catch let error as PluginLoadError {
                return error.kind
            } catch {
                return nil
            }
        }
        XCTAssertEqual(kind(paths["probe-abi2"]!), .abiMismatch(pluginMajor: 2, pluginMinor: Int(S2S_PLUGIN_ABI_MINOR)))
        XCTAssertEqual(kind(paths["probe-no-entry"]!), .entrySymbolMissing)
        XCTAssertEqual(kind(paths["probe-refuse-entry"]!), .entryRefused)
        XCTAssertEqual(kind(paths["probe-bad-name"]!), .malformedTable)
        XCTAssertThrowsError(try PluginLibrary.load(path: paths["probe-bad-name"]!)) { error in
            XCTAssertTrue("\(error)".contains(#"name "probe plugin!" has characters other than"#), "\(error)")
        }
        XCTAssertEqual(kind(paths["probe-swift-5-9"]!), .swiftReleaseMismatch(plugin: "5.9", host: SwiftRelease.current))
        XCTAssertThrowsError(try PluginLibrary.load(path: paths["probe-swift-5-9"]!)) { error in
            XCTAssertTrue(
                "\(error)".contains("was built with Swift 5.9, but this s2s-proxy with Swift \(SwiftRelease.current)"),
                "\(error)"
            )
        }
        XCTAssertEqual(kind("/nonexistent/lib.so"), .fileMissing)
        XCTAssertEqual(kind(#filePath), .notSharedObject)
        XCTAssertThrowsError(try PluginLibrary.load(bundledName: "surely-not-installed")) { error in
            XCTAssertTrue("\(error)".contains("libsurely-not-installed.so"))
        }
    }

    /// ABI 1.1 loads what 1.0 built: a table whose struct_size ends before `swift_release` loads, and that field is
    /// not read; a table that carries the host's own Swift release loads and says so; a C plugin carries none.
    func testTablesOfEveryMinorVersionLoad() throws {
        let paths = try plugins()
        let old = try PluginLibrary.load(path: paths["probe-abi-1-0"]!)
        XCTAssertEqual(old.abiMinor, 0)
        XCTAssertNil(old.swiftRelease)
        XCTAssertEqual(try PluginLibrary.load(path: paths["probe-swift-current"]!).swiftRelease, SwiftRelease.current)
        XCTAssertNil(try PluginLibrary.load(path: paths["probe"]!).swiftRelease)
    }

    /// A shared object for another machine or word size: glibc's dlopen calls it "No such file or directory"; the
    /// error says what it is built for instead. The probe plugin with its ELF header's machine or class changed.
    func testAPluginForAnotherArchitectureSaysSo() throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: try XCTUnwrap(try plugins()["probe"])))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("elf-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func variant(_ name: String, _ change: (inout Data) -> Void) throws -> String {
            var bytes = original
            change(&bytes)
            let path = directory.appendingPathComponent(name).path
            try bytes.write(to: URL(fileURLWithPath: path))
            return path
        }
        let aarch64 = try variant("aarch64.so") { $0[18] = 183; $0[19] = 0 }
        let thirtyTwo = try variant("elf32.so") { $0[4] = 1 }
        let here = ELFIdentity.name(of: ELFIdentity.current)
        XCTAssertThrowsError(try PluginLibrary.load(path: aarch64)) { error in
            let error = error as? PluginLoadError
            XCTAssertEqual(error?.kind, .wrongArchitecture(found: "aarch64 (64-bit ELF)", expected: "\(here) (64-bit ELF)"))
            XCTAssertTrue("\(error!)".contains("is built for aarch64 (64-bit ELF), but this s2s-proxy runs on \(here)"))
        }
        XCTAssertThrowsError(try PluginLibrary.load(path: thirtyTwo)) { error in
            XCTAssertEqual((error as? PluginLoadError)?.kind, .wrongArchitecture(found: "\(here) (32-bit ELF)", expected: "\(here) (64-bit ELF)"))
        }
        XCTAssertNil(ELFIdentity.mismatch(header: Array(original.prefix(20))), "the probe itself is for this machine")
        XCTAssertNil(ELFIdentity.mismatch(header: Array("not an ELF file at all".utf8)))
    }

    func testAFileIsLoadedOnceAndDescribesItself() throws {
        let path = try XCTUnwrap(plugins()["probe"])
        let first = try PluginLibrary.load(path: path)
        XCTAssertTrue(first === (try PluginLibrary.load(path: path)))
        XCTAssertEqual(first.name, "probe")
        XCTAssertEqual(first.version, "0.0.1")
        XCTAssertEqual(first.abiMajor, Int(S2S_PLUGIN_ABI_MAJOR))
        XCTAssertFalse(first.needsSchema)
        XCTAssertTrue(try PluginLibrary.load(path: XCTUnwrap(plugins()["probe-schema"])).needsSchema)
    }

    func testRefusedOptionsNameTheEntryAndThePlugin() throws {
        XCTAssertThrowsError(try entry(options: #"{"refuse":true}"#)) { error in
            XCTAssertEqual("\(error)", #"test.plugins[0]: plugin probe refused its options: refusing as the options ask (remove "refuse" to load)"#)
        }
    }

    // MARK: The chain

    func testAPluginThatWantsNothingGetsNoPlan() throws {
        let chain = PluginChain(side: .inbound, connectionName: "c", entries: [try entry(options: #"{"wantsNothing":true}"#)])
        XCTAssertNil(chain.plan(for: "/a.B/C"))
        let sideOnly = PluginChain(side: .outbound, connectionName: "c", entries: [try entry(sides: .inbound)])
        XCTAssertTrue(sideOnly.isEmpty)
    }

    func testMessagesPassTheChainInOrderAndResponsesInReverse() throws {
        let first = try entry(options: #"{"tag":"1"}"#)
        let second = try entry(options: #"{"tag":"2"}"#)
        let chain = PluginChain(side: .inbound, connectionName: "c", entries: [first, second])
        let runner = PluginCallRunner(plan: try XCTUnwrap(chain.plan(for: "/a.B/C")), method: "/a.B/C", side: .inbound, connection: "c")
        var headers = requestHeaders([("x-probe-chain", "0")])
        guard case .proceed = runner.start(headers: &headers) else { return XCTFail("call rejected") }
        XCTAssertEqual(headers[canonicalForm: "x-probe-chain"], ["0", "1", "2"])
        XCTAssertEqual(headers[canonicalForm: "x-probe-side"], ["inbound"])
        XCTAssertEqual(headers.first(name: ":path"), "/a.B/C")
        // "count" becomes "count=1<tag>" at the first plugin; the second sees that and leaves it.
        guard case .forward(let request) = runner.message(framed("count"), direction: S2S_DIRECTION_REQUEST) else { return XCTFail() }
        XCTAssertEqual(text(request), "count=11")
        // A response passes the second plugin first: each appends its own response count.
        guard case .forward(let response) = runner.message(framed("count=x"), direction: S2S_DIRECTION_RESPONSE) else { return XCTFail() }
        XCTAssertEqual(text(response), "count=x;resp=1;resp=1")
        runner.end(grpcStatus: 0)
        XCTAssertEqual(first.stats.calls, 1)
        XCTAssertEqual(first.stats.messages, 2)
        XCTAssertEqual(first.stats.replaced, 2)
    }

    /// Hook runs are counted in batches, at the latest when 16 are waiting: a long stream's figures move while it
    /// is open, and every run is counted by the call's end.
    func testHookRunsAreCountedWhileACallIsOpenAndAllByItsEnd() throws {
        let probe = try entry()
        let chain = PluginChain(side: .inbound, connectionName: "c", entries: [probe])
        let plan = try XCTUnwrap(chain.plan(for: "/a.B/C"))
        let runner = PluginCallRunner(plan: plan, method: "/a.B/C", side: .inbound, connection: "c")
        var headers = requestHeaders()
        guard case .proceed = runner.start(headers: &headers) else { return XCTFail("call rejected") }
        for _ in 0..<40 {
            _ = runner.message(framed("a"), direction: S2S_DIRECTION_REQUEST)
        }
        let open = probe.stats
        XCTAssertEqual(open.calls, 1)
        XCTAssertGreaterThanOrEqual(open.messages, 24, "counted while the call is open")
        XCTAssertLessThan(open.messages, 40, "the last runs wait for the batch")
        runner.end(grpcStatus: 0)
        let ended = probe.stats
        XCTAssertEqual([ended.calls, ended.messages], [1, 40])
        XCTAssertEqual(ended.messageDurations.count, 40)
        XCTAssertEqual(ended.callEndDurations.count, 1)
    }

    /// call_start's call info: every metadata entry but the pseudo-headers, binary values decoded; what the plugin
    /// sets under a `-bin` name goes out base64 again.
    func testCallInfoCarriesTheMetadataWithBinaryValuesDecoded() throws {
        let chain = PluginChain(side: .inbound, connectionName: "c", entries: [try entry()])
        let runner = PluginCallRunner(plan: try XCTUnwrap(chain.plan(for: "/a.B/C")), method: "/a.B/C", side: .inbound, connection: "c")
        var headers = requestHeaders([
            ("x-probe-copy-bin", "AAH+/w"), ("x-probe-copy", "a text value longer than fifteen bytes"),
        ])
        guard case .proceed = runner.start(headers: &headers) else { return XCTFail("call rejected") }
        XCTAssertEqual(headers.first(name: "x-probe-copied-bin"), "AAH+/w", "decoded for the plugin, encoded again")
        XCTAssertEqual(headers.first(name: "x-probe-copied"), "a text value longer than fifteen bytes")
        XCTAssertEqual(headers.first(name: ":path"), "/a.B/C")
        runner.end(grpcStatus: 0)
    }

    func testUnchangedMessagesAreTheOriginalBuffer() throws {
        let chain = PluginChain(side: .inbound, connectionName: "c", entries: [try entry()])
        let runner = PluginCallRunner(plan: try XCTUnwrap(chain.plan(for: "/a.B/C")), method: "/a.B/C", side: .inbound, connection: "c")
        var headers = requestHeaders()
        _ = runner.start(headers: &headers)
        let original = framed("leave me")
        guard case .forward(let output) = runner.message(original, direction: S2S_DIRECTION_REQUEST) else { return XCTFail() }
        XCTAssertTrue(output.storageIsShared(with: original))
        runner.end(grpcStatus: 0)
    }

    func testRejectionAndFailurePolicies() throws {
        func outcome(_ message: String, policy: PluginFailurePolicy, headers extra: [(String, String)] = []) throws -> String {
            let chain = PluginChain(side: .inbound, connectionName: "c", entries: [try entry(policy: policy)])
            let runner = PluginCallRunner(plan: try XCTUnwrap(chain.plan(for: "/a.B/C")), method: "/a.B/C", side: .inbound, connection: "c")
            defer { runner.end(grpcStatus: -1) }
            var headers = requestHeaders(extra)
            if case .fail(let status) = runner.start(headers: &headers) { return "start \(status.code) \(status.message)" }
            switch runner.message(framed(message), direction: S2S_DIRECTION_REQUEST) {
            case .fail(let status): return "message \(status.code) \(status.message)"
            case .forward(let output): return "forward \(text(output))"
            }
        }
        XCTAssertEqual(try outcome("reject", policy: .failOpen), "message PERMISSION_DENIED probe rejected request message 0")
        XCTAssertEqual(try outcome("error", policy: .failClosed), "message INTERNAL s2s-proxy plugin probe failed in on_message: probe failed on purpose")
        XCTAssertEqual(try outcome("error", policy: .failOpen), "forward error")
        XCTAssertEqual(try outcome("x", policy: .failOpen, headers: [("x-probe-reject", "16")]), "start UNAUTHENTICATED probe rejected the call")
        // A status code of 0 (OK) cannot be a rejection: that breaks the ABI and counts as a failure.
        XCTAssertEqual(try outcome("x", policy: .failClosed, headers: [("x-probe-reject", "0")]),
                       "start INTERNAL s2s-proxy plugin probe failed in call_start: returned S2S_REJECTED without a valid status (set_status with a code 1-16)")
        XCTAssertEqual(try outcome("x", policy: .failClosed, headers: [("x-probe-error", "1")]),
                       "start INTERNAL s2s-proxy plugin probe failed in call_start: probe failed in call_start on purpose")
        // Under failOpen a plugin whose call_start failed sees nothing more of the call.
        XCTAssertEqual(try outcome("upper:x", policy: .failOpen, headers: [("x-probe-error", "1")]), "forward upper:x")
    }

    func testCallEndRunsOnceWithTheStatusAndLogsGoThroughTheHost() throws {
        let capture = LogCapture()
        let chain = PluginChain(side: .outbound, connectionName: "c", entries: [try entry(logger: capture.logger)])
        let runner = PluginCallRunner(plan: try XCTUnwrap(chain.plan(for: "/a.B/C")), method: "/a.B/C", side: .outbound, connection: "c")
        var headers = requestHeaders()
        _ = runner.start(headers: &headers)
        _ = runner.message(framed("a"), direction: S2S_DIRECTION_REQUEST)
        runner.end(grpcStatus: 4)
        runner.end(grpcStatus: 0)
        let lines = capture.lines.withLockedValue { $0 }
        XCTAssertEqual(lines.filter { $0.contains("call_end") }, ["info probe call_end status=4 requests=1 responses=0"])
        XCTAssertTrue(lines.contains("info probe configured"))
    }

    func testMetricsAreDefinedAtConfigTimeAndRecordedByID() throws {
        let metrics = PluginMetricsRegistry()
        let chain = PluginChain(side: .outbound, connectionName: "c", entries: [try entry(metrics: metrics)])
        let runner = PluginCallRunner(plan: try XCTUnwrap(chain.plan(for: "/a.B/C")), method: "/a.B/C", side: .outbound, connection: "c")
        var headers = requestHeaders()
        _ = runner.start(headers: &headers)
        for _ in 0..<3 { _ = runner.message(framed("a"), direction: S2S_DIRECTION_REQUEST) }
        runner.end(grpcStatus: 0)
        let metric = try XCTUnwrap(metrics.all.first)
        XCTAssertEqual(metric.name, "s2s_plugin_probe_messages_total")
        XCTAssertEqual(metric.plugin, "probe")
        XCTAssertEqual(metric.connection, "c")
        XCTAssertEqual(metric.snapshot.sum, 3)
    }

    // MARK: Timing

    func testEveryHookIsTimedAndCountedWhateverItsOutcome() throws {
        let probe = try entry()
        let chain = PluginChain(side: .inbound, connectionName: "c", entries: [probe])
        let plan = try XCTUnwrap(chain.plan(for: "/a.B/C"))
        let first = PluginCallRunner(plan: plan, method: "/a.B/C", side: .inbound, connection: "c")
        var headers = requestHeaders()
        guard case .proceed = first.start(headers: &headers) else { return XCTFail("call rejected") }
        _ = first.message(framed("a"), direction: S2S_DIRECTION_REQUEST)
        _ = first.message(framed("upper:b"), direction: S2S_DIRECTION_RESPONSE)
        first.end(grpcStatus: 0)
        // A message that fails closed ends the call, and is still a message the plugin took time over.
        let second = PluginCallRunner(plan: plan, method: "/a.B/C", side: .inbound, connection: "c")
        headers = requestHeaders()
        guard case .proceed = second.start(headers: &headers) else { return XCTFail("call rejected") }
        guard case .fail = second.message(framed("error"), direction: S2S_DIRECTION_REQUEST) else { return XCTFail() }
        second.end(grpcStatus: 13)

        let stats = probe.stats
        XCTAssertEqual([stats.calls, stats.messages, stats.replaced, stats.failures], [2, 3, 1, 1])
        XCTAssertEqual(stats.callStartDurations.count, 2)
        XCTAssertEqual(stats.messageDurations.count, 3)
        XCTAssertEqual(stats.callEndDurations.count, 2)
        XCTAssertGreaterThan(stats.hookNanoseconds, 0)
        XCTAssertEqual(stats.hookNanoseconds, stats.callStartDurations.sumNanoseconds
            + stats.messageDurations.sumNanoseconds + stats.callEndDurations.sumNanoseconds)

        var text = PrometheusText()
        ProxyMetrics.renderPluginLatencies([probe], into: &text)
        let series = #"s2s_proxy_plugin_hook_duration_seconds_count{plugin="probe",entry="test.plugins[0]",connection="c","#
        for (hook, count) in [("call_start", 2), ("on_message", 3), ("call_end", 2)] {
            XCTAssertTrue(text.text.contains(series + #"hook="\#(hook)"} \#(count)"# + "\n"), text.text)
        }
        // The probe does none of the Go proxy's translations: its families stay empty.
        XCTAssertNil(probe.translationKind)
        XCTAssertNil(probe.translationSnapshot)
        XCTAssertTrue(text.text.contains("# TYPE temporal_s2s_proxy_translation_latency histogram\n"))
        XCTAssertFalse(text.text.contains("temporal_s2s_proxy_translation_latency_count{"), text.text)
    }

    // MARK: Schema

    func testCallsWaitForTheSchemaAndSeeItOnceDelivered() throws {
        let waiting = try entry("probe-schema")
        let chain = PluginChain(side: .inbound, connectionName: "c", entries: [waiting])
        let plan = try XCTUnwrap(chain.plan(for: "/a.B/C"))
        var headers = requestHeaders()
        waiting.schemaPending("reflection from 127.0.0.1:7233 failed: connection refused")
        guard case .fail(let status) = PluginCallRunner(plan: plan, method: "/a.B/C", side: .inbound, connection: "c").start(headers: &headers) else {
            return XCTFail("a call went through before the schema arrived")
        }
        XCTAssertEqual(status.code, .unavailable)
        XCTAssertTrue(status.message.contains("waiting for the Temporal schema: reflection from 127.0.0.1:7233 failed"), status.message)
        waiting.deliverSchema([1, 2, 3, 4])
        XCTAssertEqual(waiting.currentSchemaState, .ready)
        let runner = PluginCallRunner(plan: plan, method: "/a.B/C", side: .inbound, connection: "c")
        guard case .proceed = runner.start(headers: &headers) else { return XCTFail() }
        guard case .forward(let output) = runner.message(framed("schema"), direction: S2S_DIRECTION_REQUEST) else { return XCTFail() }
        XCTAssertEqual(text(output), "schema=4")
        runner.end(grpcStatus: 0)

        let refusing = try entry("probe-schema", options: #"{"rejectSchema":true}"#)
        refusing.deliverSchema([1])
        XCTAssertEqual(refusing.currentSchemaState,
                       .failed("plugin probe (test.plugins[0]) rejected the Temporal schema: the schema lacks what the probe needs (rejectSchema)"))
    }

    // MARK: Metadata rules

    func testOnlyCallMetadataIsEditableAndBinaryValuesAreEncoded() {
        XCTAssertTrue(PluginHeaderRules.isEditableName("temporal-namespace"))
        XCTAssertFalse(PluginHeaderRules.isEditableName(":path"))
        XCTAssertFalse(PluginHeaderRules.isEditableName("Upper"))
        XCTAssertFalse(PluginHeaderRules.isEditableName("te"))
        XCTAssertFalse(PluginHeaderRules.isEditableName(""))
        let binary: [UInt8] = [0, 1, 0xFE, 0xFF]
        let encoded = binary.withUnsafeBufferPointer { PluginHeaderRules.wireValue(name: "x-bin", bytes: $0) }
        XCTAssertEqual(encoded, "AAH+/w")
        XCTAssertEqual(PluginHeaderRules.pluginValue(name: "x-bin", value: "AAH+/w"), binary)
        let broken = Array("a\r\nb".utf8).withUnsafeBufferPointer { PluginHeaderRules.wireValue(name: "x-text", bytes: $0) }
        XCTAssertNil(broken)
    }
}
