// cluster-adapter: the bundled plugin behind the Go proxy's "cluster adapters", the connection keys that make two
// Temporal clusters with different settings replicate through the proxy:
//
//     plugins:
//       - name: cluster-adapter
//         options:
//           failoverVersionIncrement: { local: 100, remote: 10 }   # failoverVersionIncrementTranslation
//           replicationEndpoint: proxy-a.example:7233               # replicationEndpoint
//           shardCount: { mode: lcm, localShardCount: 4, remoteShardCount: 6 }
//
// * failoverVersionIncrement: AdminService DescribeCluster responses served on the inbound side (the remote
//   cluster asking about ours) carry `local` as `failover_version_increment`; those on the outbound side (ours
//   asking about the remote one) carry `remote`. 0 or absent leaves that side's value as the server sent it.
// * replicationEndpoint: on the inbound side, the `frontend_address` of AddOrUpdateRemoteCluster requests
//   (AdminService and OperatorService) becomes this address, so that the local cluster stores the address of this
//   proxy, not the remote cluster's own. Outbound requests pass unchanged, as in the Go proxy.
// * shardCount (mode lcm): DescribeCluster responses on both sides carry `history_shard_count` =
//   LCM(local, remote), and each StreamWorkflowReplicationMessages call has its shard ids remapped (below).
//
// A call whose request carries `s2s-request-translation: false` is left untouched. Field numbers come from the
// Temporal schema by field name; a message already carrying the wanted values is forwarded as it came.
//
// Replication streams in lcm mode. In Temporal the *target* cluster (the one receiving replication tasks) opens
// the stream to the *source* cluster's frontend, with metadata naming the opener as client
// (`temporal-client-shard-id`: the target's real shard) and the source as server (`temporal-server-shard-id`).
// The target computed the server shard id against the count DescribeCluster showed it, LCM, so the id is in LCM
// space: target shard t opens one stream per LCM shard s with ((s-1) mod targetCount)+1 = t. The source, shown LCM
// shards for the target too, must be told a client shard it can pair with one of its own, and a server shard that
// exists. So each stream's metadata becomes:
//     temporal-client-shard-id := s                               (the LCM shard: the target shard as the source
//                                                                  sees it, one of LCM; the source then sends it the
//                                                                  tasks of exactly the workflows that hash to s)
//     temporal-server-shard-id := ((s-1) mod sourceCount)+1       (the real source shard that LCM shard s folds onto)
// Since targetCount divides LCM, every workflow hashing to s in LCM space hashes to t in the target's real space,
// so the tasks the stream carries belong on the shard that opened it. The source of a stream that arrives on the
// inbound side is the local cluster (the remote one opened it), of one on the outbound side the remote cluster.
// The reference (s2s-proxy-behaviour.md 2.5) writes the reduction as `((id-1) mod target)+1`. Its "target" is the
// count the id is mapped onto, not the replication target: for the server shard id that is the cluster serving
// the stream (the replication source), the only count for which the result is one of its shards. As in the Go
// proxy, configure lcm on one proxy of a pair only: a second remap would move ids that are already real.
//
// This target holds the logic; `ClusterAdapterExport` exports it as `libcluster-adapter.so`.

import PluginKit

public final class ClusterAdapter: TranslatorPlugin {
    public static let name = "cluster-adapter"
    public static let version = "1.0.0"
    public static let description =
        "Adapts DescribeCluster, AddOrUpdateRemoteCluster and replication-stream shard ids between two clusters"
    public static let needsSchema = true

    static let describeCluster = "/temporal.server.api.adminservice.v1.AdminService/DescribeCluster"
    static let addOrUpdateRemoteCluster = [
        "/temporal.server.api.adminservice.v1.AdminService/AddOrUpdateRemoteCluster",
        "/temporal.api.operatorservice.v1.OperatorService/AddOrUpdateRemoteCluster",
    ]
    static let replicationStream = "/temporal.server.api.adminservice.v1.AdminService/StreamWorkflowReplicationMessages"
    static let clientShardHeader = "temporal-client-shard-id"
    static let serverShardHeader = "temporal-server-shard-id"

