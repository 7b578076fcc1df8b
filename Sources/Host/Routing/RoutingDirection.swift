// Routing mode on one listener (docs/design/routing.md): the target shards whose replication streams arrive there
// (senders), and one receiver per shard of the source cluster, whose streams leave through the same listener's
// upstream. It carries out what the state machines of module ShardRouting decide: a batch from a source is routed
// (`RoutingReceiver`), each target's share numbered and written on that target's stream (`RoutingSender`), the
// target's ACKs turned into settled source batches, and the source's ACK sent when its level moves.
//
// A batch is delivered in source order; the bytes it took are given back to its source (HTTP/2 flow control) only
// once every share of it is on a target's stream, so a missing or slow target holds its source back rather than
// growing a buffer. A target stream that ends with shares it has not acknowledged restarts the receivers they came
// from: their sources send again from the last ACK (at least once, nothing lost). Idle streams get keepalives every
// second both ways.
//
// Confined to `loop`: `start` and `stop` hop to it, everything else is called on it (by the target server, the
// source client and the timers, all on that loop), which is what makes the class safe to share (`@unchecked
// Sendable`).

import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHPACK
import ShardRouting

final class RoutingDirection: @unchecked Sendable {
    /// What a listener's direction serves: the target shards are those of the cluster whose streams arrive on it.
    struct Shape {
        let connectionName: String
        let side: PluginSide
        let targetShardCount: Int32
        let sourceShardCount: Int32
    }

    private final class TargetSlot {
        var sender: RoutingSender
        let stream: RoutingTargetStream
        var lastSent: NIODeadline

        init(sender: RoutingSender, stream: RoutingTargetStream, now: NIODeadline) {
            self.sender = sender
            self.stream = stream
            self.lastSent = now
        }
    }

    private struct QueuedBatch {
        let batch: UInt64
        let priority: Int
        let time: [UInt8]?
        var remaining: [RoutingReceiver.Delivery]
        let credit: Int
    }

    private final class ReceiverSlot {
        var state: RoutingReceiver
        var stream: RoutingSourceStream?
        var queue: [QueuedBatch] = []
        var lastAckSent: NIODeadline = .now()
        var reopen: Scheduled<Void>?
        var retryDelay: TimeAmount = RoutingDirection.firstRetryDelay
        var waitingSince: NIODeadline?
        var warnedWaiting = false

        init(state: RoutingReceiver) { self.state = state }
    }

    static let firstRetryDelay: TimeAmount = .milliseconds(100)
    static let maxRetryDelay: TimeAmount = .seconds(5)
    static let keepaliveInterval: TimeAmount = .seconds(1)
    static let waitingWarning: TimeAmount = .seconds(30)
    /// A target shard with this many batches it has not acknowledged gets no more until it does: what the proxy
    /// remembers for a target that reads and never acknowledges stays bounded (Temporal acknowledges within seconds).
    static let maxUnacknowledgedBatches = 4096

    let loop: EventLoop
    let logger: Logger
    let shape: Shape
    /// A connection of the listener's upstream on `loop`, for the receivers' streams.
    var sourceConnection: (() -> EventLoopFuture<UpstreamConnection>)?
    /// The connection's other replicas (`memberlist`); nil for a single replica.
    var replicas: RoutingReplicas? {
        didSet { directory = ShardDirectory(localReplica: replicas?.localReplica ?? "") }
    }
    /// Which replica holds each target shard's stream (this one's entries included).
    private(set) var directory = ShardDirectory(localReplica: "")
    /// The registration time of each local target shard's stream, to withdraw exactly it.
    private var registeredAt: [Int32: UInt64] = [:]
    /// Shares delivered to another replica's target shard and not settled yet: peer -> target -> source -> count.
    private var remotePending: [String: [Int32: [Int32: Int]]] = [:]
    /// Settlements for peers whose link was down when they were due.
    private var pendingSettlements: [String: [IntraMessage]] = [:]
    /// Peers' deliveries a busy target could not take at once: their windows go back when targets have room.
    private var roomWaiters: [() -> Void] = []
    let maxMessageBytes: Int

