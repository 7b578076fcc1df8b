// The host's side of the plugin ABI: the `s2s_host_api_t` table of C functions every plugin receives, and the
// Swift objects behind its two opaque handles.
//
// `s2s_host_t *` is a `PluginHostContext` (one per chain entry: its logger and metrics), passed unretained; it
// lives as long as the entry's config. `s2s_call_t *` is a `PluginHookScratch` (one per call): what a hook hands
// back through host functions — metadata edits, a replacement message, a status — collected while the hook runs
// and read by the chain when it returns. Every function checks its arguments and the hook it is called from, and
// refuses (returns -1) rather than trusting a plugin's pointers and lengths beyond what the ABI lets it pass.

import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHPACK
import PluginABI
import PluginKit

/// One chain entry's link to the host: where its log lines and metrics go.
final class PluginHostContext: @unchecked Sendable {
    let pluginName: String
    /// e.g. `a-to-b plugins[0]`: which chain entry, for log lines and errors.
    let entryLabel: String
    let connectionName: String
    let logger: Logger
    let metrics: PluginMetricsRegistry
    /// Metrics this entry defined, by id - 1.
    private let definedMetrics = NIOLockedValueBox<[PluginMetric]>([])
    /// Metric definition is allowed only while the config is being created or given its schema.
    let definingAllowed = NIOLockedValueBox(false)
    /// The entry's options while config_new runs, for the option readers; nil otherwise.
    let readingOptions = NIOLockedValueBox<OptionReaderAnswers?>(nil)

    init(pluginName: String, entryLabel: String, connectionName: String, logger: Logger, metrics: PluginMetricsRegistry) {
        self.pluginName = pluginName
        self.entryLabel = entryLabel
        self.connectionName = connectionName
        var logger = logger
        logger[metadataKey: "plugin"] = "\(pluginName)"
        self.logger = logger
        self.metrics = metrics
    }

    var handle: OpaquePointer {
        OpaquePointer(Unmanaged.passUnretained(self).toOpaque())
    }

    static func from(_ handle: OpaquePointer?) -> PluginHostContext? {
        guard let handle else { return nil }
        return Unmanaged<PluginHostContext>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
    }

    func define(kind: PluginMetric.Kind, name: String, help: String) -> UInt32 {
        guard definingAllowed.withLockedValue({ $0 }) else {
            logger.warning("plugin defined a metric outside config_new/schema_ready; ignored", metadata: ["metric": "\(name)"])
            return 0
        }
        guard let metric = metrics.metric(kind: kind, name: name, help: help, plugin: pluginName, connection: connectionName) else {
            logger.warning("plugin metric refused (name must be letters, digits and '_', and not reused with another kind)",
                           metadata: ["metric": "\(name)"])
            return 0
        }
        return definedMetrics.withLockedValue { defined in
            if let index = defined.firstIndex(where: { $0 === metric }) { return UInt32(index + 1) }
            defined.append(metric)
            return UInt32(defined.count)
        }
    }

    func record(id: UInt32, value: Double) {
        let metric = definedMetrics.withLockedValue { defined -> PluginMetric? in
            let index = Int(id) - 1
            return defined.indices.contains(index) ? defined[index] : nil
        }
        metric?.record(value)
    }
}

/// What the hooks of one call hand back through host functions; reset before each hook.
final class PluginHookScratch {
    enum Hook {
        case none
        case callStart
        case message
        case callEnd
        /// on_response_metadata: `headers` are the response's headers or trailers.
        case responseMetadata
    }

    var hook = Hook.none
    /// The request metadata as edited so far (call_start), or the response metadata (on_response_metadata).
    var headers = HPACKHeaders() {
        didSet { headersVersion &+= 1 }
    }
    /// Counts changes of `headers`, so that the call info handed to call_start is laid out again only after a
    /// plugin edited the metadata.
    private(set) var headersVersion = 0
    /// A replacement message, framed: 5-byte gRPC prefix (flag from `replacementCompressedFlag`) then the bytes.
    var replacement: ByteBuffer?
    var replacementCompressedFlag: UInt8 = 0
    var statusCode: UInt32 = 0
    var statusMessage: String?
    let allocator = ByteBufferAllocator()

