// The option readers of the host table (ABI 1.1: option_type, option_string, option_number, option_bool,
// option_count, option_key): a chain entry's options, parsed once by the host with PluginKit's strict JSON parser,
// read by JSON Pointer (RFC 6901) from a plugin's config_new, so that a C plugin needs no JSON parser of its own.
//
// The reader exists only while config_new runs (`PluginHostContext.readingOptions`); strings and keys it hands out
// are copied into memory it owns and frees when config_new returns, as the header promises.

import PluginKit
import PluginABI

/// A chain entry's options while its config_new runs.
final class PluginOptionReader {
    private let root: JSONValue
    /// Copies of the strings and keys handed out, freed with the reader.
    private var handedOut: [UnsafeMutableBufferPointer<UInt8>] = []

    /// nil when `json` does not parse (the plugin's own parse of `options_json` will say why).
    init?(json: String) {
        guard let root = try? JSONValue(parsing: json) else { return nil }
        self.root = root
    }

    deinit {
        for buffer in handedOut { buffer.deallocate() }
    }

    func value(at pointer: String) -> JSONValue? {
        root.value(atPointer: pointer)
    }

    func type(at pointer: String) -> s2s_option_type_t {
        switch value(at: pointer) {
        case nil: return S2S_OPTION_ABSENT
        case .null: return S2S_OPTION_NULL
        case .bool: return S2S_OPTION_BOOL
        case .number: return S2S_OPTION_NUMBER
        case .string: return S2S_OPTION_STRING
        case .array: return S2S_OPTION_ARRAY
        case .object: return S2S_OPTION_OBJECT
        }
    }

    func count(at pointer: String) -> Int {
        switch value(at: pointer) {
        case .array(let elements): return elements.count
        case .object(let members): return members.count
        default: return 0
        }
    }

    /// Key `index` of the object at `pointer`, keys in ascending byte order.
    func key(at pointer: String, index: Int) -> String? {
        let keys = value(at: pointer)?.sortedKeys ?? []
        return keys.indices.contains(index) ? keys[index] : nil
    }

    /// `text` as host-owned bytes that stay valid as long as the reader.
    func handOut(_ text: String) -> s2s_bytes_t {
        let bytes = Array(text.utf8)
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(1, bytes.count))
        _ = buffer.initialize(from: bytes)
        handedOut.append(buffer)
        return s2s_bytes_t(data: UnsafePointer(buffer.baseAddress), len: bytes.count)
    }
}

extension PluginHostServices {
    /// The reader of the entry whose config_new is running, and the pointer argument as text.
    static func optionReader(
        _ host: OpaquePointer?, _ pointer: UnsafePointer<CChar>?, _ length: Int
    ) -> (PluginOptionReader, String)? {
        guard let context = PluginHostContext.from(host),
              let reader = context.readingOptions.withLockedValue({ $0 })
        else { return nil }
        if length == 0 { return (reader, "") }
        guard let text = string(pointer, length) else { return nil }
        return (reader, text)
    }
}
