// A host for driving plugin tables in-process exactly as s2s-proxy does: a C host API table whose functions record
// what the plugin asked for, and helpers that call the plugin's C hooks with host-owned structs.
//
// The C functions cannot capture anything, so they find their recorder through the opaque handles the ABI passes
// back: the `s2s_host_t *` is an unretained `FakeHost`, the `s2s_call_t *` an unretained `FakeCall`.

import PluginABI
import PluginKit
import XCTest

/// Records the host services one chain entry used.
final class FakeHost {
    struct LogLine: Equatable {
        let level: UInt32
        let message: String
    }

    struct Metric: Equatable {
        let kind: UInt32
        let name: String
        let help: String
    }

    /// Levels below this are disabled.
    var minimumLogLevel: UInt32 = S2S_LOG_DEBUG.rawValue
    var logs: [LogLine] = []
    var logEnabledQueries = 0
    var metrics: [Metric] = []
    var recorded: [(id: UInt32, value: Double)] = []
    /// Calls of host functions beyond the table's declared `struct_size`: must stay empty.
    var violations: [String] = []
    /// The options of the config_new that runs, for the option readers (the answers the proxy gives); nil otherwise.
    var options: OptionReaderAnswers?

    private(set) var table: UnsafeMutablePointer<s2s_host_api_t>

    /// A host whose table declares `structSize` bytes (today's size by default). Function pointers beyond it are
    /// still filled in, with functions that record a violation, to prove the plugin does not read them.
    init(structSize: Int = MemoryLayout<s2s_host_api_t>.size, abiMinor: UInt16 = UInt16(S2S_PLUGIN_ABI_MINOR)) {
        table = .allocate(capacity: 1)
        table.initialize(to: FakeHost.fullTable(abiMinor: abiMinor))
        table.pointee.struct_size = UInt32(structSize)
        poisonFields(beyond: structSize)
    }

    deinit {
        table.deinitialize(count: 1)
        table.deallocate()
    }

