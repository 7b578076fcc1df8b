// PluginKitTesting: drive a PluginKit plugin in-process from XCTest or Swift Testing, through the very C table the
// proxy loads (PluginExport.table), with a host that records what the plugin asked of it: log lines, metrics,
// metadata edits, replacement messages and statuses.
//
//     let host = try PluginTestHost(TeamHeader.self, options: #"{"required": true}"#)
//     let call = host.startCall(method: "/a.B/C", headers: [("x-team", "ops")])
//     #expect(call.outcome == .proceeded)
//     #expect(call.header("x-forwarded-team") == "ops")
//     #expect(call.request(bytes) == .unchanged)
//     call.end()
//     #expect(host.counter("team_header_missing_total") == 0)
//
// Everything crosses the boundary as it does in the proxy: options as JSON text (and through the ABI 1.1 option
// readers), the schema as FileDescriptorSet bytes, metadata as host-owned C structs, messages as payload bytes
// without the 5-byte gRPC prefix. What the host checks on its side (header names a plugin may edit, status codes)
// is checked here too, so a test fails where the proxy would refuse.

import PluginABI
import PluginKit

/// A plugin's config could not be created, or it refused the schema: the plugin's own message.
public struct PluginTestError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public var description: String { message }

    public init(message: String) {
        self.message = message
    }
}

/// How a hook ended a call's step.
public enum PluginTestOutcome: Equatable, Sendable {
    /// call_start let the call go on.
    case proceeded
    /// on_message forwarded the message as it came.
    case unchanged
    /// on_message replaced the message with these bytes.
    case replaced([UInt8])
    /// The plugin ended the call with a status the caller would receive.
    case rejected(StatusCode, String)
    /// The plugin failed (S2S_ERROR) with this detail; the chain entry's onError would decide.
    case failed(String)
    /// The plugin did not want this call or message (its `wants` left it out), so the proxy would not run it.
    case notWanted
}

/// A line a plugin logged: its level ("debug", "info", "warning", "error") and text.
public struct PluginLogLine: Equatable, Sendable {
    public let level: String
    public let message: String

    public init(level: String, message: String) {
        self.level = level
        self.message = message
    }
}

/// One chain entry of a plugin, created with its options as the proxy creates it.
public final class PluginTestHost<Plugin: TranslatorPlugin> {
    /// The lines the plugin logged, in order.
    public var logs: [PluginLogLine] { state.logs }

    private let state: HostState
    private let table: UnsafePointer<s2s_plugin_api_t>
    private let config: UnsafeMutableRawPointer

    /// Creates the plugin's config from `options` (a JSON object, as the proxy hands over a chain entry's YAML
    /// `options:`), and gives it `schema` (a serialized FileDescriptorSet, e.g. saved with `s2s-proxy schema
    /// pull`) if the plugin needs one.
    ///
    /// - Throws: ``PluginTestError`` with the plugin's message if it refuses the options or the schema.
    public init(_ type: Plugin.Type, options: String = "{}", schema: [UInt8]? = nil) throws {
        guard let raw = PluginExport.table(
            for: type, hostMajor: UInt32(S2S_PLUGIN_ABI_MAJOR), hostMinor: UInt32(S2S_PLUGIN_ABI_MINOR)
        ) else {
            throw PluginTestError(message: "PluginKit refused to export \(Plugin.name) (its reason is on stderr)")
        }
        let table = raw.assumingMemoryBound(to: s2s_plugin_api_t.self)
        self.table = table
        let state = HostState()
        self.state = state
        state.options = OptionReaderAnswers(json: options)
        var error = [CChar](repeating: 0, count: 4096)
        let optionBytes = Array(options.utf8)
        let created = optionBytes.withUnsafeBufferPointer { bytes in
            error.withUnsafeMutableBufferPointer { buffer in
                table.pointee.config_new(
                    table, HostState.api, state.handle, s2s_bytes_t(data: bytes.baseAddress, len: bytes.count),
                    buffer.baseAddress, buffer.count - 1
                )
            }
        }
        state.options = nil
        guard let created else {
            throw PluginTestError(message: String(cString: error))
        }
        config = created
        if let schemaReady = table.pointee.schema_ready {
            let outcome = (schema ?? []).withUnsafeBufferPointer { bytes in
                error.withUnsafeMutableBufferPointer { buffer in
                    schemaReady(
                        created, s2s_bytes_t(data: bytes.baseAddress, len: bytes.count), buffer.baseAddress,
                        buffer.count - 1
                    )
                }
            }
            guard outcome == S2S_OK else {
                table.pointee.config_destroy?(created)
                throw PluginTestError(message: String(cString: error))
            }
        }
        state.definingAllowed = false
    }

