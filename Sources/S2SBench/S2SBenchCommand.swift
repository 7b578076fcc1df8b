// S2SBenchCommand: the `s2s-bench` executable's root command. It only lists the subcommands: the echo backend the
// benchmark peers forward to, and the load generator that measures them. scripts/bench wires them together.

import ArgumentParser

/// `s2s-bench`: benchmark tools for s2s-proxy and the proxies it is compared with.
@main
struct S2SBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "s2s-bench",
        abstract: "Benchmark tools: a gRPC echo backend and a gRPC load generator.",
        subcommands: [EchoServerCommand.self, LoadCommand.self]
    )
}
