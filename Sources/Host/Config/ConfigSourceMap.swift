// Where each key of a parsed configuration file was written, so that checks made after parsing can still point
// at a line.
//
// Owns `ConfigSourceMap`: filled by `YAMLNodeReader` while it walks the file, read by `ConfigValidation` and
// `ConfigSupportCheck`. It holds positions only, never values.

/// A 1-based line and column in the configuration file.
struct SourcePosition: Hashable, Sendable {
    var line: Int
    var column: Int
}

/// The position of every key (and list item) that the file contains, and the keys whose values were rejected.
struct ConfigSourceMap: Sendable {
    /// The file name put in front of every error.
    let sourceName: String
    private var positions: [ConfigKeyPath: SourcePosition] = [:]
    private var rejectedPaths: Set<ConfigKeyPath> = []

    /// An empty map for the file called `sourceName` in error messages.
    init(sourceName: String) {
        self.sourceName = sourceName
    }

    /// Remembers that the key (or list item) at `path` is written at `position`.
    mutating func record(_ path: ConfigKeyPath, at position: SourcePosition?) {
        guard let position, positions[path] == nil else { return }
        positions[path] = position
    }

    /// Remembers that the value at `path` was rejected while parsing, so later checks can stay quiet about it.
    mutating func markRejected(_ path: ConfigKeyPath) {
        rejectedPaths.insert(path)
    }

    /// Whether the file writes the key at `path` (with any value, null included).
    func contains(_ path: ConfigKeyPath) -> Bool {
        positions[path] != nil
    }

    /// Whether the value at `path`, or a block enclosing it, was rejected while parsing.
    func isRejected(_ path: ConfigKeyPath) -> Bool {
        var candidate: ConfigKeyPath? = path
        while let current = candidate {
            if rejectedPaths.contains(current) { return true }
            candidate = current.parent
        }
        return false
    }

    /// The position of `path`, or of its closest enclosing key that the file writes (a missing key is reported
    /// where its block is).
    func position(of path: ConfigKeyPath) -> SourcePosition? {
        var candidate: ConfigKeyPath? = path
        while let current = candidate {
            if let position = positions[current] { return position }
            candidate = current.parent
        }
        return nil
    }

    /// A `ConfigError` about `path`, located by this map.
    func error(_ message: String, at path: ConfigKeyPath) -> ConfigError {
        let position = position(of: path)
        return ConfigError(
            sourceName: sourceName,
            keyPath: path.description,
            line: position?.line,
            column: position?.column,
            message: message
        )
    }
}
