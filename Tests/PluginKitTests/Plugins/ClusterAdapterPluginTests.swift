// cluster-adapter driven through its exported C table as the host drives it, with the real Temporal schema: the
// failover version increment and the LCM shard count of DescribeCluster per side, the frontend address of inbound
// AddOrUpdateRemoteCluster requests, the shard ids of replication streams, the `s2s-request-translation: false`
// opt-out, and the options it refuses. The Go proxy's handler tests (reference 8.4, items 23, 24, 33) are the model.

import ClusterAdapter
import PluginABI
import PluginKit
import XCTest

final class ClusterAdapterPluginTests: XCTestCase {
    private let describeCluster = "/temporal.server.api.adminservice.v1.AdminService/DescribeCluster"
    private let adminAddOrUpdate = "/temporal.server.api.adminservice.v1.AdminService/AddOrUpdateRemoteCluster"
    private let operatorAddOrUpdate = "/temporal.api.operatorservice.v1.OperatorService/AddOrUpdateRemoteCluster"
    private let stream = "/temporal.server.api.adminservice.v1.AdminService/StreamWorkflowReplicationMessages"
    private let translationOff = [("s2s-request-translation", "false")]

    // MARK: Messages built by field name against the fixture schema

    private enum Part {
        case string(String)
        case varint(UInt64)
    }

    private func fieldNumber(_ type: String, _ name: String) throws -> Int {
        let schema = try TemporalFixtures.schema.get()
        return try XCTUnwrap(schema.message(named: type)?.field(named: name)?.number, "\(type).\(name)")
    }

    private func encode(_ type: String, _ parts: [(String, Part)]) throws -> [UInt8] {
        try parts.flatMap { name, part in
            let number = try fieldNumber(type, name)
            switch part {
            case .string(let text): return stringField(number, text)
            case .varint(let value): return varintField(number, value)
            }
        }
    }

    private let describeResponseType = "temporal.server.api.adminservice.v1.DescribeClusterResponse"

    /// A DescribeCluster response as the dev server sends it: shard count 4, increment 10.
    private func describeResponse(shards: UInt64 = 4, increment: UInt64 = 10) throws -> [UInt8] {
        try encode(describeResponseType, [
            ("server_version", .string("1.29.1")), ("cluster_id", .string("c-1")), ("cluster_name", .string("active")),
            ("history_shard_count", .varint(shards)), ("failover_version_increment", .varint(increment)),
            ("initial_failover_version", .varint(1)), ("is_global_namespace_enabled", .varint(1)),
        ])
    }

    /// The values of the varint field `name` of a DescribeCluster response, in order.
    private func describeValues(_ message: [UInt8], _ name: String) throws -> [UInt64] {
        let number = try fieldNumber(describeResponseType, name)
        return try scanAll(message).filter { $0.fieldNumber == number }.map {
            try ProtoVarint.decode(message, at: $0.payloadRange.lowerBound, end: $0.payloadRange.upperBound).value
        }
    }

    private func addOrUpdateRequest(_ type: String, address: String) throws -> [UInt8] {
        try encode(type, [
            ("frontend_address", .string(address)), ("enable_remote_cluster_connection", .varint(1)),
        ])
    }

    private let adminRequestType = "temporal.server.api.adminservice.v1.AddOrUpdateRemoteClusterRequest"
    private let operatorRequestType = "temporal.api.operatorservice.v1.AddOrUpdateRemoteClusterRequest"

    // MARK: Driving the plugin

    private struct Loaded {
        let driver: PluginDriver
        let host: FakeHost
        let config: UnsafeMutableRawPointer
    }

    private var loadedConfigs: [Loaded] = []

    override func tearDown() {
        for loaded in loadedConfigs { loaded.driver.configDestroy(loaded.config) }
        loadedConfigs = []
        super.tearDown()
    }

    private func table() throws -> PluginDriver {
        PluginDriver(table: try XCTUnwrap(PluginExport.table(for: ClusterAdapter.self, hostMajor: 1, hostMinor: 0)))
    }

