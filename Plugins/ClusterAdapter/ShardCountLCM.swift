// The arithmetic of shard-count adaptation in `lcm` mode: the count both clusters are shown, and how the shard
// ids of a replication stream's metadata move between that count and the real ones.
//
// Temporal maps a shard of a cluster with N shards onto a cluster with M shards, when one count divides the other,
// by `((id - 1) mod M) + 1` (the ids are 1-based). Showing each cluster LCM(local, remote) shards for its peer
// makes the peer's count a multiple of its own, so every pairing Temporal computes is one of these reductions.
// ClusterAdapter.swift explains which id of a stream is rewritten to what.

import PluginKit

/// The shard counts of the two clusters and the count both are shown.
public struct ShardCountLCM: Sendable, Equatable {
    /// The local cluster's real number of history shards.
    public let localShardCount: Int32
    /// The remote cluster's real number of history shards.
    public let remoteShardCount: Int32
    /// LCM(local, remote): what DescribeCluster reports on both sides.
    public let sharedShardCount: Int32

    /// The adaptation for two real counts, or nil if a count is not positive or their LCM exceeds `Int32.max`
    /// (Temporal's shard ids are int32).
    public init?(localShardCount: Int32, remoteShardCount: Int32) {
        guard localShardCount > 0, remoteShardCount > 0,
            let shared = Int32(exactly: Self.lcm(Int64(localShardCount), Int64(remoteShardCount)))
        else { return nil }
        self.localShardCount = localShardCount
        self.remoteShardCount = remoteShardCount
        self.sharedShardCount = shared
    }

    /// The real shard that LCM-space shard `id` (1...) of a cluster with `shardCount` real shards stands for.
    public static func realShard(forShared id: Int32, shardCount: Int32) -> Int32 {
        (id - 1) % shardCount + 1
    }

    /// The greatest common divisor of two non-negative numbers; gcd(0, n) = n.
    public static func gcd(_ first: Int64, _ second: Int64) -> Int64 {
        var (a, b) = (first, second)
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }

    /// The least common multiple of two positive numbers; 0 if either is 0.
    public static func lcm(_ first: Int64, _ second: Int64) -> Int64 {
        guard first != 0, second != 0 else { return 0 }
        return first / gcd(first, second) * second
    }
}

/// How shard counts are adapted between the two clusters.
public enum ShardCountAdaptation: Sendable, Equatable {
    /// Both clusters are shown LCM(local, remote) shards for the other, and stream shard ids are remapped.
    case lcm(ShardCountLCM)
    /// Each cluster is shown its own count for the other (so its shards pair 1:1 with the other's), and the proxy
    /// terminates replication streams and moves each task to its real shard (the host does that, not the plugin).
    case routing(localShardCount: Int32, remoteShardCount: Int32)

    /// The `history_shard_count` DescribeCluster reports through the listener of `side`: on the outbound side the
    /// local cluster asks about the remote one, on the inbound side the remote one about the local one.
    public func reportedShardCount(on side: CallSide) -> Int32 {
        switch self {
        case .lcm(let shards):
            return shards.sharedShardCount
        case .routing(let local, let remote):
            return side == .outbound ? local : remote
        }
    }
}
