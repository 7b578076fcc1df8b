// The rules RFC 9113 (8.2, 8.3) sets for a decoded header block, checked before a block reaches the proxy: a block
// that breaks one is malformed, and its stream (only that stream) is reset with PROTOCOL_ERROR.
//
// Requests: the pseudo-header fields :method, :scheme, :path (and optionally :authority) each once, before every
// regular field, and no other pseudo-header; responses: :status once and nothing else pseudo; trailers: no
// pseudo-header at all. In every block: names in lowercase without separators or controls, values without NUL, CR
// or LF and without leading or trailing whitespace, and none of the connection-specific fields of HTTP/1.1
// (`connection`, `keep-alive`, `proxy-connection`, `transfer-encoding`, `upgrade`; `te` only as "trailers").

import NIOHPACK

public enum H2HeaderValidation {
    /// Which header block of a stream is checked.
    public enum Block: Sendable {
        case request
        case response
        case trailers
    }

    /// Why the block is malformed, nil when it is not.
    public static func violation(in headers: HPACKHeaders, as block: Block) -> String? {
        var contentLength: Int?
        return violation(in: headers, as: block, contentLength: &contentLength)
    }

    /// What the decoder already knows of a block's fields: the first (by position) that is malformed on its own,
    /// whatever block it is in (`fieldProblem(name:value:)`), or none. The decoder checks a field when it first
    /// sees it and remembers the answer with its table entry, so a field sent by index is not checked again.
    public struct CheckedFields: Sendable {
        public var firstProblem: (index: Int, problem: String)?

        public init(firstProblem: (index: Int, problem: String)? = nil) {
            self.firstProblem = firstProblem
        }
    }

    /// Why the block is malformed, nil when it is not; `contentLength` receives the value of its content-length
    /// field, if it has one (RFC 9113 8.1.1: the DATA that follows must add up to it). With `checkedFields`, the
    /// checks of each field on its own (`fieldProblem(name:value:)`) are taken from it instead of made again.
    public static func violation(
        in headers: HPACKHeaders, as block: Block, contentLength: inout Int?, checkedFields: CheckedFields? = nil
    ) -> String? {
        var seenRegular = false
        var method = false, scheme = false, path = false, authority = false, status = false
        let problemIndex = checkedFields?.firstProblem?.index ?? -1
        for (index, (name, value, _)) in headers.enumerated() {
            // The field on its own first: as the decoder judged it, or judged here.
            let ownProblem = checkedFields.map { index == problemIndex ? $0.firstProblem?.problem : nil }
                ?? fieldProblem(name: name, value: value)
            if let ownProblem { return ownProblem }
            guard let first = name.utf8.first else { return "a header field with an empty name" }
            if first == UInt8(ascii: ":") {
                guard !seenRegular else { return "pseudo-header field \(name) after a regular field" }
                switch (block, name) {
                case (.request, ":method"):
                    guard !method else { return "a second :method" }
                    method = true
                case (.request, ":scheme"):
                    guard !scheme else { return "a second :scheme" }
                    scheme = true
                case (.request, ":path"):
                    guard !path else { return "a second :path" }
                    guard !value.isEmpty else { return "an empty :path" }
                    path = true
                case (.request, ":authority"):
                    guard !authority else { return "a second :authority" }
                    authority = true
                case (.response, ":status"):
                    guard !status else { return "a second :status" }
                    status = true
                default:
                    return "pseudo-header field \(name) is not allowed in a \(block)"
                }
                // The known pseudo-header names are well formed; no other one gets here.
            } else {
                seenRegular = true
                if name.utf8.count == 14, name == "content-length" {
                    guard let length = decimal(value), contentLength == nil || contentLength == length else {
                        return "a content-length that is not one decimal number"
                    }
                    contentLength = length
                }
            }
        }
        switch block {
        case .request:
            guard method, scheme, path else {
                return "a request without \([method ? nil : ":method", scheme ? nil : ":scheme", path ? nil : ":path"].compactMap { $0 }.joined(separator: ", "))"
            }
        case .response:
            guard status else { return "a response without :status" }
        case .trailers:
            break
        }
        return nil
    }

    /// Why a field is malformed on its own, whatever block it is in and wherever: a regular field's name that is
    /// not a lowercase token, a connection-specific field, or a value with NUL, CR, LF or surrounding whitespace.
    /// Pseudo-header fields are judged by their place in a block, not here.
    public static func fieldProblem(name: String, value: String) -> String? {
        guard let first = name.utf8.first else { return "a header field with an empty name" }
        if first != UInt8(ascii: ":") {
            if let problem = connectionSpecific(name, value) { return problem }
            guard isWellFormedName(name) else {
                return "header field name \(name.debugDescription) has characters not allowed in a field name"
            }
        }
        if let problem = valueProblem(value) { return "header field \(name): \(problem)" }
        return nil
    }

    /// Lowercase token characters (RFC 9110 5.6.2) without the uppercase letters HTTP/2 forbids, as a table: the
    /// check runs for every byte of every field name.
    private static let nameBytes: [Bool] = (0..<256).map { byte in
        switch UInt8(byte) {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static func isWellFormedName(_ name: String) -> Bool {
        let check = { (bytes: UnsafeBufferPointer<UInt8>) -> Bool in
            nameBytes.withUnsafeBufferPointer { table in
                for byte in bytes where !table[Int(byte)] { return false }
                return true
            }
        }
        return name.utf8.withContiguousStorageIfAvailable(check) ?? Array(name.utf8).withUnsafeBufferPointer(check)
    }

    /// A content-length value: decimal digits only, no sign, no list, at most 18 of them.
    private static func decimal(_ value: String) -> Int? {
        let utf8 = value.utf8
        guard !utf8.isEmpty, utf8.count <= 18 else { return nil }
        var result = 0
        for byte in utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            result = result * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return result
    }

    private static func valueProblem(_ value: String) -> String? {
        let check = { (bytes: UnsafeBufferPointer<UInt8>) -> String? in
            guard let first = bytes.first, let last = bytes.last else { return nil }
            if first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { return "a value that starts with whitespace" }
            if last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { return "a value that ends with whitespace" }
            // NUL, CR and LF are the only bytes below 0x0E that matter; one comparison passes most bytes.
            for byte in bytes where byte <= UInt8(ascii: "\r") {
                if byte == 0 || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") { return "a value holding NUL, CR or LF" }
            }
            return nil
        }
        return value.utf8.withContiguousStorageIfAvailable(check) ?? Array(value.utf8).withUnsafeBufferPointer(check)
    }

    private static func connectionSpecific(_ name: String, _ value: String) -> String? {
        guard isConnectionSpecific(name: name, value: value) else { return nil }
        return name == "te" ? "te other than \"trailers\"" : "the connection-specific header field \(name), which HTTP/2 forbids"
    }

    /// Whether a field is one of HTTP/1.1's connection-specific ones, which HTTP/2 forbids (RFC 9113 8.2.2): `te` is
    /// allowed only as "trailers". Checked for every field of every block, so the names' lengths sort first.
    @inline(__always)
    static func isConnectionSpecific(name: String, value: String) -> Bool {
        switch name.utf8.count {
        case 2: return name == "te" && value != "trailers"
        case 7: return name == "upgrade"
        case 10: return name == "connection" || name == "keep-alive"
        case 16: return name == "proxy-connection"
        case 17: return name == "transfer-encoding"
        default: return false
        }
    }
}
