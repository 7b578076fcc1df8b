// Typed, checked access to a chain entry's options.
//
// The host hands a plugin its `options:` as a JSON object. `PluginOptions` reads values by key with the type the
// plugin expects and throws `PluginConfigError`s that name the key's full path ("options.rules[1].from must be a
// string, not a number"), so a plugin's init reads like a list of its options and every mistake in the YAML is
// reported at start-up, not on the first call.
//
// It also remembers which keys the plugin asked for. When `init(options:host:)` returns, PluginKit fails the chain
// entry if the options hold a key that was never asked for — almost always a typo in the YAML that would otherwise
// be ignored silently. A plugin that reads options whose keys it cannot list (free-form maps are read whole with
// `stringMap`, so they don't count) calls `allowUnknownKeys()`.

/// A JSON object of options, read by key. Accessors return `nil` for an absent key (or a `null` value), throw if
/// the value has another type, and have `required…` variants that throw for an absent key too.
public final class PluginOptions {
    /// The object's members.
    public let members: [String: JSONValue]
    /// How error messages name this object: "options", "options.limits", "options.rules[2]".
    public let path: String

    private var keysAsked: Set<String> = []
    private var children: [PluginOptions] = []
    private var unknownKeysAllowed = false

    /// Options from the members of a JSON object.
    public init(members: [String: JSONValue], path: String = "options") {
        self.members = members
        self.path = path
    }