    private var targets: [Int32: TargetSlot] = [:]
    private var receivers: [Int32: ReceiverSlot] = [:]
    /// The first target stream's metadata: what the receivers' streams claim (cluster ids, other metadata).
    private var template: HPACKHeaders?
    private var connection: UpstreamConnection?
    private var connecting = false
    private var reconnect: Scheduled<Void>?
    private var keepalive: RepeatedTask?
    /// The highest id any sender of this direction used: a new sender starts above it.
    private var highestID: Int64 = 0
    /// What the metrics endpoint reads (from its own thread): updated here as things happen.
    let figures = NIOLockedValueBox(Figures())

    struct Figures: Sendable {
        var tasksRouted = 0
        var batchesDelivered = 0
        /// By `ReplicationTaskType` value.
        var unroutableTasks: [Int: Int] = [:]
        var receiverRestarts = 0
        var targetStreams = 0
        var sourceStreams = 0
    }

    init(loop: EventLoop, shape: Shape, maxMessageBytes: Int, logger: Logger) {
        self.loop = loop
        self.shape = shape
        self.maxMessageBytes = maxMessageBytes
        self.logger = logger
    }

    func start() {
        loop.execute {
            self.keepalive = self.loop.scheduleRepeatedTask(
                initialDelay: Self.keepaliveInterval, delay: Self.keepaliveInterval
            ) { _ in self.sendKeepalives() }
        }
    }

    func stop() {
        loop.execute {
            self.keepalive?.cancel()
            self.reconnect?.cancel()
            for slot in self.receivers.values {
                slot.reopen?.cancel()
                slot.stream?.cancel()
            }
            for slot in self.targets.values {
                slot.stream.finish(GRPCStatus(.unavailable, "s2s-proxy is shutting down"))
            }
            self.targets = [:]
        }
    }

    // MARK: What /debug/connections shows

    struct Snapshot: Sendable, Encodable {
        struct Target: Sendable, Encodable {
            var shard: Int32
            /// The next id this shard's stream would send (its exclusive high watermark).
            var idWatermark: Int64
            /// The target's last ACK, in the stream's ids.
            var acknowledged: Int64?
            var unacknowledgedBatches: Int
            var bytesInFlight: Int

            enum CodingKeys: String, CodingKey {
                case shard, acknowledged
                case idWatermark = "id_watermark"
                case unacknowledgedBatches = "unacknowledged_batches"
                case bytesInFlight = "bytes_in_flight"
            }
        }

        struct Source: Sendable, Encodable {
            var shard: Int32
            var connected: Bool
            /// The last ACK sent to the source (overall, and per priority when the source uses priorities).
            var ackLevel: Int64?
            var highPriorityAckLevel: Int64?
            var lowPriorityAckLevel: Int64?
            var unsettledBatches: Int
            /// Batches received and not yet handed to every target they have tasks for.
            var queuedBatches: Int
            /// The target shards the oldest queued batch waits for (not connected, or busy).
            var waitingFor: [Int32]

            enum CodingKeys: String, CodingKey {
                case shard, connected
                case ackLevel = "ack_level"
                case highPriorityAckLevel = "high_priority_ack_level"
                case lowPriorityAckLevel = "low_priority_ack_level"
                case unsettledBatches = "unsettled_batches"
                case queuedBatches = "queued_batches"
                case waitingFor = "waiting_for"
            }
        }

        var direction: String
        var targetShardCount: Int32
        var sourceShardCount: Int32
        var targets: [Target]
        var sources: [Source]
        var tasksRouted: Int
        var unroutableTasks: [String: Int]
        var receiverRestarts: Int
        /// With replicas: which replica holds each target shard's stream (shard → replica), and the replicas whose
        /// streams to this one are open.
        var owners: [String: String]?
        var members: [String]?

        enum CodingKeys: String, CodingKey {
            case direction, targets, sources, owners, members
            case targetShardCount = "target_shard_count"
            case sourceShardCount = "source_shard_count"
            case tasksRouted = "tasks_routed"
            case unroutableTasks = "unroutable_tasks"
            case receiverRestarts = "receiver_restarts"
        }
    }