    var handle: OpaquePointer {
        OpaquePointer(Unmanaged.passUnretained(self).toOpaque())
    }

    static func from(_ handle: OpaquePointer?) -> PluginHookScratch? {
        guard let handle else { return nil }
        return Unmanaged<PluginHookScratch>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
    }

    /// Whether the running hook may edit `headers`.
    var editsHeaders: Bool { hook == .callStart || hook == .responseMetadata }

    func begin(_ hook: Hook) {
        self.hook = hook
        replacement = nil
        statusCode = 0
        statusMessage = nil
    }
}

/// The table of host functions, built once.
enum PluginHostServices {
    static let api: UnsafePointer<s2s_host_api_t> = {
        let table = UnsafeMutablePointer<s2s_host_api_t>.allocate(capacity: 1)
        table.initialize(to: s2s_host_api_t(
            struct_size: UInt32(MemoryLayout<s2s_host_api_t>.size),
            abi_major: UInt16(S2S_PLUGIN_ABI_MAJOR),
            abi_minor: UInt16(S2S_PLUGIN_ABI_MINOR),
            log: { host, level, message, length in
                guard let context = PluginHostContext.from(host) else { return }
                let text = PluginHostServices.string(message, length) ?? ""
                context.logger.log(level: PluginHostServices.logLevel(level), "\(text)")
            },
            log_enabled: { host, level in
                guard let context = PluginHostContext.from(host) else { return 0 }
                return context.logger.logLevel <= PluginHostServices.logLevel(level) ? 1 : 0
            },
            define_metric: { host, kind, name, nameLength, help, helpLength in
                guard let context = PluginHostContext.from(host),
                      let metricKind = PluginMetric.Kind(kind),
                      let name = PluginHostServices.string(name, nameLength)
                else { return 0 }
                return context.define(kind: metricKind, name: name, help: PluginHostServices.string(help, helpLength) ?? "")
            },
            record_metric: { host, id, value in
                PluginHostContext.from(host)?.record(id: id, value: value)
            },
            set_header: { call, name, nameLength, value, valueLength in
                PluginHostServices.editHeader(call, name, nameLength, value, valueLength, replacing: true)
            },
            add_header: { call, name, nameLength, value, valueLength in
                PluginHostServices.editHeader(call, name, nameLength, value, valueLength, replacing: false)
            },
            remove_header: { call, name, nameLength in
                guard let scratch = PluginHookScratch.from(call), scratch.editsHeaders,
                      let name = PluginHostServices.string(name, nameLength),
                      PluginHeaderRules.isEditableName(name),
                      scratch.hook != .responseMetadata || name != "grpc-status"
                else { return -1 }
                scratch.headers.remove(name: name)
                return 0
            },
            set_message: { call, data, length in
                guard let scratch = PluginHookScratch.from(call), scratch.hook == .message,
                      length <= UInt32.max, data != nil || length == 0
                else { return -1 }
                var framed = scratch.allocator.buffer(capacity: 5 + length)
                framed.writeGRPCPrefix(length: length, flag: scratch.replacementCompressedFlag)
                if let data, length > 0 {
                    framed.writeBytes(UnsafeRawBufferPointer(start: data, count: length))
                }
                scratch.replacement = framed
                return 0
            },
            set_status: { call, code, message, length in
                guard let scratch = PluginHookScratch.from(call), scratch.hook != .none,
                      code <= 16
                else { return -1 }
                scratch.statusCode = code
                scratch.statusMessage = PluginHostServices.string(message, length) ?? ""
                return 0
            },
            option_type: { host, pointer, length in
                PluginHostServices.optionAnswers(host)?.type(at: pointer, length: length) ?? S2S_OPTION_ABSENT
            },
            option_string: { host, pointer, length, value in
                PluginHostServices.optionAnswers(host)?.string(at: pointer, length: length, into: value) ?? -1
            },
            option_number: { host, pointer, length, value in
                PluginHostServices.optionAnswers(host)?.number(at: pointer, length: length, into: value) ?? -1
            },
            option_bool: { host, pointer, length, value in
                PluginHostServices.optionAnswers(host)?.bool(at: pointer, length: length, into: value) ?? -1
            },
            option_count: { host, pointer, length in
                PluginHostServices.optionAnswers(host)?.count(at: pointer, length: length) ?? 0
            },
            option_key: { host, pointer, length, index, key in
                PluginHostServices.optionAnswers(host)?.key(at: pointer, length: length, index: index, into: key) ?? -1
            }
        ))
        return UnsafePointer(table)
    }()