    var handle: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }

    static func from(_ handle: OpaquePointer?) -> FakeHost {
        Unmanaged<FakeHost>.fromOpaque(UnsafeRawPointer(handle!)).takeUnretainedValue()
    }

    private static func fullTable(abiMinor: UInt16) -> s2s_host_api_t {
        s2s_host_api_t(
            struct_size: UInt32(MemoryLayout<s2s_host_api_t>.size),
            abi_major: UInt16(S2S_PLUGIN_ABI_MAJOR),
            abi_minor: abiMinor,
            log: { host, level, message, length in
                let bytes = UnsafeRawBufferPointer(start: message, count: length)
                let line = LogLine(level: level.rawValue, message: String(decoding: bytes, as: UTF8.self))
                FakeHost.from(host).logs.append(line)
            },
            log_enabled: { host, level in
                let fake = FakeHost.from(host)
                fake.logEnabledQueries += 1
                return level.rawValue >= fake.minimumLogLevel ? 1 : 0
            },
            define_metric: { host, kind, name, nameLength, help, helpLength in
                let fake = FakeHost.from(host)
                let name = String(decoding: UnsafeRawBufferPointer(start: name, count: nameLength), as: UTF8.self)
                let help = String(decoding: UnsafeRawBufferPointer(start: help, count: helpLength), as: UTF8.self)
                guard !name.isEmpty, name.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || (48...57).contains($0)
                    || (65...90).contains($0) || (97...122).contains($0) })
                else { return 0 }
                if let index = fake.metrics.firstIndex(where: { $0.name == name }) {
                    return fake.metrics[index].kind == kind.rawValue ? UInt32(index + 1) : 0
                }
                fake.metrics.append(Metric(kind: kind.rawValue, name: name, help: help))
                return UInt32(fake.metrics.count)
            },
            record_metric: { host, id, value in
                FakeHost.from(host).recorded.append((id, value))
            },
            set_header: { call, name, nameLength, value, valueLength in
                FakeCall.from(call).edit("set", name, nameLength, value, valueLength)
            },
            add_header: { call, name, nameLength, value, valueLength in
                FakeCall.from(call).edit("add", name, nameLength, value, valueLength)
            },
            remove_header: { call, name, nameLength in
                FakeCall.from(call).edit("remove", name, nameLength, nil, 0)
            },
            set_message: { call, data, length in
                let fake = FakeCall.from(call)
                guard fake.inMessageHook, fake.acceptsReplacement else { return -1 }
                fake.replacement = Array(UnsafeRawBufferPointer(start: data, count: length))
                return 0
            },
            set_status: { call, code, message, length in
                let fake = FakeCall.from(call)
                guard (1...16).contains(code) else { return -1 }
                let text = String(decoding: UnsafeRawBufferPointer(start: message, count: length), as: UTF8.self)
                fake.status = FakeCall.Status(code: code, message: text)
                return 0
            },
            option_type: { host, pointer, length in
                FakeHost.from(host).options?.type(at: pointer, length: length) ?? S2S_OPTION_ABSENT
            },
            option_string: { host, pointer, length, value in
                FakeHost.from(host).options?.string(at: pointer, length: length, into: value) ?? -1
            },
            option_number: { host, pointer, length, value in
                FakeHost.from(host).options?.number(at: pointer, length: length, into: value) ?? -1
            },
            option_bool: { host, pointer, length, value in
                FakeHost.from(host).options?.bool(at: pointer, length: length, into: value) ?? -1
            },
            option_count: { host, pointer, length in
                FakeHost.from(host).options?.count(at: pointer, length: length) ?? 0
            },
            option_key: { host, pointer, length, index, key in
                FakeHost.from(host).options?.key(at: pointer, length: length, index: index, into: key) ?? -1
            }
        )
    }

    /// Replaces the functions the declared size does not cover with ones that record a violation; their context is
    /// the last host created, which is this one while a test runs.
    private func poisonFields(beyond structSize: Int) {
        FakeHost.current = self
        func covered<Field>(_ field: KeyPath<s2s_host_api_t, Field>) -> Bool {
            structSize >= MemoryLayout<s2s_host_api_t>.offset(of: field)! + MemoryLayout<Field>.size
        }
        if !covered(\.log) { table.pointee.log = { _, _, _, _ in FakeHost.current?.violations.append("log") } }
        if !covered(\.log_enabled) {
            table.pointee.log_enabled = { _, _ in FakeHost.current?.violations.append("log_enabled"); return 1 }
        }
        if !covered(\.define_metric) {
            table.pointee.define_metric = { _, _, _, _, _, _ in
                FakeHost.current?.violations.append("define_metric")
                return 1
            }
        }
        if !covered(\.record_metric) {
            table.pointee.record_metric = { _, _, _ in FakeHost.current?.violations.append("record_metric") }
        }
        if !covered(\.set_header) {
            table.pointee.set_header = { _, _, _, _, _ in FakeHost.current?.violations.append("set_header"); return 0 }
        }
        if !covered(\.add_header) {
            table.pointee.add_header = { _, _, _, _, _ in FakeHost.current?.violations.append("add_header"); return 0 }
        }
        if !covered(\.remove_header) {
            table.pointee.remove_header = { _, _, _ in FakeHost.current?.violations.append("remove_header"); return 0 }
        }
        if !covered(\.set_message) {
            table.pointee.set_message = { _, _, _ in FakeHost.current?.violations.append("set_message"); return 0 }
        }
        if !covered(\.set_status) {
            table.pointee.set_status = { _, _, _, _ in FakeHost.current?.violations.append("set_status"); return 0 }
        }
        if !covered(\.option_type) {
            table.pointee.option_type = { _, _, _ in
                FakeHost.current?.violations.append("option_type")
                return S2S_OPTION_ABSENT
            }
        }
        if !covered(\.option_key) {
            table.pointee.option_string = { _, _, _, _ in FakeHost.current?.violations.append("option_string"); return -1 }
            table.pointee.option_number = { _, _, _, _ in FakeHost.current?.violations.append("option_number"); return -1 }
            table.pointee.option_bool = { _, _, _, _ in FakeHost.current?.violations.append("option_bool"); return -1 }
            table.pointee.option_count = { _, _, _ in FakeHost.current?.violations.append("option_count"); return 0 }
            table.pointee.option_key = { _, _, _, _, _ in FakeHost.current?.violations.append("option_key"); return -1 }
        }
    }

    nonisolated(unsafe) static weak var current: FakeHost?
}

/// Records what the plugin did to one call.
final class FakeCall {
    struct Edit: Equatable {
        let kind: String
        let name: String
        let value: [UInt8]?
    }

    struct Status: Equatable {
        let code: UInt32
        let message: String
    }

    var edits: [Edit] = []
    var replacement: [UInt8]?
    var status: Status?
    /// Header names the host refuses, as a real host refuses invalid ones.
    var refusedNames: Set<String> = []
    var acceptsReplacement = true
    /// Which hook is running: edits are accepted in call_start, replacements in on_message.
    var inCallStart = false
    var inMessageHook = false
    /// The plugin's call_state after call_start.
    var state: UnsafeMutableRawPointer?

    var handle: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }

    static func from(_ handle: OpaquePointer?) -> FakeCall {
        Unmanaged<FakeCall>.fromOpaque(UnsafeRawPointer(handle!)).takeUnretainedValue()
    }

    func edit(
        _ kind: String, _ name: UnsafePointer<CChar>?, _ nameLength: Int, _ value: UnsafePointer<UInt8>?,
        _ valueLength: Int
    ) -> Int32 {
        let name = String(decoding: UnsafeRawBufferPointer(start: name, count: nameLength), as: UTF8.self)
        guard inCallStart, !refusedNames.contains(name), name == name.lowercased(), !name.hasPrefix(":") else {
            return -1
        }
        let bytes = kind == "remove" ? nil : Array(UnsafeRawBufferPointer(start: value, count: valueLength))
        edits.append(Edit(kind: kind, name: name, value: bytes))
        return 0
    }
}