    deinit {
        table.pointee.config_destroy?(config)
    }

    /// What the plugin wants of calls of `method` (a gRPC path) on `side`.
    public func wants(method: String, side: CallSide = .inbound) -> Wants {
        var bytes = Array(method.utf8)
        let bits = bytes.withUnsafeMutableBufferPointer { buffer in
            table.pointee.wants(config, s2s_bytes_t(data: buffer.baseAddress, len: buffer.count), side.abiValue)
        }
        return Wants(rawValue: bits)
    }

    /// Starts a call as the proxy would: `call_start` with the method, side and request metadata (for "-bin" names,
    /// the decoded bytes as text). A call the plugin does not want is not started (`outcome` is `.notWanted`).
    public func startCall(
        method: String, side: CallSide = .inbound, headers: [(String, String)] = [], connection: String = "test"
    ) -> PluginTestCall<Plugin> {
        PluginTestCall(
            host: self, method: method, side: side, wants: wants(method: method, side: side),
            headers: headers.map { ($0.0, Array($0.1.utf8)) }, connection: connection
        )
    }

    /// The total a counter has recorded (nil if the plugin defined no counter of that name).
    public func counter(_ name: String) -> Double? {
        state.metrics.first { $0.name == name && $0.kind == S2S_METRIC_COUNTER }.map { $0.values.reduce(0, +) }
    }

    /// The values a histogram has observed, in order (nil if the plugin defined no histogram of that name).
    public func histogram(_ name: String) -> [Double]? {
        state.metrics.first { $0.name == name && $0.kind == S2S_METRIC_HISTOGRAM }?.values
    }

    // The parts a call needs.
    fileprivate var api: UnsafePointer<s2s_plugin_api_t> { table }
    fileprivate var pluginConfig: UnsafeMutableRawPointer { config }
}

/// One call through the plugin: its request metadata, messages each way, and end.
public final class PluginTestCall<Plugin: TranslatorPlugin> {
    /// What `call_start` decided.
    public private(set) var outcome: PluginTestOutcome = .notWanted
    /// The request metadata after the plugin's edits, in order (the values of "-bin" names as decoded bytes).
    public private(set) var headers: [(name: String, value: [UInt8])]

    private let host: PluginTestHost<Plugin>
    private let wants: Wants
    private let state = CallState()
    private var callState: UnsafeMutableRawPointer?
    private var requestCount: UInt64 = 0
    private var responseCount: UInt64 = 0
    private var ended = false

    fileprivate init(
        host: PluginTestHost<Plugin>, method: String, side: CallSide, wants: Wants,
        headers: [(String, [UInt8])], connection: String
    ) {
        self.host = host
        self.wants = wants
        self.headers = headers.map { (name: $0.0, value: $0.1) }
        guard !wants.isEmpty else { return }
        state.headers = self.headers
        let methodBytes = Array(method.utf8)
        let connectionBytes = Array(connection.utf8)
        let names = headers.map { Array($0.0.utf8) }
        let values = headers.map(\.1)
        var stateOut: UnsafeMutableRawPointer?
        let result: s2s_outcome_t = methodBytes.withUnsafeBufferPointer { method in
            connectionBytes.withUnsafeBufferPointer { connection in
                withHeaderEntries(names, values) { entries in
                    var info = s2s_call_info_t(
                        struct_size: UInt32(MemoryLayout<s2s_call_info_t>.size),
                        method: s2s_bytes_t(data: method.baseAddress, len: method.count),
                        side: side.abiValue,
                        connection: s2s_bytes_t(data: connection.baseAddress, len: connection.count),
                        headers: entries.baseAddress, header_count: entries.count
                    )
                    state.hook = .callStart
                    defer { state.hook = .none }
                    return host.api.pointee.call_start(host.pluginConfig, state.handle, &info, &stateOut)
                }
            }
        }
        callState = stateOut
        self.headers = state.headers
        switch result {
        case S2S_OK: outcome = .proceeded
        case S2S_REJECTED: outcome = state.rejection()
        default: outcome = .failed(state.statusMessage ?? "")
        }
    }

    deinit {
        if !ended { end(status: -1) }
    }