    func snapshot() -> EventLoopFuture<Snapshot> {
        loop.submit {
            let figures = self.figures.withLockedValue { $0 }
            return Snapshot(
                direction: self.shape.side.rawValue,
                targetShardCount: self.shape.targetShardCount,
                sourceShardCount: self.shape.sourceShardCount,
                targets: self.targets.keys.sorted().map { shard in
                    let slot = self.targets[shard]!
                    return .init(
                        shard: shard, idWatermark: slot.sender.watermark, acknowledged: slot.sender.acknowledgedLevel,
                        unacknowledgedBatches: slot.sender.unsettledBatches, bytesInFlight: slot.stream.bytesInFlight)
                },
                sources: self.receivers.keys.sorted().map { shard in
                    let slot = self.receivers[shard]!
                    let acknowledgement = slot.state.acknowledgement
                    return .init(
                        shard: shard, connected: slot.stream != nil, ackLevel: acknowledgement?.inclusiveLowWatermark,
                        highPriorityAckLevel: acknowledgement?.highPriority?.inclusiveLowWatermark,
                        lowPriorityAckLevel: acknowledgement?.lowPriority?.inclusiveLowWatermark,
                        unsettledBatches: slot.state.unsettledBatches, queuedBatches: slot.queue.count,
                        waitingFor: slot.queue.first?.remaining.map(\.targetShard) ?? [])
                },
                tasksRouted: figures.tasksRouted,
                unroutableTasks: Dictionary(uniqueKeysWithValues: figures.unroutableTasks.map { (String($0.key), $0.value) }),
                receiverRestarts: figures.receiverRestarts,
                owners: self.replicas.map { _ in
                    var owners: [String: String] = [:]
                    for shard in 1...self.shape.targetShardCount {
                        if let owner = self.directory.owner(of: shard) { owners[String(shard)] = owner }
                    }
                    return owners
                },
                members: self.replicas?.memberNames)
        }
    }

    // MARK: Target streams

    /// Checks a target stream's metadata: the shard it may register as, or the status that refuses it.
    enum Opening {
        case accepted(shard: Int32)
        case refused(GRPCStatus)
    }

    func targetOpening(headers: HPACKHeaders) -> Opening {
        let names = ("temporal-client-shard-id", "temporal-server-shard-id")
        guard let clientText = headers.first(name: names.0), let serverText = headers.first(name: names.1),
              headers.first(name: "temporal-client-cluster-id") != nil,
              headers.first(name: "temporal-server-cluster-id") != nil
        else {
            return .refused(GRPCStatus(
                .invalidArgument,
                "missing cluster & shard ID metadata: a replication stream needs temporal-client-cluster-id, "
                    + "temporal-client-shard-id, temporal-server-cluster-id and temporal-server-shard-id"))
        }
        guard let shard = Int32(clientText), let server = Int32(serverText), shard > 0 else {
            return .refused(GRPCStatus(
                .invalidArgument,
                "malformed shard ID metadata: \(names.0) \"\(clientText)\" and \(names.1) \"\(serverText)\" must be "
                    + "shard ids (1 or more)"))
        }
        guard server == shard, shard <= shape.targetShardCount else {
            return .refused(GRPCStatus(
                .invalidArgument,
                "s2s-proxy routing mode (shardCount.mode routing) pairs target shard n with source shard n, for n in "
                    + "1...\(shape.targetShardCount) (this side's cluster has \(shape.targetShardCount) shards); this "
                    + "stream names target shard \(shard) and source shard \(server). Check shardCount's counts, and "
                    + "that the cluster learned them through this proxy's DescribeCluster"))
        }
        return .accepted(shard: shard)
    }

