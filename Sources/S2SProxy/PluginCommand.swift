// `s2s-proxy plugin inspect` and `s2s-proxy plugin run`: look at a plugin file, and run it over one message,
// without starting a proxy. For operators checking what they deploy, and for plugin authors.

import ArgumentParser
import Foundation
import Host
import Logging
import PluginABI
import enum PluginKit.SwiftRelease

struct PluginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin",
        abstract: "Inspect a translator plugin, or run it over one message.",
        subcommands: [PluginInspectCommand.self, PluginRunCommand.self]
    )
}

/// A plugin given on the command line: a file path, or the name of a bundled plugin.
enum PluginArgument {
    static func load(_ argument: String) throws -> PluginLibrary {
        do {
            if argument.contains("/") || FileManager.default.fileExists(atPath: argument) {
                return try PluginLibrary.load(path: argument)
            }
            return try PluginLibrary.load(bundledName: argument)
        } catch {
            printToStandardError("error: \(error)")
            throw ExitCode(2)
        }
    }

    static func options(_ json: String?, file: String?) throws -> String {
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                printToStandardError("error: cannot read options file \(file)")
                throw ExitCode(2)
            }
            return text
        }
        let text = json ?? "{}"
        guard let data = text.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data),
              object is [String: Any]
        else {
            printToStandardError("error: --options must be a JSON object, e.g. '{\"deny\": [\"/pkg.Service/Method\"]}'")
            throw ExitCode(2)
        }
        return text
    }

    static func quietLogger() -> Logger {
        var logger = Logger(label: "plugin") { label in StreamLogHandler.standardError(label: label) }
        logger.logLevel = .warning
        return logger
    }

    static func describe(wants bits: UInt32) -> String {
        guard bits != 0 else { return "nothing (calls pass untouched)" }
        var parts = ["call"]
        if bits & S2S_WANTS_REQUEST_MESSAGES != 0 { parts.append("request messages") }
        if bits & S2S_WANTS_RESPONSE_MESSAGES != 0 { parts.append("response messages") }
        if bits & S2S_WANTS_RESPONSE_METADATA != 0 {
            parts.append("response headers and trailers")
        } else if bits & S2S_WANTS_ERROR_TRAILERS != 0 {
            parts.append("trailers of failed calls")
        }
        return parts.joined(separator: ", ")
    }
}

struct PluginInspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a plugin's name, version, ABI version, and what it wants of given methods."
    )

    @Argument(help: "The plugin file (or a bundled plugin's name).")
    var plugin: String

    @Option(name: .long, help: "The plugin's options as a JSON object (default {}): checked by the plugin, and used with --method.")
    var options: String?

    @Option(name: .long, help: "A method path to ask the plugin about, e.g. /temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution (repeatable).")
    var method: [String] = []

    func run() async throws {
        let library = try PluginArgument.load(plugin)
        print("file:         \(library.path)")
        print("name:         \(library.name)")
        print("version:      \(library.version)")
        if !library.pluginDescription.isEmpty {
            print("description:  \(library.pluginDescription)")
        }
        print("plugin ABI:   \(library.abiMajor).\(library.abiMinor) (this host: \(S2S_PLUGIN_ABI_MAJOR).\(S2S_PLUGIN_ABI_MINOR))")
        print("needs schema: \(library.needsSchema ? "yes" : "no")")
        print("built with:   \(library.swiftRelease.map { "Swift \($0) (this host: Swift \(SwiftRelease.current))" } ?? "not Swift")")
        print("sha256:       \(library.sha256)")
        guard !method.isEmpty || options != nil else { return }
        let optionsJSON = try PluginArgument.options(options, file: nil)
        let entry: PluginEntry
        do {
            entry = try PluginEntry(
                library: library, label: "--options", connectionName: "inspect", sides: .both, policy: .failClosed,
                optionsJSON: optionsJSON, logger: PluginArgument.quietLogger(), metrics: PluginMetricsRegistry()
            )
        } catch {
            printToStandardError("error: \(error)")
            throw ExitCode(2)
        }
        defer { entry.destroy() }
        if options != nil {
            print("options:      accepted by the plugin")
        }
        guard !method.isEmpty else {
            print("(add --method PATH to see what it wants of a method)")
            return
        }
        print("wants:")
        for path in method {
            for side in [PluginSide.outbound, .inbound] {
                print("  \(path) (\(side.rawValue)): \(PluginArgument.describe(wants: entry.wantsForInspection(method: path, side: side)))")
            }
        }
    }
}

