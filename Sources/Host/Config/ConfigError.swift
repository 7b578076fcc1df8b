// What a configuration problem looks like to the operator.
//
// Owns `ConfigError` (one problem, located by file, line, column and key path) and `ConfigErrors` (every problem
// found in one file, thrown by `ConfigLoader`). It only formats; finding the problems is the loader's and the
// validation's job.

import Foundation

/// One problem in a configuration file, located as precisely as the file allows.
///
/// Its description reads like a compiler diagnostic, so editors and terminals can jump to it:
/// `config.yaml:12:7: clusterConnections[0].remote.muxCount: expected an integer, found "ten"`.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file (or other source) the problem is in, as the caller named it.
    public var sourceName: String
    /// The key the problem is about, e.g. `clusterConnections[0].remote.tcpClient.address`; empty when the problem
    /// is not about one key (a YAML syntax error, an unreadable file).
    public var keyPath: String
    /// 1-based line of the key (or of its closest enclosing key that is in the file); nil when unknown.
    public var line: Int?
    /// 1-based column, counted in Unicode scalars; nil when unknown.
    public var column: Int?
    /// What is wrong and, where it helps, what to do about it.
    public var message: String

    /// Creates a problem report.
    public init(sourceName: String, keyPath: String, line: Int?, column: Int?, message: String) {
        self.sourceName = sourceName
        self.keyPath = keyPath
        self.line = line
        self.column = column
        self.message = message
    }

    /// `file:line:column: key.path: message`, leaving out the parts that are unknown.
    public var description: String {
        var location = sourceName
        if let line {
            location += ":\(line)"
            if let column {
                location += ":\(column)"
            }
        }
        if keyPath.isEmpty {
            return "\(location): \(message)"
        }
        return "\(location): \(keyPath): \(message)"
    }
}

/// Every problem found in one configuration file; thrown by `ConfigLoader` when the file cannot be used.
public struct ConfigErrors: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// The file (or other source) the problems are in.
    public var sourceName: String
    /// The problems, in file order where they have a line.
    public var errors: [ConfigError]

    /// Creates the error thrown for `sourceName`.
    public init(sourceName: String, errors: [ConfigError]) {
        self.sourceName = sourceName
        self.errors = errors
    }

    /// A heading line followed by one indented line per problem.
    public var description: String {
        let noun = errors.count == 1 ? "error" : "errors"
        let heading = "\(sourceName): \(errors.count) configuration \(noun); fix the file and try again:"
        return ([heading] + errors.map { "  \($0.description)" }).joined(separator: "\n")
    }

    /// The same text as `description`, for callers that print `localizedDescription`.
    public var errorDescription: String? { description }
}
