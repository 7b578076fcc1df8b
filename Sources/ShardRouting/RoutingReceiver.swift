// One source shard's stream in routing mode, as a value-type state machine: batches in, per-target deliveries and
// ACKs out (docs/design/routing.md, "ACKs").
//
// The receiver splits each batch of its source shard by target shard (Temporal's shard function over the target's
// count), numbers the batch, and remembers which targets it waits for. When every target that got tasks of a batch
// has acknowledged them (`settled`), and every batch before it of the same priority is settled too, the batch's
// exclusive high watermark becomes the ACK level of that priority, and the receiver has a new SyncReplicationState
// for its source. A batch with nothing to deliver settles at once (a pure watermark advance). The ACK level never
// passes the source's high watermark, and never a task some target has not acknowledged.

/// A source shard's routing state.
public struct RoutingReceiver: Sendable {
    /// One batch's share for one target shard.
    public struct Delivery: Sendable, Equatable {
        public let targetShard: Int32
        public let tasks: [ReplicationTask]
    }

    /// What a batch became.
    public struct Routed: Sendable {
        /// The batch's number, to name it when a target settles it.
        public let batch: UInt64
        /// Per target shard with tasks, in ascending shard order; each keeps the tasks in source order.
        public let deliveries: [Delivery]
        /// Tasks nothing says where to send (not delivered; counted and logged by the caller).
        public let unroutable: [ReplicationTask]
        /// The ACK to send now, when the batch settled at once and moved the ACK level.
        public let acknowledgement: SyncReplicationState?
    }

    private struct Pending: Sendable {
        let batch: UInt64
        let exclusiveHighWatermark: Int64
        let time: [UInt8]?
        var waitingFor: Set<Int32>
    }

    /// Settled state of one priority.
    private struct Level: Sendable {
        var watermark: Int64
        var time: [UInt8]?
    }

    public let sourceShard: Int32
    public let targetShardCount: Int32
    private var nextBatch: UInt64 = 1
    /// Unsettled batches per priority (TaskPriority value), in arrival order.
    private var pending: [Int: [Pending]] = [:]
    /// The ACK level per priority, once something settled.
    private var levels: [Int: Level] = [:]
    /// The last ACK handed out, so that the same one is not handed out twice.
    private var lastAcknowledgement: SyncReplicationState?

    public init(sourceShard: Int32, targetShardCount: Int32) {
        precondition(targetShardCount > 0)
        self.sourceShard = sourceShard
        self.targetShardCount = targetShardCount
    }

    /// Batches not yet settled, over all priorities.
    public var unsettledBatches: Int { pending.values.reduce(0) { $0 + $1.count } }

    /// The target shards some unsettled batch waits for.
    public var awaitedTargets: Set<Int32> {
        var targets = Set<Int32>()
        for batches in pending.values {
            for batch in batches { targets.formUnion(batch.waitingFor) }
        }
        return targets
    }

    /// The last ACK handed out (nil before anything settled): what a keepalive repeats.
    public var acknowledgement: SyncReplicationState? { lastAcknowledgement }

    /// Routes a batch of the source shard.
    public mutating func received(_ incoming: ReplicationBatch) -> Routed {
        let number = nextBatch
        nextBatch += 1
        var byTarget: [Int32: [ReplicationTask]] = [:]
        var unroutable: [ReplicationTask] = []
        for task in incoming.tasks {
            switch task.route {
            case .workflow(let namespaceID, let workflowID):
                let shard = HistoryShard.of(namespaceID: namespaceID, workflowID: workflowID, shardCount: targetShardCount)
                byTarget[shard, default: []].append(task)
            case .everyShard:
                for shard in 1...targetShardCount { byTarget[shard, default: []].append(task) }
            case .unroutable:
                unroutable.append(task)
            }
        }
        let deliveries = byTarget.keys.sorted().map { Delivery(targetShard: $0, tasks: byTarget[$0]!) }
        pending[incoming.priority, default: []].append(Pending(
            batch: number, exclusiveHighWatermark: incoming.exclusiveHighWatermark, time: incoming.highWatermarkTime,
            waitingFor: Set(byTarget.keys)))
        let acknowledgement = deliveries.isEmpty ? advance(priority: incoming.priority) : nil
        return Routed(batch: number, deliveries: deliveries, unroutable: unroutable, acknowledgement: acknowledgement)
    }

    /// Target `shard` has acknowledged everything it got of `batch`; the new ACK, if the level moved.
    public mutating func settled(batch: UInt64, at shard: Int32) -> SyncReplicationState? {
        for (priority, batches) in pending {
            guard let index = batches.firstIndex(where: { $0.batch == batch }) else { continue }
            pending[priority]![index].waitingFor.remove(shard)
            return advance(priority: priority)
        }
        return nil
    }

    /// The stream to the source ended, or will be reopened: what was not settled is forgotten (the source sends it
    /// again from the last ACK). The ACK levels stay.
    public mutating func restarted() {
        pending = [:]
    }

    /// Settles the leading batches of `priority` that wait for nobody; the new ACK if the level moved.
    private mutating func advance(priority: Int) -> SyncReplicationState? {
        guard var batches = pending[priority] else { return nil }
        var settledCount = 0
        var newest: Pending?
        for batch in batches {
            guard batch.waitingFor.isEmpty else { break }
            newest = batch
            settledCount += 1
        }
        guard let newest else { return nil }
        batches.removeFirst(settledCount)
        pending[priority] = batches
        let previous = levels[priority]?.watermark ?? Int64.min
        // A source never moves its watermark back; if one did, the level stays where it was.
        guard newest.exclusiveHighWatermark > previous else { return nil }
        levels[priority] = Level(watermark: newest.exclusiveHighWatermark, time: newest.time)
        let state = currentState()
        guard state != lastAcknowledgement else { return nil }
        lastAcknowledgement = state
        return state
    }

    /// The ACK the levels make: per priority when the source uses priorities, the lowest of them overall.
    private func currentState() -> SyncReplicationState {
        let high = levels[1]
        let low = levels[10]
        let lowest = levels.values.min { $0.watermark < $1.watermark }!
        return SyncReplicationState(
            inclusiveLowWatermark: lowest.watermark, time: lowest.time,
            highPriority: high.map { .init(inclusiveLowWatermark: $0.watermark, time: $0.time) },
            lowPriority: low.map { .init(inclusiveLowWatermark: $0.watermark, time: $0.time) })
    }
}
