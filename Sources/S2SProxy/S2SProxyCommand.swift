// The `s2s-proxy` command line: `start`, `validate`, `plugin inspect|run`, `schema pull|show`, `--version`.

import ArgumentParser
import Host
import Logging
import PluginABI
import enum PluginKit.SwiftRelease

@main
struct S2SProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "s2s-proxy",
        abstract: "A server-to-server gRPC proxy between two Temporal clusters.",
        version: "s2s-proxy \(ProxyVersion.current) (plugin ABI \(ProxyVersion.pluginABI), Swift \(SwiftRelease.current))",
        subcommands: [StartCommand.self, ValidateCommand.self, PluginCommand.self, SchemaCommand.self, ReplayCommand.self]
    )
}

/// Version strings shown by `--version` and at start-up.
enum ProxyVersion {
    static let current = "0.1.0"
    static var pluginABI: String {
        "\(S2S_PLUGIN_ABI_MAJOR).\(S2S_PLUGIN_ABI_MINOR)"
    }
}

/// Loads and checks a config file, printing errors the way both commands report them.
enum ConfigFile {
    static func load(_ path: String) throws -> LoadedConfig {
        do {
            return try ConfigLoader.load(path: path)
        } catch {
            printToStandardError("\(error)")
            throw ExitCode(2)
        }
    }
}

func printToStandardError(_ text: String) {
    var stream = StandardErrorStream()
    print(text, to: &stream)
}

struct StandardErrorStream: TextOutputStream {
    mutating func write(_ string: String) {
        fputs(string, stderr)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