    /// The first value of request header `name` after the plugin's edits, as text.
    public func header(_ name: String) -> String? {
        headers.first { $0.name == name }.map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// A request message (the protobuf bytes, without the 5-byte gRPC prefix) through `on_message`.
    public func request(_ payload: [UInt8], compressed: Bool = false) -> PluginTestOutcome {
        message(payload, direction: S2S_DIRECTION_REQUEST, wanted: wants.contains(.requestMessages), compressed)
    }

    /// A response message through `on_message`.
    public func response(_ payload: [UInt8], compressed: Bool = false) -> PluginTestOutcome {
        message(payload, direction: S2S_DIRECTION_RESPONSE, wanted: wants.contains(.responseMessages), compressed)
    }

    /// The response's headers through `on_response_metadata` (ABI 1.1), for a plugin that wants them: what it
    /// decided and the headers after its edits. Pass them as the server sends them (no pseudo-headers).
    public func responseHeaders(_ headers: [(String, String)]) -> (outcome: PluginTestOutcome, headers: [(name: String, value: [UInt8])]) {
        responseMetadata(headers, kind: S2S_METADATA_RESPONSE_HEADERS)
    }

    /// The response's trailers (`grpc-status`, `grpc-message`, `grpc-status-details-bin` as its decoded bytes
    /// in text, ...) through `on_response_metadata`.
    public func responseTrailers(_ trailers: [(String, [UInt8])]) -> (outcome: PluginTestOutcome, headers: [(name: String, value: [UInt8])]) {
        responseMetadata(trailers.map { ($0.0, String(decoding: $0.1, as: UTF8.self)) }, kind: S2S_METADATA_RESPONSE_TRAILERS,
                         raw: trailers)
    }

    private func responseMetadata(
        _ headers: [(String, String)], kind: s2s_metadata_kind_t, raw: [(String, [UInt8])]? = nil
    ) -> (outcome: PluginTestOutcome, headers: [(name: String, value: [UInt8])]) {
        let entries = raw ?? headers.map { ($0.0, Array($0.1.utf8)) }
        let status = entries.first { $0.0 == "grpc-status" }.map { String(decoding: $0.1, as: UTF8.self) }
        let failed = status != nil && status != "0"
        let wanted = wants.contains(.responseMetadata)
            || (kind == S2S_METADATA_RESPONSE_TRAILERS && failed && wants.contains(.errorTrailers))
        guard wanted, outcome == .proceeded, !ended,
              let hook = host.api.pointee.on_response_metadata
        else { return (.notWanted, entries.map { (name: $0.0, value: $0.1) }) }
        state.headers = entries.map { (name: $0.0, value: $0.1) }
        state.statusCode = 0
        state.statusMessage = nil
        let result: s2s_outcome_t = withHeaderEntries(entries.map { Array($0.0.utf8) }, entries.map(\.1)) { list in
            var metadata = s2s_metadata_t(
                struct_size: UInt32(MemoryLayout<s2s_metadata_t>.size), kind: kind, headers: list.baseAddress,
                header_count: list.count
            )
            state.hook = .responseMetadata
            defer { state.hook = .none }
            return hook(host.pluginConfig, callState, state.handle, &metadata)
        }
        let decided: PluginTestOutcome
        switch result {
        case S2S_OK: decided = .unchanged
        case S2S_REJECTED: decided = state.rejection()
        default: decided = .failed(state.statusMessage ?? "")
        }
        return (decided, state.headers)
    }

    /// Ends the call: `call_end` with the gRPC status the client received (-1: reset or cut off). Once; a call
    /// not ended is ended with -1 when it goes away.
    public func end(status: Int32 = 0) {
        guard !ended else { return }
        ended = true
        guard !wants.isEmpty, let callEnd = host.api.pointee.call_end else { return }
        var info = s2s_call_end_t(struct_size: UInt32(MemoryLayout<s2s_call_end_t>.size), grpc_status: status)
        state.hook = .callEnd
        defer { state.hook = .none }
        callEnd(host.pluginConfig, callState, state.handle, &info)
    }

    private func message(
        _ payload: [UInt8], direction: s2s_direction_t, wanted: Bool, _ compressed: Bool
    ) -> PluginTestOutcome {
        guard wanted, outcome == .proceeded, !ended, let onMessage = host.api.pointee.on_message else {
            return .notWanted
        }
        let index: UInt64
        if direction == S2S_DIRECTION_REQUEST {
            index = requestCount
            requestCount += 1
        } else {
            index = responseCount
            responseCount += 1
        }
        state.replacement = nil
        state.statusCode = 0
        state.statusMessage = nil
        let result: s2s_outcome_t = payload.withUnsafeBufferPointer { bytes in
            var message = s2s_message_t(
                struct_size: UInt32(MemoryLayout<s2s_message_t>.size), direction: direction, index: index,
                payload: s2s_bytes_t(data: bytes.baseAddress, len: bytes.count), compressed: compressed ? 1 : 0
            )
            state.hook = .message
            defer { state.hook = .none }
            return onMessage(host.pluginConfig, callState, state.handle, &message)
        }
        switch result {
        case S2S_OK: return .unchanged
        case S2S_REPLACED:
            guard let replacement = state.replacement else {
                return .failed("returned S2S_REPLACED without set_message")
            }
            return .replaced(replacement)
        case S2S_REJECTED: return state.rejection()
        default: return .failed(state.statusMessage ?? "")
        }
    }
}

// MARK: The host's side

/// What one config's host functions record; the `s2s_host_t *` the plugin gets is this object, unretained.
private final class HostState {
    struct Metric {
        let kind: s2s_metric_kind_t
        let name: String
        var values: [Double] = []
    }

