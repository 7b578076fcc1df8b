// swift-tools-version:6.0
import PackageDescription

// Release builds of the forwarding path (the engine and the host) skip the run-time exclusivity checks on class
// properties: every access to a handler's state paid a call into the runtime and a thread-local lookup, about 8 %
// of the proxy's CPU per call (docs/PERFORMANCE.md). Debug builds, which the tests run, keep the checks, so an
// overlapping access is still caught there. (An unsafe flag bars a target's products from versioned dependents;
// PluginKit, the product plugins depend on, has none.)
let forwardingPathOptimization = SwiftSetting.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))

// The plugin SDK's products (s2s-plugin-sdk/Package.swift).
let pluginKit = Target.Dependency.product(name: "PluginKit", package: "s2s-plugin-sdk")
let pluginABI = Target.Dependency.product(name: "PluginABI", package: "s2s-plugin-sdk")

let package = Package(
    name: "s2s-proxy",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "s2s-proxy", targets: ["S2SProxy"]),
        .executable(name: "s2s-bench", targets: ["S2SBench"]),
        .executable(name: "pluginkit-bench", targets: ["PluginKitBench"]),
        .library(name: "Host", targets: ["Host"]),
        // Example plugins built as the shared objects the host loads: `libexample-header-stamp.so`.
        .library(name: "example-header-stamp", type: .dynamic, targets: ["ExampleHeaderStampPlugin"]),
        // Bundled translator plugins, found by name next to the s2s-proxy binary: `libnamespace-rename.so`.
        .library(name: "namespace-rename", type: .dynamic, targets: ["NamespaceRenameExport"]),
        // Bundled plugins, loaded by name (docs/PLUGINS.md, "Bundled plugins"): `libacl.so`.
        .library(name: "acl", type: .dynamic, targets: ["ACL"]),
        .library(name: "utf8-repair", type: .dynamic, targets: ["UTF8RepairExport"]),
        .library(name: "search-attribute-rename", type: .dynamic, targets: ["SearchAttributeRenameExport"]),
        .library(name: "cluster-adapter", type: .dynamic, targets: ["ClusterAdapterExport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // The plugin SDK (PluginABI, PluginKit), a package of its own so that plugin authors need nothing else.
        .package(path: "s2s-plugin-sdk"),
    ],
    targets: [
        // An example translator plugin written with PluginKit (docs/PLUGINS.md). Nothing may depend on it: it
        // exports `s2s_plugin_entry`, which must appear once per shared object.
        .target(
            name: "ExampleHeaderStampPlugin",
            dependencies: [pluginKit],
            path: "examples/plugins/swift-header-stamp"
        ),
        // namespace-rename (namespaceTranslation): the logic, which tests link, and its export as a shared object.
        .target(name: "NamespaceRename", dependencies: [pluginKit], path: "Plugins/NamespaceRename"),
        .target(name: "NamespaceRenameExport", dependencies: ["NamespaceRename", pluginKit], path: "Plugins/NamespaceRenameExport"),
        // The system zlib, to inflate compressed messages that plugins read.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // The bundled `acl` plugin (the Go proxy's aclPolicy): its code, and the target that exports it. Tests
        // depend on ACLPlugin only, so that the test binary holds no `s2s_plugin_entry`.
        .target(name: "ACLPlugin", dependencies: [pluginKit], path: "Plugins/ACL/Plugin"),
        .target(name: "ACL", dependencies: ["ACLPlugin", pluginKit], path: "Plugins/ACL/Entry"),
        // utf8-repair (the version adapter for Temporal 1.22 peers): the logic, and its export as a shared object.
        .target(name: "UTF8Repair", dependencies: [pluginKit], path: "Plugins/UTF8Repair"),
        .target(name: "UTF8RepairExport", dependencies: ["UTF8Repair", pluginKit], path: "Plugins/UTF8RepairExport"),
        // search-attribute-rename (searchAttributeTranslation): the logic, and its export as a shared object.
        .target(name: "SearchAttributeRename", dependencies: [pluginKit], path: "Plugins/SearchAttributeRename"),
        .target(
            name: "SearchAttributeRenameExport",
            dependencies: ["SearchAttributeRename", pluginKit],
            path: "Plugins/SearchAttributeRenameExport"
        ),
        // cluster-adapter (replicationEndpoint, failoverVersionIncrementTranslation, shardCount lcm): the logic,
        // and its export as a shared object.
        .target(name: "ClusterAdapter", dependencies: [pluginKit], path: "Plugins/ClusterAdapter"),
        .target(
            name: "ClusterAdapterExport",
            dependencies: ["ClusterAdapter", pluginKit],
            path: "Plugins/ClusterAdapterExport"
        ),
        // The yamux multiplexer (hashicorp/yamux's protocol, as the Go s2s-proxy's mux mode speaks it): frames,
        // sessions, and each stream as a NIO child channel.
        .target(name: "Mux", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        // The proxy's own HTTP/2 engine for forwarding gRPC: the frame codec (Frames/), the connection state machine
        // and its channel handler (Connection/), header-block rules and encoding (Headers/).
        .target(
            name: "HTTP2Forwarding",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6), forwardingPathOptimization]
        ),
        // Shard-count mode `routing`: Temporal's shard function, the replication stream's messages, and the value-type
        // state machines that route tasks and translate ACKs (no I/O; Host drives them).
        .target(name: "ShardRouting", dependencies: [pluginKit], swiftSettings: [.swiftLanguageMode(.v6)]),
        // The proxy itself: configuration, transports, HTTP/2 + gRPC forwarding, lifecycle.
        .target(
            name: "Host",
            dependencies: [
                "Mux",
                "ShardRouting",
                "HTTP2Forwarding",
                pluginABI,
                // SwiftRelease only: the Swift release a Swift plugin must match.
                pluginKit,
                "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                // The HTTP/1.1 endpoints: health checks, debug view, metrics.
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // TLS on listeners and upstream dials (BoringSSL, built from source with the package).
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                // Descriptor types only (FileDescriptorSet and friends), for the schema; no generated Temporal code.
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: [forwardingPathOptimization]
        ),
        // The `s2s-proxy` command line.
        .executableTarget(
            name: "S2SProxy",
            dependencies: [
                "Host",
                pluginKit,
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Benchmark peers and load generator (`s2s-bench`): an echo gRPC backend and a gRPC load client.
        .executableTarget(
            name: "S2SBench",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The walker benchmark (`pluginkit-bench`): PluginKit alone, on the fixtures under Tests/Fixtures.
        .executableTarget(name: "PluginKitBench", dependencies: [pluginKit]),
        // What the test targets share (a seeded random generator).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(
            name: "HostTests",
            dependencies: [
                "Host",
                "TestSupport",
                pluginKit,
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .testTarget(
            name: "MuxTests",
            dependencies: [
                "Mux",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "HTTP2ForwardingTests",
            dependencies: [
                "HTTP2Forwarding",
                "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "ShardRoutingTests",
            dependencies: ["ShardRouting", "TestSupport", pluginKit],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(name: "PluginKitTests", dependencies: [
            pluginKit, pluginABI, "ACLPlugin", "UTF8Repair", "ClusterAdapter", "SearchAttributeRename", "NamespaceRename", "TestSupport",
            .product(name: "PluginKitTesting", package: "s2s-plugin-sdk"),
        ]),
    ],
    swiftLanguageModes: [.v5]
)
