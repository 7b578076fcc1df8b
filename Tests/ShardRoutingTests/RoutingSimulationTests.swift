// A seeded simulation of routing between two clusters: source shards emit batches of tasks (routable, shard-level,
// unroutable; with or without priorities), the receivers and senders route and renumber them, target shards apply
// the batches they are sent and acknowledge at random moments; optionally targets and source streams restart, losing
// what was in flight. Checked: every task reaches the shard Temporal's function names (shard-level tasks every
// shard, unroutable ones none) at least once, exactly once and in source order when nothing restarts; no ACK a
// source receives ever covers a task some target has not applied; once all is drained, every source's ACK level is
// its last watermark.

import PluginKit
import ShardRouting
import TestSupport
import Testing

private struct SimTask {
    let id: Int64
    let workflowID: String
    let kind: Kind

    enum Kind { case workflow, shardLevel, unroutable }

    /// Encodes the task as a source would; its identity ("s<source>-<id>") travels in a field routing leaves alone.
    func encoded(source: Int32) -> ReplicationTask {
        var task: [UInt8] = []
        field(1, varint: kind == .shardLevel ? 3 : (kind == .unroutable ? 1 : 2), to: &task)
        field(2, varint: UInt64(id), to: &task)
        let identity = Array("s\(source)-\(id)".utf8)
        switch kind {
        case .workflow:
            var info: [UInt8] = []
            field(1, bytes: Array("ns-\(source % 2)".utf8), to: &info)
            field(2, bytes: Array(workflowID.utf8), to: &info)
            field(3, bytes: identity, to: &info)  // run_id
            field(15, varint: UInt64(id), to: &info)
            field(17, bytes: info, to: &task)
        case .shardLevel:
            var status: [UInt8] = []
            field(1, bytes: identity, to: &status)  // source_cluster
            field(5, bytes: status, to: &task)
        case .unroutable:
            var namespace: [UInt8] = []
            field(2, bytes: identity, to: &namespace)  // id
            field(3, bytes: namespace, to: &task)
        }
        return try! ReplicationTask(bytes: task)
    }
}

/// The identity a target reads back from a task it applied.
private func identity(of task: ReplicationTask) -> String {
    var scanner = ProtoWireScanner(bytes: task.bytes)
    while let outer = try! scanner.next() {
        guard outer.wireType == .lengthDelimited, outer.fieldNumber == 17 || outer.fieldNumber == 5 else { continue }
        var inner = ProtoWireScanner(bytes: task.bytes, subMessageOf: outer)
        while let candidate = try! inner.next() {
            if candidate.fieldNumber == (outer.fieldNumber == 17 ? 3 : 1) {
                return String(decoding: task.bytes[candidate.payloadRange], as: UTF8.self)
            }
        }
    }
    return "?"
}

private struct SimBatch {
    let tasks: [SimTask]
    let watermark: Int64
    let priority: Int
}

private struct Simulation {
    let sourceCount: Int32
    let targetCount: Int32
    let restarts: Bool
    var random: SeededGenerator

    var logs: [Int32: [SimBatch]] = [:]
    var cursors: [Int32: Int] = [:]
    /// What each source was told, per priority (0: the overall level).
    var sourceAcks: [Int32: [Int: Int64]] = [:]
    var receivers: [Int32: RoutingReceiver] = [:]
    var senders: [Int32: RoutingSender] = [:]
    var inboxes: [Int32: [[UInt8]]] = [:]
    var processed: [Int32: Int64] = [:]
    var acked: [Int32: Int64] = [:]
    /// Identities each target applied, in order.
    var applied: [Int32: [String]] = [:]
    var restartCount = 0

