// Swift plugin types driven through the C tables PluginExport builds, exactly as the host drives them.

import PluginABI
import PluginKit
import XCTest

final class PluginExportTests: XCTestCase {
    private func driver<P: TranslatorPlugin>(for type: P.Type) throws -> PluginDriver {
        let table = try XCTUnwrap(PluginExport.table(for: type, hostMajor: 1, hostMinor: 0))
        return PluginDriver(table: table)
    }

    /// Hosts outlive the configs made with them, as in the real host: the plugin keeps its handle.
    private var hosts: [FakeHost] = []

    private func config(
        _ driver: PluginDriver, _ options: String = "{}", host: FakeHost
    ) throws -> UnsafeMutableRawPointer {
        hosts.append(host)
        switch driver.configNew(options, host: host) {
        case .success(let config): return config
        case .failure(let error): throw error
        }
    }

    override func setUp() {
        MetadataPlugin.events.removeAll()
        MessagePlugin.events.removeAll()
    }

    // MARK: Entry and table

    func testTableDescribesThePluginAndItsABIVersion() throws {
        let driver = try driver(for: MetadataPlugin.self)
        XCTAssertEqual(driver.table.pointee.struct_size, UInt32(MemoryLayout<s2s_plugin_api_t>.size))
        XCTAssertEqual(driver.table.pointee.abi_major, UInt16(S2S_PLUGIN_ABI_MAJOR))
        XCTAssertEqual(driver.table.pointee.abi_minor, UInt16(S2S_PLUGIN_ABI_MINOR))
        XCTAssertEqual(driver.name, "test-metadata")
        XCTAssertEqual(driver.version, "0.1.0")
        XCTAssertEqual(driver.description, "Edits metadata for the export tests")
        XCTAssertNil(driver.table.pointee.schema_ready, "a plugin that needs no schema leaves schema_ready NULL")
        XCTAssertNotNil(driver.table.pointee.call_end)
        XCTAssertNil(try self.driver(for: MessagePlugin.self).description, "an empty description is NULL")
    }

    func testTableIsBuiltOncePerTypeAndDiffersBetweenTypes() throws {
        let first = PluginExport.table(for: MetadataPlugin.self, hostMajor: 1, hostMinor: 0)
        let again = PluginExport.table(for: MetadataPlugin.self, hostMajor: 1, hostMinor: 7)
        let other = PluginExport.table(for: MessagePlugin.self, hostMajor: 1, hostMinor: 0)
        XCTAssertEqual(first, again)
        XCTAssertNotEqual(first, other)
    }

    /// A name the header does not allow (it labels logs and metrics, and `name:` finds the file by it) is not
    /// exported: the entry point returns NULL, as for any type that cannot be exported.
    func testANameWithOtherCharactersIsNotExported() {
        XCTAssertNil(PluginExport.table(for: BadlyNamedPlugin.self, hostMajor: 1, hostMinor: 0))
        XCTAssertNotNil(PluginExport.table(for: MetadataPlugin.self, hostMajor: 1, hostMinor: 0))
    }

    func testEntryRefusesAHostOfAnotherMajorVersion() {
        XCTAssertNil(PluginExport.table(for: MetadataPlugin.self, hostMajor: 2, hostMinor: 0))
        XCTAssertNil(PluginExport.table(for: MetadataPlugin.self, hostMajor: 0, hostMinor: 9))
    }

    func testTypesExportedTogetherCreateTheirOwnInstances() throws {
        let host = FakeHost()
        let metadata = try driver(for: MetadataPlugin.self)
        let messages = try driver(for: MessagePlugin.self)
        let metadataConfig = try config(metadata, host: host)
        let messagesConfig = try config(messages, host: host)
        XCTAssertEqual(metadata.wants(metadataConfig, method: "/test.Svc/Requests", side: S2S_SIDE_INBOUND), 3)
        XCTAssertEqual(messages.wants(messagesConfig, method: "/test.Svc/Requests", side: S2S_SIDE_INBOUND), 7)
        metadata.configDestroy(metadataConfig)
        messages.configDestroy(messagesConfig)
    }

    // MARK: config_new and config_destroy

