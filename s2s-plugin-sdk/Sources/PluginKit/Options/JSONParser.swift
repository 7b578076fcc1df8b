// A strict RFC 8259 JSON parser for plugin options: small, dependency-free, and safe on any input.
//
// Options are small documents parsed once per chain entry, so the parser favours clear error messages over speed.
// It never traps: every malformed input (truncation, bad escapes, unpaired surrogates, numbers out of range,
// nesting deeper than `maximumDepth`) becomes a `PluginConfigError` naming the byte offset.

struct JSONParser {
    /// Deeper nesting is rejected rather than recursed into, so hostile input cannot exhaust the stack.
    static let maximumDepth = 64

    private let bytes: [UInt8]
    private var position = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Parses the whole input as one JSON value.
    mutating func parseDocument() throws(PluginConfigError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        guard position == bytes.count else {
            throw error("unexpected \(describeCurrentByte()) after the JSON value")
        }
        return value
    }

    // MARK: Values

    private mutating func parseValue(depth: Int) throws(PluginConfigError) -> JSONValue {
        guard depth < Self.maximumDepth else {
            throw error("JSON nested deeper than \(Self.maximumDepth) levels")
        }
        guard let byte = currentByte else { throw error("the JSON text ends where a value was expected") }
        switch byte {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw error("unexpected \(describeCurrentByte()) where a JSON value was expected")
        }
    }

    private mutating func parseObject(depth: Int) throws(PluginConfigError) -> JSONValue {
        position += 1  // "{"
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if currentByte == UInt8(ascii: "}") {
            position += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard currentByte == UInt8(ascii: "\"") else {
                throw error("expected a quoted object key, found \(describeCurrentByte())")
            }
            let keyOffset = position
            let key = try parseString()
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':' after object key \"\(key)\"")
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            guard members.updateValue(value, forKey: key) == nil else {
                throw PluginConfigError(
                    "invalid JSON at byte \(keyOffset): the key \"\(key)\" appears twice in one object"
                )
            }
            skipWhitespace()
            if currentByte == UInt8(ascii: ",") {
                position += 1
                continue
            }
            try expect(UInt8(ascii: "}"), "',' or '}' after an object member")
            return .object(members)
        }
    }

    private mutating func parseArray(depth: Int) throws(PluginConfigError) -> JSONValue {
        position += 1  // "["
        var elements: [JSONValue] = []
        skipWhitespace()
        if currentByte == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            if currentByte == UInt8(ascii: ",") {
                position += 1
                continue
            }
            try expect(UInt8(ascii: "]"), "',' or ']' after an array element")
            return .array(elements)
        }
    }

    // MARK: Strings

    private mutating func parseString() throws(PluginConfigError) -> String {
        position += 1  // opening quote
        var utf8: [UInt8] = []
        while true {
            guard let byte = currentByte else { throw error("the JSON text ends inside a string") }
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                // The input may hold invalid UTF-8; decoding repairs it with U+FFFD instead of failing.
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                position += 1
                try parseEscape(into: &utf8)
            case 0x00..<0x20:
                throw error("control character 0x\(String(byte, radix: 16)) inside a string (escape it)")
            default:
                utf8.append(byte)
                position += 1
            }
        }
    }

    private mutating func parseEscape(into utf8: inout [UInt8]) throws(PluginConfigError) {
        guard let byte = currentByte else { throw error("the JSON text ends inside an escape sequence") }
        position += 1
        switch byte {
        case UInt8(ascii: "\""): utf8.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): utf8.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "/"): utf8.append(UInt8(ascii: "/"))
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"):
            let scalar = try parseUnicodeEscape()
            utf8.append(contentsOf: String(Character(scalar)).utf8)
        default:
            position -= 1
            throw error("invalid escape sequence \\\(describeCurrentByte())")
        }
    }

    /// The scalar of a `\uXXXX` escape (the `\u` already consumed), joining a UTF-16 surrogate pair.
    private mutating func parseUnicodeEscape() throws(PluginConfigError) -> Unicode.Scalar {
        let first = try parseHexQuad()
        switch first {
        case 0xD800..<0xDC00:
            guard currentByte == UInt8(ascii: "\\"), byte(at: position + 1) == UInt8(ascii: "u") else {
                throw error("unpaired UTF-16 high surrogate \\u\(String(first, radix: 16))")
            }
            position += 2
            let second = try parseHexQuad()
            guard (0xDC00..<0xE000).contains(second) else {
                throw error("a UTF-16 high surrogate is followed by \\u\(String(second, radix: 16)), not a low one")
            }
            let value = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            guard let scalar = Unicode.Scalar(value) else { throw error("invalid surrogate pair") }
            return scalar
        case 0xDC00..<0xE000:
            throw error("unpaired UTF-16 low surrogate \\u\(String(first, radix: 16))")
        default:
            guard let scalar = Unicode.Scalar(first) else { throw error("invalid \\u escape") }
            return scalar
        }
    }

    private mutating func parseHexQuad() throws(PluginConfigError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = currentByte, let digit = Self.hexDigitValue(byte) else {
                throw error("expected four hex digits after \\u, found \(describeCurrentByte())")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    private static func hexDigitValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    // MARK: Numbers and literals

    /// A number in JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    private mutating func parseNumber() throws(PluginConfigError) -> Double {
        let start = position
        if currentByte == UInt8(ascii: "-") { position += 1 }
        if currentByte == UInt8(ascii: "0") {
            position += 1
        } else {
            guard skipDigits() > 0 else { throw error("expected a digit in a number") }
        }
        if currentByte == UInt8(ascii: ".") {
            position += 1
            guard skipDigits() > 0 else { throw error("expected a digit after the decimal point") }
        }
        if currentByte == UInt8(ascii: "e") || currentByte == UInt8(ascii: "E") {
            position += 1
            if currentByte == UInt8(ascii: "+") || currentByte == UInt8(ascii: "-") { position += 1 }
            guard skipDigits() > 0 else { throw error("expected a digit in the exponent") }
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw PluginConfigError("invalid JSON at byte \(start): the number \(text) is out of range")
        }
        return value
    }

    /// Skips ASCII digits and says how many there were.
    private mutating func skipDigits() -> Int {
        let start = position
        while let byte = currentByte, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
            position += 1
        }
        return position - start
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(PluginConfigError) {
        let start = position
        let expected = UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
        for byte in expected {
            guard currentByte == byte else {
                position = start
                throw error("unexpected \(describeCurrentByte()) where a JSON value was expected")
            }
            position += 1
        }
    }

    // MARK: Cursor

    private var currentByte: UInt8? { byte(at: position) }

    private func byte(at offset: Int) -> UInt8? {
        offset < bytes.count ? bytes[offset] : nil
    }

    private mutating func skipWhitespace() {
        while let byte = currentByte,
            byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
                || byte == UInt8(ascii: "\t")
        {
            position += 1
        }
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(PluginConfigError) {
        guard currentByte == byte else { throw error("expected \(what), found \(describeCurrentByte())") }
        position += 1
    }

    private func describeCurrentByte() -> String {
        guard let byte = currentByte else { return "the end of the text" }
        if byte >= 0x20 && byte < 0x7F {
            return "'\(Character(Unicode.Scalar(byte)))'"
        }
        return "byte 0x\(String(byte, radix: 16))"
    }

    private func error(_ message: String) -> PluginConfigError {
        PluginConfigError("invalid JSON at byte \(position): \(message)")
    }
}
