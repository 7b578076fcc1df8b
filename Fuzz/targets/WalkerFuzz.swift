// libFuzzer target: the schema-driven walker (s2s-plugin-sdk/Sources/PluginKit/Walker) over arbitrary message bytes, with the real
// Temporal schema (Tests/Fixtures/temporal-dev-schema.binpb, loaded once) and the rule sets the bundled plugins use:
// namespaces as namespace-rename walks them (history blobs left alone, or refused as an access check would), and
// search attributes.
//
// For any bytes a walk either throws `ProtoWireError` — and then every way of rewriting throws too — or visits its
// targets inside the message; renaming with a namespace-rename mapping gives nil exactly when no value is mapped,
// and the renamed message walks to the mapped values in the same order; the edits write exactly
// `rewrittenCount` bytes, the same as the array API; and a rename to values of the same byte length changes those
// value bytes and nothing else, but for non-minimal length prefixes, which the walker writes minimal. Built and run
// by scripts/fuzz.
//
// Layout: byte 0 = the rule set (low 2 bits); bytes 1-2 = the message type (big-endian: below the fixture types'
// count, one of them; else one of the schema's messages that can hold a target); the rest is the message.

import Glibc

@testable import PluginKit

/// The message types of the fixtures under Tests/Fixtures/walker and Tests/Fixtures/go-cases, in a fixed order.
private let fixtureTypes = [
    "temporal.api.workflowservice.v1.DescribeNamespaceResponse",
    "temporal.server.api.adminservice.v1.GetNamespaceReplicationMessagesResponse",
    "temporal.api.workflowservice.v1.GetWorkflowExecutionHistoryResponse",
    "temporal.server.api.adminservice.v1.GetWorkflowExecutionRawHistoryV2Response",
    "temporal.api.workflowservice.v1.PollActivityTaskQueueResponse",
    "temporal.api.workflowservice.v1.PollWorkflowTaskQueueResponse",
    "temporal.api.workflowservice.v1.RespondWorkflowTaskCompletedRequest",
    "temporal.api.workflowservice.v1.StartWorkflowExecutionRequest",
    "temporal.server.api.adminservice.v1.StreamWorkflowReplicationMessagesResponse",
    "temporal.api.workflowservice.v1.UpdateNamespaceResponse",
    "temporal.api.workflowservice.v1.ListNamespacesResponse",
]

/// The names namespace-rename's tests and the Go cases rename.
private let mapping = [
    "walker-ns": "walker-ns.renamed-for-the-remote-cluster",
    "orders": "orders.cloud",
    "CustomerId": "Keyword05",
    "": "was-empty",
]

private struct Loaded {
    let walkers: [ProtoWalker]
    /// Per walker: the messages of the schema that can hold a target, by name.
    let matchable: [[String]]
}

