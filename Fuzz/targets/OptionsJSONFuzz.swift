// libFuzzer target: PluginKit's strict JSON parser (`JSONValue(parsing:)`, s2s-plugin-sdk/Sources/PluginKit/Options) and the
// typed option accessors over what it parses, on arbitrary bytes: a plugin's `options:` as the host hands them on.
//
// Parsing either throws a `PluginConfigError` naming a byte offset inside the text, or gives a value that, written
// back as JSON, parses to the same value; an object read as `PluginOptions` answers every accessor for every key
// with a value or an error, never a trap. Built and run by scripts/fuzz.

@testable import PluginKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOptionsJSON(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = UnsafeRawBufferPointer(start: start, count: count)
    let value: JSONValue
    do {
        value = try JSONValue(parsing: text)
    } catch {
        checkErrorOffset(error.message, count: count)
        return 0
    }
    var written = ""
    write(value, to: &written)
    do {
        let again = try JSONValue(parsing: written)
        require(again == value, "\(written) parses to another value")
    } catch {
        fatalError("the parser refuses what it parsed, written back: \(written): \(error)")
    }
    if case .object(let members) = value {
        read(PluginOptions(members: members), depth: 0)
    }
    return 0
}

/// "invalid JSON at byte N: ..." with N within the text (N = count: at its end).
private func checkErrorOffset(_ message: String, count: Int) {
    let prefix = "invalid JSON at byte "
    require(message.hasPrefix(prefix), "an error without its offset: \(message)")
    let digits = message.dropFirst(prefix.count).prefix { $0.isNumber }
    guard let offset = Int(digits) else { fatalError("an error without its offset: \(message)") }
    require(offset >= 0 && offset <= count, "offset \(offset) outside a text of \(count) bytes")
}

/// Every accessor on every key, nested objects and arrays of objects included.
private func read(_ options: PluginOptions, depth: Int) {
    for key in options.keys {
        _ = try? options.string(forKey: key)
        _ = try? options.bool(forKey: key)
        if let int = try? options.int(forKey: key), let double = try? options.double(forKey: key) {
            require(Double(int) == double, "int and double disagree on \(key)")
        }
        _ = try? options.stringArray(forKey: key)
        _ = try? options.stringMap(forKey: key)
        _ = try? options.value(forKey: key)
        require((try? options.requiredString(forKey: key + "\u{0}absent")) == nil)
        if depth < 8 {
            if let child = try? options.options(forKey: key) { read(child, depth: depth + 1) }
            if let children = try? options.optionsArray(forKey: key) {
                for child in children { read(child, depth: depth + 1) }
            }
        }
    }
    // Every key was asked for.
    do {
        try options.checkForUnknownKeys()
    } catch {
        fatalError("keys that were read are reported unknown: \(error)")
    }
}

/// JSON text for `value`, written independently of the parser.
private func write(_ value: JSONValue, to output: inout String) {
    switch value {
    case .null: output += "null"
    case .bool(let bool): output += bool ? "true" : "false"
    case .number(let number):
        require(number.isFinite, "a number that is not finite")
        output += "\(number)"
    case .string(let string): writeString(string, to: &output)
    case .array(let elements):
        output += "["
        for (index, element) in elements.enumerated() {
            if index > 0 { output += "," }
            write(element, to: &output)
        }
        output += "]"
    case .object(let members):
        output += "{"
        for (index, key) in members.keys.sorted().enumerated() {
            if index > 0 { output += "," }
            writeString(key, to: &output)
            output += ":"
            write(members[key]!, to: &output)
        }
        output += "}"
    }
}

private func writeString(_ string: String, to output: inout String) {
    output += "\""
    for scalar in string.unicodeScalars {
        switch scalar {
        case "\"": output += "\\\""
        case "\\": output += "\\\\"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: output.unicodeScalars.append(scalar)
        }
    }
    output += "\""
}

/// `precondition` that says what failed in an optimized build too.
private func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = "", file: StaticString = #file,
    line: UInt = #line
) {
    if !condition() { fatalError("fuzz check failed: \(message())", file: file, line: line) }
}