    static func logLevel(_ level: s2s_log_level_t) -> Logger.Level {
        switch level {
        case S2S_LOG_DEBUG: return .debug
        case S2S_LOG_INFO: return .info
        case S2S_LOG_WARNING: return .warning
        default: return .error
        }
    }

    /// A plugin's (pointer, length) as a string; invalid UTF-8 is repaired, a NULL pointer with a length is nil.
    static func string(_ pointer: UnsafePointer<CChar>?, _ length: Int) -> String? {
        guard length > 0 else { return "" }
        guard let pointer else { return nil }
        let bytes = UnsafeRawBufferPointer(start: pointer, count: length)
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func editHeader(
        _ call: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ nameLength: Int,
        _ value: UnsafePointer<UInt8>?, _ valueLength: Int, replacing: Bool
    ) -> Int32 {
        guard let scratch = PluginHookScratch.from(call), scratch.editsHeaders,
              let name = string(name, nameLength), PluginHeaderRules.isEditableName(name),
              scratch.hook != .responseMetadata || name != "grpc-status",
              value != nil || valueLength == 0
        else { return -1 }
        let bytes = value.map { UnsafeBufferPointer(start: $0, count: valueLength) } ?? UnsafeBufferPointer(start: nil, count: 0)
        guard let text = PluginHeaderRules.wireValue(name: name, bytes: bytes) else { return -1 }
        if replacing {
            scratch.headers.remove(name: name)
        }
        scratch.headers.add(name: name, value: text)
        return 0
    }
}

/// Which metadata plugins may edit, and how values cross the boundary.
enum PluginHeaderRules {
    /// Headers that belong to HTTP/2 or to the connection, not to the call's metadata. (Compared one by one: a set
    /// would hash every name a plugin edits, which costs more than these eight comparisons, most of which the
    /// length settles.)
    private static func isReserved(_ name: String) -> Bool {
        switch name {
        case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "host",
            "content-length":
            return true
        default:
            return false
        }
    }

    static func isEditableName(_ name: String) -> Bool {
        guard !name.isEmpty, !isReserved(name) else { return false }
        return name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
                return true
            default:
                return false
            }
        }
    }

    /// The value as it goes on the wire: base64 for `-bin` names, else printable ASCII (and no CR/LF) only.
    static func wireValue(name: String, bytes: UnsafeBufferPointer<UInt8>) -> String? {
        if isBinary(name) {
            return Data(bytes).base64EncodedString().replacingOccurrences(of: "=", with: "")
        }
        guard bytes.allSatisfy({ $0 == 0x09 || (0x20...0x7E).contains($0) }) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The bytes a plugin sees for a received value: decoded for `-bin` names (as received if not valid base64).
    static func pluginValue(name: String, value: String) -> [UInt8] {
        if isBinary(name) {
            var padded = value
            let remainder = padded.utf8.count % 4
            if remainder != 0 { padded += String(repeating: "=", count: 4 - remainder) }
            if let data = Data(base64Encoded: padded) { return Array(data) }
        }
        return Array(value.utf8)
    }

    /// Whether a metadata value is binary (`-bin`), base64 on the wire and raw bytes for plugins.
    static func isBinary(_ name: String) -> Bool {
        // By bytes: String.hasSuffix compares grapheme clusters, several times the cost for a header name.
        let utf8 = name.utf8
        guard utf8.count >= 4 else { return false }
        return utf8[utf8.index(utf8.endIndex, offsetBy: -4)...].elementsEqual("-bin".utf8)
    }
}

extension PluginHostServices {
    /// The options of the entry whose config_new is running (the option readers' answers, PluginKit's
    /// `OptionReaderAnswers`, the same a PluginTestHost gives), if any. They exist only while config_new runs
    /// (`PluginHostContext.readingOptions`); strings and keys handed out are freed when it returns.
    static func optionAnswers(_ host: OpaquePointer?) -> OptionReaderAnswers? {
        PluginHostContext.from(host)?.readingOptions.withLockedValue { $0 }
    }
}