    private func load(_ options: String) throws -> Loaded {
        let driver = try table()
        let host = FakeHost()
        let config = try driver.configNew(options, host: host).get()
        var error = [CChar](repeating: 0, count: 512)
        let schema = try TemporalFixtures.schemaBytes()
        let ready = schema.withUnsafeBufferPointer {
            driver.table.pointee.schema_ready!(config, s2s_bytes_t(data: $0.baseAddress, len: $0.count), &error, 512)
        }
        XCTAssertEqual(ready, S2S_OK, String(cString: error))
        let loaded = Loaded(driver: driver, host: host, config: config)
        loadedConfigs.append(loaded)
        return loaded
    }

    /// What one call came to: the outcome of its start and of its message, the replacement, the status text.
    private struct CallResult {
        var start: s2s_outcome_t
        var message: s2s_outcome_t?
        var replacement: [UInt8]?
        var status: String?
        var edits: [FakeCall.Edit]
    }

    /// One call of `method` on `side`: its start with `headers` and, when the plugin wants that direction and the
    /// call proceeded, one message.
    private func run(
        _ loaded: Loaded, _ method: String, side: s2s_side_t, headers: [(String, String)] = [],
        direction: s2s_direction_t = S2S_DIRECTION_RESPONSE, payload: [UInt8] = [], compressed: Bool = false
    ) -> CallResult {
        let call = FakeCall()
        let start = loaded.driver.callStart(loaded.config, call: call, method: method, side: side, headers: headers)
        var result = CallResult(start: start, edits: call.edits)
        let wanted = loaded.driver.wants(loaded.config, method: method, side: side)
        let directionBit = direction == S2S_DIRECTION_REQUEST ? S2S_WANTS_REQUEST_MESSAGES : S2S_WANTS_RESPONSE_MESSAGES
        if start == S2S_OK, wanted & UInt32(directionBit) != 0 {
            result.message = loaded.driver.onMessage(
                loaded.config, call: call, direction: direction, payload: payload, compressed: compressed
            )
            result.replacement = call.replacement
        }
        result.status = call.status?.message
        if start == S2S_OK { loaded.driver.callEnd(loaded.config, call: call, grpcStatus: 0) }
        return result
    }

    private func counted(_ host: FakeHost, _ name: String) -> Double {
        guard let index = host.metrics.firstIndex(where: { $0.name == name }) else { return -1 }
        return host.recorded.filter { $0.id == UInt32(index + 1) }.reduce(0) { $0 + $1.value }
    }

    // MARK: failoverVersionIncrement (item 24)

