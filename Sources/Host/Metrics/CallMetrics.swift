// The forwarded calls of one listener (one cluster connection, one direction): per method, how many ended with
// which gRPC status and how long they took; how many are in flight; how many the proxy itself failed.
//
// Recorded on the hot path, so the state is split into shards chosen by the call's event loop: a call takes its
// shard's lock once when it starts and once when it ends, and calls on different loops do not contend. A scrape
// merges the shards. Method labels are only the methods seen, at most `methodLimit` per listener; later ones are
// counted as `other`.

import NIOConcurrencyHelpers
import NIOCore

/// Call counters and latency histograms of one listener.
public final class CallMetrics: Sendable {
    /// The cluster connection's name.
    public let connection: String
    /// `outbound` or `inbound`.
    public let direction: String
    /// Distinct method labels kept per listener; the rest share the label `other`.
    public static let methodLimit = 1024
    /// Upper bounds (seconds) of the call-duration buckets; the last bucket is +Inf.
    public static let durationBounds: [Double] = [
        0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
    ]
    /// The `method` label of requests that were not gRPC (their paths are not methods and could be anything).
    static let nonGRPCMethod = "non-grpc"
    static let otherMethod = "other"
    private static let shardCount = 16

    private let shards: [NIOLockedValueBox<Shard>]
    private let rapidResetClosures = NIOLockedValueBox<UInt64>(0)

    /// What one method's calls added up to.
    public struct MethodStats: Sendable, Equatable {
        /// Calls ended, by gRPC status code (-1: ended without a status, by a reset or a lost connection).
        public var callsByCode: [Int32: UInt64] = [:]
        /// Observations per duration bucket (not cumulative); the last slot is above the last bound.
        public var durationBuckets = [UInt64](repeating: 0, count: CallMetrics.durationBounds.count + 1)
        public var durationSum: Double = 0

        mutating func record(status: Int32, bucket: Int, seconds: Double) {
            callsByCode[status, default: 0] += 1
            durationBuckets[bucket] += 1
            durationSum += seconds
        }

        mutating func merge(_ other: MethodStats) {
            callsByCode.merge(other.callsByCode, uniquingKeysWith: +)
            for index in durationBuckets.indices { durationBuckets[index] += other.durationBuckets[index] }
            durationSum += other.durationSum
        }
    }

    /// The listener's figures at one moment.
    public struct Snapshot: Sendable, Equatable {
        public var inFlight: Int64 = 0
        public var methods: [String: MethodStats] = [:]
        /// Calls the proxy ended itself (unreachable upstream, limits, plugins), by the gRPC code it sent.
        public var failedInProxyByCode: [Int32: UInt64] = [:]
        /// Client connections closed for a rapid-reset flood.
        public var rapidResetClosures: UInt64 = 0
    }

    private struct Shard {
        var started: UInt64 = 0
        var ended: UInt64 = 0
        var methods: [String: MethodStats] = [:]
        var failedInProxyByCode: [Int32: UInt64] = [:]
    }

    public init(connection: String, direction: String) {
        self.connection = connection
        self.direction = direction
        shards = (0..<Self.shardCount).map { _ in NIOLockedValueBox(Shard()) }
    }

    /// The shard for calls on `loop`.
    func shard(for loop: EventLoop?) -> Int {
        guard let loop else { return 0 }
        return Int(UInt(bitPattern: ObjectIdentifier(loop).hashValue) % UInt(Self.shardCount))
    }

    func callStarted(shard: Int) {
        shards[shard].withLockedValue { $0.started += 1 }
    }

    /// A call ended with `status` (-1 if none) after `seconds`; `failedInProxy` if the proxy wrote the status.
    func callEnded(shard: Int, method: String, status: Int32, failedInProxy: Bool, seconds: Double) {
        let bucket = Self.durationBounds.firstIndex { seconds <= $0 } ?? Self.durationBounds.count
        shards[shard].withLockedValue { state in
            state.ended += 1
            if failedInProxy { state.failedInProxyByCode[status, default: 0] += 1 }
            // One hash of the method in the common case (a method seen before), changed in place.
            if let index = state.methods.index(forKey: method) {
                state.methods.values[index].record(status: status, bucket: bucket, seconds: seconds)
                return
            }
            let label = state.methods.count < Self.methodLimit ? method : Self.otherMethod
            state.methods[label, default: MethodStats()].record(status: status, bucket: bucket, seconds: seconds)
        }
    }

    /// A client connection was closed for resetting most of its calls before they were answered.
    func rapidResetConnectionClosed() {
        rapidResetClosures.withLockedValue { $0 += 1 }
    }

    /// The shards merged; still at most `methodLimit` method labels plus `other`.
    public var snapshot: Snapshot {
        var merged = Snapshot()
        var started: UInt64 = 0
        var ended: UInt64 = 0
        for shard in shards {
            let state = shard.withLockedValue { $0 }
            started += state.started
            ended += state.ended
            merged.failedInProxyByCode.merge(state.failedInProxyByCode, uniquingKeysWith: +)
            for (method, stats) in state.methods {
                let label = merged.methods[method] != nil || merged.methods.count < Self.methodLimit
                    ? method : Self.otherMethod
                merged.methods[label, default: MethodStats()].merge(stats)
            }
        }
        merged.inFlight = Int64(started) - Int64(ended)
        merged.rapidResetClosures = rapidResetClosures.withLockedValue { $0 }
        return merged
    }
}
