// pluginkit-bench: how fast PluginKit's schema-driven walker scans and rewrites real Temporal messages.
//
//     swift build -c release --product pluginkit-bench
//     .build/release/pluginkit-bench [--seconds S | --calls N] [--only TEXT]... [--fixtures DIR]
//
// For each message (small WorkflowService requests and responses, and a replication batch of about 1 MiB whose
// history events sit in DataBlobs) it times: a memcpy of the message (the floor under any rewrite that produces
// new bytes), a read-only visit, a rewrite whose callback matches nothing (what a translator costs on traffic of
// namespaces it does not map; also after copying the message into an array, as an array-only API would have to),
// and a rewrite that renames, into a new array and into a caller's buffer. The
// figures and how to read them are in docs/PERFORMANCE.md ("The plugin walker").

import Foundation
import PluginKit

struct Options {
    var seconds = 1.0
    /// Exactly this many calls per figure instead of timed batches (for callgrind).
    var calls: Int?
    /// Run only the rows whose "message / scenario" contains every one of these texts.
    var only: [String] = []
    var fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tests/Fixtures")

    init(arguments: [String]) {
        var remaining = arguments.dropFirst()
        while let argument = remaining.popFirst() {
            switch argument {
            case "--seconds":
                guard let value = remaining.popFirst().flatMap(Double.init), value > 0 else {
                    Self.usage("--seconds needs a positive number")
                }
                seconds = value
            case "--calls":
                guard let value = remaining.popFirst().flatMap(Int.init), value > 0 else {
                    Self.usage("--calls needs a positive number")
                }
                calls = value
            case "--only":
                guard let text = remaining.popFirst() else {
                    Self.usage("--only needs a text")
                }
                only.append(text)
            case "--fixtures":
                guard let path = remaining.popFirst() else {
                    Self.usage("--fixtures needs a directory")
                }
                fixtures = URL(fileURLWithPath: path)
            default:
                Self.usage("unknown argument \(argument)")
            }
        }
    }

    static func usage(_ problem: String) -> Never {
        FileHandle.standardError.write(
            Data(
                "\(problem)\nusage: pluginkit-bench [--seconds S | --calls N] [--only TEXT]... [--fixtures DIR]\n".utf8
            )
        )
        exit(2)
    }
}

/// One timed way of walking a message.
struct Scenario {
    let name: String
    let run: (BenchMessage, UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) throws -> Int
}

/// Names no fixture contains: a translator's map on traffic it does not translate.
let unrelatedRenames = ["some-other-namespace": "renamed", "SomeOtherAttribute": "Renamed"]

let scenarios: [Scenario] = [
    Scenario(name: "memcpy (floor of any copy)") { _, input, output in
        output.copyMemory(from: input)
        return Int(output[0])
    },
    Scenario(name: "visit (read-only)") { message, input, _ in
        var targets = 0
        try message.plan.visit(input) { _ in targets += 1 }
        return targets
    },
    Scenario(name: "rewrite, nothing matches") { message, input, _ in
        let edits = try message.plan.edits(input) { unrelatedRenames[$0.value] }
        return edits.rewrittenCount
    },
    Scenario(name: "copy in, then nothing matches") { message, input, _ in
        // What an array-only API would cost on the host's borrowed buffer: a copy before every walk.
        let copy = [UInt8](input)
        let unchanged = try message.plan.rewrite(copy) { unrelatedRenames[$0.value] }
        return unchanged.count
    },
    Scenario(name: "rename -> new [UInt8]") { message, input, _ in
        let renamed = try message.plan.rewrite(input) { message.renames[$0.value] }
        return renamed?.count ?? 0
    },
    Scenario(name: "rename -> caller buffer") { message, input, output in
        let edits = try message.plan.edits(input) { message.renames[$0.value] }
        edits.write(applyingTo: input, into: output)
        return edits.rewrittenCount
    },
]

let options = Options(arguments: CommandLine.arguments)
let corpus = try BenchCorpus(fixtures: options.fixtures)
let renames = try corpus.renames()
let namespaces = try corpus.schema.walker(rules: .temporalNamespaces())
let searchAttributes = try corpus.schema.walker(rules: .temporalSearchAttributes())

func fixture(_ name: String, _ type: String) throws -> BenchMessage {
    BenchMessage(
        label: name,
        bytes: try corpus.message(name),
        plan: try namespaces.plan(message: type),
        renames: renames.namespace
    )
}

let batch = try corpus.replicationBatch(minimumBytes: 1 << 20)
let batchType = "temporal.server.api.adminservice.v1.StreamWorkflowReplicationMessagesResponse"
let messages = [
    try fixture("StartWorkflowExecutionRequest", "temporal.api.workflowservice.v1.StartWorkflowExecutionRequest"),
    try fixture(
        "RespondWorkflowTaskCompletedRequest",
        "temporal.api.workflowservice.v1.RespondWorkflowTaskCompletedRequest"
    ),
    try fixture("PollWorkflowTaskQueueResponse", "temporal.api.workflowservice.v1.PollWorkflowTaskQueueResponse"),
    try fixture(
        "GetWorkflowExecutionHistoryResponse",
        "temporal.api.workflowservice.v1.GetWorkflowExecutionHistoryResponse"
    ),
    BenchMessage(
        label: "replication batch, namespaces",
        bytes: batch,
        plan: try namespaces.plan(message: batchType),
        renames: renames.namespace
    ),
    BenchMessage(
        label: "replication batch, search attributes",
        bytes: batch,
        plan: try searchAttributes.plan(message: batchType),
        renames: renames.searchAttribute
    ),
]

let timer = BenchTimer(seconds: options.seconds, fixedCalls: options.calls)
print("pluginkit-bench: \(corpus.schema.files.count) schema files from \(options.fixtures.path)")
if let calls = options.calls {
    print("each figure: \(calls) calls in one batch; MiB/s = message bytes per second")
} else {
    print("each figure: median of ~20 ms batches over \(options.seconds) s; MiB/s = message bytes per second")
}
print("")
print(
    "message".padding(toLength: 38, withPad: " ", startingAt: 0) + "   bytes targets  "
        + "scenario".padding(toLength: 32, withPad: " ", startingAt: 0) + "      ns/msg      MiB/s"
)
for message in messages {
    var targets = 0
    try message.plan.visit(message.bytes) { _ in targets += 1 }
    let output = UnsafeMutableRawBufferPointer.allocate(byteCount: message.bytes.count * 2 + 64, alignment: 16)
    defer { output.deallocate() }
    try message.bytes.withUnsafeBytes { input in
        for scenario in scenarios {
            let row = "\(message.label) / \(scenario.name)"
            guard options.only.allSatisfy(row.contains) else {
                continue
            }
            let nanoseconds = try timer.nanosecondsPerCall { try scenario.run(message, input, output) }
            let mibPerSecond = Double(message.bytes.count) / nanoseconds * 1e9 / 1_048_576
            print(
                message.label.padding(toLength: 38, withPad: " ", startingAt: 0)
                    + String(message.bytes.count).leftPadded(8) + String(targets).leftPadded(8) + "  "
                    + scenario.name.padding(toLength: 32, withPad: " ", startingAt: 0)
                    + String(format: "%12.0f %10.1f", nanoseconds, mibPerSecond)
            )
        }
    }
}
FileHandle.standardError.write(Data("(checksum \(benchSink))\n".utf8))

extension String {
    func leftPadded(_ width: Int) -> String {
        String(repeating: " ", count: max(0, width - count)) + self
    }
}
