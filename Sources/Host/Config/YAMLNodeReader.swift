// Typed reads from a composed YAML tree, with Go-yaml-compatible scalar rules and located errors.
//
// Owns `YAMLNodeReader` and `MappingFields`: opening mappings against a list of known keys (unknown keys are
// errors with a "did you mean"), turning scalars into strings, integers, numbers and booleans the way the Go
// proxy's YAML library does, and recording where every key sits in the file. It never stops at the first
// problem: a rejected value is reported and read as absent. It knows no configuration keys itself;
// `ProxyConfigDecoder` says which keys exist where.

import Yams

/// The known keys of one YAML mapping, with their non-null values, after unknown keys have been reported.
struct MappingFields {
    /// Where the mapping is.
    let path: ConfigKeyPath
    /// Value node by key; keys written with a null value (`key:`, `key: ~`) are absent, as in the Go proxy.
    fileprivate let values: [String: Node]

    /// Whether `key` has a non-null value.
    func has(_ key: String) -> Bool {
        values[key] != nil
    }
}

/// Reads typed values out of YAML nodes, collecting every problem instead of stopping at the first one.
struct YAMLNodeReader {
    /// Where each key read so far is written.
    private(set) var sourceMap: ConfigSourceMap
    /// Every problem found so far, in reading order.
    private(set) var errors: [ConfigError] = []

    /// A reader for the file called `sourceName` in error messages.
    init(sourceName: String) {
        sourceMap = ConfigSourceMap(sourceName: sourceName)
    }

    /// Records a problem with the value at `path`; later checks treat that value as rejected.
    mutating func report(_ message: String, at path: ConfigKeyPath) {
        sourceMap.markRejected(path)
        errors.append(sourceMap.error(message, at: path))
    }

    /// Remembers where `path` is written.
    mutating func recordPosition(of node: Node, as path: ConfigKeyPath) {
        sourceMap.record(path, at: node.mark.map { SourcePosition(line: $0.line, column: $0.column) })
    }

    // MARK: - Mappings

    /// Opens `node` as a mapping whose valid keys are `knownKeys`.
    ///
    /// Unknown keys are reported with the closest known key as a suggestion, or with the explanation that
    /// `retiredKeys` gives for them. Returns nil (after reporting) when `node` is not a mapping.
    mutating func fields(
        of node: Node,
        at path: ConfigKeyPath,
        knownKeys: [String],
        retiredKeys: [String: String] = [:]
    ) -> MappingFields? {
        guard case .mapping(let mapping) = node else {
            let someKeys = knownKeys.prefix(3).joined(separator: ", ") + (knownKeys.count > 3 ? ", ..." : "")
            report("expected a mapping (\(someKeys)), found \(describe(node))", at: path)
            return nil
        }
        var values: [String: Node] = [:]
        for (keyNode, valueNode) in pairs(of: mapping, at: path) {
            guard let key = keyName(keyNode, in: path) else { continue }
            let keyPath = path.appending(key)
            recordPosition(of: keyNode, as: keyPath)
            guard knownKeys.contains(key) else {
                report(unknownKeyMessage(key, knownKeys: knownKeys, retiredKeys: retiredKeys), at: keyPath)
                continue
            }
            if !isNull(valueNode) {
                values[key] = valueNode
            }
        }
        return MappingFields(path: path, values: values)
    }

    /// Opens the value of `key` as a nested mapping; nil when absent or not a mapping.
    mutating func mapping(_ key: String, in fields: MappingFields, knownKeys: [String]) -> MappingFields? {
        guard let node = fields.values[key] else { return nil }
        return self.fields(of: node, at: fields.path.appending(key), knownKeys: knownKeys)
    }

    /// The entries of a mapping whose keys are names chosen by the user (component names, node names), in file
    /// order, with null-valued entries left out. Nil when absent or not a mapping.
    mutating func namedEntries(
        _ key: String,
        in fields: MappingFields
    ) -> [(name: String, path: ConfigKeyPath, node: Node)]? {
        guard let node = fields.values[key] else { return nil }
        let path = fields.path.appending(key)
        guard case .mapping(let mapping) = node else {
            report("expected a mapping of names to values, found \(describe(node))", at: path)
            return nil
        }
        var entries: [(name: String, path: ConfigKeyPath, node: Node)] = []
        for (keyNode, valueNode) in pairs(of: mapping, at: path) {
            guard let name = keyName(keyNode, in: path) else { continue }
            let entryPath = path.appending(name)
            recordPosition(of: keyNode, as: entryPath)
            if !isNull(valueNode) {
                entries.append((name, entryPath, valueNode))
            }
        }
        return entries
    }

