// The Go proxy's cluster-adapter keys (failoverVersionIncrementTranslation, replicationEndpoint, shardCount in mode
// lcm) become one `cluster-adapter` chain entry on both sides, after the other Go keys' entries, and `start` no
// longer refuses them; in shard-count mode routing the entry does DescribeCluster and the host the streams.

@testable import Host
import XCTest

final class GoTranslationKeysTests: XCTestCase {
    private func load(_ connectionExtra: String) throws -> LoadedConfig {
        let yaml = """
            clusterConnections:
              - name: a
                local:
                  connectionType: tcp
                  tcpClient: {address: "a:1"}
                  tcpServer: {address: ":2"}
                remote:
                  connectionType: tcp
                  tcpClient: {address: "b:1"}
                  tcpServer: {address: ":3"}
            \(connectionExtra)
            """
        return try ConfigLoader.parse(yaml: yaml, sourceName: "config.yaml")
    }

    private func entries(_ loaded: LoadedConfig) throws -> [(String, PluginEntryConfig)] {
        GoTranslationKeys.chainEntries(of: try XCTUnwrap(loaded.config.clusterConnections.first), prefix: "cc[0]")
    }

    func testClusterAdapterKeysBecomeOneEntryAfterTheOthers() throws {
        let loaded = try load("""
                replicationEndpoint: "proxy-a:7233"
                failoverVersionIncrementTranslation: {local: 100, remote: 1000}
                shardCount: {mode: lcm, localShardCount: 3, remoteShardCount: 2}
                aclPolicy: {allowedNamespaces: [orders]}
            """)
        XCTAssertEqual(loaded.unsupported, [])
        let chain = try entries(loaded)
        XCTAssertEqual(chain.map(\.0), [
            "cc[0].aclPolicy", "cc[0].{failoverVersionIncrementTranslation,replicationEndpoint,shardCount}",
        ])
        XCTAssertEqual(chain.last?.1, PluginEntryConfig(
            source: .bundled("cluster-adapter"), side: .both, onError: .failClosed,
            optionsJSON: #"{"failoverVersionIncrement":{"local":100,"remote":1000},"#
                + #""replicationEndpoint":"proxy-a:7233","#
                + #""shardCount":{"mode":"lcm","localShardCount":3,"remoteShardCount":2}}"#
        ))
    }

    func testOneKeyIsLabelledByItself() throws {
        let chain = try entries(try load(#"    replicationEndpoint: "proxy-a:7233""#))
        XCTAssertEqual(chain.map(\.0), ["cc[0].replicationEndpoint"])
        XCTAssertEqual(chain.first?.1.optionsJSON, #"{"replicationEndpoint":"proxy-a:7233"}"#)
    }

    func testZeroIncrementsAndNoShardModeMakeNoEntry() throws {
        let loaded = try load("""
                failoverVersionIncrementTranslation: {local: 0, remote: 0}
                shardCount: {localShardCount: 3, remoteShardCount: 2}
            """)
        XCTAssertEqual(try entries(loaded).count, 0)
        XCTAssertEqual(loaded.unsupported, [])
    }

    func testRoutingModeMakesItsDescribeClusterEntry() throws {
        let loaded = try load("    shardCount: {mode: routing, localShardCount: 3, remoteShardCount: 2}")
        XCTAssertEqual(loaded.unsupported, [])
        let chain = try entries(loaded)
        XCTAssertEqual(chain.map(\.0), ["cc[0].shardCount"])
        XCTAssertEqual(
            chain.first?.1.optionsJSON, #"{"shardCount":{"mode":"routing","localShardCount":3,"remoteShardCount":2}}"#)
    }
}
