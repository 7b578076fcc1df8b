// The replication streams of one listener: Temporal's bidirectional
// `AdminService/StreamWorkflowReplicationMessages` calls. Keeps the open ones (shard ids from their metadata, when they
// started, when a message last crossed, how many crossed each way) for `/debug/connections`, and what every stream
// added up to for the Go proxy's `temporal_s2s_proxy_admin_service_stream*` metrics.
//
// In Temporal's replication the *target* cluster's history shard opens the stream against the *source* cluster: on
// either listener the client (downstream) is the target and the upstream is the source. The Go proxy names the side
// that ended a stream with those words (`terminated_by`), and so does this file.
//
// Only calls of that one method come here: `ProxyCall` compares its path once when it starts and, for a stream, holds
// the `ReplicationStream` handle it records messages into. Other calls never touch this file's locks. Recording takes
// the stream's own lock; opening and closing take the listener's.

import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHPACK

/// Which side of a replication stream ended it, in Temporal's words (the `terminated_by` label).
public enum ReplicationStreamEnd: String, Sendable, CaseIterable {
    /// The upstream, the source cluster that sends the replication tasks: its final HEADERS (or END_STREAM) came
    /// while the client was still sending, it reset the stream, its connection was lost or could not be made, or a
    /// response was refused (over the size limit, failed in a plugin).
    case source
    /// The client, the target cluster's history shard that opened the stream: it ended its requests (END_STREAM)
    /// before the upstream ended the responses, it reset the stream, its connection closed (also when the proxy
    /// closes it at shutdown), or a request was refused (over the size limit, failed in a plugin).
    case target

    /// The end of a stream that `side` of the proxied call caused.
    init(endedBy side: CallSide) {
        switch side {
        case .client: self = .target
        case .upstream: self = .source
        }
    }
}

/// One open replication stream. Its call records the messages that cross, on the call's event loop; scrapes and
/// debug reports read it from any thread.
final class ReplicationStream: Sendable {
    /// Unique within the listener: the direction and a sequence number, e.g. `outbound-3`.
    let id: String
    /// The client's (target's) cluster and shard, `(id: <cluster>, shard: <shard>)` as the Go proxy writes them; nil
    /// unless the request carried both `temporal-client-cluster-id` and `temporal-client-shard-id`.
    let clientShard: String?
    /// The server's (source's) cluster and shard, from `temporal-server-cluster-id` / `temporal-server-shard-id`.
    let serverShard: String?
    /// Wall-clock start, for display; durations use `startedAt`, the monotonic clock.
    let startDate: Date
    let startedAt: NIODeadline
    private let progress: NIOLockedValueBox<Progress>

    /// What has crossed so far.
    struct Progress: Sendable, Equatable {
        /// Whole gRPC messages forwarded client → upstream (Temporal's ACKs, `SyncReplicationState`).
        var requestMessages: UInt64 = 0
        /// Whole gRPC messages forwarded upstream → client (replication tasks).
        var responseMessages: UInt64 = 0
        /// When the last message in either direction was forwarded; the start until then.
        var lastSeen: NIODeadline
    }

    init(id: String, clientShard: String?, serverShard: String?, startDate: Date, startedAt: NIODeadline) {
        self.id = id
        self.clientShard = clientShard
        self.serverShard = serverShard
        self.startDate = startDate
        self.startedAt = startedAt
        progress = NIOLockedValueBox(Progress(lastSeen: startedAt))
    }

    /// `count` whole request messages were forwarded to the upstream (0 is allowed and records nothing).
    func forwarded(requests count: Int, at now: NIODeadline = .now()) {
        guard count > 0 else { return }
        progress.withLockedValue {
            $0.requestMessages += UInt64(count)
            $0.lastSeen = now
        }
    }

    /// `count` whole response messages were forwarded to the client (0 is allowed and records nothing).
    func forwarded(responses count: Int, at now: NIODeadline = .now()) {
        guard count > 0 else { return }
        progress.withLockedValue {
            $0.responseMessages += UInt64(count)
            $0.lastSeen = now
        }
    }

    var current: Progress { progress.withLockedValue { $0 } }

    /// The value of a shard field: both headers are needed, as Temporal always sends both.
    static func shard(cluster: String?, shard: String?) -> String? {
        guard let cluster, let shard else { return nil }
        return "(id: \(cluster), shard: \(shard))"
    }
}

/// The replication streams of one listener (one cluster connection, one direction): the open ones and the counts of
/// all of them.
public final class ReplicationStreamRegistry: Sendable {
    /// The only method whose calls are tracked.
    public static let method = "/temporal.server.api.adminservice.v1.AdminService/StreamWorkflowReplicationMessages"
    /// Upper bounds (seconds) of the stream-duration buckets: replication streams live from seconds (a peer
    /// restarting) to days, so 1 s to 24 h; the last bucket is +Inf.
    public static let durationBounds: [Double] = [1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400]

