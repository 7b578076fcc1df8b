// What a host answers to the option readers of its table (ABI 1.1: s2s_host_api_t.option_type ... option_key) for
// one chain entry's options: written once here for every host there is — the proxy, PluginKitTesting's
// PluginTestHost, and the fake hosts of tests — so that they cannot disagree about what a plugin reads.
//
// The options are parsed once (with PluginKit's strict parser) and read by JSON Pointer (RFC 6901). Strings and
// keys handed out are copies owned by this object: they stay valid as long as it does, which is at least while the
// config_new they were asked for runs, as the header promises.

import PluginABI

/// The answers to a plugin's option readers over one chain entry's options.
public final class OptionReaderAnswers {
    /// The options, parsed.
    public let root: JSONValue
    /// Copies of the strings and keys handed out, freed with this object.
    private var handedOut: [UnsafeMutableBufferPointer<UInt8>] = []

    public init(root: JSONValue) {
        self.root = root
    }

    /// nil when `json` does not parse (the plugin's own parse of `options_json` will say why).
    public convenience init?(json: String) {
        guard let root = try? JSONValue(parsing: json) else { return nil }
        self.init(root: root)
    }

    deinit {
        for buffer in handedOut { buffer.deallocate() }
    }

    /// What the JSON Pointer (`pointer_len` bytes, not NUL-terminated; empty for the whole document) names; nil for
    /// nothing, or for a pointer that is not UTF-8.
    public func value(at pointer: UnsafePointer<CChar>?, length: Int) -> JSONValue? {
        if length == 0 { return root }
        guard let pointer, length > 0 else { return nil }
        let bytes = UnsafeRawBufferPointer(start: pointer, count: length)
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        return root.value(atPointer: text)
    }

    /// option_type.
    public func type(at pointer: UnsafePointer<CChar>?, length: Int) -> s2s_option_type_t {
        switch value(at: pointer, length: length) {
        case nil: return S2S_OPTION_ABSENT
        case .null: return S2S_OPTION_NULL
        case .bool: return S2S_OPTION_BOOL
        case .number: return S2S_OPTION_NUMBER
        case .string: return S2S_OPTION_STRING
        case .array: return S2S_OPTION_ARRAY
        case .object: return S2S_OPTION_OBJECT
        }
    }

    /// option_string: 0 and the string in `value`, or -1.
    public func string(
        at pointer: UnsafePointer<CChar>?, length: Int, into value: UnsafeMutablePointer<s2s_bytes_t>?
    ) -> Int32 {
        guard let value, case .string(let text)? = self.value(at: pointer, length: length) else { return -1 }
        value.pointee = handOut(text)
        return 0
    }

    /// option_number: 0 and the number in `value`, or -1.
    public func number(at pointer: UnsafePointer<CChar>?, length: Int, into value: UnsafeMutablePointer<Double>?) -> Int32 {
        guard let value, case .number(let number)? = self.value(at: pointer, length: length) else { return -1 }
        value.pointee = number
        return 0
    }

    /// option_bool: 0 and 1 or 0 in `value`, or -1.
    public func bool(at pointer: UnsafePointer<CChar>?, length: Int, into value: UnsafeMutablePointer<Int32>?) -> Int32 {
        guard let value, case .bool(let flag)? = self.value(at: pointer, length: length) else { return -1 }
        value.pointee = flag ? 1 : 0
        return 0
    }

    /// option_count: the elements of an array or the members of an object; 0 for anything else.
    public func count(at pointer: UnsafePointer<CChar>?, length: Int) -> Int {
        switch value(at: pointer, length: length) {
        case .array(let elements)?: return elements.count
        case .object(let members)?: return members.count
        default: return 0
        }
    }

    /// option_key: 0 and key `index` (keys in ascending byte order) of the object in `key`, or -1.
    public func key(
        at pointer: UnsafePointer<CChar>?, length: Int, index: Int, into key: UnsafeMutablePointer<s2s_bytes_t>?
    ) -> Int32 {
        guard let key else { return -1 }
        let keys = value(at: pointer, length: length)?.sortedKeys ?? []
        guard keys.indices.contains(index) else { return -1 }
        key.pointee = handOut(keys[index])
        return 0
    }

    /// `text` as bytes owned by this object.
    private func handOut(_ text: String) -> s2s_bytes_t {
        let bytes = Array(text.utf8)
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(1, bytes.count))
        _ = buffer.initialize(from: bytes)
        handedOut.append(buffer)
        return s2s_bytes_t(data: UnsafePointer(buffer.baseAddress), len: bytes.count)
    }
}