    /// A target shard's stream is registered; an older stream of the same shard is replaced (the newest wins).
    func targetOpened(_ stream: RoutingTargetStream) {
        if let old = targets[stream.shard] {
            logger.info("a newer replication stream of the target shard replaces its older one", metadata: [
                "shard": "\(stream.shard)",
            ])
            old.stream.finish(GRPCStatus(.unavailable, "replaced by a newer stream of the same shard"))
            retire(old, reason: "target shard \(stream.shard) reconnected")
        }
        let firstID = max(Int64(Date().timeIntervalSince1970 * 1_000_000), highestID + 1)
        highestID = firstID
        targets[stream.shard] = TargetSlot(
            sender: RoutingSender(targetShard: stream.shard, firstID: firstID), stream: stream, now: .now())
        if template == nil { template = stream.headers }
        if let replicas {
            let time = UInt64(Date().timeIntervalSince1970 * 1e9)
            registeredAt[stream.shard] = time
            let event = ShardDirectory.Event(shard: stream.shard, replica: replicas.localReplica, time: time, kind: .registered)
            directory.apply(event)
            replicas.broadcast(.announcement(direction: shape.side.rawValue, event: event))
        }
        logger.info("target shard registered", metadata: [
            "shard": "\(stream.shard)", "targets": "\(targets.count)/\(shape.targetShardCount)",
        ])
        ensureReceivers()
        publishStreams()
        pumpAll()
    }

    /// The target's ACK: the source batches it settles, and the sources' ACKs that moves.
    func targetAcknowledged(_ stream: RoutingTargetStream, _ state: SyncReplicationState) {
        guard let slot = targets[stream.shard], slot.stream === stream else { return }
        let before = slot.sender.ignoredAcknowledgements
        let wasFull = slot.sender.unsettledBatches >= Self.maxUnacknowledgedBatches
        let settled = slot.sender.acknowledged(state)
        defer { if wasFull { pumpAll() } }
        if slot.sender.ignoredAcknowledgements > before {
            logger.debug("ignored an ACK of ids this stream never sent", metadata: [
                "shard": "\(stream.shard)", "ack": "\(state.inclusiveLowWatermark)",
            ])
        }
        for settlement in settled {
            if let origin = settlement.origin {
                settledForPeer(origin, .settled(
                    direction: shape.side.rawValue, sourceShard: settlement.sourceShard, batch: settlement.batch,
                    targetShard: stream.shard))
                continue
            }
            guard let receiver = receivers[settlement.sourceShard],
                  let acknowledgement = receiver.state.settled(batch: settlement.batch, at: stream.shard)
            else { continue }
            sendAcknowledgement(acknowledgement, for: receiver)
        }
    }

    /// A target stream wrote what it had queued: waiting batches may go on.
    func targetHasRoom(_ stream: RoutingTargetStream) {
        guard targets[stream.shard]?.stream === stream else { return }
        let waiters = roomWaiters
        roomWaiters = []
        for waiter in waiters { waiter() }
        pumpAll()
    }

    /// Runs `body` once a target stream reports room again (a peer's delivery waits for it to return its window).
    func whenTargetsHaveRoom(_ body: @escaping () -> Void) {
        roomWaiters.append(body)
    }

    /// A target stream ended (the target, the connection, or a failure).
    func targetClosed(_ stream: RoutingTargetStream) {
        guard let slot = targets[stream.shard], slot.stream === stream else { return }
        targets[stream.shard] = nil
        logger.info("target shard's replication stream ended", metadata: [
            "shard": "\(stream.shard)", "unacknowledged_batches": "\(slot.sender.unsettledBatches)",
        ])
        retire(slot, reason: "target shard \(stream.shard)'s stream ended before acknowledging what it was sent")
        if let replicas, let time = registeredAt.removeValue(forKey: stream.shard) {
            let event = ShardDirectory.Event(shard: stream.shard, replica: replicas.localReplica, time: time, kind: .withdrawn)
            directory.apply(event)
            replicas.broadcast(.announcement(direction: shape.side.rawValue, event: event))
            ensureReceivers()
        }
        if targets.isEmpty && replicas == nil { stopReceivers() }
        publishStreams()
    }

    /// The batches a replaced or ended target stream never acknowledged must come again from their sources.
    private func retire(_ slot: TargetSlot, reason: String) {
        highestID = max(highestID, slot.sender.watermark)
        for source in slot.sender.unsettledSources.sorted() {
            restartReceiver(source, reason: reason)
        }
    }