private let loaded: Loaded = {
    let repository = String("\(#filePath)".dropLast("Fuzz/targets/WalkerFuzz.swift".count))
    let path = repository + "Tests/Fixtures/temporal-dev-schema.binpb"
    guard let file = fopen(path, "rb") else { fatalError("cannot open \(path): compile this file by its full path") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        if count <= 0 { break }
        bytes += chunk[..<count]
    }
    do {
        let schema = try ProtoSchema(fileDescriptorSet: bytes)
        let walkers = [
            try schema.walker(rules: .temporalNamespaces()),
            try schema.walker(rules: .temporalNamespaces(historyBlobs: .fail)),
            try schema.walker(rules: .temporalSearchAttributes()),
        ]
        let matchable = try walkers.map { walker in
            try schema.messages.keys.sorted().filter { try walker.plan(message: $0).canMatch }
        }
        return Loaded(walkers: walkers, matchable: matchable)
    } catch {
        fatalError("the Temporal schema fixture does not load: \(error)")
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWalker(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count >= 3 else { return 0 }
    let input = UnsafeRawBufferPointer(start: start, count: count)
    let walkerIndex = Int(input[0] & 3) % loaded.walkers.count
    let walker = loaded.walkers[walkerIndex]
    let typeIndex = Int(input[1]) << 8 | Int(input[2])
    let messageName = typeIndex < fixtureTypes.count
        ? fixtureTypes[typeIndex]
        : loaded.matchable[walkerIndex][(typeIndex - fixtureTypes.count) % loaded.matchable[walkerIndex].count]
    let plan = try! walker.plan(message: messageName)
    let message = Array(input[3...])
    message.withUnsafeBytes { check(plan, message, $0) }
    return 0
}

private struct Seen: Equatable {
    let value: String
    let offset: Int
    let count: Int
}

private func check(_ plan: WalkPlan, _ message: [UInt8], _ buffer: UnsafeRawBufferPointer) {
    var originals: [Seen] = []
    do {
        try plan.visit(buffer) { target in
            require(target.valueOffset >= 0 && target.valueOffset + target.valueBytes.count <= message.count)
            require(target.valueBytes.baseAddress == buffer.baseAddress.map { $0 + target.valueOffset }
                || target.valueBytes.isEmpty, "a target's bytes are not where its offset says")
            let enclosing = target.enclosingMessageRange
            require(enclosing.lowerBound <= target.valueOffset && target.valueOffset <= enclosing.upperBound)
            var starts: [Int] = []
            target.forEachEnclosingMessageStart { starts.append($0); return true }
            require(starts.last == 0 && starts.first == enclosing.lowerBound, "enclosing messages out of order")
            require(target.path.count == starts.count, "a path and its enclosing messages disagree")
            originals.append(Seen(value: target.value, offset: target.valueOffset, count: target.valueBytes.count))
        }
    } catch {
        require((try? plan.rewrite(buffer) { _ in "x" }) == nil, "rewrite went through where visit failed")
        require((try? plan.edits(buffer) { _ in nil }) == nil, "edits went through where visit failed")
        return
    }
    require(plan.canMatch || originals.isEmpty)

    // Identity: returning each value as it is (valid UTF-8 only) changes nothing.
    let identity = try! plan.rewrite(message) { $0.isValidUTF8 ? $0.value : nil }
    require(identity == message, "returning every value unchanged changed the message")

    // Namespace-rename's mapping.
    let edits = try! plan.edits(buffer) { mapping[$0.value] }
    let mapped = originals.filter { mapping[$0.value] != nil }.count
    require(edits.isEmpty == (mapped == 0), "a mapped value was left alone, or nothing mapped changed bytes")
    require(edits.replacedValueCount == mapped)
    let renamed = try! plan.rewrite(buffer) { mapping[$0.value] }
    require((renamed == nil) == edits.isEmpty)
    if let renamed {
        require(renamed.count == edits.rewrittenCount)
        var written = [UInt8](repeating: 0xEE, count: edits.rewrittenCount + 3)
        written.withUnsafeMutableBytes { edits.write(applyingTo: buffer, into: $0) }
        require(written.prefix(renamed.count).elementsEqual(renamed), "write and applied disagree")
        require(written.suffix(3) == [0xEE, 0xEE, 0xEE], "write wrote past rewrittenCount")
        var again: [String] = []
        try! plan.visit(renamed) { again.append($0.value) }
        require(again == originals.map { mapping[$0.value] ?? $0.value }, "the renamed message walks differently")
    }

    // A rename to values of the same length touches their bytes only, and length prefixes: a changed value's, and
    // those around it, are written minimal, so a message with non-minimal ones shrinks (and never grows).
    let sameLength = try! plan.rewrite(message) { String(repeating: "z", count: $0.valueBytes.count) }
    var zs: [String] = []
    try! plan.visit(sameLength) { zs.append($0.value) }
    require(zs == originals.map { String(repeating: "z", count: $0.count) }, "a same-length rename walks differently")
    require(sameLength.count <= message.count, "a same-length rename grew the message")
    if sameLength.count == message.count {
        var expected = message
        for seen in originals {
            for index in seen.offset..<(seen.offset + seen.count) { expected[index] = UInt8(ascii: "z") }
        }
        require(sameLength == expected, "a same-length rename changed other bytes")
    }
}

/// `precondition` that says what failed in an optimized build too.
private func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = "", file: StaticString = #file,
    line: UInt = #line
) {
    if !condition() { fatalError("fuzz check failed: \(message())", file: file, line: line) }
}
