// swift-tools-version:6.0
import PackageDescription

// Release builds of the forwarding path (the engine and the host) skip the run-time exclusivity checks on class
// properties: every access to a handler's state paid a call into the runtime and a thread-local lookup, about 8 %
// of the proxy's CPU per call (docs/PERFORMANCE.md). Debug builds, which the tests run, keep the checks, so an
// overlapping access is still caught there. (An unsafe flag bars a target's products from versioned dependents;
// PluginKit, the product plugins depend on, has none.)
let forwardingPathOptimization = SwiftSetting.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))

let package = Package(
    name: "s2s-proxy",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "s2s-proxy", targets: ["S2SProxy"]),
        .executable(name: "s2s-bench", targets: ["S2SBench"]),
        .executable(name: "pluginkit-bench", targets: ["PluginKitBench"]),
        .library(name: "Host", targets: ["Host"]),
        .library(name: "PluginKit", targets: ["PluginKit"]),
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
    ],
    targets: [
        // The C contract between the host and translator plugins. Its content arrives with the plugin ABI work.
        .target(name: "PluginABI"),
        // The Swift SDK for translator plugins: the `TranslatorPlugin` protocol and its C export (Plugin/, Export/),
        // typed options (Options/), the protobuf wire layer (Wire/), the schema from a FileDescriptorSet (Schema/)
        // and the schema-driven walker that reads and rewrites messages by field name (Walker/).
        .target(name: "PluginKit", dependencies: ["PluginABI"]),
        // An example translator plugin written with PluginKit (docs/PLUGINS.md). Nothing may depend on it: it
        // exports `s2s_plugin_entry`, which must appear once per shared object.
        .target(
            name: "ExampleHeaderStampPlugin",
            dependencies: ["PluginKit"],
            path: "examples/plugins/swift-header-stamp"
        ),
        // namespace-rename (namespaceTranslation): the logic, which tests link, and its export as a shared object.
        .target(name: "NamespaceRename", dependencies: ["PluginKit"], path: "Plugins/NamespaceRename"),
        .target(name: "NamespaceRenameExport", dependencies: ["NamespaceRename", "PluginKit"], path: "Plugins/NamespaceRenameExport"),
        // The system zlib, to inflate compressed messages that plugins read.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // The bundled `acl` plugin (the Go proxy's aclPolicy): its code, and the target that exports it. Tests
        // depend on ACLPlugin only, so that the test binary holds no `s2s_plugin_entry`.
        .target(name: "ACLPlugin", dependencies: ["PluginKit"], path: "Plugins/ACL/Plugin"),
        .target(name: "ACL", dependencies: ["ACLPlugin", "PluginKit"], path: "Plugins/ACL/Entry"),
        // utf8-repair (the version adapter for Temporal 1.22 peers): the logic, and its export as a shared object.
        .target(name: "UTF8Repair", dependencies: ["PluginKit"], path: "Plugins/UTF8Repair"),
        .target(name: "UTF8RepairExport", dependencies: ["UTF8Repair", "PluginKit"], path: "Plugins/UTF8RepairExport"),
        // search-attribute-rename (searchAttributeTranslation): the logic, and its export as a shared object.
        .target(name: "SearchAttributeRename", dependencies: ["PluginKit"], path: "Plugins/SearchAttributeRename"),
        .target(
            name: "SearchAttributeRenameExport",
            dependencies: ["SearchAttributeRename", "PluginKit"],
            path: "Plugins/SearchAttributeRenameExport"
        ),
        // cluster-adapter (replicationEndpoint, failoverVersionIncrementTranslation, shardCount lcm): the logic,
        // and its export as a shared object.
        .target(name: "ClusterAdapter", dependencies: ["PluginKit"], path: "Plugins/ClusterAdapter"),
        .target(
            name: "ClusterAdapterExport",
            dependencies: ["ClusterAdapter", "PluginKit"],
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
        // The proxy itself: configuration, transports, HTTP/2 + gRPC forwarding, lifecycle.
        .target(
            name: "Host",
            dependencies: [
                "Mux",
                "HTTP2Forwarding",
                "PluginABI",
                // SwiftRelease only: the Swift release a Swift plugin must match.
                "PluginKit",
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
                "PluginKit",
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
        .executableTarget(name: "PluginKitBench", dependencies: ["PluginKit"]),
        .testTarget(
            name: "HostTests",
            dependencies: [
                "Host",
                "PluginKit",
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
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(name: "PluginKitTests", dependencies: [
            "PluginKit", "PluginABI", "ACLPlugin", "UTF8Repair", "ClusterAdapter", "SearchAttributeRename",
        ]),
    ],
    swiftLanguageModes: [.v5]
)