    // MARK: Receivers

    /// A batch from source shard `stream.shard`; `credit` is the receive window its bytes took.
    func sourceBatch(_ stream: RoutingSourceStream, _ batch: ReplicationBatch, credit: Int) {
        guard let slot = receivers[stream.shard], slot.stream === stream else {
            stream.release(credit)
            return
        }
        slot.retryDelay = Self.firstRetryDelay
        let routed = slot.state.received(batch)
        let seenBefore = figures.withLockedValue { figures in
            figures.tasksRouted += batch.tasks.count - routed.unroutable.count
            var seen: [Int: Int] = [:]
            for task in routed.unroutable {
                seen[task.taskType] = seen[task.taskType] ?? figures.unroutableTasks[task.taskType, default: 0]
                figures.unroutableTasks[task.taskType, default: 0] += 1
            }
            return seen
        }
        for (taskType, before) in seenBefore.sorted(by: { $0.key < $1.key }) where before == 0 {
            logger.warning(
                "a replication task says nothing of the workflow it belongs to (no raw_task_info, no namespace and workflow ids in its attributes): it is not forwarded; counted in s2s_proxy_routing_unroutable_tasks_total",
                metadata: ["source_shard": "\(stream.shard)", "task_type": "\(taskType)"])
        }
        if let acknowledgement = routed.acknowledgement {
            sendAcknowledgement(acknowledgement, for: slot)
        }
        slot.queue.append(QueuedBatch(
            batch: routed.batch, priority: batch.priority, time: batch.highWatermarkTime, remaining: routed.deliveries,
            credit: credit))
        pump(slot)
    }

    /// A receiver's stream ended; it opens again after a pause while targets are registered.
    func sourceEnded(_ stream: RoutingSourceStream, reason: String) {
        guard let slot = receivers[stream.shard], slot.stream === stream else { return }
        forgetUnsettled(slot)
        logger.info("source shard's replication stream ended; reopening", metadata: [
            "shard": "\(stream.shard)", "reason": "\(reason)", "retry_ms": "\(slot.retryDelay.nanoseconds / 1_000_000)",
        ])
        scheduleReopen(stream.shard, slot, after: slot.retryDelay)
        slot.retryDelay = min(slot.retryDelay * 2, Self.maxRetryDelay)
        publishStreams()
    }

    private func restartReceiver(_ source: Int32, reason: String, reopen: Bool = true) {
        guard let slot = receivers[source] else { return }
        figures.withLockedValue { $0.receiverRestarts += 1 }
        logger.info("restarting a source shard's stream: its source sends again from the last ACK", metadata: [
            "shard": "\(source)", "reason": "\(reason)",
        ])
        forgetUnsettled(slot)
        if reopen { scheduleReopen(source, slot, after: Self.firstRetryDelay) }
        publishStreams()
    }

    /// Ends the receiver's stream (if open) and forgets what it had not settled: its batches, queued or at targets
    /// here and on other replicas, come again from the source's last ACK.
    private func forgetUnsettled(_ slot: ReceiverSlot) {
        let source = slot.state.sourceShard
        slot.stream?.cancel()
        slot.stream = nil
        slot.state.restarted()
        slot.queue = []
        for peer in remotePending.keys {
            for target in remotePending[peer]!.keys { remotePending[peer]![target]![source] = nil }
        }
    }

    private func scheduleReopen(_ source: Int32, _ slot: ReceiverSlot, after delay: TimeAmount) {
        slot.reopen?.cancel()
        slot.reopen = loop.scheduleTask(in: delay) {
            slot.reopen = nil
            self.ensureReceivers()
        }
    }

    private func stopReceivers() {
        for slot in receivers.values {
            slot.reopen?.cancel()
            slot.reopen = nil
            forgetUnsettled(slot)
        }
        logger.info("no target shard is registered: the source shards' streams are closed until one is")
    }

