// The replicas' messages: each kind reads back as it was written, unknown fields and kinds are skipped, malformed
// bytes are errors, and a sender settles a delivered batch for the replica it came from.

import PluginKit
import ShardRouting
import TestSupport
import Testing

struct IntraMessagesTests {
    @Test func everyKindReadsBackAsWritten() throws {
        let tasks = [makeTask(id: 7, workflowID: "a"), makeTask(id: 9, workflowID: "b", shardLevel: true)]
        let messages: [IntraMessage] = [
            .announcement(direction: "inbound", event: .init(shard: 3, replica: "proxy-b", time: 1_796_690_287_000, kind: .registered)),
            .announcement(direction: "outbound", event: .init(shard: 1, replica: "proxy-a", time: 5, kind: .withdrawn)),
            .delivery(.init(direction: "inbound", targetShard: 2, sourceShard: 4, batch: 17, priority: 10,
                            highWatermarkTime: [8, 1], tasks: tasks)),
            .delivery(.init(direction: "outbound", targetShard: 1, sourceShard: 1, batch: 1, priority: 0,
                            highWatermarkTime: nil, tasks: [])),
            .settled(direction: "inbound", sourceShard: 4, batch: 17, targetShard: 2),
        ]
        for message in messages {
            #expect(try IntraMessage(bytes: message.bytes) == message)
        }
    }

    @Test func unknownKindsAndFieldsAreSkippedAndMalformedBytesAreErrors() throws {
        var later: [UInt8] = []
        field(9, bytes: [0x08, 0x01], to: &later)  // a kind of a later version
        #expect(try IntraMessage(bytes: later) == nil)
        var settled: [UInt8] = []
        field(1, bytes: Array("inbound".utf8), to: &settled)
        field(3, varint: 5, to: &settled)
        field(99, varint: 1, to: &settled)  // a field of a later version
        var message: [UInt8] = []
        field(3, bytes: settled, to: &message)
        #expect(try IntraMessage(bytes: message) == .settled(direction: "inbound", sourceShard: 0, batch: 5, targetShard: 0))
        #expect(throws: ProtoWireError.self) { try IntraMessage(bytes: [0x12, 0x09, 0x08]) }
        var generator = SeededGenerator(seed: 0x1A7A)
        for _ in 0..<3000 {
            let input = (0..<Int(generator.next() % 48)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? IntraMessage(bytes: input)
        }
    }

    @Test func aBatchDeliveredForAnotherReplicaSettlesForItAndDoesNotRestartOurs() throws {
        var sender = RoutingSender(targetShard: 2, firstID: 100)
        _ = try sender.deliver([makeTask(id: 1, workflowID: "a")], from: 3, batch: 8, highWatermarkTime: nil, priority: 0,
                               origin: "proxy-b")
        _ = try sender.deliver([makeTask(id: 2, workflowID: "b")], from: 1, batch: 4, highWatermarkTime: nil, priority: 0)
        // Only this replica's receivers restart if the stream ends; the other's learn it from the directory.
        #expect(sender.unsettledSources == [1])
        #expect(sender.acknowledged(SyncReplicationState(inclusiveLowWatermark: 102)) == [
            .init(sourceShard: 3, batch: 8, origin: "proxy-b"), .init(sourceShard: 1, batch: 4),
        ])
    }
}
