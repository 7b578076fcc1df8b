// Which replica holds each target shard's stream, for routing mode with several replicas (docs/design/routing.md,
// "Replicas"), kept by Host/Routing/RoutingReplicas.swift for each direction.
//
// Each replica announces the target shards whose streams it holds and withdraws them when the streams end; the
// announcements reach the other replicas in any order, so every shard's entry is a last-writer-wins register over
// (time, replica, kind), a withdrawal outranking a registration of the same time and replica. Applying the same
// events in any order, any number of times, leaves every replica with the same owners: a stream that ended cannot
// remove a newer one, and a late registration older than a withdrawal stays withdrawn. A replica whose connection
// drops loses its shards (`peerLost`) until it announces them again.

/// The owner of each target shard's stream among a connection's replicas.
public struct ShardDirectory: Sendable, Equatable {
    /// One announcement: `replica` registered or withdrew its stream of a shard at `time` (nanoseconds, its clock).
    public struct Event: Sendable, Equatable, Hashable {
        public enum Kind: Int, Sendable, Comparable {
            case registered = 0
            case withdrawn = 1

            public static func < (lhs: Kind, rhs: Kind) -> Bool { lhs.rawValue < rhs.rawValue }
        }

        public let shard: Int32
        public let replica: String
        public let time: UInt64
        public let kind: Kind

        public init(shard: Int32, replica: String, time: UInt64, kind: Kind) {
            self.shard = shard
            self.replica = replica
            self.time = time
            self.kind = kind
        }

        /// The register's order: later time, then replica name, then a withdrawal over a registration.
        fileprivate func outranks(_ other: Event) -> Bool {
            if time != other.time { return time > other.time }
            if replica != other.replica { return replica > other.replica }
            return kind > other.kind
        }
    }

    /// A shard whose owner changed.
    public struct Change: Sendable, Equatable {
        public let shard: Int32
        public let from: String?
        public let to: String?

        public init(shard: Int32, from: String?, to: String?) {
            self.shard = shard
            self.from = from
            self.to = to
        }
    }

    /// This replica's name (`memberlist.nodeName`).
    public let localReplica: String
    private var latest: [Int32: Event] = [:]

    public init(localReplica: String) {
        self.localReplica = localReplica
    }

    /// The replica holding `shard`'s stream, if any.
    public func owner(of shard: Int32) -> String? {
        guard let event = latest[shard], event.kind == .registered else { return nil }
        return event.replica
    }

    /// The shards this replica holds: what it announces to a replica that connects.
    public var localRegistrations: [Event] {
        latest.values.filter { $0.replica == localReplica && $0.kind == .registered }.sorted { $0.shard < $1.shard }
    }

    /// Applies an announcement (this replica's own or another's); the change of owner it makes, if any.
    @discardableResult
    public mutating func apply(_ event: Event) -> Change? {
        let before = owner(of: event.shard)
        if let current = latest[event.shard], !event.outranks(current) { return nil }
        latest[event.shard] = event
        let after = owner(of: event.shard)
        return before == after ? nil : Change(shard: event.shard, from: before, to: after)
    }

    /// `replica` is gone (its connection dropped): its shards have no owner until it announces them again.
    public mutating func peerLost(_ replica: String) -> [Change] {
        var changes: [Change] = []
        for (shard, event) in latest where event.replica == replica && event.kind == .registered {
            latest[shard] = nil
            changes.append(Change(shard: shard, from: replica, to: nil))
        }
        return changes.sorted { $0.shard < $1.shard }
    }
}
