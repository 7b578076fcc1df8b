// The routing state machines driven event by event: a receiver's ACK level, a sender's ids and settlements, and a
// seeded simulation of whole clusters (sources emitting batches, targets applying them and acknowledging in random
// order, targets restarting) checking that every task reaches the shard Temporal's function names, in source order,
// at least once, and that no ACK ever covers a task a target has not applied.

import PluginKit
import ShardRouting
import TestSupport
import Testing

/// Encodes a task the way a source would (history task, raw_task_info with the workflow).
func makeTask(id: Int64, namespaceID: String = "ns-1", workflowID: String, shardLevel: Bool = false) -> ReplicationTask {
    var info: [UInt8] = []
    field(1, bytes: Array(namespaceID.utf8), to: &info)
    field(2, bytes: Array(workflowID.utf8), to: &info)
    field(15, varint: UInt64(id), to: &info)
    var task: [UInt8] = []
    field(1, varint: shardLevel ? 3 : 2, to: &task)
    field(2, varint: UInt64(id), to: &task)
    if shardLevel {
        field(5, bytes: [0x0a, 0x01, 0x61], to: &task)  // sync_shard_status_task_attributes { source_cluster: "a" }
    } else {
        field(17, bytes: info, to: &task)
    }
    return try! ReplicationTask(bytes: task)
}

struct RoutingReceiverTests {
    @Test func tasksGoToTheShardTemporalNamesAndShardLevelTasksToEveryShard() throws {
        var receiver = RoutingReceiver(sourceShard: 1, targetShardCount: 3)
        let tasks = (0..<20).map { makeTask(id: 100 + Int64($0), workflowID: "wf-\($0)") }
            + [makeTask(id: 120, workflowID: "", shardLevel: true)]
        let routed = receiver.received(ReplicationBatch(tasks: tasks, exclusiveHighWatermark: 121, highWatermarkTime: nil, priority: 0))
        #expect(routed.acknowledgement == nil)
        #expect(routed.unroutable.isEmpty)
        #expect(routed.deliveries.map(\.targetShard) == [1, 2, 3])
        for delivery in routed.deliveries {
            let ids = delivery.tasks.map(\.sourceTaskID)
            #expect(ids == ids.sorted(), "source order kept")
            #expect(ids.last == 120, "the shard-level task reaches shard \(delivery.targetShard)")
            for task in delivery.tasks.dropLast() {
                guard case .workflow(let namespaceID, let workflowID) = task.route else { Issue.record("route"); continue }
                #expect(HistoryShard.of(namespaceID: namespaceID, workflowID: workflowID, shardCount: 3) == delivery.targetShard)
            }
        }
        #expect(routed.deliveries.reduce(0) { $0 + $1.tasks.count } == 20 + 3)
    }

    @Test func theAckLevelWaitsForEveryTargetAndForEarlierBatches() {
        var receiver = RoutingReceiver(sourceShard: 2, targetShardCount: 4)
        // Two workflows on different target shards.
        var workflows: [Int32: String] = [:]
        for index in 0..<100 where workflows.count < 2 {
            let shard = HistoryShard.of(namespaceID: "ns-1", workflowID: "w\(index)", shardCount: 4)
            if workflows[shard] == nil { workflows[shard] = "w\(index)" }
        }
        let shards = workflows.keys.sorted()
        let first = receiver.received(ReplicationBatch(
            tasks: [makeTask(id: 10, workflowID: workflows[shards[0]]!), makeTask(id: 11, workflowID: workflows[shards[1]]!)],
            exclusiveHighWatermark: 12, highWatermarkTime: [1], priority: 0))
        let second = receiver.received(ReplicationBatch(
            tasks: [makeTask(id: 12, workflowID: workflows[shards[0]]!)], exclusiveHighWatermark: 13, highWatermarkTime: [2], priority: 0))
        // The later batch settles first: nothing moves, an earlier one is open.
        #expect(receiver.settled(batch: second.batch, at: shards[0]) == nil)
        #expect(receiver.settled(batch: first.batch, at: shards[0]) == nil)
        #expect(receiver.awaitedTargets == [shards[1]])
        #expect(receiver.settled(batch: first.batch, at: shards[1]) == SyncReplicationState(inclusiveLowWatermark: 13, time: [2]))
        // An empty batch (a watermark advance) settles at once.
        let empty = receiver.received(ReplicationBatch(tasks: [], exclusiveHighWatermark: 20, highWatermarkTime: nil, priority: 0))
        #expect(empty.acknowledgement?.inclusiveLowWatermark == 20)
        #expect(receiver.unsettledBatches == 0)
    }