    /// Opens the receivers' streams that are not open, once a target is registered.
    private func ensureReceivers() {
        // With replicas, receivers that belong elsewhere now stop here (their new home opens them).
        if replicas != nil {
            for (source, slot) in receivers where slot.stream != nil && !isHome(source) {
                restartReceiver(source, reason: "its home is now another replica", reopen: false)
            }
        }
        guard !targets.isEmpty, let template else { return }
        guard let connection, connection.canOpenStream else {
            connectIfNeeded()
            return
        }
        for source in 1...shape.sourceShardCount where isHome(source) {
            let slot = receivers[source] ?? {
                let made = ReceiverSlot(state: RoutingReceiver(sourceShard: source, targetShardCount: shape.targetShardCount))
                receivers[source] = made
                return made
            }()
            guard slot.stream == nil, slot.reopen == nil else { continue }
            guard let stream = RoutingSourceStream.open(
                shard: source, on: connection, headers: receiverHeaders(source, template: template), direction: self,
                maxMessageBytes: maxMessageBytes)
            else {
                scheduleReopen(source, slot, after: slot.retryDelay)
                continue
            }
            slot.stream = stream
            logger.debug("source shard's stream opened", metadata: ["shard": "\(source)"])
            publishStreams()
            // Where the source stands with us: it resumes from its own record of the last ACK anyway.
            if let acknowledgement = slot.state.acknowledgement {
                sendAcknowledgement(acknowledgement, for: slot)
            }
        }
    }

    private func connectIfNeeded() {
        guard !connecting, let sourceConnection else { return }
        connecting = true
        connection = nil
        sourceConnection().whenComplete { result in
            self.connecting = false
            switch result {
            case .success(let connected):
                self.connection = connected
                self.ensureReceivers()
            case .failure(let error):
                self.logger.warning("cannot reach the upstream for the source shards' streams; retrying", metadata: [
                    "error": "\(NetworkErrorDescription.describe(error))",
                ])
                self.reconnect?.cancel()
                self.reconnect = self.loop.scheduleTask(in: Self.maxRetryDelay) { self.ensureReceivers() }
            }
        }
    }

    /// The metadata of source shard `source`'s stream: the target streams' cluster ids, shard ids `source`.
    private func receiverHeaders(_ source: Int32, template: HPACKHeaders) -> HPACKHeaders {
        var headers: HPACKHeaders = [
            ":method": "POST",
            ":scheme": "http",
            ":path": ReplicationStreamRegistry.method,
            ":authority": template.first(name: ":authority") ?? "s2s-proxy",
            "content-type": "application/grpc",
            "te": "trailers",
        ]
        let replaced: Set<String> = [
            "content-type", "te", "grpc-timeout", "temporal-client-shard-id", "temporal-server-shard-id",
        ]
        for (name, value, _) in template where !name.hasPrefix(":") && !replaced.contains(name) {
            headers.add(name: name, value: value)
        }
        headers.add(name: "temporal-client-shard-id", value: String(source))
        headers.add(name: "temporal-server-shard-id", value: String(source))
        return headers
    }

    private func sendAcknowledgement(_ acknowledgement: SyncReplicationState, for slot: ReceiverSlot) {
        guard let stream = slot.stream else { return }
        stream.send(acknowledgement.request)
        slot.lastAckSent = .now()
    }

    // MARK: Replicas

    /// Where source shard `source`'s receiver runs: on the replica holding target shard ((source - 1) mod n) + 1,
    /// or, while nobody holds that one, on the holder of the lowest-numbered shard anyone holds. Every replica
    /// computes the same from the same directory. Always here without replicas.
    private func isHome(_ source: Int32) -> Bool {
        guard let replicas else { return true }
        let home = (source - 1) % shape.targetShardCount + 1
        if let owner = directory.owner(of: home) { return owner == replicas.localReplica }
        for shard in 1...shape.targetShardCount {
            if let owner = directory.owner(of: shard) { return owner == replicas.localReplica }
        }
        return false
    }

