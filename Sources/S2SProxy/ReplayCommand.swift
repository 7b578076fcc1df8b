// `s2s-proxy replay`: a capture (`capture:`) run offline through a configuration's plugin chains — no listener, no
// upstream, no Temporal — and a report of what each chain entry did (CaptureReplay). With `--expect`, the run is
// compared with a saved report and any difference fails it, so a capture of real traffic becomes a plugin's
// regression test.

import ArgumentParser
import Foundation
import Host
import Logging

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run captured calls through the config's plugin chains offline and report what each plugin did.",
        discussion: "Exit 0 when the replay ran (and matched --expect), 1 when it differs from --expect, 2 when the "
            + "config, the capture, a plugin or the schema cannot be loaded."
    )

    @Option(name: .long, help: "The proxy config whose plugin chains to run (as `start` would build them).")
    var config: String

    @Option(name: .long, help: "The capture file (JSON Lines written by a connection's `capture:`).")
    var capture: String

    @Option(name: .long, help: "Replay only the calls of this cluster connection.")
    var connection: String?

    @Option(name: .long, help: "A saved FileDescriptorSet, for plugins that need the schema (default: each connection's schema.file).")
    var schema: String?

    @Option(name: .customLong("write-report"), help: "Save the report as JSON, to compare later runs with.")
    var writeReport: String?

    @Option(name: .long, help: "A saved report: exit 1 and print the differences when this run differs.")
    var expect: String?

    @Flag(name: .long, help: "Print the report as JSON instead of text.")
    var json = false

    func run() async throws {
        var loaded = try ConfigFile.load(config)
        // Replaying must not capture again.
        for index in loaded.config.clusterConnections.indices { loaded.config.clusterConnections[index].capture = nil }
        let logger = Logger(label: "s2s-proxy") { _ in SwiftLogNoOpLogHandler() }
        let setup: PluginSetup
        do {
            setup = try PluginSetup.build(
                config: loaded.config, configPath: config, logger: logger, metrics: PluginMetricsRegistry()
            )
        } catch {
            printToStandardError("s2s-proxy replay: plugins could not be set up:\n\(error)")
            throw ExitCode(2)
        }
        defer { setup.destroy() }
        var schemaUsed: TemporalSchema?
        for (index, connection) in loaded.config.clusterConnections.enumerated() where setup.needsSchema(connection: index) {
            guard let path = schema ?? connection.schema?.file else {
                printToStandardError(
                    "s2s-proxy replay: a plugin of \(connection.name) needs the Temporal schema; pass --schema FILE "
                        + "(see `s2s-proxy schema pull`) or set schema.file"
                )
                throw ExitCode(2)
            }
            do {
                let loadedSchema = try TemporalSchema.load(file: path)
                for entry in setup.entries[index] {
                    entry.deliverSchema(loadedSchema)
                    entry.deliverSchema(loadedSchema.descriptorSetBytes)
                    if case .failed(let reason) = entry.currentSchemaState {
                        printToStandardError("s2s-proxy replay: \(reason)")
                        throw ExitCode(2)
                    }
                }
                schemaUsed = loadedSchema
            } catch let error as ExitCode {
                throw error
            } catch {
                printToStandardError("s2s-proxy replay: \(error)")
                throw ExitCode(2)
            }
        }
        if schemaUsed == nil, let schema { schemaUsed = try? TemporalSchema.load(file: schema) }
        let lines: [String]
        do {
            lines = try String(contentsOfFile: capture, encoding: .utf8).components(separatedBy: "\n")
        } catch {
            printToStandardError("s2s-proxy replay: cannot read the capture \(capture): \(error.localizedDescription)")
            throw ExitCode(2)
        }
        let report: CaptureReplay.Report
        do {
            report = try CaptureReplay.run(
                lines: lines, setup: setup, config: loaded.config, schema: schemaUsed, onlyConnection: connection
            )
        } catch {
            printToStandardError("s2s-proxy replay: \(error)")
            throw ExitCode(2)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if json {
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            CaptureReplay.describe(report).forEach { print($0) }
        }
        if let writeReport {
            try encoder.encode(report).write(to: URL(fileURLWithPath: writeReport))
        }
        if let expect {
            guard let data = FileManager.default.contents(atPath: expect),
                  let expected = try? JSONDecoder().decode(CaptureReplay.Report.self, from: data)
            else {
                printToStandardError("s2s-proxy replay: \(expect) is not a report written by --write-report")
                throw ExitCode(2)
            }
            let differences = CaptureReplay.differences(expected: expected, actual: report)
            guard differences.isEmpty else {
                printToStandardError("s2s-proxy replay: the replay differs from \(expect):")
                differences.forEach { printToStandardError($0) }
                throw ExitCode(1)
            }
            printToStandardError("s2s-proxy replay: same as \(expect) (\(report.calls.count) calls)")
        }
    }
}