    /// The items of the list under `key`, each with its path; nil when absent or not a list.
    mutating func items(_ key: String, in fields: MappingFields) -> [(path: ConfigKeyPath, node: Node)]? {
        guard let node = fields.values[key] else { return nil }
        let path = fields.path.appending(key)
        guard case .sequence(let sequence) = node else {
            report("expected a list, found \(describe(node))", at: path)
            return nil
        }
        return sequence.enumerated().map { index, item in
            let itemPath = path.appending(index: index)
            recordPosition(of: item, as: itemPath)
            return (itemPath, item)
        }
    }

    // MARK: - Scalars under a key

    /// The value of `key` as a string; nil when absent or rejected.
    mutating func string(_ key: String, in fields: MappingFields) -> String? {
        fields.values[key].flatMap { string(from: $0, at: fields.path.appending(key)) }
    }

    /// The value of `key` as an integer of type `Integer`; nil when absent or rejected.
    mutating func integer<Integer: FixedWidthInteger>(
        _ key: String,
        in fields: MappingFields,
        as type: Integer.Type = Integer.self
    ) -> Integer? {
        fields.values[key].flatMap { integer(from: $0, at: fields.path.appending(key), as: type) }
    }

    /// The value of `key` as a finite number (an integer or a float); nil when absent or rejected.
    mutating func number(_ key: String, in fields: MappingFields) -> Double? {
        fields.values[key].flatMap { number(from: $0, at: fields.path.appending(key)) }
    }

    /// The value of `key` as a boolean; nil when absent or rejected.
    mutating func bool(_ key: String, in fields: MappingFields) -> Bool? {
        fields.values[key].flatMap { bool(from: $0, at: fields.path.appending(key)) }
    }

    /// The value of `key` as a list of strings; nil when absent or rejected. Rejected items are left out.
    mutating func stringList(_ key: String, in fields: MappingFields) -> [String]? {
        guard let items = items(key, in: fields) else { return nil }
        return items.compactMap { item in
            if isNull(item.node) {
                report("expected a string, found an empty list item", at: item.path)
                return nil
            }
            return string(from: item.node, at: item.path)
        }
    }

    /// The value of `key` (any YAML) as JSON text; nil when absent or not representable (reported).
    mutating func json(_ key: String, in fields: MappingFields) -> String? {
        guard let node = fields.values[key] else { return nil }
        var output = ""
        return json(from: node, at: fields.path.appending(key), into: &output, depth: 0) ? output : nil
    }

    /// Appends `node` as JSON: mappings become objects (keys as strings), sequences arrays, and scalars strings,
    /// numbers, booleans or null by the same resolution as everywhere else in the file.
    private mutating func json(from node: Node, at path: ConfigKeyPath, into output: inout String, depth: Int) -> Bool {
        guard depth < 64 else {
            report("nested too deeply (more than 64 levels)", at: path)
            return false
        }
        switch node {
        case .mapping(let mapping):
            output += "{"
            var first = true
            var keys: Set<String> = []
            for (keyNode, valueNode) in mapping {
                guard case .scalar(let key) = keyNode else {
                    report("mapping keys must be scalars", at: path)
                    return false
                }
                // YAML tells 1 from "1"; as JSON object keys they are the same, and a plugin refuses the options.
                guard keys.insert(key.string).inserted else {
                    report(
                        "key \"\(key.string)\" appears more than once in this mapping (1 and \"1\" are one key in JSON)",
                        at: path
                    )
                    return false
                }
                if !first { output += "," }
                first = false
                Self.appendJSONString(key.string, to: &output)
                output += ":"
                guard json(from: valueNode, at: path.appending(key.string), into: &output, depth: depth + 1) else { return false }
            }
            output += "}"
        case .sequence(let sequence):
            output += "["
            for (index, item) in sequence.enumerated() {
                if index > 0 { output += "," }
                guard json(from: item, at: path.appending(index: index), into: &output, depth: depth + 1) else { return false }
            }
            output += "]"
        case .scalar(let scalar):
            switch resolvedTag(of: node) {
            case .null:
                output += "null"
            case .bool:
                guard let value = bool(from: node, at: path) else { return false }
                output += value ? "true" : "false"
            case .int:
                guard case .value(let value) = Self.parseInteger(scalar.string) else {
                    report("integer \(scalar.string) is out of range", at: path)
                    return false
                }
                output += String(value)
            case .float:
                guard let value = number(from: node, at: path) else { return false }
                output += "\(value)"
            default:
                Self.appendJSONString(scalar.string, to: &output)
            }
        case .alias:
            report("YAML aliases are not supported here", at: path)
            return false
        }
        return true
    }