/// Drives one plugin table like the host: entry, config_new, wants, call hooks, config_destroy.
struct PluginDriver {
    let table: UnsafePointer<s2s_plugin_api_t>

    init(table: UnsafeRawPointer) {
        self.table = table.assumingMemoryBound(to: s2s_plugin_api_t.self)
    }

    var name: String { String(cString: table.pointee.name) }
    var version: String { String(cString: table.pointee.version) }
    var description: String? { table.pointee.description.map { String(cString: $0) } }

    /// config_new with `options` as JSON text; the config, or the error text the plugin wrote.
    func configNew(
        _ options: String, host: FakeHost, errorCapacity: Int = 1024
    ) -> Result<UnsafeMutableRawPointer, ConfigNewError> {
        let error = UnsafeMutablePointer<CChar>.allocate(capacity: max(errorCapacity, 1))
        defer { error.deallocate() }
        error.initialize(repeating: 0x55, count: max(errorCapacity, 1))
        host.options = OptionReaderAnswers(json: options)
        defer { host.options = nil }
        var options = options
        let config = options.withUTF8 { utf8 in
            table.pointee.config_new!(
                table, host.table, host.handle, s2s_bytes_t(data: utf8.baseAddress, len: utf8.count), error, errorCapacity
            )
        }
        if let config { return .success(config) }
        let bytes = UnsafeRawBufferPointer(start: error, count: errorCapacity)
        let end = bytes.firstIndex(of: 0)
        return .failure(ConfigNewError(
            message: String(decoding: bytes[..<(end ?? bytes.count)], as: UTF8.self), terminated: end != nil
        ))
    }

    func configDestroy(_ config: UnsafeMutableRawPointer) {
        table.pointee.config_destroy!(config)
    }

    func wants(_ config: UnsafeMutableRawPointer, method: String, side: s2s_side_t) -> UInt32 {
        var method = method
        return method.withUTF8 { utf8 in
            table.pointee.wants!(config, s2s_bytes_t(data: utf8.baseAddress, len: utf8.count), side)
        }
    }

    /// call_start with a host-owned s2s_call_info_t; `structSize` overrides the declared size.
    func callStart(
        _ config: UnsafeMutableRawPointer, call: FakeCall, method: String, side: s2s_side_t = S2S_SIDE_INBOUND,
        connection: String = "a-b", headers: [(String, String)] = [], structSize: Int? = nil
    ) -> s2s_outcome_t {
        let storage = HostBytes()
        let headerArray = headers.map { s2s_header_t(name: storage.bytes($0.0), value: storage.bytes($0.1)) }
        defer { withExtendedLifetime(storage) {} }
        return headerArray.withUnsafeBufferPointer { headerBuffer in
            var info = s2s_call_info_t(
                struct_size: UInt32(structSize ?? MemoryLayout<s2s_call_info_t>.size),
                method: storage.bytes(method), side: side, connection: storage.bytes(connection),
                headers: headerBuffer.baseAddress, header_count: headerBuffer.count
            )
            call.inCallStart = true
            defer { call.inCallStart = false }
            var state: UnsafeMutableRawPointer? = nil
            let outcome = table.pointee.call_start!(config, call.handle, &info, &state)
            call.state = state
            return outcome
        }
    }

    func onMessage(
        _ config: UnsafeMutableRawPointer, call: FakeCall, direction: s2s_direction_t, index: UInt64 = 0,
        payload: [UInt8], compressed: Bool = false
    ) -> s2s_outcome_t {
        payload.withUnsafeBufferPointer { bytes in
            var message = s2s_message_t(
                struct_size: UInt32(MemoryLayout<s2s_message_t>.size), direction: direction, index: index,
                payload: s2s_bytes_t(data: bytes.baseAddress, len: bytes.count), compressed: compressed ? 1 : 0
            )
            call.inMessageHook = true
            defer { call.inMessageHook = false }
            return table.pointee.on_message!(config, call.state, call.handle, &message)
        }
    }

    func callEnd(_ config: UnsafeMutableRawPointer, call: FakeCall, grpcStatus: Int32) {
        var end = s2s_call_end_t(struct_size: UInt32(MemoryLayout<s2s_call_end_t>.size), grpc_status: grpcStatus)
        table.pointee.call_end?(config, call.state, call.handle, &end)
        call.state = nil
    }
}

struct ConfigNewError: Error, Equatable {
    let message: String
    /// Whether the plugin NUL-terminated the text within the buffer.
    let terminated: Bool
}

/// Byte buffers that stay valid until this object is released, standing in for host-owned memory.
final class HostBytes {
    private var buffers: [UnsafeMutableRawBufferPointer] = []

    func bytes(_ text: String) -> s2s_bytes_t {
        let utf8 = Array(text.utf8)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(utf8.count, 1), alignment: 1)
        buffer.copyBytes(from: utf8)
        buffers.append(buffer)
        return s2s_bytes_t(data: buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), len: utf8.count)
    }

    deinit {
        buffers.forEach { $0.deallocate() }
    }
}
