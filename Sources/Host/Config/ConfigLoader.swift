// The entry point for reading a configuration file: file -> YAML tree -> typed values -> checked values.
//
// Owns `ConfigLoader`: reading the file, turning Yams' syntax errors into located `ConfigError`s, and running the
// stages in order (`ProxyConfigDecoder`, `ConfigValidation`, `ConfigSupportCheck`). Every problem of a file is
// reported at once, sorted by line; only a YAML syntax error, after which there is no tree to walk, stops early.

import Foundation
import Yams

/// Loads the proxy's YAML configuration, in the Go s2s-proxy's format plus this project's extension keys.
public enum ConfigLoader {
    /// Reads and checks the configuration file at `path`.
    ///
    /// - Throws: `ConfigErrors` naming `path`, with one entry per problem: the file cannot be read, is not YAML,
    ///   or breaks the schema or a validation rule.
    public static func load(path: String) throws(ConfigErrors) -> LoadedConfig {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(yaml: try readText(of: path), sourceName: path, baseDirectory: directory)
    }

    /// Checks the configuration text `yaml`; `sourceName` is the file name put in front of every error, and
    /// relative file paths in it (`schema.file`) start at `baseDirectory` (nil: the current directory).
    ///
    /// - Throws: `ConfigErrors` with one entry per problem found.
    public static func parse(
        yaml: String,
        sourceName: String,
        baseDirectory: String? = nil
    ) throws(ConfigErrors) -> LoadedConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigErrors(sourceName: sourceName, errors: [syntaxError(error, in: yaml, sourceName: sourceName)])
        }
        var decoder = ProxyConfigDecoder(sourceName: sourceName, baseDirectory: baseDirectory)
        let config = decoder.decode(root)
        let sourceMap = decoder.reader.sourceMap
        let errors = decoder.reader.errors + ConfigValidation.problems(in: config, sourceMap: sourceMap)
        guard errors.isEmpty else {
            throw ConfigErrors(sourceName: sourceName, errors: inFileOrder(errors))
        }
        let support = ConfigSupportCheck.assess(config, sourceMap: sourceMap)
        return LoadedConfig(
            config: config,
            unsupported: inFileOrder(support.unsupported),
            warnings: inFileOrder(support.warnings).map(\.description)
        )
    }

    // MARK: - Reading the file

    private static func readText(of path: String) throws(ConfigErrors) -> String {
        func failure(_ message: String) -> ConfigErrors {
            ConfigErrors(
                sourceName: path,
                errors: [ConfigError(sourceName: path, keyPath: "", line: nil, column: nil, message: message)]
            )
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw failure("cannot read the configuration: no such file; check the path")
        }
        guard !isDirectory.boolValue else {
            throw failure("cannot read the configuration: this is a directory; give the path of the YAML file")
        }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw failure("cannot read the configuration: permission denied; make the file readable by this user")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw failure("cannot read the configuration: \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw failure("cannot read the configuration: the file is not UTF-8 text; save it as UTF-8")
        }
        return text
    }

    // MARK: - Errors

    /// A Yams failure as one located error. Yams' own descriptions repeat the source text, so they are rebuilt
    /// from the parts.
    private static func syntaxError(_ error: any Error, in yaml: String, sourceName: String) -> ConfigError {
        func located(_ message: String, _ position: SourcePosition?) -> ConfigError {
            ConfigError(
                sourceName: sourceName, keyPath: "", line: position?.line, column: position?.column, message: message
            )
        }
        func position(_ mark: Mark) -> SourcePosition {
            SourcePosition(line: mark.line, column: mark.column)
        }
        guard let yamlError = error as? YamlError else {
            return located("invalid YAML: \(error)", nil)
        }
        switch yamlError {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            if problem == "but found another document" {
                return located(
                    "invalid YAML: the file holds more than one document; keep the configuration in one",
                    position(mark)
                )
            }
            let contextNote = context.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? ""
            return located("invalid YAML: \(problem)\(contextNote)", position(mark))
        case .reader(let problem, let offset, _, _):
            let position = offset.map { Self.sourcePosition(ofCharacterOffset: $0, in: yaml) }
            return located("invalid YAML text: \(problem)", position)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
            return located(
                "invalid YAML: key \(keys) appears more than once in the same mapping; keep one of them",
                position(context.mark)
            )
        default:
            return located("invalid YAML: \(yamlError)", nil)
        }
    }

    private static func sourcePosition(ofCharacterOffset offset: Int, in text: String) -> SourcePosition {
        let prefix = text.prefix(offset)
        let line = prefix.reduce(1) { $1.isNewline ? $0 + 1 : $0 }
        let column = prefix.reversed().prefix { !$0.isNewline }.count + 1
        return SourcePosition(line: line, column: column)
    }

    /// Stable order by line, then column; errors without a line keep their order at the end.
    private static func inFileOrder(_ errors: [ConfigError]) -> [ConfigError] {
        errors.enumerated().sorted { lhs, rhs in
            let left = (lhs.element.line ?? .max, lhs.element.column ?? .max, lhs.offset)
            let right = (rhs.element.line ?? .max, rhs.element.column ?? .max, rhs.offset)
            return left < right
        }.map(\.element)
    }
}