    static func appendJSONString(_ text: String, to output: inout String) {
        output += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }

    // MARK: - Scalar conversions

    /// Any scalar as its text: `address: 7233` reads as "7233", as Go's YAML library does for string fields.
    mutating func string(from node: Node, at path: ConfigKeyPath) -> String? {
        guard case .scalar(let scalar) = node else {
            report("expected a string, found \(describe(node))", at: path)
            return nil
        }
        return scalar.string
    }

    /// A YAML integer (decimal, `0x`, `0o`, `0b`, leading-zero octal, `_` separators) that fits `Integer`.
    /// Quoted numbers and floats are rejected, as in Go.
    mutating func integer<Integer: FixedWidthInteger>(
        from node: Node,
        at path: ConfigKeyPath,
        as type: Integer.Type = Integer.self
    ) -> Integer? {
        let range = "\(Integer.min)...\(Integer.max)"
        guard case .scalar(let scalar) = node else {
            report("expected an integer, found \(describe(node))", at: path)
            return nil
        }
        switch Self.parseInteger(scalar.string) {
        case .value(let value) where isPlain(scalar):
            guard let fitted = Integer(exactly: value) else {
                report("\(scalar.string) is out of range; expected an integer in \(range)", at: path)
                return nil
            }
            return fitted
        case .value:
            report("expected an integer, found \(describe(node)); write the number without quotes", at: path)
        case .outOfRange where isPlain(scalar):
            report("\(scalar.string) is out of range; expected an integer in \(range)", at: path)
        case .outOfRange, .notAnInteger:
            report("expected an integer, found \(describe(node))", at: path)
        }
        return nil
    }

    /// A finite YAML integer or float; quoted numbers are rejected, as in Go.
    mutating func number(from node: Node, at path: ConfigKeyPath) -> Double? {
        guard case .scalar(let scalar) = node else {
            report("expected a number, found \(describe(node))", at: path)
            return nil
        }
        let value: Double?
        if case .value(let integer) = Self.parseInteger(scalar.string) {
            value = Double(integer)
        } else if resolvedTag(of: node) == .float {
            value = Double.construct(from: scalar)
        } else {
            value = Double(scalar.string)
        }
        guard let value, value.isFinite else {
            report("expected a number, found \(describe(node))", at: path)
            return nil
        }
        guard isPlain(scalar) else {
            report("expected a number, found \(describe(node)); write the number without quotes", at: path)
            return nil
        }
        return value
    }

    /// `true`/`false`, and the YAML 1.1 spellings `yes`/`no`/`on`/`off`, in any letter case; quoted text is
    /// rejected, as in Go.
    mutating func bool(from node: Node, at path: ConfigKeyPath) -> Bool? {
        guard case .scalar(let scalar) = node else {
            report("expected true or false, found \(describe(node))", at: path)
            return nil
        }
        let value: Bool?
        switch scalar.string.lowercased() {
        case "true", "yes", "on": value = true
        case "false", "no", "off": value = false
        default: value = nil
        }
        guard let value, isPlain(scalar) else {
            let advice = value == nil ? "" : "; write it without quotes"
            report("expected true or false, found \(describe(node))\(advice)", at: path)
            return nil
        }
        return value
    }