    /// The cluster connection's name (the `config_name` label).
    public let connection: String
    /// `outbound` or `inbound` (the `direction` label).
    public let direction: String
    private let state = NIOLockedValueBox(State())

    private struct State {
        var nextNumber: UInt64 = 1
        var open: [ObjectIdentifier: ReplicationStream] = [:]
        /// The streams that ended, added up; the open ones are added at each snapshot.
        var ended = Totals()
    }

    /// Counts over every stream of the listener.
    public struct Totals: Sendable, Equatable {
        public var opened: UInt64 = 0
        public var closed: UInt64 = 0
        /// Whole messages forwarded client → upstream, by streams open or ended.
        public var requestMessages: UInt64 = 0
        /// Whole messages forwarded upstream → client, by streams open or ended.
        public var responseMessages: UInt64 = 0
        public var terminated: [ReplicationStreamEnd: UInt64] = [:]
        /// Ended streams per duration bucket (not cumulative); the last slot is above the last bound.
        public var durationBuckets = [UInt64](repeating: 0, count: ReplicationStreamRegistry.durationBounds.count + 1)
        public var durationSum: Double = 0
    }

    /// One open stream at the moment of a snapshot.
    public struct OpenStream: Sendable, Equatable {
        public var id: String
        public var clientShard: String?
        public var serverShard: String?
        public var startDate: Date
        /// When a message last crossed (the start if none has).
        public var lastSeenDate: Date
        public var totalSeconds: Double
        public var idleSeconds: Double
        public var requestMessages: UInt64
        public var responseMessages: UInt64
    }

    /// The listener's streams at one moment.
    public struct Snapshot: Sendable, Equatable {
        /// Open streams, oldest first.
        public var open: [OpenStream] = []
        public var totals = Totals()
    }

    public init(connection: String, direction: String) {
        self.connection = connection
        self.direction = direction
    }

    /// Registers a stream whose request headers are `headers`; the caller closes it when the call ends.
    func open(headers: HPACKHeaders, now: NIODeadline = .now(), date: Date = Date()) -> ReplicationStream {
        // Temporal's stream metadata (`history.MetadataKey*`): the client is the target shard, the server the source.
        let client = ReplicationStream.shard(
            cluster: headers.first(name: "temporal-client-cluster-id"),
            shard: headers.first(name: "temporal-client-shard-id")
        )
        let server = ReplicationStream.shard(
            cluster: headers.first(name: "temporal-server-cluster-id"),
            shard: headers.first(name: "temporal-server-shard-id")
        )
        return state.withLockedValue { state in
            let stream = ReplicationStream(
                id: "\(direction)-\(state.nextNumber)", clientShard: client, serverShard: server, startDate: date,
                startedAt: now
            )
            state.nextNumber += 1
            state.open[ObjectIdentifier(stream)] = stream
            state.ended.opened += 1
            return stream
        }
    }

    /// The stream ended because of `side`; its messages and lifetime move to the totals.
    func close(_ stream: ReplicationStream, endedBy side: CallSide, now: NIODeadline = .now()) {
        let seconds = Self.seconds(now - stream.startedAt)
        let bucket = Self.durationBounds.firstIndex { seconds <= $0 } ?? Self.durationBounds.count
        state.withLockedValue { state in
            guard state.open.removeValue(forKey: ObjectIdentifier(stream)) != nil else { return }
            let progress = stream.current
            state.ended.closed += 1
            state.ended.requestMessages += progress.requestMessages
            state.ended.responseMessages += progress.responseMessages
            state.ended.terminated[ReplicationStreamEnd(endedBy: side), default: 0] += 1
            state.ended.durationBuckets[bucket] += 1
            state.ended.durationSum += seconds
        }
    }

    /// The open streams and the totals, the open streams' messages included.
    public func snapshot(now: NIODeadline = .now(), date: Date = Date()) -> Snapshot {
        let (streams, ended) = state.withLockedValue { state in
            (Array(state.open.values), state.ended)
        }
        var snapshot = Snapshot(totals: ended)
        for stream in streams {
            let progress = stream.current
            snapshot.totals.requestMessages += progress.requestMessages
            snapshot.totals.responseMessages += progress.responseMessages
            let idle = Self.seconds(now - progress.lastSeen)
            snapshot.open.append(OpenStream(
                id: stream.id, clientShard: stream.clientShard, serverShard: stream.serverShard,
                startDate: stream.startDate,
                lastSeenDate: stream.startDate.addingTimeInterval(Self.seconds(progress.lastSeen - stream.startedAt)),
                totalSeconds: Self.seconds(now - stream.startedAt), idleSeconds: idle,
                requestMessages: progress.requestMessages, responseMessages: progress.responseMessages
            ))
        }
        snapshot.open.sort {
            $0.totalSeconds > $1.totalSeconds || ($0.totalSeconds == $1.totalSeconds && $0.id < $1.id)
        }
        return snapshot
    }

    private static func seconds(_ amount: TimeAmount) -> Double {
        max(0, Double(amount.nanoseconds) / 1e9)
    }
}