    init(sources: Int32, targets: Int32, seed: UInt64, restarts: Bool) {
        sourceCount = sources
        targetCount = targets
        self.restarts = restarts
        random = SeededGenerator(seed: seed)
        for source in 1...sources {
            let usesPriorities = Bool.random(using: &random)
            var id = Int64(source) * 1_000_000
            var batches: [SimBatch] = []
            for _ in 0..<25 {
                var tasks: [SimTask] = []
                for _ in 0..<Int.random(in: 0...5, using: &random) {
                    let roll = Int.random(in: 0..<20, using: &random)
                    let kind: SimTask.Kind = roll == 0 ? .shardLevel : (roll == 1 ? .unroutable : .workflow)
                    tasks.append(SimTask(id: id, workflowID: "wf-\(Int.random(in: 0..<40, using: &random))", kind: kind))
                    id += Int64.random(in: 1...3, using: &random)
                }
                id += Int64.random(in: 0...2, using: &random)  // a watermark may run ahead of the last task
                let priority = usesPriorities ? (Bool.random(using: &random) ? 1 : 10) : 0
                batches.append(SimBatch(tasks: tasks, watermark: id, priority: priority))
            }
            logs[source] = batches
            cursors[source] = 0
            sourceAcks[source] = [:]
            receivers[source] = RoutingReceiver(sourceShard: source, targetShardCount: targets)
        }
        for target in 1...targets {
            senders[target] = RoutingSender(targetShard: target, firstID: Int64(target) * 10_000_000)
            inboxes[target] = []
            processed[target] = 0
            acked[target] = 0
            applied[target] = []
        }
    }

    /// Where a task must be applied.
    func destinations(of task: SimTask, source: Int32) -> [Int32] {
        switch task.kind {
        case .workflow:
            return [HistoryShard.of(namespaceID: "ns-\(source % 2)", workflowID: task.workflowID, shardCount: targetCount)]
        case .shardLevel:
            return Array(1...targetCount)
        case .unroutable:
            return []
        }
    }

    mutating func emit(_ source: Int32) {
        let batch = logs[source]![cursors[source]!]
        cursors[source]! += 1
        let routed = receivers[source]!.received(ReplicationBatch(
            tasks: batch.tasks.map { $0.encoded(source: source) }, exclusiveHighWatermark: batch.watermark,
            highWatermarkTime: nil, priority: batch.priority))
        #expect(routed.unroutable.count == batch.tasks.filter { $0.kind == .unroutable }.count)
        for delivery in routed.deliveries {
            let bytes = try! senders[delivery.targetShard]!.deliver(
                delivery.tasks, from: source, batch: routed.batch, highWatermarkTime: nil, priority: batch.priority).bytes()
            inboxes[delivery.targetShard]!.append(bytes)
        }
        if let ack = routed.acknowledgement { received(ack, at: source) }
    }

    mutating func apply(_ target: Int32) {
        let bytes = inboxes[target]!.removeFirst()
        let batch = try! ReplicationBatch(response: bytes)!
        for task in batch.tasks {
            applied[target]!.append(identity(of: task))
        }
        processed[target] = batch.exclusiveHighWatermark
    }

    mutating func acknowledge(_ target: Int32) {
        let level = processed[target]!
        acked[target] = level
        let withStates = Bool.random(using: &random)
        let state = SyncReplicationState(
            inclusiveLowWatermark: level, highPriority: withStates ? .init(inclusiveLowWatermark: level) : nil,
            lowPriority: withStates ? .init(inclusiveLowWatermark: level) : nil)
        for settlement in senders[target]!.acknowledged(state) {
            if let ack = receivers[settlement.sourceShard]!.settled(batch: settlement.batch, at: target) {
                received(ack, at: settlement.sourceShard)
            }
        }
    }

