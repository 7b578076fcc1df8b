// One target shard's stream in routing mode, as a value-type state machine: tasks of source batches in, encoded
// batches out; the target's ACKs in, settled source batches out (docs/design/routing.md, "Task ids" and "ACKs").
//
// The target persists its ACK level in the ids it was sent, so the sender numbers what it delivers in its own
// strictly increasing id space (`source_task_id` and `raw_task_info.task_id` rewritten), starting at `firstID`: the
// caller takes it from the clock (microseconds), so that ids of a later stream, or of another replica, are above any
// id an earlier one sent and an ACK left over from an earlier stream settles nothing. Every batch sent is remembered
// with the source batch it came from until the target's ACK covers it.

import PluginKit

/// A target shard's routing state.
public struct RoutingSender: Sendable {
    /// A source batch whose tasks this target has acknowledged.
    public struct Settlement: Sendable, Equatable, Hashable {
        public let sourceShard: Int32
        public let batch: UInt64
        /// The replica whose receiver the batch is (nil: this one's), for replicas that deliver to each other's
        /// target shards.
        public let origin: String?

        public init(sourceShard: Int32, batch: UInt64, origin: String? = nil) {
            self.sourceShard = sourceShard
            self.batch = batch
            self.origin = origin
        }
    }

    private struct Sent: Sendable {
        /// The batch's exclusive high watermark in this stream's ids.
        let end: Int64
        let priority: Int
        let settlement: Settlement
    }

    public let targetShard: Int32
    private var nextID: Int64
    /// Batches sent and not yet acknowledged, in the order sent (ascending `end`).
    private var sent: [Sent] = []
    private var lastTime: [UInt8]?
    private var lastPriority = 0
    /// ACKs of ids never sent (a peer out of step), ignored.
    public private(set) var ignoredAcknowledgements = 0
    /// The target's last ACK level.
    public private(set) var acknowledgedLevel: Int64?

    public init(targetShard: Int32, firstID: Int64) {
        precondition(firstID > 0)
        self.targetShard = targetShard
        self.nextID = firstID
    }

    /// The exclusive high watermark of what was sent so far (the next id).
    public var watermark: Int64 { nextID }

    /// Batches sent and not yet acknowledged.
    public var unsettledBatches: Int { sent.count }

    /// The source shards (of this replica's receivers) with batches sent here and not yet acknowledged: their
    /// receivers must start again if this stream ends.
    public var unsettledSources: Set<Int32> { Set(sent.filter { $0.settlement.origin == nil }.map(\.settlement.sourceShard)) }

    /// A `StreamWorkflowReplicationMessagesResponse` carrying `tasks` (of batch `batch` of source shard `source`,
    /// in source order) with this stream's ids, to be written into the caller's buffer.
    public mutating func deliver(
        _ tasks: [ReplicationTask], from source: Int32, batch: UInt64, highWatermarkTime: [UInt8]?, priority: Int,
        origin: String? = nil
    ) throws(ProtoWireError) -> OutgoingBatch {
        let firstID = nextID
        let end = nextID + Int64(tasks.count)
        let outgoing = try OutgoingBatch(
            tasks: tasks, firstID: firstID, exclusiveHighWatermark: end, highWatermarkTime: highWatermarkTime,
            priority: priority)
        nextID = end
        sent.append(Sent(end: nextID, priority: priority, settlement: Settlement(sourceShard: source, batch: batch, origin: origin)))
        lastTime = highWatermarkTime
        lastPriority = priority
        return outgoing
    }

    /// An empty batch repeating the last watermark, for an idle stream (Temporal ends streams that stay silent).
    public func keepalive() -> OutgoingBatch {
        OutgoingBatch(encodedTasks: [], exclusiveHighWatermark: nextID, highWatermarkTime: lastTime, priority: lastPriority)
    }

    /// The target's ACK: the source batches it settles. A batch of a priority the ACK reports separately settles by
    /// that priority's level, others by the overall one. An ACK of ids never sent is ignored.
    public mutating func acknowledged(_ state: SyncReplicationState) -> [Settlement] {
        let levels = [state.inclusiveLowWatermark, state.highPriority?.inclusiveLowWatermark ?? Int64.min,
                      state.lowPriority?.inclusiveLowWatermark ?? Int64.min]
        guard levels.allSatisfy({ $0 <= nextID }) else {
            ignoredAcknowledgements += 1
            return []
        }
        acknowledgedLevel = state.inclusiveLowWatermark
        func level(for priority: Int) -> Int64 {
            switch priority {
            case 1: return state.highPriority?.inclusiveLowWatermark ?? state.inclusiveLowWatermark
            case 10: return state.lowPriority?.inclusiveLowWatermark ?? state.inclusiveLowWatermark
            default: return state.inclusiveLowWatermark
            }
        }
        var settled: [Settlement] = []
        sent.removeAll { batch in
            guard batch.end <= level(for: batch.priority) else { return false }
            settled.append(batch.settlement)
            return true
        }
        return settled
    }
}