    /// A share for a target shard another replica holds: sent there if its link has room (true: handed on).
    private func deliverToPeer(
        _ delivery: RoutingReceiver.Delivery, source: Int32, batch: UInt64, time: [UInt8]?, priority: Int
    ) -> Bool {
        guard let replicas, let owner = directory.owner(of: delivery.targetShard), owner != replicas.localReplica,
              replicas.isMember(owner),
              replicas.send(.delivery(.init(
                direction: shape.side.rawValue, targetShard: delivery.targetShard, sourceShard: source, batch: batch,
                priority: priority, highWatermarkTime: time, tasks: delivery.tasks)), to: owner)
        else { return false }
        remotePending[owner, default: [:]][delivery.targetShard, default: [:]][source, default: 0] += 1
        figures.withLockedValue { $0.batchesDelivered += 1 }
        return true
    }

    /// A peer's share for a local target shard; false when that target has no room now (the peer's window waits).
    func deliveredByPeer(_ delivery: IntraMessage.Delivery, from peer: String) -> Bool {
        // A shard no longer here: the peer restarts its receivers when it hears the withdrawal.
        guard let target = targets[delivery.targetShard] else { return true }
        do {
            let outgoing = try target.sender.deliver(
                delivery.tasks, from: delivery.sourceShard, batch: delivery.batch,
                highWatermarkTime: delivery.highWatermarkTime, priority: delivery.priority, origin: peer)
            target.stream.send(outgoing)
            target.lastSent = .now()
        } catch {
            logger.error("could not renumber a replica's task; its share is dropped", metadata: ["error": "\(error)"])
        }
        return target.stream.hasRoom
    }

    /// A peer's target shard acknowledged a share of one of our receivers' batches.
    func settledByPeer(sourceShard: Int32, batch: UInt64, targetShard: Int32, peer: String) {
        if let count = remotePending[peer]?[targetShard]?[sourceShard] {
            remotePending[peer]![targetShard]![sourceShard] = count > 1 ? count - 1 : nil
        }
        guard let receiver = receivers[sourceShard],
              let acknowledgement = receiver.state.settled(batch: batch, at: targetShard)
        else { return }
        sendAcknowledgement(acknowledgement, for: receiver)
    }

    private func settledForPeer(_ peer: String, _ message: IntraMessage) {
        guard let replicas, replicas.send(message, to: peer) else {
            pendingSettlements[peer, default: []].append(message)
            return
        }
    }

    /// A peer announced a registration or withdrawal of one of its target shards.
    func announced(_ event: ShardDirectory.Event) {
        guard let change = directory.apply(event) else { return }
        ownerChanged(change)
    }

    /// A peer left: its shards have no owner.
    func peerLost(_ peer: String) {
        for change in directory.peerLost(peer) { ownerChanged(change) }
    }

    /// A link came up or has room again: settlements and deliveries that waited for it go.
    func peersChanged() {
        if let replicas {
            for (peer, messages) in pendingSettlements {
                var left: [IntraMessage] = []
                for message in messages where !replicas.send(message, to: peer) { left.append(message) }
                pendingSettlements[peer] = left.isEmpty ? nil : left
            }
        }
        pumpAll()
    }

    private func ownerChanged(_ change: ShardDirectory.Change) {
        let local = replicas?.localReplica
        logger.info("target shard's owner changed", metadata: [
            "shard": "\(change.shard)", "from": "\(change.from ?? "none")", "to": "\(change.to ?? "none")",
        ])
        if change.from == local, let slot = targets[change.shard] {
            // A newer stream of the shard is on another replica: ours is stale.
            targets[change.shard] = nil
            registeredAt[change.shard] = nil
            slot.stream.finish(GRPCStatus(.unavailable, "the shard's newer stream is on replica \(change.to ?? "?")"))
            retire(slot, reason: "target shard \(change.shard) moved to another replica")
        } else if let peer = change.from, peer != local {
            // Shares sent to the shard's old holder may never be applied: their sources send them again.
            let sources = (remotePending[peer]?[change.shard] ?? [:]).keys.sorted()
            remotePending[peer]?[change.shard] = nil
            for source in sources {
                restartReceiver(source, reason: "target shard \(change.shard) left replica \(peer)")
            }
        }
        ensureReceivers()
        publishStreams()
        pumpAll()
    }