    /// The field overrides of a call's messages; nil when the call's messages pass unchanged.
    public typealias CallState = ProtoFieldOverrides?

    /// The overrides of each rewritten message, built from the schema's field numbers.
    struct Rewrites: Sendable {
        var describeClusterInbound = ProtoFieldOverrides()
        var describeClusterOutbound = ProtoFieldOverrides()
        /// Inbound AddOrUpdateRemoteCluster requests, by method path.
        var addOrUpdateRemoteCluster: [String: ProtoFieldOverrides] = [:]
    }

    public let options: ClusterAdapterOptions
    let rewrites = SchemaDerived<Rewrites>()
    let host: PluginHost
    let rewritten: PluginCounter
    let rejectedStreams: PluginCounter

    public init(options: PluginOptions, host: PluginHost) throws {
        self.options = try ClusterAdapterOptions(options)
        self.host = host
        rewritten = try host.counter(
            name: "cluster_adapter_rewrites_total",
            help: "DescribeCluster responses, AddOrUpdateRemoteCluster requests and replication streams adapted"
        )
        rejectedStreams = try host.counter(
            name: "cluster_adapter_rejected_streams_total",
            help: "Replication streams refused in lcm mode for missing or malformed shard id metadata"
        )
    }

    public func schemaReady(_ fileDescriptorSet: UnsafeRawBufferPointer) throws {
        let schema = try ProtoSchema(fileDescriptorSet: fileDescriptorSet)
        var rewrites = Rewrites()
        for side in CallSide.allCases where options.rewritesDescribeCluster(on: side) {
            var overrides = ProtoFieldOverrides()
            if let increment = options.failoverVersionIncrement(on: side) {
                let number = try Self.fieldNumber(
                    "failover_version_increment", of: .response, Self.describeCluster, in: schema)
                overrides.set(fieldNumber: number, to: .varint(UInt64(increment)))
            }
            if let shards = options.shardCount {
                let number = try Self.fieldNumber(
                    "history_shard_count", of: .response, Self.describeCluster, in: schema)
                overrides.set(fieldNumber: number, to: .varint(UInt64(shards.reportedShardCount(on: side))))
            }
            if side == .inbound {
                rewrites.describeClusterInbound = overrides
            } else {
                rewrites.describeClusterOutbound = overrides
            }
        }
        if let endpoint = options.replicationEndpoint {
            for method in Self.addOrUpdateRemoteCluster {
                var overrides = ProtoFieldOverrides()
                let number = try Self.fieldNumber("frontend_address", of: .request, method, in: schema)
                overrides.set(fieldNumber: number, to: .lengthDelimited(Array(endpoint.utf8)))
                rewrites.addOrUpdateRemoteCluster[method] = overrides
            }
        }
        self.rewrites.value = rewrites
    }

    public func wants(method: String, side: CallSide) -> Wants {
        switch method {
        case Self.describeCluster:
            return options.rewritesDescribeCluster(on: side) ? .responseMessages : .nothing
        case Self.replicationStream:
            // In routing mode the host terminates the streams: their shard ids stay as the target sent them.
            if case .lcm? = options.shardCount { return .call }
            return .nothing
        case _ where Self.addOrUpdateRemoteCluster.contains(method):
            return side == .inbound && options.replicationEndpoint != nil ? .requestMessages : .nothing
        default:
            return .nothing
        }
    }

