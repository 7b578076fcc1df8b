// The bundled plugins as the tests load them: `lib<name>.so`, which `swift build` puts next to the test binary.

@testable import Host
import Foundation
import XCTest

enum BundledPluginLibrary {
    /// Loads `lib<name>.so` from beside the tests; skips the test when it is not built.
    static func load(_ name: String) throws -> PluginLibrary {
        let file = "/lib\(name).so"
        let candidates = [
            Bundle.main.bundleURL.path, URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path,
        ]
        for candidate in candidates where FileManager.default.fileExists(atPath: candidate + file) {
            return try PluginLibrary.load(path: candidate + file)
        }
        throw XCTSkip("lib\(name).so is not built next to the tests (run `swift build` first)")
    }
}