    var logs: [PluginLogLine] = []
    var metrics: [Metric] = []
    var definingAllowed = true
    /// The options while config_new runs, for the option readers (their strings live as long as it runs, as in the
    /// proxy).
    var options: OptionReaderAnswers?

    var handle: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }

    static func from(_ handle: OpaquePointer?) -> HostState? {
        handle.map { Unmanaged<HostState>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
    }

    static let api: UnsafePointer<s2s_host_api_t> = {
        let table = UnsafeMutablePointer<s2s_host_api_t>.allocate(capacity: 1)
        table.initialize(to: s2s_host_api_t(
            struct_size: UInt32(MemoryLayout<s2s_host_api_t>.size),
            abi_major: UInt16(S2S_PLUGIN_ABI_MAJOR),
            abi_minor: UInt16(S2S_PLUGIN_ABI_MINOR),
            log: { host, level, message, length in
                let text = message.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: length), as: UTF8.self) }
                HostState.from(host)?.logs.append(.init(level: levelName(level), message: text ?? ""))
            },
            log_enabled: { _, _ in 1 },
            define_metric: { host, kind, name, nameLength, _, _ in
                guard let state = HostState.from(host), state.definingAllowed, let name,
                      kind == S2S_METRIC_COUNTER || kind == S2S_METRIC_HISTOGRAM
                else { return 0 }
                let text = String(decoding: UnsafeRawBufferPointer(start: name, count: nameLength), as: UTF8.self)
                guard !text.isEmpty, text.utf8.allSatisfy({ $0 == 95 || (48...57).contains($0)
                    || (65...90).contains($0) || (97...122).contains($0) })
                else { return 0 }
                if let index = state.metrics.firstIndex(where: { $0.name == text }) {
                    return state.metrics[index].kind == kind ? UInt32(index + 1) : 0
                }
                state.metrics.append(Metric(kind: kind, name: text))
                return UInt32(state.metrics.count)
            },
            record_metric: { host, id, value in
                guard let state = HostState.from(host), id > 0, Int(id) <= state.metrics.count else { return }
                state.metrics[Int(id) - 1].values.append(value)
            },
            set_header: { call, name, nameLength, value, valueLength in
                CallState.from(call)?.edit(.set, name, nameLength, value, valueLength) ?? -1
            },
            add_header: { call, name, nameLength, value, valueLength in
                CallState.from(call)?.edit(.add, name, nameLength, value, valueLength) ?? -1
            },
            remove_header: { call, name, nameLength in
                CallState.from(call)?.edit(.remove, name, nameLength, nil, 0) ?? -1
            },
            set_message: { call, data, length in
                guard let state = CallState.from(call), state.hook == .message, data != nil || length == 0 else {
                    return -1
                }
                state.replacement = data.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? []
                return 0
            },
            set_status: { call, code, message, length in
                guard let state = CallState.from(call), state.hook != .none, code <= 16 else { return -1 }
                state.statusCode = code
                state.statusMessage = message.map {
                    String(decoding: UnsafeRawBufferPointer(start: $0, count: length), as: UTF8.self)
                } ?? ""
                return 0
            },
            option_type: { host, pointer, length in
                HostState.from(host)?.options?.type(at: pointer, length: length) ?? S2S_OPTION_ABSENT
            },
            option_string: { host, pointer, length, value in
                HostState.from(host)?.options?.string(at: pointer, length: length, into: value) ?? -1
            },
            option_number: { host, pointer, length, value in
                HostState.from(host)?.options?.number(at: pointer, length: length, into: value) ?? -1
            },
            option_bool: { host, pointer, length, value in
                HostState.from(host)?.options?.bool(at: pointer, length: length, into: value) ?? -1
            },
            option_count: { host, pointer, length in
                HostState.from(host)?.options?.count(at: pointer, length: length) ?? 0
            },
            option_key: { host, pointer, length, index, key in
                HostState.from(host)?.options?.key(at: pointer, length: length, index: index, into: key) ?? -1
            }
        ))
        return UnsafePointer(table)
    }()

    private static func levelName(_ level: s2s_log_level_t) -> String {
        switch level {
        case S2S_LOG_DEBUG: return "debug"
        case S2S_LOG_INFO: return "info"
        case S2S_LOG_WARNING: return "warning"
        case S2S_LOG_ERROR: return "error"
        default: return "level \(level.rawValue)"
        }
    }
}

