// libFuzzer target: the configuration loader (`ConfigLoader.parse(yaml:sourceName:)`, Sources/Host/Config) on
// arbitrary text: Yams' YAML parser and composer, the typed decoding with its key paths and lines, validation and
// the support check.
//
// Loading either throws `ConfigErrors` — at least one error, each with a message, a line and column that are in
// the text when given, in file order — or gives a configuration whose plugin options, written and implied (the Go
// proxy's translation keys become chain entries), are JSON objects that PluginKit's parser, which the plugins use,
// accepts. A loaded configuration's summary and warnings can be formatted. Built and run by scripts/fuzz.

import Foundation

@testable import Host
@testable import PluginKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    let loaded: LoadedConfig
    do {
        loaded = try ConfigLoader.parse(yaml: text, sourceName: "fuzz.yaml", baseDirectory: "/nonexistent-fuzz-dir")
    } catch {
        checkErrors(error, in: text)
        return 0
    }
    _ = loaded.summary
    for note in loaded.unsupported {
        require(!note.message.isEmpty)
    }
    for (index, connection) in loaded.config.clusterConnections.enumerated() {
        for entry in connection.plugins {
            checkOptions(entry.optionsJSON, from: "plugins")
        }
        for (label, entry) in GoTranslationKeys.chainEntries(of: connection, prefix: "clusterConnections[\(index)]") {
            checkOptions(entry.optionsJSON, from: label)
        }
    }
    return 0
}

private func checkErrors(_ errors: ConfigErrors, in text: String) {
    require(!errors.errors.isEmpty, "a configuration refused without a reason")
    let lineCount = text.reduce(1) { $1.isNewline ? $0 + 1 : $0 }
    var previous = (line: 0, column: 0)
    var unlocated = false
    for error in errors.errors {
        require(!error.message.isEmpty, "an error without a message")
        require(error.sourceName == "fuzz.yaml")
        guard let line = error.line else {
            unlocated = true
            continue
        }
        require(!unlocated, "an error with a line after one without")
        // Yams may point one line past the last at the end of the text.
        require(line >= 1 && line <= lineCount + 1, "line \(line) of a text of \(lineCount) lines: \(error)")
        if let column = error.column { require(column >= 0, "column \(column): \(error)") }
        let column = error.column ?? Int.max
        require((line, column) >= previous, "errors out of file order: \(errors)")
        previous = (line, column)
    }
    _ = errors.description
}

/// Options handed to a plugin must be a JSON object PluginKit parses.
private func checkOptions(_ json: String, from label: String) {
    do {
        let value = try JSONValue(parsing: json)
        guard case .object = value else {
            fatalError("\(label): the options are \(value.kindDescription), not an object: \(json)")
        }
    } catch {
        fatalError("\(label): the options the host hands on do not parse: \(error): \(json)")
    }
}

/// `precondition` that says what failed in an optimized build too.
private func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = "", file: StaticString = #file,
    line: UInt = #line
) {
    if !condition() { fatalError("fuzz check failed: \(message())", file: file, line: line) }
}