    public func startCall(_ call: borrowing CallStart) throws -> CallDecision<CallState> {
        guard call.translationRequested else { return .proceed(with: nil) }
        let method = call.method
        if method == Self.replicationStream {
            return try remapStreamShards(call)
        }
        guard let rewrites = rewrites.value else {
            throw PluginFailure("cluster-adapter got a call before the Temporal schema")
        }
        if method == Self.describeCluster {
            let inbound = call.side == .inbound
            return .proceed(with: inbound ? rewrites.describeClusterInbound : rewrites.describeClusterOutbound)
        }
        return .proceed(with: call.side == .inbound ? rewrites.addOrUpdateRemoteCluster[method] : nil)
    }

    public func message(_ message: borrowing MessageView, state: inout CallState) throws -> MessageDecision {
        guard let overrides = state, !overrides.isEmpty else { return .unchanged }
        if message.isCompressed {
            throw PluginFailure(
                "cluster-adapter cannot rewrite a message compressed in an encoding the proxy does not inflate (it"
                    + " inflates gzip and deflate); use one of those, or none, between Temporal and the proxy"
            )
        }
        guard let output = try overrides.apply(to: message.payload) else { return .unchanged }
        rewritten.add()
        return .replaced(output)
    }

    /// Moves the stream's shard ids between LCM space and the source cluster's real shards (see the header).
    private func remapStreamShards(_ call: borrowing CallStart) throws -> CallDecision<CallState> {
        guard case .lcm(let shards)? = options.shardCount else { return .proceed(with: nil) }
        guard let clientText = call.header(Self.clientShardHeader), let serverText = call.header(Self.serverShardHeader)
        else {
            rejectedStreams.add()
            return .rejected(
                .invalidArgument,
                "missing cluster & shard ID metadata: a replication stream needs \(Self.clientShardHeader) and "
                    + "\(Self.serverShardHeader)"
            )
        }
        guard Self.shardID(clientText) != nil, let serverShard = Self.shardID(serverText) else {
            rejectedStreams.add()
            return .rejected(
                .invalidArgument,
                "malformed cluster & shard ID metadata: \(Self.clientShardHeader) \"\(clientText)\" and "
                    + "\(Self.serverShardHeader) \"\(serverText)\" must be shard ids (1 or more)"
            )
        }
        let sourceCount = call.side == .inbound ? shards.localShardCount : shards.remoteShardCount
        let sourceShard = ShardCountLCM.realShard(forShared: serverShard, shardCount: sourceCount)
        try call.setHeader(Self.clientShardHeader, String(serverShard))
        try call.setHeader(Self.serverShardHeader, String(sourceShard))
        rewritten.add()
        host.debug(
            "replication stream on the \(call.side) side: client shard \(clientText) -> \(serverShard), "
                + "server shard \(serverShard) -> \(sourceShard) of \(sourceCount)"
        )
        return .proceed(with: nil)
    }

    /// A shard id as Temporal writes it in metadata: a decimal int32, 1 or more.
    static func shardID(_ text: String) -> Int32? {
        guard let id = Int32(text), id > 0 else { return nil }
        return id
    }

    /// The number of the scalar field `name` of the request or response type of `method`.
    ///
    /// - Throws: ``PluginFailure`` naming what the schema lacks.
    static func fieldNumber(
        _ name: String, of direction: MessageDirection, _ method: String, in schema: ProtoSchema
    ) throws -> Int {
        guard let described = schema.method(path: method) else {
            throw PluginFailure(
                "cluster-adapter: the Temporal schema has no method \(method); give `schema:` one that includes "
                    + "Temporal's AdminService and OperatorService (s2s-proxy schema pull from a Temporal server)"
            )
        }
        let typeName = direction == .request ? described.inputType : described.outputType
        guard let field = schema.message(named: typeName)?.field(named: name), !field.isRepeated,
            let wireType = field.type.wireType, wireType == .varint || wireType == .lengthDelimited,
            field.type != .message
        else {
            throw PluginFailure(
                "cluster-adapter: the Temporal schema's \(typeName) has no scalar field \(name); this plugin needs "
                    + "the schema of a Temporal release that has it"
            )
        }
        return field.number
    }
}
