// Tests of `ConfigLoader`: the Go proxy's own sample files load unchanged, and every kind of mistake is reported
// with its key path, line and column, all in one pass.

import Foundation
import Host
import XCTest

final class ConfigLoaderTests: XCTestCase {
    // MARK: - The Go proxy's sample files

    func testEveryGoSampleLoadsWithoutErrors() throws {
        let directory = try goSampleDirectory()
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".yaml") }
            .sorted()
        XCTAssertGreaterThanOrEqual(files.count, 7, "the sample folder lost files")
        for file in files {
            let path = directory.appendingPathComponent(file).path
            XCTAssertNoThrow(try Self.inGoSampleWorkingDirectory { try ConfigLoader.load(path: path) }, file)
        }
    }

    func testPlainTCPSampleParsesAndNeedsNothingUnsupported() throws {
        let loaded = try loadGoSample("develop_config_cluster-a-tcp-inbound-proxy.yaml")
        let connection = try XCTUnwrap(loaded.config.clusterConnections.first)
        XCTAssertEqual(connection.name, "inbound-server")
        XCTAssertEqual(connection.local.connectionType, .tcp)
        XCTAssertEqual(connection.local.tcpServer, EndpointConfig(address: "0.0.0.0:6233"))
        XCTAssertEqual(connection.local.tcpClient, EndpointConfig(address: "localhost:7233"))
        XCTAssertEqual(connection.remote.tcpServer, EndpointConfig(address: "0.0.0.0:6234"))
        XCTAssertEqual(connection.remote.tcpClient, EndpointConfig(address: "localhost:7234"))
        XCTAssertEqual(loaded.unsupported, [])
        XCTAssertEqual(loaded.warnings, [])
        XCTAssertEqual(loaded.summary, "config OK: 1 cluster connection (inbound-server: tcp/tcp), 2 listeners")
    }

    func testMuxClientSampleListsMuxAsUnsupported() throws {
        let loaded = try loadGoSample("develop_config_cluster-a-mux-client-proxy.yaml")
        let connection = try XCTUnwrap(loaded.config.clusterConnections.first)
        XCTAssertEqual(connection.remote.connectionType, .muxClient)
        XCTAssertEqual(connection.remote.muxCount, 0)
        XCTAssertEqual(connection.remote.muxAddressInfo, EndpointConfig(address: "localhost:6334"))
        XCTAssertEqual(
            connection.namespaceTranslation?.mappings,
            [NamespaceTranslationConfig.Mapping(local: "myNamespace", remote: "myNamespace.accountid")]
        )
        XCTAssertEqual(locations(of: loaded.unsupported), [], "mux-client runs")
        XCTAssertEqual(
            loaded.summary,
            "config OK: 1 cluster connection (a-inbound-server/a-outbound-server: tcp/mux-client), 1 listener"
        )
    }

    func testMuxServerSampleCountsTheMuxListener() throws {
        let loaded = try loadGoSample("develop_config_cluster-b-mux-server-proxy.yaml")
        XCTAssertEqual(loaded.config.clusterConnections.first?.remote.connectionType, .muxServer)
        XCTAssertEqual(locations(of: loaded.unsupported), [], "mux-server runs")
        XCTAssertEqual(
            loaded.summary,
            "config OK: 1 cluster connection (b-inbound-server/b-outbound-server: tcp/mux-server), 2 listeners"
        )
    }

    func testAMuxServerThatDoesNotVerifyClientCertificatesIsWarnedAbout() throws {
        let loaded = try loadGoSample("develop_config_cluster-b-mux-server-proxy.yaml")
        XCTAssertEqual(loaded.warnings.filter { $0.contains("remote.connectionType") }.count, 1, "\(loaded.warnings)")
        XCTAssertTrue(loaded.warnings.contains { $0.contains("gives its sessions to whoever connects first") })
    }

    func testLocalTestClientSampleParsesEveryBlock() throws {
        let loaded = try loadGoSample("develop_config_local-test-config-client.yaml")
        let connection = try XCTUnwrap(loaded.config.clusterConnections.first)
        XCTAssertEqual(connection.remote.muxCount, 10)
        XCTAssertEqual(connection.remote.muxAddressInfo?.tls, TLSConfig(
            certificatePath: "./proxycerts/client.pem",
            keyPath: "./proxycerts/client.key",
            remoteCAPath: "./proxycerts/server.pem",
            caServerName: "",
            skipCAVerification: true
        ))
        XCTAssertEqual(connection.failoverVersionIncrementTranslation, FailoverVersionIncrementTranslation(
            local: 1000, remote: 100
        ))
        XCTAssertEqual(connection.aclPolicy?.allowedAdminServiceMethods, [
            "AddOrUpdateRemoteCluster", "DescribeCluster", "DescribeMutableState", "GetNamespaceReplicationMessages",
            "GetWorkflowExecutionRawHistoryV2", "ListClusters", "StreamWorkflowReplicationMessages",
        ])
        XCTAssertEqual(connection.aclPolicy?.allowedNamespaces, ["left-ns"])
        XCTAssertEqual(connection.searchAttributeTranslation?.namespaceMappings, [
            SearchAttributeTranslationConfig.NamespaceMapping(
                name: "left-ns",
                namespaceId: "left-ns",
                mappings: [.init(localFieldName: "localSearchAttribute", remoteFieldName: "remoteSearchAttribute")]
            ),
        ])
        XCTAssertNil(connection.remoteClusterHealthCheck, "commented out in the sample")
        XCTAssertEqual(loaded.config.metrics?.prometheusListenAddress, "0.0.0.0:9090")
        XCTAssertEqual(loaded.config.profiling?.pprofAddress, "localhost:6060")
        XCTAssertEqual(locations(of: loaded.unsupported), [])
        XCTAssertEqual(loaded.warnings, [
            "\(try goSamplePath("develop_config_local-test-config-client.yaml")):62:3: profiling.pprofAddress: "
                + "has no effect: not served: pprof is specific to the Go runtime",
        ])
    }

    func testHelmChartDefaultKeepsAnEmptyTLSBlockSupported() throws {
        let loaded = try loadGoSample("charts_s2s-proxy_files_default.yaml")
        let connection = try XCTUnwrap(loaded.config.clusterConnections.first)
        XCTAssertEqual(connection.remote.muxAddressInfo?.tls, TLSConfig(), "every tls key is an empty string")
        XCTAssertEqual(connection.aclPolicy?.allowedAdminServiceMethods?.count, 11)
        XCTAssertEqual(connection.aclPolicy?.allowedNamespaces, ["temporal-system", "myNamespace"])
        XCTAssertEqual(connection.replicationEndpoint, "my-s2s-proxy.svc.cluster.local:9233")
        XCTAssertEqual(
            connection.remoteClusterHealthCheck,
            HealthCheckConfig(protocol: "http", listenAddress: "0.0.0.0:8234")
        )
        XCTAssertNil(connection.localClusterHealthCheck)
        XCTAssertEqual(locations(of: loaded.unsupported), [
        ])
        XCTAssertEqual(
            loaded.summary,
            "config OK: 1 cluster connection (my-migration-cluster: tcp/mux-client), 3 listeners"
        )
    }

    func testExhaustiveSampleWarnsThatSkipCAVerificationAloneLeavesTLSOff() throws {
        let loaded = try loadGoSample("develop_config_sample-cluster-conn-config.yaml")
        let connection = try XCTUnwrap(loaded.config.clusterConnections.first)
        XCTAssertEqual(connection.local.tcpClient?.tls, TLSConfig(skipCAVerification: true))
        XCTAssertEqual(
            connection.localClusterHealthCheck,
            HealthCheckConfig(protocol: "http", listenAddress: "127.0.0.1:912")
        )
        XCTAssertEqual(connection.failoverVersionIncrementTranslation?.remote, 1_000_000)
        XCTAssertEqual(connection.aclPolicy?.allowedNamespaces, ["namespace1", "namespace2"])
        // The tcp side's blocks and the mux connection's are TLS that stays off (skipCAVerification alone).
        XCTAssertEqual(loaded.unsupported.filter { $0.keyPath.hasSuffix(".tls") }, [])
        let tlsWarnings = loaded.warnings.filter { $0.contains(".tls: has no effect: TLS stays off") }
        XCTAssertEqual(tlsWarnings.map { $0.split(separator: ":")[1] }, ["7", "15", "26"])
        XCTAssertEqual(
            loaded.summary,
            "config OK: 1 cluster connection (myCoolCluster: tcp/mux-server), 5 listeners"
        )
    }

    // MARK: - Unknown keys

    func testUnknownKeyNamesPathLineAndSuggestsTheKnownSpelling() throws {
        let errors = parseErrors("""
            clusterConnections:
              - name: a
                local:
                  connectiontype: tcp
                  tcpClient: {address: "a:1"}
                  tcpServer: {address: ":2"}
                remote:
                  connectionType: tcp
                  tcpClient: {address: "b:1"}
                  tcpServer: {address: ":3"}
            """)
        XCTAssertEqual(errors.map(\.description), [
            "config.yaml:3:5: clusterConnections[0].local.connectionType: missing; set it to one of tcp, "
                + "mux-client, mux-server",
            #"config.yaml:4:7: clusterConnections[0].local.connectiontype: unknown key "connectiontype"; "#
                + #"did you mean "connectionType"?"#,
        ])
    }

    func testUnknownKeySuggestsAcrossSmallTyposAndListsValidKeysOtherwise() throws {
        let errors = parseErrors(minimalConfig(extraTopLevel: """
            metrics:
              prometheus:
                listenAdress: ":9090"
            colour: blue
            """))
        XCTAssertEqual(locations(of: errors), ["13:5 metrics.prometheus.listenAdress", "14:1 colour"])
        XCTAssertEqual(errors.first?.message, #"unknown key "listenAdress"; did you mean "listenAddress"?"#)
        XCTAssertEqual(
            errors.last?.message,
            #"unknown key "colour"; valid keys here are clusterConnections, metrics, profiling, logging, "#
                + "logConfigs, limits, shutdown, upstream"
        )
    }

    func testLegacyTopLevelKeyExplainsTheFormatChange() throws {
        let errors = parseErrors(minimalConfig(extraTopLevel: "inbound: {}"))
        XCTAssertEqual(locations(of: errors), ["11:1 inbound"])
        XCTAssertTrue(errors[0].message.contains("legacy configuration format"), errors[0].message)
    }

    // MARK: - Types

    func testWrongTypeNamesExpectedTypeAndLine() throws {
        let errors = parseErrors("""
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
                  muxCount: "ten"
                  muxAddressInfo: [1, 2]
            """)
        XCTAssertEqual(errors.map(\.description), [
            #"config.yaml:11:7: clusterConnections[0].remote.muxCount: expected an integer, found "ten""#,
            "config.yaml:12:7: clusterConnections[0].remote.muxAddressInfo: expected a mapping (address, tls), "
                + "found a list",
        ])
    }

    func testQuotedNumbersAndBooleansAreRejectedWithAdvice() throws {
        let errors = parseErrors(minimalConfig(remoteExtra: """
                  muxCount: "10"
                  muxAddressInfo:
                    tls: {skipCAVerification: "true", caServerName: maybe}
            """, extraTopLevel: """
            shutdown: {drainTimeoutSeconds: "5"}
            """))
        XCTAssertEqual(errors.map(\.message), [
            #"expected an integer, found "10"; write the number without quotes"#,
            #"expected true or false, found "true"; write it without quotes"#,
            #"expected a number, found "5"; write the number without quotes"#,
        ])
        XCTAssertEqual(errors.map(\.line), [11, 13, 14])
    }

    func testScalarsConvertLikeGoYAML() throws {
        let loaded = try parse(minimalConfig(name: "42", remoteExtra: """
                  muxCount: 0x10
                  muxAddressInfo:
                    tls: {skipCAVerification: YES, caServerName: 1.5}
            """, extraTopLevel: """
            logging: {throttleMaxRPS: 2, disabled: off}
            """))
        let connection = try XCTUnwrap(loaded.config.clusterConnections.first)
        XCTAssertEqual(connection.name, "42")
        XCTAssertEqual(connection.remote.muxCount, 16)
        XCTAssertEqual(connection.remote.muxAddressInfo?.tls, TLSConfig(caServerName: "1.5", skipCAVerification: true))
        XCTAssertEqual(loaded.config.logging, LoggingConfig(throttleMaxRPS: 2, disabled: false))
    }

    func testIntegerOutOfRangeForItsFieldIsAnError() throws {
        let errors = parseErrors(minimalConfig(connectionExtra: """
                shardCount: {localShardCount: 4294967296}
            """))
        XCTAssertEqual(locations(of: errors), ["11:18 clusterConnections[0].shardCount.localShardCount"])
        XCTAssertEqual(
            errors.first?.message,
            "4294967296 is out of range; expected an integer in -2147483648...2147483647"
        )
    }

    func testNullValuesCountAsAbsent() throws {
        let loaded = try parse(minimalConfig(localExtra: """
                  muxAddressInfo:
            """, connectionExtra: """
                aclPolicy: ~
                namespaceTranslation:
                shardCount: null
            """, extraTopLevel: """
            metrics:
            logging: {throttleMaxRPS: ~}
            """).replacingOccurrences(of: "tcpServer: {address: \":2\"}", with: "tcpServer: {address: \":2\", tls: }"))
        let connection = try XCTUnwrap(loaded.config.clusterConnections.first)
        XCTAssertNil(connection.local.muxAddressInfo)
        XCTAssertEqual(connection.local.tcpServer, EndpointConfig(address: ":2"))
        XCTAssertNil(connection.aclPolicy)
        XCTAssertNil(connection.namespaceTranslation)
        XCTAssertNil(connection.shardCount)
        XCTAssertNil(loaded.config.metrics)
        XCTAssertEqual(loaded.config.logging, LoggingConfig())
        XCTAssertEqual(loaded.unsupported, [])
        XCTAssertEqual(loaded.warnings, [])
    }

    func testMergeKeysAndAnchorsAreExpanded() throws {
        let loaded = try parse("""
            clusterConnections:
              - name: a
                local: &side
                  connectionType: tcp
                  tcpClient: {address: "a:1"}
                  tcpServer: {address: ":2"}
                remote:
                  <<: *side
                  tcpServer: {address: ":3"}
            """)
        let connection = try XCTUnwrap(loaded.config.clusterConnections.first)
        XCTAssertEqual(connection.remote.connectionType, .tcp)
        XCTAssertEqual(connection.remote.tcpClient, EndpointConfig(address: "a:1"))
        XCTAssertEqual(connection.remote.tcpServer, EndpointConfig(address: ":3"))
    }

    // MARK: - YAML syntax

    func testBrokenYAMLIsOneErrorWithLineAndColumn() throws {
        let errors = parseErrors("""
            clusterConnections:
              - name: a
                local: [tcp
            metrics: {}
            """)
        XCTAssertEqual(errors.count, 1)
        XCTAssertEqual(errors.first?.keyPath, "")
        XCTAssertEqual(errors.first?.line, 4)
        XCTAssertEqual(errors.first?.column, 8)
        XCTAssertTrue(errors.first?.message.hasPrefix("invalid YAML: ") ?? false, errors.first?.message ?? "")
    }

    func testDuplicateKeyInOneMappingIsASyntaxError() throws {
        let errors = parseErrors(minimalConfig(extraTopLevel: """
            limits: {maxMessageBytes: 1}
            limits: {maxMessageBytes: 2}
            """))
        XCTAssertEqual(errors.map(\.description), [
            #"config.yaml:11:1: invalid YAML: key "limits" appears more than once in the same mapping; "#
                + "keep one of them",
        ])
    }

    // MARK: - connectionType and required keys

    func testConnectionTypeMustBeOneOfThree() throws {
        let typo = minimalConfig().replacingOccurrences(of: "connectionType: tcp", with: "connectionType: tpc")
        let errors = parseErrors(typo)
        XCTAssertEqual(locations(of: errors), [
            "4:7 clusterConnections[0].local.connectionType",
            "8:7 clusterConnections[0].remote.connectionType",
        ])
        XCTAssertEqual(
            errors.first?.message,
            #"invalid connection type "tpc"; expected one of tcp, mux-client, mux-server"#
        )
        let empty = minimalConfig().replacingOccurrences(of: "connectionType: tcp", with: "connectionType: \"\"")
        let emptyErrors = parseErrors(empty)
        XCTAssertEqual(emptyErrors.first?.message, "empty; set it to one of tcp, mux-client, mux-server")
    }

    func testARejectedValueCausesNoFollowUpErrors() throws {
        let errors = parseErrors("""
            clusterConnections:
              - name: [a]
                local: tcp
                remote:
                  connectionType: mux
                  muxAddressInfo: {address: "peer:7000"}
                namespaceTranslation:
                  mappings:
                    - {local: {x: 1}, remote: b}
            """)
        XCTAssertEqual(locations(of: errors), [
            "2:5 clusterConnections[0].name",
            "3:5 clusterConnections[0].local",
            "5:7 clusterConnections[0].remote.connectionType",
            "9:12 clusterConnections[0].namespaceTranslation.mappings[0].local",
        ])
    }

    func testMissingSideAndMissingAddressesAreReported() throws {
        let errors = parseErrors("""
            clusterConnections:
              - name: a
                local:
                  connectionType: tcp
                  tcpClient: {}
              - name: b
                local:
                  connectionType: mux-server
                remote:
                  connectionType: mux-client
                  muxAddressInfo: {address: "peer:7000"}
            """)
        XCTAssertEqual(locations(of: errors), [
            "2:5 clusterConnections[0].remote",
            "3:5 clusterConnections[0].local.tcpServer.address",
            "5:7 clusterConnections[0].local.tcpClient.address",
            "7:5 clusterConnections[1].local.muxAddressInfo.address",
        ])
        XCTAssertEqual(errors.map(\.message), [
            "missing; every cluster connection needs both local and remote, each with a connectionType",
            "missing; set it to the address this side listens on, as host:port",
            "missing; set it to the address this side dials, as host:port",
            "missing; set it to the address this side listens on, as host:port",
        ])
    }

    func testClusterConnectionsMustBePresentAndNonEmpty() throws {
        XCTAssertEqual(locations(of: parseErrors("metrics: {}")), ["clusterConnections"])
        XCTAssertEqual(locations(of: parseErrors("clusterConnections: []")), ["1:1 clusterConnections"])
        XCTAssertEqual(parseErrors("clusterConnections: []").first?.message,
                       "empty; the proxy needs at least one entry under clusterConnections")
        XCTAssertEqual(locations(of: parseErrors("")), ["clusterConnections"])
        XCTAssertEqual(
            parseErrors("- a").map(\.message),
            ["expected a mapping (clusterConnections, metrics, profiling, ...), found a list"]
        )
    }

    func testDuplicateConnectionNamesAreRefused() throws {
        let yaml = minimalConfig() + "\n" + minimalConfig(name: "a", localServer: ":4", remoteServer: ":5")
            .replacingOccurrences(of: "clusterConnections:\n", with: "")
        let errors = parseErrors(yaml)
        XCTAssertEqual(errors.map(\.description), [
            #"config.yaml:11:5: clusterConnections[1].name: duplicate connection name "a", already used by "#
                + "clusterConnections[0] (line 2); give every connection its own name",
        ])
    }

    // MARK: - Semantic rules

    func testDuplicateNamespaceMappingsNameBothEntries() throws {
        let errors = parseErrors(minimalConfig(connectionExtra: """
                namespaceTranslation:
                  mappings:
                    - {local: orders, remote: orders.acct}
                    - {local: billing, remote: orders.acct}
                    - {local: orders, remote: orders.other}
            """))
        XCTAssertEqual(errors.map(\.description), [
            #"config.yaml:14:28: clusterConnections[0].namespaceTranslation.mappings[1].remote: remote namespace "#
                + #""orders.acct" is mapped twice, by clusterConnections[0].namespaceTranslation.mappings[0] "#
                + "(line 13) and clusterConnections[0].namespaceTranslation.mappings[1]; translation must be "
                + "one-to-one, so keep one of them",
            #"config.yaml:15:12: clusterConnections[0].namespaceTranslation.mappings[2].local: local namespace "#
                + #""orders" is mapped twice, by clusterConnections[0].namespaceTranslation.mappings[0] "#
                + "(line 13) and clusterConnections[0].namespaceTranslation.mappings[2]; translation must be "
                + "one-to-one, so keep one of them",
        ])
    }

    func testListenersOnTheSameAddressCollide() throws {
        let errors = parseErrors(minimalConfig(localServer: "0.0.0.0:6233", remoteServer: "0.0.0.0:6233",
                                               connectionExtra: """
                remoteClusterHealthCheck: {protocol: http, listenAddress: "127.0.0.1:6233"}
                localClusterHealthCheck: {protocol: http, listenAddress: ":0"}
            """, extraTopLevel: """
            metrics: {prometheus: {listenAddress: ":0"}}
            """))
        XCTAssertEqual(locations(of: errors), [
            "10:19 clusterConnections[0].remote.tcpServer.address",
            "11:48 clusterConnections[0].remoteClusterHealthCheck.listenAddress",
        ])
        XCTAssertEqual(
            errors.first?.message,
            #""0.0.0.0:6233" collides with clusterConnections[0].local.tcpServer.address "#
                + #"("0.0.0.0:6233", line 6); every listener needs its own address"#
        )
    }

    func testListenersOnDifferentInterfacesOrPortsDoNotCollide() throws {
        let loaded = try parse(minimalConfig(localServer: "127.0.0.1:7000", remoteServer: "127.0.0.2:7000",
                                             extraTopLevel: """
            metrics: {prometheus: {listenAddress: "[::1]:7000"}}
            """))
        XCTAssertEqual(loaded.config.clusterConnections.count, 1)
    }

    func testAddressesMustBeHostColonPort() throws {
        let errors = parseErrors(minimalConfig(localClient: "temporal", remoteClient: "peer:70000", connectionExtra: """
                replicationEndpoint: "::1:7233"
            """, extraTopLevel: """
            profiling: {pprofAddress: "bad host:1"}
            """))
        XCTAssertEqual(errors.map(\.description), [
            #"config.yaml:5:19: clusterConnections[0].local.tcpClient.address: "temporal" has no port; write it "#
                + #"as host:port, e.g. "temporal:7233""#,
            #"config.yaml:9:19: clusterConnections[0].remote.tcpClient.address: port "70000" in "peer:70000" is "#
                + "not a number from 0 to 65535",
            #"config.yaml:11:5: clusterConnections[0].replicationEndpoint: IPv6 addresses need brackets: write "#
                + #""[::1]:7233""#,
            #"config.yaml:12:13: profiling.pprofAddress: host "bad host" in "bad host:1" may only contain letters, "#
                + #"digits, "-", "_" and ".""#,
        ])
    }

    func testAcceptedAddressForms() throws {
        XCTAssertNoThrow(try parse(minimalConfig(
            localClient: "remote_proxy_service:8233",
            localServer: ":7233",
            remoteClient: "[fe80::1%eth0]:7233",
            remoteServer: "10.0.0.1:0"
        )))
    }

    func testHealthCheckProtocolMustBeHTTP() throws {
        let errors = parseErrors(minimalConfig(connectionExtra: """
                remoteClusterHealthCheck: {protocol: https, listenAddress: ":8234"}
                localClusterHealthCheck: {listenAddress: ":8235"}
            """))
        XCTAssertEqual(errors.map(\.message), [
            #"unsupported protocol "https"; the only health check protocol is "http""#,
            #"missing; the only health check protocol is "http""#,
        ])
        XCTAssertEqual(errors.map(\.line), [11, 12])
    }

    func testShardCountModeAndCounts() throws {
        let errors = parseErrors(minimalConfig(connectionExtra: """
                shardCount: {mode: LCM}
              - name: b
                local: {connectionType: tcp, tcpClient: {address: "a:1"}, tcpServer: {address: ":4"}}
                remote: {connectionType: tcp, tcpClient: {address: "b:1"}, tcpServer: {address: ":5"}}
                shardCount: {mode: routing, localShardCount: 3}
            """))
        XCTAssertEqual(errors.map(\.description), [
            #"config.yaml:11:18: clusterConnections[0].shardCount.mode: unknown mode "LCM" (did you mean "lcm"?); "#
                + #"use "lcm", "routing", or leave it empty to pass shard ids through unchanged"#,
            #"config.yaml:15:5: clusterConnections[1].shardCount.remoteShardCount: mode "routing" needs the real "#
                + "number of history shards of both clusters; set remoteShardCount above 0",
        ])
    }

    func testMuxCountMustNotBeNegative() throws {
        let errors = parseErrors(minimalConfig(remoteExtra: "      muxCount: -1"))
        XCTAssertEqual(locations(of: errors), ["11:7 clusterConnections[0].remote.muxCount"])
    }

    func testAllErrorsOfAFileAreReportedTogetherInLineOrder() throws {
        let errors = parseErrors(minimalConfig(localServer: "nope", remoteExtra: """
                  muxCount: many
            """, extraTopLevel: """
            limits: {maxMessageBytes: 0}
            bogus: 1
            """))
        XCTAssertEqual(locations(of: errors), [
            "6:19 clusterConnections[0].local.tcpServer.address",
            "11:7 clusterConnections[0].remote.muxCount",
            "12:10 limits.maxMessageBytes",
            "13:1 bogus",
        ])
        do {
            _ = try ConfigLoader.parse(yaml: minimalConfig(extraTopLevel: "bogus: 1\nother: 2"), sourceName: "x.yaml")
            XCTFail("expected errors")
        } catch {
            XCTAssertEqual(error.description, """
                x.yaml: 2 configuration errors; fix the file and try again:
                  x.yaml:11:1: bogus: unknown key "bogus"; valid keys here are clusterConnections, metrics, \
                profiling, logging, logConfigs, limits, shutdown, upstream
                  x.yaml:12:1: other: unknown key "other"; valid keys here are clusterConnections, metrics, \
                profiling, logging, logConfigs, limits, shutdown, upstream
                """)
        }
    }

    // MARK: - Extension keys

    func testExtensionKeysDefaultWhenAbsent() throws {
        let config = try parse(minimalConfig()).config
        XCTAssertEqual(config.limits.maxMessageBytes, 134_217_728)
        XCTAssertEqual(config.limits.handshakeTimeoutSeconds, 10)
        XCTAssertEqual(config.limits.idleTimeoutSeconds, 300)
        XCTAssertEqual(config.shutdown.drainTimeoutSeconds, 30)
        XCTAssertEqual(config.upstream.connectTimeoutSeconds, 5)
        XCTAssertEqual(config.upstream.reconnectBackoffInitialSeconds, 1)
        XCTAssertEqual(config.upstream.reconnectBackoffMaxSeconds, 10)
        XCTAssertEqual(config.upstream.keepaliveIntervalSeconds, 300)
    }

    func testExtensionKeysAreParsed() throws {
        let config = try parse(minimalConfig(extraTopLevel: """
            limits: {maxMessageBytes: 4_194_304, handshakeTimeoutSeconds: 2.5, idleTimeoutSeconds: 0}
            shutdown: {drainTimeoutSeconds: 2.5}
            upstream:
              connectTimeoutSeconds: 1
              reconnectBackoffInitialSeconds: 0.25
              keepaliveIntervalSeconds: 0
            """)).config
        XCTAssertEqual(config.limits, LimitsConfig(maxMessageBytes: 4_194_304, handshakeTimeoutSeconds: 2.5, idleTimeoutSeconds: 0))
        XCTAssertEqual(config.shutdown.drainTimeoutSeconds, 2.5)
        XCTAssertEqual(config.upstream, UpstreamConfig(
            connectTimeoutSeconds: 1, reconnectBackoffInitialSeconds: 0.25, reconnectBackoffMaxSeconds: 10,
            keepaliveIntervalSeconds: 0
        ))
    }

    func testConnectionTimeoutsMustBeUsable() throws {
        let errors = parseErrors(minimalConfig(extraTopLevel: """
            limits: {handshakeTimeoutSeconds: 0, idleTimeoutSeconds: -1}
            """))
        XCTAssertEqual(errors.map(\.description), [
            "config.yaml:11:10: limits.handshakeTimeoutSeconds: must be greater than 0, found 0",
            "config.yaml:11:38: limits.idleTimeoutSeconds: -1 is negative; use a number of seconds, or 0 to keep idle "
                + "connections open",
        ])
    }

    func testExtensionLimitsMustBePositive() throws {
        let errors = parseErrors(minimalConfig(extraTopLevel: """
            shutdown: {drainTimeoutSeconds: 0}
            upstream: {connectTimeoutSeconds: -1, reconnectBackoffInitialSeconds: 20}
            """))
        XCTAssertEqual(errors.map(\.description), [
            "config.yaml:11:12: shutdown.drainTimeoutSeconds: must be greater than 0, found 0",
            "config.yaml:12:1: upstream.reconnectBackoffMaxSeconds: 10 is below reconnectBackoffInitialSeconds (20); "
                + "the maximum delay must be at least the first one",
            "config.yaml:12:12: upstream.connectTimeoutSeconds: must be greater than 0, found -1",
        ])
    }

    func testLogRatesMustBePositive() {
        let errors = parseErrors(minimalConfig(extraTopLevel: """
            logging: {throttleMaxRPS: 0}
            logConfigs:
              tcpServer: {throttleMaxRPS: -1}
            """))
        XCTAssertEqual(errors.map(\.description), [
            "config.yaml:11:11: logging.throttleMaxRPS: must be more than 0 (log lines per second); leave it out for "
                + "no limit of its own",
            "config.yaml:13:15: logConfigs.tcpServer.throttleMaxRPS: must be more than 0 (log lines per second); "
                + "leave it out for no limit of its own",
        ])
    }

    // MARK: - Warnings and summary

    func testKeysWithoutEffectBecomeWarnings() throws {
        let loaded = try parse(minimalConfig(connectionExtra: """
                memberlist: {enabled: true, shardStrategy: x, nodeName: n, bindPort: 6335}
            """, extraTopLevel: """
            metrics: {prometheus: {framework: opentelemetry}}
            profiling: {}
            logging: {throttleMaxRPS: 10, disabled: true}
            logConfigs:
              replicationStreams: {throttleMaxRPS: 1}
              replicationStream: {disabled: true}
              shardManager: {throttleMaxRPS: 2}
              tcpServer: {level: debug}
            """))
        XCTAssertEqual(loaded.warnings, [
            "config.yaml:11:5: clusterConnections[0].memberlist: has no effect: has an effect only with shardCount "
                + "mode routing (replicas sharing its target shards), as in the Go proxy",
            "config.yaml:11:18: clusterConnections[0].memberlist.enabled: has no effect: unused, as in the Go proxy: "
                + "the presence of the memberlist block is what enables it",
            "config.yaml:11:33: clusterConnections[0].memberlist.shardStrategy: has no effect: deprecated and "
                + "unused, as in the Go proxy",
            "config.yaml:11:64: clusterConnections[0].memberlist.bindPort: has no effect: unused: replicas reach each "
                + "other at memberlist.proxyAddresses, not by memberlist gossip",
            "config.yaml:12:24: metrics.prometheus.framework: has no effect: unused, as in the Go proxy",
            "config.yaml:13:1: profiling: has no effect: not served: pprof is specific to the Go runtime",
            "config.yaml:14:31: logging.disabled: has no effect: unused at the root, as in the Go proxy; silence "
                + "one component with logConfigs.<component>.disabled",
            "config.yaml:17:3: logConfigs.replicationStream: has no effect: unknown log component "
                + "\"replicationStream\"; did you mean \"replicationStreams\"? the components are "
                + LogComponent.names.joined(separator: ", "),
            "config.yaml:19:15: logConfigs.tcpServer.level: has no effect: the log level is the same for every "
                + "component (logging.level or --log-level)",
        ])
        XCTAssertEqual(loaded.config.logConfigs["replicationStreams"], LoggingConfig(throttleMaxRPS: 1))
        XCTAssertEqual(locations(of: loaded.unsupported), [])
        XCTAssertEqual(loaded.config.clusterConnections.first?.memberlist?.bindPort, 6335)
    }

    func testSummaryListsEveryConnection() throws {
        let loaded = try parse("""
            clusterConnections:
              - name: a-to-b
                local: {connectionType: tcp, tcpClient: {address: "a:7233"}, tcpServer: {address: ":6233"}}
                remote: {connectionType: tcp, tcpClient: {address: "b:6234"}, tcpServer: {address: ":6234"}}
              - name: cloud
                local: {connectionType: tcp, tcpClient: {address: "a:7233"}, tcpServer: {address: ":9233"}}
                remote: {connectionType: mux-client, muxCount: 10, muxAddressInfo: {address: "cloud:8233"}}
            metrics: {prometheus: {listenAddress: ":9090"}}
            """)
        XCTAssertEqual(
            loaded.summary,
            "config OK: 2 cluster connections (a-to-b: tcp/tcp, cloud: tcp/mux-client), 4 listeners"
        )
    }

    // MARK: - Files

    func testMissingFileNamesThePath() throws {
        let path = NSTemporaryDirectory() + "no-such-s2s-proxy-config-\(UUID().uuidString).yaml"
        XCTAssertThrowsError(try ConfigLoader.load(path: path)) { error in
            let errors = (error as? ConfigErrors)?.errors ?? []
            XCTAssertEqual(
                errors.map(\.description),
                ["\(path): cannot read the configuration: no such file; check the path"]
            )
        }
    }

    func testLoadReadsAFileAndNamesItInErrors() throws {
        let path = NSTemporaryDirectory() + "s2s-proxy-config-\(UUID().uuidString).yaml"
        try minimalConfig(extraTopLevel: "limits: {maxMessageBytes: -5}")
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try ConfigLoader.load(path: path)) { error in
            XCTAssertEqual(
                (error as? ConfigErrors)?.errors.map(\.description),
                ["\(path):11:10: limits.maxMessageBytes: must be greater than 0, found -5"]
            )
        }
    }

    // MARK: - Helpers

    /// A valid one-connection tcp/tcp config. Its lines: 1 clusterConnections, 2 name, 3 local, 4 connectionType,
    /// 5 tcpClient.address, 6 tcpServer.address, then `localExtra`; 7 remote, 8 connectionType, 9 tcpClient,
    /// 10 tcpServer, then `remoteExtra`, `connectionExtra` and `extraTopLevel` (lines 11+ when the others are empty).
    // MARK: - plugins

    func testPluginEntriesDecodeWithDefaultsAndOptionsAsJSON() throws {
        let loaded = try parse(minimalConfig(connectionExtra: """
                plugins:
                  - name: method-guard
                  - path: plugins/libacme.so
                    side: inbound
                    onError: failOpen
                    options:
                      deny: ["/a.B/C", "/a.B/D"]
                      limit: 0x10
                      ratio: 1.5
                      on: yes
                      nothing: ~
                      nested: {key: 'va"lue', list: [1, two]}
            """))
        let plugins = try XCTUnwrap(loaded.config.clusterConnections.first?.plugins)
        XCTAssertEqual(plugins.count, 2)
        XCTAssertEqual(plugins[0], PluginEntryConfig(source: .bundled("method-guard")))
        XCTAssertEqual(plugins[1].source, .path("plugins/libacme.so"))
        XCTAssertEqual(plugins[1].side, .inbound)
        XCTAssertEqual(plugins[1].onError, .failOpen)
        XCTAssertEqual(
            plugins[1].optionsJSON,
            #"{"deny":["/a.B/C","/a.B/D"],"limit":16,"ratio":1.5,"on":true,"nothing":null,"nested":{"key":"va\"lue","list":[1,"two"]}}"#
        )
        let parsed = try JSONSerialization.jsonObject(with: Data(plugins[1].optionsJSON.utf8)) as? [String: Any]
        XCTAssertEqual(parsed?["limit"] as? Int, 16)
    }

    /// YAML tells `1` from `"1"`, JSON does not: such keys gave the plugin options it refuses to parse, after
    /// `validate` had passed them (the config fuzz target's check; its input is
    /// Fuzz/corpus/config/found-duplicate-option-keys).
    func testOptionKeysThatAreTheSameInJSONAreAnError() {
        let errors = parseErrors(minimalConfig(connectionExtra: """
                plugins:
                  - name: a
                    options: {limits: {1: a, "1": b}}
                  - name: b
                    options: {true: x, 'true': y}
            """))
        XCTAssertEqual(errors.map(\.keyPath), [
            "clusterConnections[0].plugins[0].options.limits",
            "clusterConnections[0].plugins[1].options",
        ])
        guard errors.count == 2 else { return }
        XCTAssertTrue(errors[0].message.contains("key \"1\" appears more than once"), errors[0].message)
        XCTAssertTrue(errors[1].message.contains("key \"true\" appears more than once"), errors[1].message)
    }

    func testPluginEntryMistakesAreReportedAtTheirKeys() {
        let errors = parseErrors(minimalConfig(connectionExtra: """
                plugins:
                  - name: a
                    path: /b.so
                  - side: inbound
                  - name: c
                    side: sideways
                    onError: explode
                    options: [1, 2]
                  - name: d
                    sides: inbound
            """))
        XCTAssertEqual(errors.map(\.keyPath), [
            "clusterConnections[0].plugins[0]",
            "clusterConnections[0].plugins[1]",
            "clusterConnections[0].plugins[2].side",
            "clusterConnections[0].plugins[2].onError",
            "clusterConnections[0].plugins[2].options",
            "clusterConnections[0].plugins[3].sides",
        ])
        XCTAssertTrue(errors[0].message.contains("either name"))
        XCTAssertTrue(errors[1].message.contains("needs name"))
        XCTAssertTrue(errors[2].message.contains("inbound, outbound or both"))
        XCTAssertTrue(errors[3].message.contains("failClosed or failOpen"))
        XCTAssertTrue(errors[4].message.contains("must be a mapping"))
        XCTAssertTrue(errors[5].message.contains("did you mean \"side\""), errors[5].message)
    }

    private func minimalConfig(
        name: String = "a",
        localClient: String = "a:1",
        localServer: String = ":2",
        remoteClient: String = "b:1",
        remoteServer: String = ":3",
        localExtra: String? = nil,
        remoteExtra: String? = nil,
        connectionExtra: String? = nil,
        extraTopLevel: String? = nil
    ) -> String {
        var lines = [
            "clusterConnections:",
            "  - name: \(name)",
            "    local:",
            "      connectionType: tcp",
            "      tcpClient: {address: \"\(localClient)\"}",
            "      tcpServer: {address: \"\(localServer)\"}",
        ]
        lines += localExtra.map { [$0] } ?? []
        lines += [
            "    remote:",
            "      connectionType: tcp",
            "      tcpClient: {address: \"\(remoteClient)\"}",
            "      tcpServer: {address: \"\(remoteServer)\"}",
        ]
        lines += [remoteExtra, connectionExtra, extraTopLevel].compactMap { $0 }
        return lines.joined(separator: "\n")
    }

    private func parse(_ yaml: String) throws -> LoadedConfig {
        try ConfigLoader.parse(yaml: yaml, sourceName: "config.yaml")
    }

    /// The errors `yaml` is rejected with; fails the test when it loads.
    private func parseErrors(_ yaml: String, line: UInt = #line) -> [ConfigError] {
        do {
            let loaded = try ConfigLoader.parse(yaml: yaml, sourceName: "config.yaml")
            XCTFail("expected configuration errors, but it loaded: \(loaded.summary)", line: line)
            return []
        } catch {
            return error.errors
        }
    }

    /// `line:column keyPath` per error (just `keyPath` when the line is unknown), for compact exact assertions.
    private func locations(of errors: [ConfigError]) -> [String] {
        errors.map { error in
            guard let line = error.line else { return error.keyPath }
            return "\(line):\(error.column.map(String.init) ?? "?") \(error.keyPath)"
        }
    }

    /// `shared/reference/go-proxy-configs` beside the repository; the test is skipped where it is not laid out.
    private func goSampleDirectory() throws -> URL {
        let repository = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent()
        let directory = repository
            .deletingLastPathComponent()
            .appendingPathComponent("shared/reference/go-proxy-configs")
        guard FileManager.default.fileExists(atPath: directory.path) else {
            throw XCTSkip("no Go sample configs at \(directory.path)")
        }
        return directory
    }

    private func goSamplePath(_ name: String) throws -> String {
        try goSampleDirectory().appendingPathComponent(name).path
    }

    private func loadGoSample(_ name: String) throws -> LoadedConfig {
        let path = try goSamplePath(name)
        return try Self.inGoSampleWorkingDirectory { try ConfigLoader.load(path: path) }
    }

    /// Runs `body` in a directory holding the `./proxycerts/` files the Go samples' mux TLS blocks name (relative
    /// paths start at the current directory, as in the Go proxy): self-signed CA certificates with their keys, so
    /// that each block loads whichever role it names a file in.
    static func inGoSampleWorkingDirectory<T>(_ body: () throws -> T) throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("go-samples-\(getpid())")
        let certificates = directory.appendingPathComponent("proxycerts")
        if !FileManager.default.fileExists(atPath: certificates.appendingPathComponent("client.key").path) {
            try FileManager.default.createDirectory(at: certificates, withIntermediateDirectories: true)
            for name in ["server", "client"] {
                let openssl = Process()
                openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
                openssl.arguments = [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", certificates.appendingPathComponent("\(name).key").path,
                    "-out", certificates.appendingPathComponent("\(name).pem").path,
                    "-subj", "/CN=\(name)", "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
                ]
                openssl.standardError = FileHandle.nullDevice
                do {
                    try openssl.run()
                } catch {
                    throw XCTSkip("openssl is needed to stand in for the Go samples' certificates: \(error)")
                }
                openssl.waitUntilExit()
                guard openssl.terminationStatus == 0 else { throw XCTSkip("openssl could not make a certificate") }
            }
        }
        let previous = FileManager.default.currentDirectoryPath
        _ = FileManager.default.changeCurrentDirectoryPath(directory.path)
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        return try body()
    }
}
