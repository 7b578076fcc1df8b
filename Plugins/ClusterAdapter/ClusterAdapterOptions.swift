// The options of a cluster-adapter entry, read and checked once when the entry is created. Each of the three
// adapters is off unless its key is given; an entry with none of them changes nothing.

import PluginKit

/// What one cluster-adapter entry does.
public struct ClusterAdapterOptions: Sendable, Equatable {
    /// The failover version increment shown on the inbound side (ours, as the remote sees it); nil = pass through.
    public let localFailoverVersionIncrement: Int64?
    /// The failover version increment shown on the outbound side (the remote's, as ours sees it); nil = pass through.
    public let remoteFailoverVersionIncrement: Int64?
    /// The address written into inbound AddOrUpdateRemoteCluster requests; nil = pass through.
    public let replicationEndpoint: String?
    /// Shard-count adaptation; nil = shard counts and stream shard ids pass through.
    public let shardCount: ShardCountAdaptation?

    /// Whether DescribeCluster responses on `side` are rewritten.
    func rewritesDescribeCluster(on side: CallSide) -> Bool {
        shardCount != nil || failoverVersionIncrement(on: side) != nil
    }

    /// The failover version increment shown on `side`, if one is configured.
    func failoverVersionIncrement(on side: CallSide) -> Int64? {
        side == .inbound ? localFailoverVersionIncrement : remoteFailoverVersionIncrement
    }

    /// Reads `failoverVersionIncrement`, `replicationEndpoint` and `shardCount`.
    ///
    /// - Throws: ``PluginConfigError`` naming the key and what to write instead.
    public init(_ options: PluginOptions) throws(PluginConfigError) {
        var local: Int64?
        var remote: Int64?
        if let increments = try options.options(forKey: "failoverVersionIncrement") {
            local = try Self.increment(increments, "local")
            remote = try Self.increment(increments, "remote")
        }
        localFailoverVersionIncrement = local
        remoteFailoverVersionIncrement = remote

        if let endpoint = try options.string(forKey: "replicationEndpoint") {
            guard Self.isHostAndPort(endpoint) else {
                throw PluginConfigError(
                    "options.replicationEndpoint \"\(endpoint)\" is not host:port; give the address at which the "
                        + "local cluster reaches this proxy's outbound listener, e.g. \"proxy.example:7233\""
                )
            }
            replicationEndpoint = endpoint
        } else {
            replicationEndpoint = nil
        }

        if let shards = try options.options(forKey: "shardCount") {
            shardCount = try Self.shardCount(shards)
        } else {
            shardCount = nil
        }
    }

    /// A failover version increment: 0 or absent is off, as in the Go proxy.
    private static func increment(_ options: PluginOptions, _ key: String) throws(PluginConfigError) -> Int64? {
        guard let value = try options.int(forKey: key) else { return nil }
        guard value >= 0 else {
            throw PluginConfigError(
                "\(options.path).\(key) is \(value); a failover version increment is positive (0 leaves it unchanged)"
            )
        }
        return value == 0 ? nil : Int64(value)
    }

    private static func shardCount(_ options: PluginOptions) throws(PluginConfigError) -> ShardCountAdaptation {
        let mode = try options.requiredString(forKey: "mode")
        guard mode == "lcm" || mode == "routing" else {
            throw PluginConfigError(
                "\(options.path).mode: unknown mode \"\(mode)\"; use \"lcm\" or \"routing\", or remove shardCount to "
                    + "pass shard ids through unchanged"
            )
        }
        var counts: [Int32] = []
        for key in ["localShardCount", "remoteShardCount"] {
            let count = try options.requiredInt(forKey: key)
            guard count > 0, let exact = Int32(exactly: count) else {
                throw PluginConfigError(
                    "\(options.path).\(key) is \(count); mode \"\(mode)\" needs the cluster's real number of history "
                        + "shards (1...\(Int32.max))"
                )
            }
            counts.append(exact)
        }
        if mode == "routing" {
            return .routing(localShardCount: counts[0], remoteShardCount: counts[1])
        }
        guard let lcm = ShardCountLCM(localShardCount: counts[0], remoteShardCount: counts[1]) else {
            let shared = ShardCountLCM.lcm(Int64(counts[0]), Int64(counts[1]))
            throw PluginConfigError(
                "\(options.path): the least common multiple of \(counts[0]) and \(counts[1]) shards is \(shared), "
                    + "more than a shard id can hold (\(Int32.max))"
            )
        }
        return .lcm(lcm)
    }

    /// "host:port" with a non-empty host and a port in 1...65535 ("[v6]:port" for IPv6).
    private static func isHostAndPort(_ text: String) -> Bool {
        guard let colon = text.lastIndex(of: ":"), colon != text.startIndex,
            let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port)
        else { return false }
        let host = text[..<colon]
        return !host.contains(":") || (host.hasPrefix("[") && host.hasSuffix("]"))
    }
}