    @Test func prioritiesAreAcknowledgedSeparatelyAndOverallAtTheLowerLevel() {
        var receiver = RoutingReceiver(sourceShard: 1, targetShardCount: 1)
        let high = receiver.received(ReplicationBatch(tasks: [makeTask(id: 50, workflowID: "a")], exclusiveHighWatermark: 51, highWatermarkTime: nil, priority: 1))
        let low = receiver.received(ReplicationBatch(tasks: [makeTask(id: 40, workflowID: "b")], exclusiveHighWatermark: 41, highWatermarkTime: nil, priority: 10))
        let afterHigh = receiver.settled(batch: high.batch, at: 1)
        #expect(afterHigh == SyncReplicationState(inclusiveLowWatermark: 51, highPriority: .init(inclusiveLowWatermark: 51)))
        let afterLow = receiver.settled(batch: low.batch, at: 1)
        #expect(afterLow == SyncReplicationState(
            inclusiveLowWatermark: 41, highPriority: .init(inclusiveLowWatermark: 51), lowPriority: .init(inclusiveLowWatermark: 41)))
    }

    @Test func unroutableTasksAreHandedBackAndHoldNothingBack() throws {
        var receiver = RoutingReceiver(sourceShard: 1, targetShardCount: 2)
        var namespaceTask: [UInt8] = []
        field(1, varint: 1, to: &namespaceTask)
        field(2, varint: 7, to: &namespaceTask)
        field(3, bytes: [0x12, 0x01, 0x78], to: &namespaceTask)  // namespace_task_attributes { id: "x" }
        let routed = receiver.received(ReplicationBatch(
            tasks: [try ReplicationTask(bytes: namespaceTask)], exclusiveHighWatermark: 8, highWatermarkTime: nil, priority: 0))
        #expect(routed.unroutable.count == 1 && routed.deliveries.isEmpty)
        #expect(routed.acknowledgement?.inclusiveLowWatermark == 8)
    }
}

struct RoutingSenderTests {
    @Test func idsAreTheStreamsOwnAndAcksSettleWhatTheyCover() throws {
        var sender = RoutingSender(targetShard: 3, firstID: 1000)
        let first = try sender.deliver(
            [makeTask(id: 7, workflowID: "a"), makeTask(id: 9, workflowID: "b")], from: 1, batch: 1, highWatermarkTime: [5], priority: 0).bytes()
        let second = try sender.deliver([makeTask(id: 4, workflowID: "c")], from: 2, batch: 1, highWatermarkTime: nil, priority: 0).bytes()
        let decoded = try #require(try ReplicationBatch(response: first))
        #expect(decoded.tasks.map(\.sourceTaskID) == [1000, 1001])
        #expect(decoded.exclusiveHighWatermark == 1002 && decoded.highWatermarkTime == [5])
        #expect(try ReplicationBatch(response: second)?.tasks.map(\.sourceTaskID) == [1002])
        #expect(sender.unsettledSources == [1, 2])
        // An ACK left over from an earlier stream (ids below this one's) settles nothing.
        #expect(sender.acknowledged(SyncReplicationState(inclusiveLowWatermark: 500)).isEmpty)
        #expect(sender.acknowledged(SyncReplicationState(inclusiveLowWatermark: 1002)) == [.init(sourceShard: 1, batch: 1)])
        #expect(sender.acknowledged(SyncReplicationState(inclusiveLowWatermark: 1003)) == [.init(sourceShard: 2, batch: 1)])
        // An ACK of ids never sent is ignored.
        #expect(sender.acknowledged(SyncReplicationState(inclusiveLowWatermark: 5000)).isEmpty)
        #expect(sender.ignoredAcknowledgements == 1)
        // A keepalive repeats the watermark without a new id.
        #expect(try ReplicationBatch(response: sender.keepalive().bytes())?.exclusiveHighWatermark == 1003)
        #expect(sender.watermark == 1003)
    }

    @Test func aPriorityStateSettlesBatchesOfItsPriority() throws {
        var sender = RoutingSender(targetShard: 1, firstID: 1)
        _ = try sender.deliver([makeTask(id: 1, workflowID: "a")], from: 1, batch: 1, highWatermarkTime: nil, priority: 10).bytes()
        _ = try sender.deliver([makeTask(id: 2, workflowID: "b")], from: 1, batch: 2, highWatermarkTime: nil, priority: 1).bytes()
        // High priority has everything, low nothing: only the high batch settles.
        let settled = sender.acknowledged(SyncReplicationState(
            inclusiveLowWatermark: 1, highPriority: .init(inclusiveLowWatermark: 3), lowPriority: .init(inclusiveLowWatermark: 1)))
        #expect(settled == [.init(sourceShard: 1, batch: 2)])
    }
}
