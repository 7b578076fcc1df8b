// The JSON document model of plugin options.
//
// The host turns a chain entry's YAML `options:` into JSON text and hands it to the plugin; PluginKit parses that
// text into a `JSONValue` tree with its own small parser (`JSONParser`), so that plugins need neither Foundation
// nor a JSON package. Most plugins never touch this type: `PluginOptions` reads typed values by key. It is public
// for options whose shape no typed accessor covers.

/// A parsed JSON value.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// Every JSON number, as a `Double`: integers are exact up to 2^53.
    case number(Double)
    case string(String)
    case array([JSONValue])
    /// An object; JSON text with the same key twice in one object is rejected by the parser.
    case object([String: JSONValue])

    /// Parses JSON text (RFC 8259: one value, any type, surrounded by optional whitespace).
    ///
    /// - Throws: ``PluginConfigError`` naming the byte offset and what was expected there.
    public init(parsing text: some Collection<UInt8>) throws(PluginConfigError) {
        var parser = JSONParser(bytes: Array(text))
        self = try parser.parseDocument()
    }

    /// Parses JSON text given as a string.
    public init(parsing text: String) throws(PluginConfigError) {
        try self.init(parsing: text.utf8)
    }

    /// What this value is, in words, for error messages: "a string", "an array", ...
    public var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}