struct PluginRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a plugin over one message as the proxy would, and print what it decided.",
        discussion: """
            The message is the protobuf encoding of one gRPC message, without the 5-byte gRPC prefix. The outcome \
            goes to stdout; the output message to --output (or as text to stdout with --print-output). Exit code: \
            0 when the message goes on (unchanged or replaced), 3 when the call is ended (rejected or failed). \
            Without a message only call_start and call_end run: for a plugin that looks at calls, not messages.
            """
    )

    @Argument(help: "The plugin file (or a bundled plugin's name).")
    var plugin: String

    @Option(name: .long, help: "The method path (:path) of the call.")
    var method: String

    @Option(name: .long, help: "The listener side: inbound (from the remote cluster) or outbound (from the local one).")
    var side: String = "inbound"

    @Option(name: .long, help: "Which way the message travels: request or response.")
    var direction: String = "request"

    @Option(name: .long, help: "The plugin's options as a JSON object.")
    var options: String?

    @Option(name: .customLong("options-file"), help: "Read the options (JSON) from this file.")
    var optionsFile: String?

    @Option(name: .long, help: "Request metadata NAME=VALUE (repeatable).")
    var header: [String] = []

    @Option(name: .long, help: "File with the message bytes; - reads stdin.")
    var message: String?

    @Option(name: .customLong("message-text"), help: "The message bytes given as text (instead of --message).")
    var messageText: String?

    @Option(name: .long, help: "A saved FileDescriptorSet, for plugins that need the Temporal schema.")
    var schema: String?

    @Option(name: .long, help: "Write the output message here.")
    var output: String?

    @Flag(name: .customLong("print-output"), help: "Print the output message as text.")
    var printOutput = false

    @Flag(name: .long, help: "The message is proto3 JSON, and the output is printed as JSON; needs --schema (the message type is the method's request or response type).")
    var json = false

    @Option(name: .customLong("on-error"), help: "failClosed (default) or failOpen, as in the config.")
    var onError: String = "failClosed"

    func run() async throws {
        guard let pluginSide = PluginSide(rawValue: side) else { throw ValidationError("--side must be inbound or outbound") }
        guard let messageDirection = PluginHarness.Direction(rawValue: direction) else {
            throw ValidationError("--direction must be request or response")
        }
        guard let policy = PluginFailurePolicy(rawValue: onError) else { throw ValidationError("--on-error must be failClosed or failOpen") }
        var headers: [(String, String)] = []
        for item in header {
            guard let equals = item.firstIndex(of: "=") else { throw ValidationError("--header takes NAME=VALUE, got \(item)") }
            headers.append((String(item[..<equals]).lowercased(), String(item[item.index(after: equals)...])))
        }
        let input = try readMessage()
        if json, input == nil { throw ValidationError("--json needs the message: --message FILE or --message-text TEXT") }
        let loadedSchema: TemporalSchema?
        do {
            loadedSchema = try schema.map { try TemporalSchema.load(file: $0) }
        } catch {
            printToStandardError("error: \(error)")
            throw ExitCode(2)
        }
        let schemaBytes = loadedSchema?.descriptorSetBytes
        var transcoder: (ProtoJSONTranscoder, String)?
        if json {
            guard let loadedSchema else { throw ValidationError("--json needs --schema FILE (see `s2s-proxy schema pull`)") }
            guard let rpc = loadedSchema.services.flatMap(\.methods).first(where: { $0.path == method }) else {
                throw ValidationError("the schema has no method \(method)")
            }
            transcoder = (try ProtoJSONTranscoder(schema: loadedSchema), messageDirection == .request ? rpc.inputType : rpc.outputType)
        }
        let bytes: [UInt8]?
        if let input, let (codec, type) = transcoder {
            do {
                bytes = try codec.encode(json: String(decoding: input, as: UTF8.self), as: type)
            } catch {
                printToStandardError("error: --json: \(error)")
                throw ExitCode(2)
            }
        } else {
            bytes = input
        }
        let library = try PluginArgument.load(plugin)
        let optionsJSON = try PluginArgument.options(options, file: optionsFile)
        let result: PluginHarness.Result
        do {
            result = try PluginHarness.run(
                library: library, optionsJSON: optionsJSON, schema: schemaBytes, method: method, side: pluginSide,
                direction: messageDirection, headers: headers, message: bytes, policy: policy, logger: PluginArgument.quietLogger()
            )
        } catch {
            printToStandardError("error: \(error)")
            throw ExitCode(2)
        }
        print("plugin:   \(library.name) \(library.version)")
        print("wants:    \(PluginArgument.describe(wants: result.wants))")
        if result.outcome != .notWanted {
            print("metadata:")
            for (name, value) in result.headers { print("  \(name): \(value)") }
        }
        switch result.outcome {
        case .notWanted:
            print("outcome:  not wanted: the call would pass the plugin untouched")
        case .messageNotWanted:
            print("outcome:  the plugin does not look at \(direction) messages of this call")
        case .callEnded(let code, let message):
            print("outcome:  call ended in call_start: status \(code) (\(statusName(code))): \(message)")
            throw ExitCode(3)
        case .callProceeds:
            print("outcome:  the call proceeds (no message given: call_start and call_end ran)")
            return
        case .unchanged:
            print("outcome:  unchanged (\(bytes?.count ?? 0) bytes forwarded as they came)")
        case .replaced:
            print("outcome:  replaced (\(bytes?.count ?? 0) bytes in, \(result.output.count) bytes out)")
        case .messageEnded(let code, let message):
            print("outcome:  call ended on this message: status \(code) (\(statusName(code))): \(message)")
            throw ExitCode(3)
        }
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: Data(result.output)) else {
                printToStandardError("error: cannot write \(output)")
                throw ExitCode(2)
            }
        }
        if let (codec, type) = transcoder {
            do {
                print("output (\(type)):")
                print(try codec.decode(result.output, as: type))
            } catch {
                print("output:   not a valid \(type): \(error)")
            }
        } else if printOutput {
            print("output:   \(String(decoding: result.output, as: UTF8.self))")
        }
    }

    /// The message given, or nil when none is (the run stops after call_start).
    private func readMessage() throws -> [UInt8]? {
        if let messageText { return Array(messageText.utf8) }
        guard let message else { return nil }
        if message == "-" {
            return Array(FileHandle.standardInput.readDataToEndOfFile())
        }
        guard let data = FileManager.default.contents(atPath: message) else { throw ValidationError("cannot read message file \(message)") }
        return Array(data)
    }

    private func statusName(_ code: Int) -> String {
        GRPCStatusCode(rawValue: code).map { "\($0)" } ?? "unknown"
    }
}