    func testFailoverVersionIncrementIsOverriddenPerSide() throws {
        let loaded = try load(#"{"failoverVersionIncrement": {"local": 100, "remote": 1000}}"#)
        let response = try describeResponse()
        for (side, expected) in [(S2S_SIDE_INBOUND, 100 as UInt64), (S2S_SIDE_OUTBOUND, 1000)] {
            let result = run(loaded, describeCluster, side: side, payload: response)
            XCTAssertEqual(result.message, S2S_REPLACED, "side \(side)")
            let output = try XCTUnwrap(result.replacement)
            XCTAssertEqual(try describeValues(output, "failover_version_increment"), [expected])
            XCTAssertEqual(try describeValues(output, "history_shard_count"), [4], "the shard count is untouched")
            XCTAssertEqual(output.count, response.count + (expected >= 128 ? 1 : 0), "every other byte is kept")
        }
        XCTAssertEqual(counted(loaded.host, "cluster_adapter_rewrites_total"), 2)
    }

    func testFailoverVersionIncrementOfOneSideLeavesTheOtherSideAlone() throws {
        let loaded = try load(#"{"failoverVersionIncrement": {"local": 100}}"#)
        XCTAssertEqual(loaded.driver.wants(loaded.config, method: describeCluster, side: S2S_SIDE_OUTBOUND), 0)
        let inbound = run(loaded, describeCluster, side: S2S_SIDE_INBOUND, payload: try describeResponse())
        XCTAssertEqual(try describeValues(XCTUnwrap(inbound.replacement), "failover_version_increment"), [100])
    }

    func testFailoverVersionIncrementIsAddedWhenTheResponseLacksIt() throws {
        let loaded = try load(#"{"failoverVersionIncrement": {"remote": 7}}"#)
        let response = try encode(describeResponseType, [("cluster_name", .string("b"))])
        let result = run(loaded, describeCluster, side: S2S_SIDE_OUTBOUND, payload: response)
        XCTAssertEqual(try describeValues(XCTUnwrap(result.replacement), "failover_version_increment"), [7])
    }

    func testDescribeClusterAlreadyCarryingTheValueIsForwardedUnchanged() throws {
        let loaded = try load(#"{"failoverVersionIncrement": {"local": 10}}"#)
        let result = run(loaded, describeCluster, side: S2S_SIDE_INBOUND, payload: try describeResponse(increment: 10))
        XCTAssertEqual(result.message, S2S_OK)
        XCTAssertNil(result.replacement)
        XCTAssertEqual(counted(loaded.host, "cluster_adapter_rewrites_total"), 0)
    }

    func testFailoverVersionIncrementIsNotAppliedWhenTheCallerTurnsTranslationOff() throws {
        let loaded = try load(#"{"failoverVersionIncrement": {"local": 100, "remote": 1000}}"#)
        for side in [S2S_SIDE_INBOUND, S2S_SIDE_OUTBOUND] {
            let result = run(
                loaded, describeCluster, side: side, headers: translationOff, payload: try describeResponse()
            )
            XCTAssertEqual(result.start, S2S_OK)
            XCTAssertEqual(result.message, S2S_OK)
            XCTAssertNil(result.replacement)
        }
    }

    func testUnconfiguredEntryWantsNothing() throws {
        let loaded = try load("{}")
        for side in [S2S_SIDE_INBOUND, S2S_SIDE_OUTBOUND] {
            for method in [describeCluster, adminAddOrUpdate, operatorAddOrUpdate, stream] {
                XCTAssertEqual(loaded.driver.wants(loaded.config, method: method, side: side), 0, method)
            }
        }
        let zeroes = try load(#"{"failoverVersionIncrement": {"local": 0, "remote": 0}}"#)
        XCTAssertEqual(zeroes.driver.wants(zeroes.config, method: describeCluster, side: S2S_SIDE_INBOUND), 0)
    }

    // MARK: replicationEndpoint (item 23)

    func testInboundAddOrUpdateRemoteClusterGetsTheReplicationEndpoint() throws {
        let loaded = try load(#"{"replicationEndpoint": "proxy-a.example:7233"}"#)
        for (method, type) in [(adminAddOrUpdate, adminRequestType), (operatorAddOrUpdate, operatorRequestType)] {
            let result = run(
                loaded, method, side: S2S_SIDE_INBOUND, direction: S2S_DIRECTION_REQUEST,
                payload: try addOrUpdateRequest(type, address: "remote-frontend:7233")
            )
            XCTAssertEqual(result.message, S2S_REPLACED, method)
            XCTAssertEqual(result.replacement, try addOrUpdateRequest(type, address: "proxy-a.example:7233"), method)
        }
    }

    func testAddOrUpdateRemoteClusterPassesOutboundWithTranslationOffOrUnconfigured() throws {
        let loaded = try load(#"{"replicationEndpoint": "proxy-a.example:7233"}"#)
        let request = try addOrUpdateRequest(adminRequestType, address: "remote-frontend:7233")
        XCTAssertEqual(loaded.driver.wants(loaded.config, method: adminAddOrUpdate, side: S2S_SIDE_OUTBOUND), 0)
        XCTAssertEqual(loaded.driver.wants(loaded.config, method: operatorAddOrUpdate, side: S2S_SIDE_OUTBOUND), 0)
        let off = run(
            loaded, adminAddOrUpdate, side: S2S_SIDE_INBOUND, headers: translationOff,
            direction: S2S_DIRECTION_REQUEST, payload: request
        )
        XCTAssertEqual(off.message, S2S_OK)
        XCTAssertNil(off.replacement)

        let unconfigured = try load(#"{"failoverVersionIncrement": {"local": 5}}"#)
        XCTAssertEqual(
            unconfigured.driver.wants(unconfigured.config, method: adminAddOrUpdate, side: S2S_SIDE_INBOUND), 0
        )
    }

    // MARK: shardCount lcm

    func testGCDAndLCMTable() {
        let table: [(Int64, Int64, gcd: Int64, lcm: Int64)] = [
            (4, 2, 2, 4), (2, 4, 2, 4), (3, 2, 1, 6), (4, 6, 2, 12), (8, 8, 8, 8), (1, 7, 1, 7), (512, 1024, 512, 1024),
            (12, 18, 6, 36), (0, 5, 5, 0), (5, 0, 5, 0),
        ]
        for row in table {
            XCTAssertEqual(ShardCountLCM.gcd(row.0, row.1), row.gcd, "gcd(\(row.0), \(row.1))")
            XCTAssertEqual(ShardCountLCM.lcm(row.0, row.1), row.lcm, "lcm(\(row.0), \(row.1))")
        }
        XCTAssertEqual(ShardCountLCM(localShardCount: 3, remoteShardCount: 2)?.sharedShardCount, 6)
        XCTAssertNil(ShardCountLCM(localShardCount: 0, remoteShardCount: 2))
        XCTAssertNil(ShardCountLCM(localShardCount: Int32.max, remoteShardCount: Int32.max - 1), "LCM beyond int32")
    }

    func testDescribeClusterReportsTheLCMOnBothSides() throws {
        let loaded = try load(#"{"shardCount": {"mode": "lcm", "localShardCount": 3, "remoteShardCount": 2}}"#)
        for (side, real) in [(S2S_SIDE_INBOUND, 3 as UInt64), (S2S_SIDE_OUTBOUND, 2)] {
            let result = run(loaded, describeCluster, side: side, payload: try describeResponse(shards: real))
            let output = try XCTUnwrap(result.replacement, "side \(side)")
            XCTAssertEqual(try describeValues(output, "history_shard_count"), [6])
            XCTAssertEqual(try describeValues(output, "failover_version_increment"), [10])
        }
        let off = run(loaded, describeCluster, side: S2S_SIDE_INBOUND, headers: translationOff,
                      payload: try describeResponse(shards: 3))
        XCTAssertNil(off.replacement)
    }

    func testRoutingShowsEachClusterItsOwnCountAndLeavesStreamsToTheHost() throws {
        let loaded = try load(#"{"shardCount": {"mode": "routing", "localShardCount": 3, "remoteShardCount": 2}}"#)
        // Outbound: the local cluster (3 shards) asks about the remote one and is told 3; inbound, the remote one (2)
        // is told 2. Each then pairs its shards 1:1 with the other's.
        for (side, real, shown) in [(S2S_SIDE_OUTBOUND, 2 as UInt64, 3 as UInt64), (S2S_SIDE_INBOUND, 3, 2)] {
            let result = run(loaded, describeCluster, side: side, payload: try describeResponse(shards: real))
            let output = try XCTUnwrap(result.replacement, "side \(side)")
            XCTAssertEqual(try describeValues(output, "history_shard_count"), [shown], "side \(side)")
        }
        // Stream shard ids are not remapped: the host terminates routing-mode streams.
        XCTAssertEqual(remap(loaded, side: S2S_SIDE_INBOUND, client: "2", server: "2"), [:])
    }

    func testLCMAndFailoverVersionIncrementTogether() throws {
        let loaded = try load(#"""
            {"failoverVersionIncrement": {"local": 100}, "shardCount": {"mode": "lcm", "localShardCount": 4,
             "remoteShardCount": 2}}
            """#)
        let result = run(loaded, describeCluster, side: S2S_SIDE_INBOUND, payload: try describeResponse(shards: 4))
        let output = try XCTUnwrap(result.replacement)
        XCTAssertEqual(try describeValues(output, "history_shard_count"), [4])
        XCTAssertEqual(try describeValues(output, "failover_version_increment"), [100])
    }

    /// The stream's new (client, server) shard ids for an incoming server shard id on one side.
    private func remap(_ loaded: Loaded, side: s2s_side_t, client: String, server: String) -> [String: String] {
        let result = run(loaded, stream, side: side, headers: [
            ("temporal-client-cluster-id", "target"), ("temporal-client-shard-id", client),
            ("temporal-server-cluster-id", "source"), ("temporal-server-shard-id", server),
        ])
        XCTAssertEqual(result.start, S2S_OK, result.status ?? "")
        var headers: [String: String] = [:]
        for edit in result.edits where edit.kind == "set" {
            headers[edit.name] = edit.value.map { String(decoding: $0, as: UTF8.self) }
        }
        return headers
    }

    func testStreamShardIdsAreRemappedIntoTheSourceClusterShards() throws {
        // local 4, remote 2: LCM 4. On the inbound side the remote (2 shards) opens streams to local shards 1...4;
        // on the outbound side the local cluster (4 shards) opens them to LCM shards that fold onto the remote's 2.
        let fourTwo = try load(#"{"shardCount": {"mode": "lcm", "localShardCount": 4, "remoteShardCount": 2}}"#)
        let fourTwoTable: [(s2s_side_t, client: String, server: String, newServer: String)] = [
            (S2S_SIDE_INBOUND, "1", "1", "1"), (S2S_SIDE_INBOUND, "2", "2", "2"), (S2S_SIDE_INBOUND, "1", "3", "3"),
            (S2S_SIDE_INBOUND, "2", "4", "4"),
            (S2S_SIDE_OUTBOUND, "1", "1", "1"), (S2S_SIDE_OUTBOUND, "2", "2", "2"), (S2S_SIDE_OUTBOUND, "3", "3", "1"),
            (S2S_SIDE_OUTBOUND, "4", "4", "2"),
        ]
        // local 3, remote 2: LCM 6; every LCM shard s goes to (s-1) mod 3 + 1 locally, (s-1) mod 2 + 1 remotely.
        let threeTwo = try load(#"{"shardCount": {"mode": "lcm", "localShardCount": 3, "remoteShardCount": 2}}"#)
        var threeTwoTable: [(s2s_side_t, client: String, server: String, newServer: String)] = []
        for shared in 1...6 {
            let (onLocal, onRemote) = (String((shared - 1) % 3 + 1), String((shared - 1) % 2 + 1))
            threeTwoTable.append((S2S_SIDE_INBOUND, onRemote, String(shared), onLocal))
            threeTwoTable.append((S2S_SIDE_OUTBOUND, onLocal, String(shared), onRemote))
        }
        XCTAssertEqual(
            threeTwoTable.filter { $0.0 == S2S_SIDE_INBOUND }.map(\.newServer), ["1", "2", "3", "1", "2", "3"]
        )
        for (loaded, table) in [(fourTwo, fourTwoTable), (threeTwo, threeTwoTable)] {
            for row in table {
                let headers = remap(loaded, side: row.0, client: row.client, server: row.server)
                XCTAssertEqual(headers, [
                    "temporal-client-shard-id": row.server, "temporal-server-shard-id": row.newServer,
                ], "side \(row.0), client \(row.client), server \(row.server)")
            }
        }
        XCTAssertEqual(counted(threeTwo.host, "cluster_adapter_rewrites_total"), 12)
    }

    func testStreamWithoutShardMetadataIsRejectedAndWithTranslationOffIsUntouched() throws {
        let loaded = try load(#"{"shardCount": {"mode": "lcm", "localShardCount": 4, "remoteShardCount": 2}}"#)
        let cases: [([(String, String)], String)] = [
            ([], "missing cluster & shard ID metadata"),
            ([("temporal-client-shard-id", "1")], "missing cluster & shard ID metadata"),
            ([("temporal-client-shard-id", "1"), ("temporal-server-shard-id", "x")], "malformed"),
            ([("temporal-client-shard-id", "1"), ("temporal-server-shard-id", "0")], "malformed"),
            ([("temporal-client-shard-id", ""), ("temporal-server-shard-id", "2")], "malformed"),
        ]
        for (headers, complaint) in cases {
            let result = run(loaded, stream, side: S2S_SIDE_INBOUND, headers: headers)
            XCTAssertEqual(result.start, S2S_REJECTED, "\(headers)")
            XCTAssertTrue(result.status?.contains(complaint) ?? false, "\(headers): \(result.status ?? "no status")")
            XCTAssertEqual(result.edits, [])
        }
        XCTAssertEqual(counted(loaded.host, "cluster_adapter_rejected_streams_total"), Double(cases.count))

        let off = run(loaded, stream, side: S2S_SIDE_OUTBOUND, headers: translationOff + [
            ("temporal-client-shard-id", "3"), ("temporal-server-shard-id", "3"),
        ])
        XCTAssertEqual(off.start, S2S_OK)
        XCTAssertEqual(off.edits, [])
    }

    // MARK: Failures and options

    func testCompressedDescribeClusterIsAFailure() throws {
        let loaded = try load(#"{"failoverVersionIncrement": {"local": 100}}"#)
        let result = run(loaded, describeCluster, side: S2S_SIDE_INBOUND, payload: [0x1F, 0x8B], compressed: true)
        XCTAssertEqual(result.message, S2S_ERROR)
        XCTAssertTrue(result.status?.contains("compressed") ?? false)
    }

    func testMalformedDescribeClusterIsAFailure() throws {
        let loaded = try load(#"{"failoverVersionIncrement": {"local": 100}}"#)
        let result = run(loaded, describeCluster, side: S2S_SIDE_INBOUND, payload: [0x0A, 0x05, 0x61])
        XCTAssertEqual(result.message, S2S_ERROR)
        XCTAssertTrue(result.status?.contains("malformed protobuf") ?? false, result.status ?? "")
    }

    func testSchemaWithoutTheMethodsFailsSchemaReady() throws {
        let driver = try table()
        let config = try driver.configNew(#"{"replicationEndpoint": "p:1"}"#, host: FakeHost()).get()
        defer { driver.configDestroy(config) }
        var error = [CChar](repeating: 0, count: 512)
        let empty: [UInt8] = []
        let ready = empty.withUnsafeBufferPointer {
            driver.table.pointee.schema_ready!(config, s2s_bytes_t(data: $0.baseAddress, len: 0), &error, 512)
        }
        XCTAssertEqual(ready, S2S_ERROR)
        XCTAssertTrue(String(cString: error).contains("has no method " + adminAddOrUpdate), String(cString: error))
    }

    func testOptionsAreChecked() throws {
        let driver = try table()
        for (options, complaint) in [
            (#"{"shardCount": {"mode": "routing", "localShardCount": 4, "remoteShardCount": 0}}"#,
             #"mode "routing" needs"#),
            (#"{"shardCount": {"mode": "LCM", "localShardCount": 4, "remoteShardCount": 2}}"#, #"unknown mode "LCM""#),
            (#"{"shardCount": {"localShardCount": 4, "remoteShardCount": 2}}"#, "mode"),
            (#"{"shardCount": {"mode": "lcm", "localShardCount": 4}}"#, "remoteShardCount"),
            (#"{"shardCount": {"mode": "lcm", "localShardCount": 0, "remoteShardCount": 2}}"#, "localShardCount is 0"),
            (#"{"shardCount": {"mode": "lcm", "localShardCount": 2147483647, "remoteShardCount": 2147483646}}"#,
             "least common multiple"),
            (#"{"failoverVersionIncrement": {"local": -1}}"#, "failoverVersionIncrement.local is -1"),
            (#"{"failoverVersionIncrement": {"locl": 1}}"#, "'locl'"),
            (#"{"failoverVersionIncrement": 5}"#, "must be a mapping"),
            (#"{"replicationEndpoint": "no-port"}"#, "not host:port"),
            (#"{"replicationEndpoint": ""}"#, "not host:port"),
            (#"{"replicationEndpoint": "::1:7233"}"#, "not host:port"),
            (#"{"shardcount": {}}"#, "'shardcount'"),
        ] {
            switch driver.configNew(options, host: FakeHost()) {
            case .success(let config):
                driver.configDestroy(config)
                XCTFail("\(options) was accepted")
            case .failure(let error):
                XCTAssertTrue(error.message.contains(complaint), "\(options): \(error.message)")
            }
        }
        for options in [#"{"replicationEndpoint": "[::1]:7233"}"#, #"{"replicationEndpoint": "10.0.0.1:7233"}"#] {
            let config = try driver.configNew(options, host: FakeHost()).get()
            driver.configDestroy(config)
        }
    }
}
