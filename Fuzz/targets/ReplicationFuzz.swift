// libFuzzer target: routing mode's replication codec (Sources/ShardRouting/ReplicationMessages.swift) and its state
// machines on arbitrary bytes, as a source or target peer may send them.
//
// The input is read as a StreamWorkflowReplicationMessagesResponse and as a request. A batch that reads must go
// through a receiver and a sender: every share renumbered (the sizes computed beforehand must be what is written),
// the written response must read back with the same number of tasks, each with the new ids and the route and type
// it had, and the watermark the sender gave; the target's ACK of it must settle exactly that batch, and the
// receiver's ACK level then be the batch's watermark when nothing else waits. A request that reads must build back
// to bytes that read to the same state. Every task is also renumbered on its own and read back. Nothing may trap.
// Built and run by scripts/fuzz.
//
// Layout: byte 0 is the target shard count (1...8) and the first id's low bits; the rest is the message.

import ShardRouting

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReplication(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count >= 1 else { return 0 }
    let input = UnsafeRawBufferPointer(start: start, count: count)
    let targetCount = Int32(input[0] & 7) + 1
    let firstID = Int64(input[0] >> 3) + 1
    let message = Array(input[1...])

    if let state = try? SyncReplicationState(request: message) {
        let rebuilt = state.request
        guard let again = try? SyncReplicationState(request: rebuilt), again == state else {
            fatalError("a SyncReplicationState did not survive being built again")
        }
    }

    guard let batch = try? ReplicationBatch(response: message) else { return 0 }
    for task in batch.tasks {
        checkRenumbered(task, to: firstID + 7)
    }
    var receiver = RoutingReceiver(sourceShard: 1, targetShardCount: targetCount)
    let routed = receiver.received(batch)
    var senders: [Int32: RoutingSender] = [:]
    for delivery in routed.deliveries {
        var sender = RoutingSender(targetShard: delivery.targetShard, firstID: firstID)
        guard let outgoing = try? sender.deliver(
            delivery.tasks, from: 1, batch: routed.batch, highWatermarkTime: batch.highWatermarkTime,
            priority: batch.priority)
        else {
            fatalError("a task that read could not be renumbered")
        }
        guard let bytes = try? outgoing.bytes(), bytes.count == outgoing.size,
              let delivered = try? ReplicationBatch(response: bytes)
        else {
            fatalError("a delivered batch did not read back")
        }
        guard delivered.tasks.count == delivery.tasks.count,
              delivered.exclusiveHighWatermark == firstID + Int64(delivery.tasks.count),
              delivered.priority == batch.priority, delivered.highWatermarkTime == batch.highWatermarkTime
        else {
            fatalError("a delivered batch changed: \(delivered.tasks.count) tasks, watermark \(delivered.exclusiveHighWatermark)")
        }
        for (index, (sent, original)) in zip(delivered.tasks, delivery.tasks).enumerated() {
            guard sent.sourceTaskID == firstID + Int64(index), sent.route == original.route,
                  sent.taskType == original.taskType
            else {
                fatalError("task \(index) changed on its way: \(sent.route) / \(original.route)")
            }
        }
        senders[delivery.targetShard] = sender
    }
    var acknowledgement: SyncReplicationState? = routed.acknowledgement
    for (shard, var sender) in senders {
        let settled = sender.acknowledged(SyncReplicationState(inclusiveLowWatermark: sender.watermark))
        guard settled == [RoutingSender.Settlement(sourceShard: 1, batch: routed.batch)] else {
            fatalError("target \(shard)'s ACK settled \(settled)")
        }
        if let moved = receiver.settled(batch: routed.batch, at: shard) { acknowledgement = moved }
    }
    guard receiver.unsettledBatches == 0 else { fatalError("a batch stayed unsettled after every ACK") }
    if let acknowledgement, acknowledgement.inclusiveLowWatermark != batch.exclusiveHighWatermark {
        fatalError("the ACK level is \(acknowledgement.inclusiveLowWatermark), not \(batch.exclusiveHighWatermark)")
    }
    return 0
}

private func checkRenumbered(_ task: ReplicationTask, to id: Int64) {
    guard let renumbered = try? task.renumbered(to: id), let again = try? ReplicationTask(bytes: renumbered) else {
        fatalError("a task that read could not be renumbered and read back")
    }
    guard again.sourceTaskID == id, again.route == task.route, again.taskType == task.taskType else {
        fatalError("renumbering changed a task: \(again.route) / \(task.route)")
    }
}