    /// A source receives an ACK: nothing it covers may be missing at a target.
    mutating func received(_ ack: SyncReplicationState, at source: Int32) {
        var levels: [Int: Int64] = [0: ack.inclusiveLowWatermark]
        if let high = ack.highPriority { levels[1] = high.inclusiveLowWatermark }
        if let low = ack.lowPriority { levels[10] = low.inclusiveLowWatermark }
        for (priority, level) in levels {
            #expect(level >= sourceAcks[source]![priority] ?? Int64.min || priority == 0, "a priority's ACK went back")
            sourceAcks[source]![priority] = level
        }
        for batch in logs[source]! {
            let level = levels[batch.priority] ?? (batch.priority == 0 ? levels[0]! : nil)
            guard let level, batch.watermark <= level else { continue }
            for task in batch.tasks {
                for target in destinations(of: task, source: source) {
                    #expect(applied[target]!.contains("s\(source)-\(task.id)"),
                            "source \(source) was told \(level) but task \(task.id) is not at shard \(target)")
                }
            }
        }
    }

    /// The source resends from its ACK levels, as Temporal does on a new stream.
    mutating func rewind(_ source: Int32) {
        receivers[source]!.restarted()
        let acks = sourceAcks[source]!
        let first = logs[source]!.firstIndex { batch in
            let level = acks[batch.priority] ?? (batch.priority == 0 ? acks[0] : nil) ?? Int64.min
            return batch.watermark > level
        }
        cursors[source] = min(cursors[source]!, first ?? logs[source]!.count)
    }

    mutating func restartTarget(_ target: Int32) {
        restartCount += 1
        inboxes[target] = []
        let old = senders[target]!
        senders[target] = RoutingSender(targetShard: target, firstID: old.watermark + 1_000_000)
        processed[target] = 0
        acked[target] = 0
        for source in old.unsettledSources { rewind(source) }
    }

    mutating func run() {
        while true {
            let emitting = (1...sourceCount).filter { cursors[$0]! < logs[$0]!.count }
            let applying = (1...targetCount).filter { !inboxes[$0]!.isEmpty }
            let acking = (1...targetCount).filter { processed[$0]! > acked[$0]! }
            if emitting.isEmpty && applying.isEmpty && acking.isEmpty { return }
            let roll = Int.random(in: 0..<100, using: &random)
            if restarts && restartCount < 6 && roll < 2 {
                if Bool.random(using: &random) {
                    restartTarget(Int32.random(in: 1...targetCount, using: &random))
                } else {
                    rewind(Int32.random(in: 1...sourceCount, using: &random))
                }
            } else if !emitting.isEmpty && (roll < 40 || (applying.isEmpty && acking.isEmpty)) {
                emit(emitting.randomElement(using: &random)!)
            } else if !applying.isEmpty && (roll < 75 || acking.isEmpty) {
                apply(applying.randomElement(using: &random)!)
            } else if !acking.isEmpty {
                acknowledge(acking.randomElement(using: &random)!)
            } else if !applying.isEmpty {
                apply(applying.randomElement(using: &random)!)
            } else {
                emit(emitting.randomElement(using: &random)!)
            }
        }
    }
}

struct RoutingSimulationTests {
    static let shapes: [(Int32, Int32)] = [(4, 2), (2, 4), (2, 3), (3, 2), (1, 5), (5, 1), (4, 4)]

    @Test(arguments: shapes)
    func everyTaskReachesItsShardOnceInOrder(_ shape: (Int32, Int32)) {
        var simulation = Simulation(sources: shape.0, targets: shape.1, seed: UInt64(shape.0 * 10 + shape.1), restarts: false)
        simulation.run()
        var expected: [Int32: [String]] = [:]
        for source in 1...shape.0 {
            for batch in simulation.logs[source]! {
                for task in batch.tasks {
                    for target in simulation.destinations(of: task, source: source) {
                        expected[target, default: []].append("s\(source)-\(task.id)")
                    }
                }
            }
        }
        for target in 1...shape.1 {
            let got = simulation.applied[target]!
            #expect(Set(got) == Set(expected[target] ?? []), "shard \(target)")
            #expect(got.count == (expected[target] ?? []).count, "shard \(target): each task once")
            // Per source, in source order.
            for source in 1...shape.0 {
                let ids = got.filter { $0.hasPrefix("s\(source)-") }.map { Int64($0.split(separator: "-")[1])! }
                #expect(ids == ids.sorted(), "shard \(target), source \(source)")
            }
        }
        for source in 1...shape.0 {
            for priority in Set(simulation.logs[source]!.map(\.priority)) {
                let last = simulation.logs[source]!.last { $0.priority == priority }!.watermark
                #expect(simulation.sourceAcks[source]![priority] == last, "source \(source) priority \(priority)")
            }
            #expect(simulation.receivers[source]!.unsettledBatches == 0)
        }
    }

    @Test(arguments: shapes)
    func restartsLoseNothing(_ shape: (Int32, Int32)) {
        for seed in UInt64(1)...8 {
            var simulation = Simulation(sources: shape.0, targets: shape.1, seed: seed * 1000 + UInt64(shape.0), restarts: true)
            simulation.run()
            for source in 1...shape.0 {
                for batch in simulation.logs[source]! {
                    for task in batch.tasks {
                        for target in simulation.destinations(of: task, source: source) {
                            #expect(simulation.applied[target]!.contains("s\(source)-\(task.id)"),
                                    "seed \(seed): task \(task.id) of source \(source) lost on shard \(target)")
                        }
                    }
                }
                for priority in Set(simulation.logs[source]!.map(\.priority)) {
                    let last = simulation.logs[source]!.last { $0.priority == priority }!.watermark
                    #expect(simulation.sourceAcks[source]![priority] == last, "seed \(seed): source \(source) priority \(priority)")
                }
            }
        }
    }
}
