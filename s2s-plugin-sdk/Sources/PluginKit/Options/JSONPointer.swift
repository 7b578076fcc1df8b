// JSON Pointer (RFC 6901) lookups in a parsed JSON document: "" is the whole document, "/mappings/0/local" descends
// through object keys and array indexes, and inside a key "~1" stands for '/' and "~0" for '~'. The host's option
// readers for C plugins (s2s_host_api_t.option_type ...) answer with this, so a Swift plugin and the host agree on
// what a pointer names.

extension JSONValue {
    /// The value `pointer` names, or nil when it names nothing or is malformed (not empty and not starting with
    /// '/', an array index that is not a plain decimal number, a '~' not followed by '0' or '1').
    public func value(atPointer pointer: String) -> JSONValue? {
        guard !pointer.isEmpty else { return self }
        guard pointer.hasPrefix("/") else { return nil }
        var current = self
        for token in pointer.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            guard let key = Self.unescape(token) else { return nil }
            switch current {
            case .object(let members):
                guard let next = members[key] else { return nil }
                current = next
            case .array(let elements):
                // Decimal digits without a leading zero; "-" (past the end) names nothing to read.
                guard let index = Int(key), key == String(index), index >= 0, index < elements.count else {
                    return nil
                }
                current = elements[index]
            default:
                return nil
            }
        }
        return current
    }

    /// The keys of an object in ascending byte order (an empty list for anything else): a stable order to walk a
    /// map by index in.
    public var sortedKeys: [String] {
        guard case .object(let members) = self else { return [] }
        return members.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// A reference token with "~1" and "~0" read as '/' and '~'; nil for a '~' followed by anything else.
    private static func unescape(_ token: Substring) -> String? {
        guard token.contains("~") else { return String(token) }
        var result = ""
        var escaped = false
        for character in token {
            if escaped {
                switch character {
                case "0": result.append("~")
                case "1": result.append("/")
                default: return nil
                }
                escaped = false
            } else if character == "~" {
                escaped = true
            } else {
                result.append(character)
            }
        }
        return escaped ? nil : result
    }
}