/// One call's host-side state; the `s2s_call_t *` the plugin gets is this object, unretained.
private final class CallState {
    enum Hook { case none, callStart, message, callEnd, responseMetadata }
    enum Edit { case set, add, remove }

    var hook = Hook.none
    var headers: [(name: String, value: [UInt8])] = []
    var replacement: [UInt8]?
    var statusCode: UInt32 = 0
    var statusMessage: String?

    var handle: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }

    static func from(_ handle: OpaquePointer?) -> CallState? {
        handle.map { Unmanaged<CallState>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
    }

    func rejection() -> PluginTestOutcome {
        guard let code = StatusCode(rawValue: statusCode) else {
            return .failed("rejected without a valid status (set_status with a code 1-16)")
        }
        return .rejected(code, statusMessage ?? "")
    }

    /// A metadata edit as the proxy allows it: in call_start, lowercase names that are not pseudo-headers or
    /// connection-level headers.
    func edit(
        _ kind: Edit, _ name: UnsafePointer<CChar>?, _ nameLength: Int, _ value: UnsafePointer<UInt8>?,
        _ valueLength: Int
    ) -> Int32 {
        guard hook == .callStart || hook == .responseMetadata, let name, nameLength > 0 else { return -1 }
        let text = String(decoding: UnsafeRawBufferPointer(start: name, count: nameLength), as: UTF8.self)
        if hook == .responseMetadata, text == "grpc-status" { return -1 }
        let connectionHeaders: Set<String> = ["connection", "keep-alive", "proxy-connection", "transfer-encoding",
                                              "upgrade", "te", "content-length", "host"]
        guard !text.hasPrefix(":"), !connectionHeaders.contains(text),
              text.utf8.allSatisfy({ !(65...90).contains($0) && $0 > 32 && $0 < 127 })
        else { return -1 }
        let bytes = value.map { Array(UnsafeBufferPointer(start: $0, count: valueLength)) } ?? []
        switch kind {
        case .set:
            headers.removeAll { $0.name == text }
            headers.append((text, bytes))
        case .add:
            headers.append((text, bytes))
        case .remove:
            headers.removeAll { $0.name == text }
        }
        return 0
    }
}

/// `names` and `values` as a C array of s2s_header_t, valid during `body`.
private func withHeaderEntries<Result>(
    _ names: [[UInt8]], _ values: [[UInt8]], _ body: (UnsafeBufferPointer<s2s_header_t>) -> Result
) -> Result {
    var storage: [UnsafeMutableBufferPointer<UInt8>] = []
    defer { for buffer in storage { buffer.deallocate() } }
    func copy(_ bytes: [UInt8]) -> s2s_bytes_t {
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(1, bytes.count))
        _ = buffer.initialize(from: bytes)
        storage.append(buffer)
        return s2s_bytes_t(data: UnsafePointer(buffer.baseAddress), len: bytes.count)
    }
    let entries = zip(names, values).map { s2s_header_t(name: copy($0.0), value: copy($0.1)) }
    return entries.withUnsafeBufferPointer(body)
}

extension CallSide {
    fileprivate var abiValue: s2s_side_t {
        switch self {
        case .outbound: return S2S_SIDE_OUTBOUND
        case .inbound: return S2S_SIDE_INBOUND
        }
    }
}
