// The messages the walker benchmark runs on: the walker fixtures (one workflow's real traffic, see
// Tests/Fixtures/README.md) and a replication batch of about 1 MiB built from the real replication fixture.
//
// The batch repeats the fixture's history replication tasks inside one StreamWorkflowReplicationMessagesResponse:
// each task carries real history events in DataBlobs, so walking the batch means walking the blobs, as a
// namespace translator on the replication stream must.

import Foundation
import PluginKit

/// A message to walk and the plan to walk it with.
struct BenchMessage {
    let label: String
    let bytes: [UInt8]
    let plan: WalkPlan
    /// The rename the "rename" scenario applies.
    let renames: [String: String]
}

enum BenchCorpusError: Error, CustomStringConvertible {
    case unexpectedFixture(String)

    var description: String {
        switch self {
        case .unexpectedFixture(let reason):
            return "replication fixture not as expected: \(reason)"
        }
    }
}

struct BenchCorpus {
    let schema: ProtoSchema
    let fixtures: URL

    init(fixtures: URL) throws {
        self.fixtures = fixtures
        schema = try ProtoSchema(
            fileDescriptorSet: try Self.read(fixtures.appendingPathComponent("temporal-dev-schema.binpb"))
        )
    }

    static func read(_ url: URL) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url))
    }

    func message(_ name: String) throws -> [UInt8] {
        try Self.read(fixtures.appendingPathComponent("walker/messages/\(name).binpb"))
    }

    func renames() throws -> (namespace: [String: String], searchAttribute: [String: String]) {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("walker/renames.json"))
        let decoded = try JSONDecoder().decode([String: [String: String]].self, from: data)
        return (decoded["namespace"] ?? [:], decoded["searchAttribute"] ?? [:])
    }

    /// A StreamWorkflowReplicationMessagesResponse of at least `minimumBytes`: the fixture's replication tasks
    /// repeated, its other fields (watermark) kept once.
    func replicationBatch(minimumBytes: Int) throws -> [UInt8] {
        let fixture = try message("StreamWorkflowReplicationMessagesResponse")
        let top = try fields(of: fixture, in: 0..<fixture.count)
        guard top.count == 1, let messagesField = top.first, messagesField.fieldNumber == 1 else {
            throw BenchCorpusError.unexpectedFixture("one `messages` field expected")
        }
        let inner = try fields(of: fixture, in: messagesField.payloadRange)
        let tasks = inner.filter { $0.fieldNumber == 1 }.flatMap { fixture[$0.fieldRange] }
        let others = inner.filter { $0.fieldNumber != 1 }.flatMap { fixture[$0.fieldRange] }
        guard !tasks.isEmpty else {
            throw BenchCorpusError.unexpectedFixture("no replication tasks")
        }
        var payload: [UInt8] = []
        while payload.count < minimumBytes {
            payload += tasks
        }
        payload += others
        var batch: [UInt8] = []
        ProtoVarint.append(ProtoFieldNumber.key(fieldNumber: 1, wireType: .lengthDelimited), to: &batch)
        ProtoVarint.append(UInt64(payload.count), to: &batch)
        return batch + payload
    }

    private func fields(of bytes: [UInt8], in range: Range<Int>) throws -> [ProtoWireField] {
        var scanner = ProtoWireScanner(bytes: bytes, range: range)
        var result: [ProtoWireField] = []
        while let field = try scanner.next() {
            result.append(field)
        }
        return result
    }
}