    /// Parses options from JSON text, which must be an object.
    public convenience init(json: some Collection<UInt8>) throws(PluginConfigError) {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: json)
        } catch {
            throw PluginConfigError("options are not valid JSON: \(error.message)")
        }
        guard case .object(let members) = value else {
            throw PluginConfigError("options must be a JSON object (a YAML mapping), not \(value.kindDescription)")
        }
        self.init(members: members)
    }

    /// Parses options from JSON text given as a string, e.g. in tests: `PluginOptions(json: #"{"deny": []}"#)`.
    public convenience init(json: String) throws(PluginConfigError) {
        try self.init(json: json.utf8)
    }

    /// The keys present, sorted.
    public var keys: [String] { members.keys.sorted() }

    /// Turns off the check for keys the plugin never asked for, for this object and the objects read from it.
    public func allowUnknownKeys() {
        unknownKeysAllowed = true
    }

    // MARK: Scalars

    /// The string at `key`, or nil if absent.
    public func string(forKey key: String) throws(PluginConfigError) -> String? {
        try read(key, expecting: "a string") { value in
            if case .string(let string) = value { return string }
            return nil
        }
    }

    /// The string at `key`; throws if absent.
    public func requiredString(forKey key: String) throws(PluginConfigError) -> String {
        try required(key, try string(forKey: key))
    }

    /// The boolean at `key`, or nil if absent.
    public func bool(forKey key: String) throws(PluginConfigError) -> Bool? {
        try read(key, expecting: "true or false") { value in
            if case .bool(let bool) = value { return bool }
            return nil
        }
    }

    /// The boolean at `key`; throws if absent.
    public func requiredBool(forKey key: String) throws(PluginConfigError) -> Bool {
        try required(key, try bool(forKey: key))
    }

    /// The integer at `key` (a JSON number without a fractional part), or nil if absent.
    public func int(forKey key: String) throws(PluginConfigError) -> Int? {
        try read(key, expecting: "an integer") { value in
            if case .number(let number) = value, number.rounded(.towardZero) == number,
                abs(number) <= 9_007_199_254_740_992
            {
                return Int(exactly: number)
            }
            return nil
        }
    }

    /// The integer at `key`; throws if absent.
    public func requiredInt(forKey key: String) throws(PluginConfigError) -> Int {
        try required(key, try int(forKey: key))
    }

    /// The number at `key`, or nil if absent.
    public func double(forKey key: String) throws(PluginConfigError) -> Double? {
        try read(key, expecting: "a number") { value in
            if case .number(let number) = value { return number }
            return nil
        }
    }

    /// The number at `key`; throws if absent.
    public func requiredDouble(forKey key: String) throws(PluginConfigError) -> Double {
        try required(key, try double(forKey: key))
    }

    // MARK: Collections

    /// The array of strings at `key`, or nil if absent.
    public func stringArray(forKey key: String) throws(PluginConfigError) -> [String]? {
        guard let elements = try array(forKey: key) else { return nil }
        var strings: [String] = []
        strings.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            guard case .string(let string) = element else {
                throw PluginConfigError(
                    "\(path).\(key)[\(index)] must be a string, not \(element.kindDescription)"
                )
            }
            strings.append(string)
        }
        return strings
    }

    /// The array of strings at `key`; throws if absent.
    public func requiredStringArray(forKey key: String) throws(PluginConfigError) -> [String] {
        try required(key, try stringArray(forKey: key))
    }

    /// The object at `key` read as a map from string to string (e.g. a rename table), or nil if absent. Its keys
    /// are data, not option names, so they are not checked against what the plugin asks for.
    public func stringMap(forKey key: String) throws(PluginConfigError) -> [String: String]? {
        guard let value = try value(forKey: key) else { return nil }
        guard case .object(let members) = value else {
            throw PluginConfigError("\(path).\(key) must be a mapping of strings, not \(value.kindDescription)")
        }
        var map: [String: String] = [:]
        for (mapKey, element) in members {
            guard case .string(let string) = element else {
                throw PluginConfigError(
                    "\(path).\(key).\(mapKey) must be a string, not \(element.kindDescription)"
                )
            }
            map[mapKey] = string
        }
        return map
    }

    /// The map of strings at `key`; throws if absent.
    public func requiredStringMap(forKey key: String) throws(PluginConfigError) -> [String: String] {
        try required(key, try stringMap(forKey: key))
    }

    /// The nested object at `key` as options of its own (checked for unknown keys like this one), or nil if absent.
    public func options(forKey key: String) throws(PluginConfigError) -> PluginOptions? {
        guard let value = try value(forKey: key) else { return nil }
        guard case .object(let members) = value else {
            throw PluginConfigError("\(path).\(key) must be a mapping, not \(value.kindDescription)")
        }
        return child(members: members, path: "\(path).\(key)")
    }

    /// The nested object at `key`; throws if absent.
    public func requiredOptions(forKey key: String) throws(PluginConfigError) -> PluginOptions {
        try required(key, try options(forKey: key))
    }

    /// The array of objects at `key` (e.g. a list of rules), each as options of its own, or nil if absent.
    public func optionsArray(forKey key: String) throws(PluginConfigError) -> [PluginOptions]? {
        guard let elements = try array(forKey: key) else { return nil }
        var objects: [[String: JSONValue]] = []
        objects.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            guard case .object(let members) = element else {
                throw PluginConfigError(
                    "\(path).\(key)[\(index)] must be a mapping, not \(element.kindDescription)"
                )
            }
            objects.append(members)
        }
        // Only now: a list that throws leaves no children behind for the unknown-key check.
        return objects.enumerated().map { index, members in child(members: members, path: "\(path).\(key)[\(index)]") }
    }

    /// The array of objects at `key`; throws if absent.
    public func requiredOptionsArray(forKey key: String) throws(PluginConfigError) -> [PluginOptions] {
        try required(key, try optionsArray(forKey: key))
    }

    /// The raw value at `key`, or nil if absent or `null`; for shapes no typed accessor covers.
    public func value(forKey key: String) throws(PluginConfigError) -> JSONValue? {
        keysAsked.insert(key)
        switch members[key] {
        case .none, .null?: return nil
        case .some(let value): return value
        }
    }

    // MARK: Unknown keys

    /// Throws if this object, or one read from it, holds a key the plugin never asked for. PluginKit calls this
    /// when `init(options:host:)` has returned; a plugin that reads options later may call it itself.
    public func checkForUnknownKeys() throws(PluginConfigError) {
        try checkForUnknownKeys(allowedByParent: false)
    }

    private func checkForUnknownKeys(allowedByParent: Bool) throws(PluginConfigError) {
        let allowed = allowedByParent || unknownKeysAllowed
        if !allowed {
            let unknown = Set(members.keys).subtracting(keysAsked).sorted()
            if !unknown.isEmpty {
                let names = unknown.map { "'\($0)'" }.joined(separator: ", ")
                let known = keysAsked.sorted().joined(separator: ", ")
                throw PluginConfigError(
                    "\(path) has unknown key\(unknown.count == 1 ? "" : "s") \(names)"
                        + (known.isEmpty ? "; this plugin reads no keys here" : "; this plugin reads: \(known)")
                )
            }
        }
        for child in children {
            try child.checkForUnknownKeys(allowedByParent: allowed)
        }
    }

    // MARK: Helpers

    private func read<T>(
        _ key: String, expecting expected: String, _ convert: (JSONValue) -> T?
    ) throws(PluginConfigError) -> T? {
        guard let value = try value(forKey: key) else { return nil }
        guard let converted = convert(value) else {
            throw PluginConfigError("\(path).\(key) must be \(expected), not \(describe(value))")
        }
        return converted
    }

    private func array(forKey key: String) throws(PluginConfigError) -> [JSONValue]? {
        guard let value = try value(forKey: key) else { return nil }
        guard case .array(let elements) = value else {
            throw PluginConfigError("\(path).\(key) must be a list, not \(value.kindDescription)")
        }
        return elements
    }

    private func required<T>(_ key: String, _ value: T?) throws(PluginConfigError) -> T {
        guard let value else { throw PluginConfigError("\(path).\(key) is required") }
        return value
    }

    private func child(members: [String: JSONValue], path: String) -> PluginOptions {
        let options = PluginOptions(members: members, path: path)
        children.append(options)
        return options
    }

    /// A value for an error message: short scalars are quoted so the operator recognises them.
    private func describe(_ value: JSONValue) -> String {
        switch value {
        case .string(let string) where string.count <= 40: return "the string \"\(string)\""
        case .number(let number):
            if let integer = Int(exactly: number) { return "the number \(integer)" }
            return "the number \(number)"
        case .bool(let bool): return "\(bool)"
        default: return value.kindDescription
        }
    }
}
