// The replication stream's codec against messages Python protobuf encoded with the dev server's own schema
// (Tests/Fixtures/replication/generate.py writes cases.json; the expected readings and rewrites are computed there).

import Foundation
import PluginKit
import ShardRouting
import TestSupport
import Testing

struct ReplicationMessagesTests {
    private struct Cases: Decodable {
        struct Task: Decodable {
            let bytes: String
            let sourceTaskID: Int64
            let taskType: Int
            let route: Route
            let renumbered5000Plus: String
        }

        enum Route: Decodable, Equatable {
            case workflow(namespaceID: String, workflowID: String)
            case named(String)

            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let name = try? container.decode(String.self) {
                    self = .named(name)
                } else {
                    let fields = try container.decode([String: String].self)
                    self = .workflow(namespaceID: fields["namespaceID"]!, workflowID: fields["workflowID"]!)
                }
            }

            var taskRoute: TaskRoute {
                switch self {
                case .workflow(let namespaceID, let workflowID): return .workflow(namespaceID: namespaceID, workflowID: workflowID)
                case .named("everyShard"): return .everyShard
                default: return .unroutable
                }
            }
        }

        let response: String
        let tasks: [Task]
        let exclusiveHighWatermark: Int64
        let highWatermarkTime: String
        let priority: Int
        let builtResponse: String
        let builtResponseTime: String
        let request: String
        let requestTime: String
        let lowPriorityTime: String
    }

    private static func cases() throws -> Cases {
        try JSONDecoder().decode(Cases.self, from: Data(contentsOf: fixtureURL("replication/cases.json")))
    }

    static func bytes(_ hex: String) -> [UInt8] { hexBytes(hex) }

    @Test func aBatchIsReadTaskByTaskWithEachTasksRoute() throws {
        let cases = try Self.cases()
        let batch = try #require(try ReplicationBatch(response: Self.bytes(cases.response)))
        #expect(batch.tasks.count == cases.tasks.count)
        for (task, expected) in zip(batch.tasks, cases.tasks) {
            #expect(task.bytes == Self.bytes(expected.bytes))
            #expect(task.sourceTaskID == expected.sourceTaskID)
            #expect(task.taskType == expected.taskType)
            #expect(task.route == expected.route.taskRoute, "task type \(expected.taskType)")
        }
        #expect(batch.exclusiveHighWatermark == cases.exclusiveHighWatermark)
        #expect(batch.highWatermarkTime == Self.bytes(cases.highWatermarkTime))
        #expect(batch.priority == cases.priority)
    }

    @Test func renumberingRewritesBothIdsAndNothingElse() throws {
        let cases = try Self.cases()
        for (index, expected) in cases.tasks.enumerated() {
            let task = try ReplicationTask(bytes: Self.bytes(expected.bytes))
            let renumbered = try task.renumbered(to: 5000 + Int64(index))
            #expect(renumbered == Self.bytes(expected.renumbered5000Plus), "task type \(expected.taskType)")
            #expect(try ReplicationTask(bytes: renumbered).sourceTaskID == 5000 + Int64(index))
        }
    }

    @Test func aBuiltBatchIsWhatProtobufEncodes() throws {
        let cases = try Self.cases()
        let built = ReplicationBatch.response(
            tasks: cases.tasks.prefix(2).map { Self.bytes($0.bytes) }, exclusiveHighWatermark: 77,
            highWatermarkTime: Self.bytes(cases.builtResponseTime), priority: 1)
        #expect(built == Self.bytes(cases.builtResponse))
    }

    @Test func syncStateIsReadAndBuiltAsProtobufEncodesIt() throws {
        let cases = try Self.cases()
        let state = try #require(try SyncReplicationState(request: Self.bytes(cases.request)))
        #expect(state.inclusiveLowWatermark == 1_048_000)
        #expect(state.time == Self.bytes(cases.requestTime))
        #expect(state.highPriority == .init(inclusiveLowWatermark: 1_048_100, flowControlCommand: 1))
        #expect(state.lowPriority == .init(inclusiveLowWatermark: 1_048_000, time: Self.bytes(cases.lowPriorityTime)))
        #expect(state.request == Self.bytes(cases.request))
    }

    @Test func otherMessagesAreNotBatchesAndMalformedBytesAreErrors() throws {
        #expect(try ReplicationBatch(response: []) == nil)
        #expect(try SyncReplicationState(request: [0x10, 0x01]) == nil)  // a varint field 2: not ours
        // A length that runs past the end.
        #expect(throws: ProtoWireError.self) { try ReplicationBatch(response: [0x0a, 0x05, 0x0a]) }
        #expect(throws: ProtoWireError.self) { try ReplicationTask(bytes: [0x10]) }
        // Random bytes never trap: each reading either works or throws.
        var generator = SeededGenerator(seed: 14)
        for _ in 0..<5000 {
            let input = (0..<Int(generator.next() % 64)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? ReplicationBatch(response: input)
            _ = try? SyncReplicationState(request: input)
            if let task = try? ReplicationTask(bytes: input) { _ = try? task.renumbered(to: 1) }
        }
    }
}