    /// How a value is named in "expected ..., found ..." messages: strings quoted, other scalars as written.
    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar):
            if isNull(node) { return "null" }
            if resolvedTag(of: node) == .str { return "\"\(scalar.string)\"" }
            return scalar.string
        case .mapping:
            return "a mapping"
        case .sequence:
            return "a list"
        case .alias:
            return "an alias"
        }
    }

    // MARK: - Integer syntax

    /// The outcome of reading a YAML integer literal.
    enum IntegerLiteral: Equatable {
        case value(Int64)
        case outOfRange
        case notAnInteger
    }

    /// Reads a YAML integer literal with Go's `strconv.ParseInt(_, 0, 64)` rules plus `_` separators.
    static func parseInteger(_ text: String) -> IntegerLiteral {
        var digits = Substring(text.replacingOccurrences(of: "_", with: ""))
        var sign = ""
        if let first = digits.first, first == "-" || first == "+" {
            sign = first == "-" ? "-" : ""
            digits = digits.dropFirst()
        }
        var radix = 10
        let lowered = digits.lowercased()
        if lowered.hasPrefix("0x") {
            radix = 16
            digits = digits.dropFirst(2)
        } else if lowered.hasPrefix("0o") {
            radix = 8
            digits = digits.dropFirst(2)
        } else if lowered.hasPrefix("0b") {
            radix = 2
            digits = digits.dropFirst(2)
        } else if digits.count > 1, digits.hasPrefix("0") {
            radix = 8
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && ($0.hexDigitValue ?? radix) < radix }) else {
            return .notAnInteger
        }
        guard let value = Int64(sign + digits, radix: radix) else {
            return .outOfRange
        }
        return .value(value)
    }

    // MARK: - Helpers

    /// The pairs of `mapping` with YAML merge keys (`<<: *anchor`) expanded: keys written in the mapping win over
    /// merged ones, and earlier merge sources win over later ones.
    private mutating func pairs(of mapping: Node.Mapping, at path: ConfigKeyPath) -> [(key: Node, value: Node)] {
        var explicitPairs: [(key: Node, value: Node)] = []
        var mergedPairs: [(key: Node, value: Node)] = []
        for (key, value) in mapping {
            guard resolvedTag(of: key) == .merge else {
                explicitPairs.append((key, value))
                continue
            }
            let sources: [Node]
            if case .sequence(let sequence) = value {
                sources = Array(sequence)
            } else {
                sources = [value]
            }
            for source in sources {
                guard case .mapping(let sourceMapping) = source else {
                    report("a merge key (<<) must refer to a mapping, found \(describe(source))", at: path)
                    continue
                }
                mergedPairs.append(contentsOf: pairs(of: sourceMapping, at: path))
            }
        }
        var seen = Set(explicitPairs.compactMap { $0.key.scalar?.string })
        var result = explicitPairs
        for pair in mergedPairs {
            guard let name = pair.key.scalar?.string, !seen.contains(name) else { continue }
            seen.insert(name)
            result.append(pair)
        }
        return result
    }

    private mutating func keyName(_ keyNode: Node, in path: ConfigKeyPath) -> String? {
        guard case .scalar(let scalar) = keyNode else {
            report("keys must be plain names, found \(describe(keyNode)) used as a key", at: path)
            return nil
        }
        return scalar.string
    }

    private func unknownKeyMessage(_ key: String, knownKeys: [String], retiredKeys: [String: String]) -> String {
        if let explanation = retiredKeys[key] {
            return "unknown key \"\(key)\": \(explanation)"
        }
        if let suggestion = KeySuggestion.closest(to: key, among: knownKeys) {
            return "unknown key \"\(key)\"; did you mean \"\(suggestion)\"?"
        }
        return "unknown key \"\(key)\"; valid keys here are \(knownKeys.joined(separator: ", "))"
    }

    private func isNull(_ node: Node) -> Bool {
        resolvedTag(of: node) == .null
    }

    private func isPlain(_ scalar: Node.Scalar) -> Bool {
        scalar.style == .plain || scalar.style == .any
    }

    private func resolvedTag(of node: Node) -> Tag.Name {
        Tag.Name(rawValue: node.tag.rawValue)
    }
}