    /// The stream gauges of `figures`.
    private func publishStreams() {
        let targetCount = targets.count
        let sourceCount = receivers.values.filter { $0.stream != nil }.count
        figures.withLockedValue {
            $0.targetStreams = targetCount
            $0.sourceStreams = sourceCount
        }
    }

    // MARK: Delivery

    /// Set while delivering: a write that completes at once (and so reports room) must not deliver re-entrantly.
    private var pumping = false
    private var pumpAgain = false

    private func pumpAll() {
        guard !pumping else {
            pumpAgain = true
            return
        }
        pumping = true
        defer { pumping = false }
        repeat {
            pumpAgain = false
            for source in receivers.keys.sorted() {
                pumpOne(receivers[source]!)
            }
        } while pumpAgain
    }

    private func pump(_ slot: ReceiverSlot) {
        guard !pumping else {
            pumpAgain = true
            return
        }
        pumping = true
        defer { pumping = false }
        pumpOne(slot)
        while pumpAgain {
            pumpAgain = false
            for source in receivers.keys.sorted() {
                pumpOne(receivers[source]!)
            }
        }
    }

    /// Delivers the receiver's waiting batches in order, as far as their targets are there and have room.
    private func pumpOne(_ slot: ReceiverSlot) {
        let source = slot.state.sourceShard
        while var head = slot.queue.first {
            head.remaining.removeAll { delivery in
                guard let target = targets[delivery.targetShard] else {
                    return deliverToPeer(delivery, source: source, batch: head.batch, time: head.time, priority: head.priority)
                }
                guard target.stream.hasRoom, target.sender.unsettledBatches < Self.maxUnacknowledgedBatches
                else { return false }
                do {
                    let outgoing = try target.sender.deliver(
                        delivery.tasks, from: source, batch: head.batch, highWatermarkTime: head.time,
                        priority: head.priority)
                    target.stream.send(outgoing)
                    target.lastSent = .now()
                    figures.withLockedValue { $0.batchesDelivered += 1 }
                } catch {
                    // The task was read whole when it arrived; renumbering it cannot fail short of a bug.
                    logger.error("could not renumber a replication task; the target's share is dropped", metadata: [
                        "shard": "\(delivery.targetShard)", "error": "\(error)",
                    ])
                }
                return true
            }
            guard head.remaining.isEmpty else {
                slot.queue[0] = head
                noteWaiting(slot, for: head.remaining.map(\.targetShard))
                return
            }
            slot.queue.removeFirst()
            slot.stream?.release(head.credit)
        }
        slot.waitingSince = nil
        slot.warnedWaiting = false
    }

    private func noteWaiting(_ slot: ReceiverSlot, for shards: [Int32]) {
        let now = NIODeadline.now()
        guard let since = slot.waitingSince else {
            slot.waitingSince = now
            return
        }
        if !slot.warnedWaiting, now - since >= Self.waitingWarning {
            slot.warnedWaiting = true
            let missing = shards.filter { targets[$0] == nil }
            logger.warning("a source shard's tasks wait for target shards", metadata: [
                "source_shard": "\(slot.state.sourceShard)",
                "not_connected": "\(missing)",
                "busy": "\(shards.filter { targets[$0] != nil })",
            ])
        }
    }

    private func sendKeepalives() {
        let now = NIODeadline.now()
        for slot in targets.values where now - slot.lastSent >= Self.keepaliveInterval && slot.stream.hasRoom {
            slot.stream.send(slot.sender.keepalive())
            slot.lastSent = now
        }
        for slot in receivers.values where now - slot.lastAckSent >= Self.keepaliveInterval {
            if let acknowledgement = slot.state.acknowledgement {
                sendAcknowledgement(acknowledgement, for: slot)
            }
        }
        for slot in receivers.values where !slot.queue.isEmpty {
            noteWaiting(slot, for: slot.queue[0].remaining.map(\.targetShard))
        }
    }
}
