// The replication streams of a connection as `/debug/connections` shows them: the open streams of its listeners,
// with the field names of the Go proxy's `active_streams` entries where it has the same figure.

import Foundation

extension ConnectionDebugInfo {
    /// One open replication stream.
    struct ReplicationStreamInfo: Sendable, Encodable, Equatable {
        /// E.g. `outbound-3`: the listener's direction and the stream's number on it.
        var id: String
        /// The call's `:path`.
        var method: String
        /// `outbound` or `inbound`: the listener the stream came in on.
        var direction: String
        /// `(id: <cluster>, shard: <shard>)` from the `temporal-client-*` headers; absent when the call had none.
        var clientShard: String?
        /// The same from the `temporal-server-*` headers.
        var serverShard: String?
        /// ISO 8601, UTC.
        var startTime: String
        /// When a message last crossed either way (ISO 8601, UTC); the start until one has.
        var lastSeen: String
        /// Since the start, e.g. `1h2m3s`.
        var totalDuration: String
        /// Since `lastSeen`, e.g. `45s`.
        var idleDuration: String
        /// Whole gRPC messages forwarded client → upstream (Temporal's ACKs).
        var requestMessages: UInt64
        /// Whole gRPC messages forwarded upstream → client (replication tasks).
        var responseMessages: UInt64

        enum CodingKeys: String, CodingKey {
            case id, method, direction
            case clientShard = "client_shard"
            case serverShard = "server_shard"
            case startTime = "start_time"
            case lastSeen = "last_seen"
            case totalDuration = "total_duration"
            case idleDuration = "idle_duration"
            case requestMessages = "request_messages"
            case responseMessages = "response_messages"
        }

        init(_ stream: ReplicationStreamRegistry.OpenStream, direction: String) {
            let dates = ISO8601DateFormatter()
            id = stream.id
            method = ReplicationStreamRegistry.method
            self.direction = direction
            clientShard = stream.clientShard
            serverShard = stream.serverShard
            startTime = dates.string(from: stream.startDate)
            lastSeen = dates.string(from: stream.lastSeenDate)
            totalDuration = Self.duration(seconds: stream.totalSeconds)
            idleDuration = Self.duration(seconds: stream.idleSeconds)
            requestMessages = stream.requestMessages
            responseMessages = stream.responseMessages
        }

        /// Whole seconds as hours, minutes and seconds, leading zero units left out: `0s`, `45s`, `2m0s`, `1h0m7s`
        /// (Go's `time.Duration` form, truncated to seconds).
        static func duration(seconds: Double) -> String {
            let total = seconds.isFinite ? Int(min(max(0, seconds), 1e12)) : 0
            let (hours, minutes, remainder) = (total / 3600, total / 60 % 60, total % 60)
            if hours > 0 { return "\(hours)h\(minutes)m\(remainder)s" }
            if minutes > 0 { return "\(minutes)m\(remainder)s" }
            return "\(remainder)s"
        }
    }
}
