// The JSON of `/debug/connections`: every cluster connection of the proxy with its listeners, upstream connection
// states, mux sessions (with their stream counts), plugin chains, schema state, and its open replication streams
// (`active_streams`, `stream_counts`). The Go proxy's report is built around its replication-stream bookkeeping; the
// stream entries here carry the fields of its `active_streams` that a forwarding proxy knows (id, method, direction,
// shards, times, message counts), not its sender/receiver watermarks. The rest of the shape is this proxy's own.

import Foundation
import NIOCore

/// The whole proxy's state, as `/debug/connections` returns it.
struct ProxyDebugReport: Sendable, Encodable {
    /// When the report was taken (ISO 8601, UTC).
    var timestamp: String
    var connections: [ConnectionDebugInfo]

    /// Gathers every connection's state (each part read on the loop that owns it) and encodes it as JSON.
    static func render(_ statuses: [ClusterConnectionStatus], on loop: EventLoop) -> EventLoopFuture<ByteBuffer> {
        let parts = statuses.map { $0.debugInfo(on: loop) }
        return EventLoopFuture.whenAllSucceed(parts, on: loop).flatMapThrowing { connections in
            let report = ProxyDebugReport(
                timestamp: ISO8601DateFormatter().string(from: Date()), connections: connections
            )
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            var buffer = ByteBuffer(bytes: try encoder.encode(report))
            buffer.writeString("\n")
            return buffer
        }
    }
}
