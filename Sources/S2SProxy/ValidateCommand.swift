// `s2s-proxy validate --config FILE`: parse and check a config without starting anything.

import ArgumentParser
import Host

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a config file: exit 0 with a one-line summary, or print its errors (with lines) and exit 2."
    )

    @Option(name: .long, help: "Path of the YAML config file.")
    var config: String

    func run() async throws {
        let loaded = try ConfigFile.load(config)
        print(loaded.summary)
        for note in loaded.unsupported {
            print("note: \(note) — `start` refuses this config until that feature is built")
        }
        for warning in loaded.warnings {
            print("warning: \(warning)")
        }
    }
}