    func testConfigNewGivesThePluginItsOptionsLoggingAndMetrics() throws {
        let host = FakeHost()
        let driver = try driver(for: MetadataPlugin.self)
        let config = try config(driver, #"{"deny": ["/a.B/C", "/a.B/D"], "header": "x-mine"}"#, host: host)
        defer { driver.configDestroy(config) }
        XCTAssertEqual(
            host.logs, [FakeHost.LogLine(level: S2S_LOG_INFO.rawValue, message: "configured with 2 denied methods")]
        )
        XCTAssertEqual(host.metrics, [
            FakeHost.Metric(kind: S2S_METRIC_COUNTER.rawValue, name: "calls_total", help: "Calls seen"),
            FakeHost.Metric(kind: S2S_METRIC_HISTOGRAM.rawValue, name: "latency_seconds", help: "Made-up latencies"),
        ])
        let call = FakeCall()
        XCTAssertEqual(driver.callStart(config, call: call, method: "/a.B/Z"), S2S_OK)
        XCTAssertEqual(host.recorded.map(\.id), [1, 2])
        XCTAssertEqual(host.recorded.map(\.value), [1, 0.25])
        XCTAssertEqual(call.edits.first, FakeCall.Edit(kind: "set", name: "x-mine", value: Array("stamped".utf8)))
    }

    func testDisabledLogLevelIsNotFormatted() throws {
        let host = FakeHost()
        host.minimumLogLevel = S2S_LOG_INFO.rawValue
        let driver = try driver(for: MetadataPlugin.self)
        let config = try config(driver, host: host)
        defer { driver.configDestroy(config) }
        host.logs.removeAll()
        XCTAssertEqual(driver.callStart(config, call: FakeCall(), method: "/a.B/C"), S2S_OK)
        XCTAssertEqual(host.logs, [], "debug is below the host's level")
        XCTAssertGreaterThan(host.logEnabledQueries, 0, "the level was asked before formatting")
    }

    func testConfigNewReportsThePluginsErrorInTheHostBuffer() throws {
        let driver = try driver(for: MetadataPlugin.self)
        let result = driver.configNew(#"{"failInit": true}"#, host: FakeHost())
        XCTAssertEqual(result.failureValue?.message, "failInit was set, so this entry fails: remove failInit")
        XCTAssertEqual(result.failureValue?.terminated, true)
    }

    func testConfigNewReportsOptionsOfTheWrongType() throws {
        let driver = try driver(for: MetadataPlugin.self)
        let result = driver.configNew(#"{"deny": "/a.B/C"}"#, host: FakeHost())
        XCTAssertEqual(result.failureValue?.message, "options.deny must be a list, not a string")
    }

    func testConfigNewReportsInvalidJSON() throws {
        let driver = try driver(for: MetadataPlugin.self)
        XCTAssertEqual(
            driver.configNew(#"{"deny": [}"#, host: FakeHost()).failureValue?.message,
            "options are not valid JSON: invalid JSON at byte 10: unexpected '}' where a JSON value was expected"
        )
        XCTAssertEqual(
            driver.configNew("[1]", host: FakeHost()).failureValue?.message,
            "options must be a JSON object (a YAML mapping), not an array"
        )
    }

    func testConfigNewRejectsOptionKeysThePluginNeverRead() throws {
        let driver = try driver(for: MetadataPlugin.self)
        XCTAssertEqual(
            driver.configNew(#"{"denied": ["/a.B/C"]}"#, host: FakeHost()).failureValue?.message,
            "options has unknown key 'denied'; this plugin reads: deny, failInit, header"
        )
    }

    func testEmptyOptionsTextMeansNoOptions() throws {
        let driver = try driver(for: MetadataPlugin.self)
        let config = try config(driver, "", host: FakeHost())
        driver.configDestroy(config)
    }

    func testErrorTextIsTruncatedOnACharacterBoundaryAndTerminated() throws {
        let driver = try driver(for: VerbosePlugin.self)
        let message = VerbosePlugin.failureMessage
        for capacity in 1...(message.utf8.count + 2) {
            let result = driver.configNew("{}", host: FakeHost(), errorCapacity: capacity)
            let error = try XCTUnwrap(result.failureValue)
            XCTAssertTrue(error.terminated, "capacity \(capacity)")
            XCTAssertLessThanOrEqual(error.message.utf8.count, capacity - 1)
            XCTAssertTrue(message.hasPrefix(error.message), "capacity \(capacity): \(error.message)")
            XCTAssertFalse(error.message.contains("\u{FFFD}"), "capacity \(capacity) cut a character")
            if capacity > message.utf8.count {
                XCTAssertEqual(error.message, message)
            }
        }
    }

    func testZeroCapacityOrNullErrorBufferIsLeftAlone() throws {
        let driver = try driver(for: VerbosePlugin.self)
        let host = FakeHost()
        var byte: CChar = 0x55
        var options = "{}"
        let config = options.withUTF8 { utf8 in
            let bytes = s2s_bytes_t(data: utf8.baseAddress, len: utf8.count)
            return driver.table.pointee.config_new!(driver.table, host.table, host.handle, bytes, &byte, 0)
        }
        XCTAssertNil(config)
        XCTAssertEqual(byte, 0x55)
        let withoutBuffer = options.withUTF8 { utf8 in
            let bytes = s2s_bytes_t(data: utf8.baseAddress, len: utf8.count)
            return driver.table.pointee.config_new!(driver.table, host.table, host.handle, bytes, nil, 64)
        }
        XCTAssertNil(withoutBuffer)
    }

    func testConfigDestroyReleasesThePlugin() throws {
        let driver = try driver(for: MetadataPlugin.self)
        let config = try config(driver, host: FakeHost())
        XCTAssertFalse(MetadataPlugin.events.all.contains("deinit"))
        driver.configDestroy(config)
        XCTAssertEqual(MetadataPlugin.events.all.filter { $0 == "deinit" }.count, 1)
    }

    // MARK: wants

    func testWantsAnswersPerMethodAndSideAndMessagesImplyTheCall() throws {
        let driver = try driver(for: MetadataPlugin.self)
        let config = try config(driver, host: FakeHost())
        defer { driver.configDestroy(config) }
        XCTAssertEqual(driver.wants(config, method: "/test.Svc/Nothing", side: S2S_SIDE_INBOUND), 0)
        XCTAssertEqual(driver.wants(config, method: "/test.Svc/Any", side: S2S_SIDE_OUTBOUND), S2S_WANTS_CALL)
        XCTAssertEqual(
            driver.wants(config, method: "/test.Svc/Requests", side: S2S_SIDE_INBOUND),
            S2S_WANTS_CALL | S2S_WANTS_REQUEST_MESSAGES
        )
        XCTAssertEqual(driver.wants(config, method: "/test.Svc/Inbound", side: S2S_SIDE_INBOUND), S2S_WANTS_CALL)
        XCTAssertEqual(driver.wants(config, method: "/test.Svc/Inbound", side: S2S_SIDE_OUTBOUND), 0)
        XCTAssertEqual(
            driver.wants(config, method: "/test.Svc/Any", side: s2s_side_t(rawValue: 9)), 0,
            "a side this SDK does not know is not wanted"
        )
    }

    // MARK: call_start

    func testCallStartReadsAndEditsMetadataInOrder() throws {
        let driver = try driver(for: MetadataPlugin.self)
        let config = try config(driver, host: FakeHost())
        defer { driver.configDestroy(config) }
        let call = FakeCall()
        let outcome = driver.callStart(
            config, call: call, method: "/a.B/C",
            headers: [("x-team", "blue"), ("temporal-namespace", "ns"), ("x-team", "green")]
        )
        XCTAssertEqual(outcome, S2S_OK)
        XCTAssertEqual(MetadataPlugin.events.all.prefix(2), [
            "headers x-team=blue,temporal-namespace=ns,x-team=green", "team blue of 2",
        ])
        XCTAssertEqual(call.edits, [
            FakeCall.Edit(kind: "set", name: "x-stamp", value: Array("stamped".utf8)),
            FakeCall.Edit(kind: "add", name: "x-added", value: Array("1".utf8)),
            FakeCall.Edit(kind: "set", name: "x-trace-bin", value: [0, 1, 2]),
            FakeCall.Edit(kind: "remove", name: "x-remove", value: nil),
        ])
        XCTAssertNotNil(call.state, "a started call carries a state marker even without state")
        driver.callEnd(config, call: call, grpcStatus: 0)
        XCTAssertEqual(MetadataPlugin.events.all.last, "end 0")
    }

    func testCallStartRejectionSetsTheStatusAndSkipsEndCall() throws {
        let driver = try driver(for: MetadataPlugin.self)
        let config = try config(driver, #"{"deny": ["/a.B/Denied"]}"#, host: FakeHost())
        defer { driver.configDestroy(config) }
        let call = FakeCall()
        XCTAssertEqual(driver.callStart(config, call: call, method: "/a.B/Denied"), S2S_REJECTED)
        XCTAssertEqual(call.status, FakeCall.Status(code: 7, message: "/a.B/Denied is denied"))
        XCTAssertNil(call.state)
        driver.callEnd(config, call: call, grpcStatus: 7)
        XCTAssertFalse(MetadataPlugin.events.all.contains { $0.hasPrefix("end") }, "a rejected call was not started")
    }

    func testThrowingFromCallStartIsAnErrorWithTheMessage() throws {
        let driver = try driver(for: MetadataPlugin.self)
        let config = try config(driver, host: FakeHost())
        defer { driver.configDestroy(config) }
        let call = FakeCall()
        XCTAssertEqual(driver.callStart(config, call: call, method: "/a.B/C", headers: [("x-fail", "1")]), S2S_ERROR)
        XCTAssertEqual(call.status?.message, "x-fail was present")
        XCTAssertNil(call.state)
    }

    func testRefusedHeaderEditPropagatesAsAnError() throws {
        let driver = try driver(for: MetadataPlugin.self)
        let config = try config(driver, #"{"header": "X-Upper"}"#, host: FakeHost())
        defer { driver.configDestroy(config) }
        let call = FakeCall()
        XCTAssertEqual(driver.callStart(config, call: call, method: "/a.B/C"), S2S_ERROR)
        XCTAssertEqual(call.status?.code, 13)
        XCTAssertTrue(call.status?.message.hasPrefix("the host refused to set request header 'X-Upper'") ?? false)
        XCTAssertEqual(call.edits, [])
    }

    func testShorterCallInfoReadsOnlyTheFieldsItCovers() throws {
        let driver = try driver(for: MetadataPlugin.self)
        let host = FakeHost()
        let config = try config(driver, host: host)
        defer { driver.configDestroy(config) }
        let throughSide = MemoryLayout<s2s_call_info_t>.offset(of: \.side)! + MemoryLayout<s2s_side_t>.size
        let call = FakeCall()
        let outcome = driver.callStart(
            config, call: call, method: "/a.B/C", connection: "unseen", headers: [("x-team", "unseen")],
            structSize: throughSide
        )
        XCTAssertEqual(outcome, S2S_OK)
        XCTAssertEqual(MetadataPlugin.events.all.first, "headers ")
        XCTAssertEqual(host.logs.last?.message, "start /a.B/C inbound ")
    }

    func testCallStartWithMalformedInfoIsAnErrorNotACrash() throws {
        let driver = try driver(for: MetadataPlugin.self)
        let config = try config(driver, host: FakeHost())
        defer { driver.configDestroy(config) }
        let call = FakeCall()
        var state: UnsafeMutableRawPointer? = nil
        XCTAssertEqual(driver.table.pointee.call_start!(config, call.handle, nil, &state), S2S_ERROR)
        var info = s2s_call_info_t()
        info.struct_size = UInt32(MemoryLayout<s2s_call_info_t>.size)
        info.side = S2S_SIDE_INBOUND
        info.method = s2s_bytes_t(data: nil, len: 5)
        XCTAssertEqual(driver.table.pointee.call_start!(config, call.handle, &info, &state), S2S_ERROR)
        info.method = s2s_bytes_t(data: nil, len: -1)
        XCTAssertEqual(driver.table.pointee.call_start!(config, call.handle, &info, &state), S2S_ERROR)
        let method: [UInt8] = Array("/a.B/C".utf8)
        method.withUnsafeBufferPointer { bytes in
            info.method = s2s_bytes_t(data: bytes.baseAddress, len: bytes.count)
            info.header_count = 3
            info.headers = nil
            XCTAssertEqual(driver.table.pointee.call_start!(config, call.handle, &info, &state), S2S_ERROR)
            info.header_count = 0
            info.side = s2s_side_t(rawValue: 0)
            XCTAssertEqual(driver.table.pointee.call_start!(config, call.handle, &info, &state), S2S_ERROR)
        }
        XCTAssertNil(state)
        XCTAssertTrue(call.status?.message.contains("ABI violation") ?? false)
        XCTAssertEqual(driver.table.pointee.call_start!(nil, call.handle, &info, &state), S2S_ERROR)
    }

    // MARK: on_message and call_end

    func testStateFollowsTheCallThroughItsMessagesAndIsReleasedAtTheEnd() throws {
        let driver = try driver(for: MessagePlugin.self)
        let config = try config(driver, host: FakeHost())
        defer { driver.configDestroy(config) }
        let call = FakeCall()
        XCTAssertEqual(driver.callStart(config, call: call, method: "/a.B/Stream"), S2S_OK)
        XCTAssertEqual(
            driver.onMessage(config, call: call, direction: S2S_DIRECTION_REQUEST, payload: Array("keep".utf8)), S2S_OK
        )
        XCTAssertNil(call.replacement)
        XCTAssertEqual(
            driver.onMessage(config, call: call, direction: S2S_DIRECTION_RESPONSE, payload: Array("hello".utf8)),
            S2S_REPLACED
        )
        XCTAssertEqual(call.replacement, Array("hello+1/1".utf8))
        XCTAssertEqual(
            driver.onMessage(
                config, call: call, direction: S2S_DIRECTION_REQUEST, index: 1, payload: Array("x".utf8),
                compressed: true
            ),
            S2S_REPLACED
        )
        XCTAssertEqual(call.replacement, Array("x+2/1".utf8))
        driver.callEnd(config, call: call, grpcStatus: 5)
        XCTAssertEqual(MessagePlugin.events.all, [
            "/a.B/Stream request #0 keep",
            "/a.B/Stream response #0 hello",
            "/a.B/Stream request #1 x compressed",
            "end /a.B/Stream requests=2 responses=1 status=5 code=notFound",
            "state released",
        ])
    }

    func testMessageRejectionAndFailureCarryTheirStatus() throws {
        let driver = try driver(for: MessagePlugin.self)
        let config = try config(driver, host: FakeHost())
        defer { driver.configDestroy(config) }
        let call = FakeCall()
        XCTAssertEqual(driver.callStart(config, call: call, method: "/a.B/C"), S2S_OK)
        XCTAssertEqual(
            driver.onMessage(
                config, call: call, direction: S2S_DIRECTION_REQUEST, index: 4, payload: Array("reject".utf8)
            ),
            S2S_REJECTED
        )
        XCTAssertEqual(call.status, FakeCall.Status(code: 3, message: "rejected message 4"))
        XCTAssertEqual(
            driver.onMessage(config, call: call, direction: S2S_DIRECTION_RESPONSE, payload: Array("fail".utf8)),
            S2S_ERROR
        )
        XCTAssertEqual(call.status?.message, "cannot handle message 0")
        driver.callEnd(config, call: call, grpcStatus: -1)
        XCTAssertTrue(MessagePlugin.events.all.contains("end /a.B/C requests=1 responses=1 status=reset code=none"))
    }

    func testReplacementTheHostRefusesIsAnError() throws {
        let driver = try driver(for: MessagePlugin.self)
        let config = try config(driver, host: FakeHost())
        defer { driver.configDestroy(config) }
        let call = FakeCall()
        call.acceptsReplacement = false
        XCTAssertEqual(driver.callStart(config, call: call, method: "/a.B/C"), S2S_OK)
        XCTAssertEqual(driver.onMessage(config, call: call, direction: S2S_DIRECTION_REQUEST, payload: [1]), S2S_ERROR)
        XCTAssertEqual(call.status?.message, "the host refused the replacement message")
        driver.callEnd(config, call: call, grpcStatus: 13)
    }

    func testMalformedMessagesAreErrorsNotCrashes() throws {
        let driver = try driver(for: MessagePlugin.self)
        let config = try config(driver, host: FakeHost())
        defer { driver.configDestroy(config) }
        let call = FakeCall()
        XCTAssertEqual(driver.table.pointee.on_message!(config, nil, call.handle, nil), S2S_ERROR, "no state")
        XCTAssertEqual(driver.callStart(config, call: call, method: "/a.B/C"), S2S_OK)
        XCTAssertEqual(driver.table.pointee.on_message!(config, call.state, call.handle, nil), S2S_ERROR, "no message")
        var message = s2s_message_t()
        message.struct_size = UInt32(MemoryLayout<s2s_message_t>.size)
        message.direction = s2s_direction_t(rawValue: 3)
        let onMessage = try XCTUnwrap(driver.table.pointee.on_message)
        XCTAssertEqual(onMessage(config, call.state, call.handle, &message), S2S_ERROR, "direction")
        message.direction = S2S_DIRECTION_REQUEST
        message.payload = s2s_bytes_t(data: nil, len: 10)
        XCTAssertEqual(onMessage(config, call.state, call.handle, &message), S2S_ERROR, "payload")
        message.payload = s2s_bytes_t(data: nil, len: 0)
        message.index = UInt64.max
        XCTAssertEqual(onMessage(config, call.state, call.handle, &message), S2S_ERROR, "index")
        message.index = 0
        call.inMessageHook = true
        XCTAssertEqual(onMessage(config, call.state, call.handle, &message), S2S_REPLACED, "empty")
        XCTAssertEqual(call.replacement, Array("+1/0".utf8))
        driver.callEnd(config, call: call, grpcStatus: 0)
    }

    func testCallEndWithoutAnEndStructReportsAReset() throws {
        let driver = try driver(for: MessagePlugin.self)
        let config = try config(driver, host: FakeHost())
        defer { driver.configDestroy(config) }
        let call = FakeCall()
        XCTAssertEqual(driver.callStart(config, call: call, method: "/a.B/C"), S2S_OK)
        driver.table.pointee.call_end?(config, call.state, call.handle, nil)
        XCTAssertEqual(
            MessagePlugin.events.all, ["end /a.B/C requests=0 responses=0 status=reset code=none", "state released"]
        )
    }

    // MARK: Older and newer hosts

    func testAHostTableShorterThanTodaysIsReadOnlyAsFarAsItGoes() throws {
        let throughLogEnabled = MemoryLayout<s2s_host_api_t>.offset(of: \.log_enabled)! + MemoryLayout<Int>.size
        let host = FakeHost(structSize: throughLogEnabled)
        let driver = try driver(for: MetadataPlugin.self)
        let config = try config(driver, host: host)
        defer { driver.configDestroy(config) }
        XCTAssertEqual(host.logs.map(\.message), ["configured with 0 denied methods"], "logging is covered")
        let call = FakeCall()
        XCTAssertEqual(driver.callStart(config, call: call, method: "/a.B/C"), S2S_ERROR, "no header edits to make")
        XCTAssertEqual(call.edits, [])
        XCTAssertNil(call.status, "set_status is not covered either")
        XCTAssertEqual(host.metrics, [])
        XCTAssertEqual(host.violations, [], "nothing beyond struct_size was called")
    }

    func testANewerHostTableIsReadUpToTodaysFields() throws {
        let host = FakeHost(structSize: MemoryLayout<s2s_host_api_t>.size + 64, abiMinor: 9)
        let driver = try driver(for: MetadataPlugin.self)
        let config = try config(driver, host: host)
        defer { driver.configDestroy(config) }
        XCTAssertEqual(driver.callStart(config, call: FakeCall(), method: "/a.B/C"), S2S_OK)
    }

    // MARK: schema_ready

    func testSchemaReadyReceivesTheSchemaOrReportsWhatIsMissing() throws {
        let driver = try driver(for: SchemaPlugin.self)
        let schemaReady = try XCTUnwrap(driver.table.pointee.schema_ready)
        let config = try config(driver, host: FakeHost())
        defer { driver.configDestroy(config) }
        XCTAssertEqual(driver.wants(config, method: "/a.B/C", side: S2S_SIDE_INBOUND), 0)
        var error = [CChar](repeating: 0x55, count: 128)
        let empty = schemaReady(config, s2s_bytes_t(data: nil, len: 0), &error, error.count)
        XCTAssertEqual(empty, S2S_ERROR)
        XCTAssertEqual(String(cString: error), "the schema has no file for temporal.api.workflowservice.v1")
        XCTAssertEqual(schemaReady(config, s2s_bytes_t(data: nil, len: 3), &error, error.count), S2S_ERROR)
        let schema: [UInt8] = [0x0A, 0x01, 0x00]
        let outcome = schema.withUnsafeBufferPointer {
            schemaReady(config, s2s_bytes_t(data: $0.baseAddress, len: $0.count), &error, error.count)
        }
        XCTAssertEqual(outcome, S2S_OK)
        XCTAssertEqual(driver.wants(config, method: "/a.B/C", side: S2S_SIDE_INBOUND), S2S_WANTS_CALL)
    }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}

private final class BadlyNamedPlugin: TranslatorPlugin {
    static let name = "team header"
    static let version = "1.0.0"
    static let description = ""

    init(options: PluginOptions, host: PluginHost) throws {}

    func wants(method: String, side: CallSide) -> Wants { .call }
}
