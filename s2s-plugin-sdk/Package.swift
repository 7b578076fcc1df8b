// swift-tools-version:6.0
// The s2s-proxy plugin SDK: what a translator plugin builds against, and nothing else (no dependencies).
//
//   PluginABI  the C contract, include/s2s_plugin.h: what C (or any language's) plugins include
//   PluginKit  the Swift SDK: the TranslatorPlugin protocol and its C export, typed options, the protobuf wire
//              layer, the schema from a FileDescriptorSet and the schema-driven walker
//   PluginKitTesting  for a plugin's own tests: PluginTestHost drives it in-process through its C table
//
// The proxy depends on this package by path; a plugin depends on it by path (a checkout of the s2s-proxy repository,
// `.package(path: ".../s2s-plugin-sdk")`) or by URL and tag (the repository split out of this folder,
// scripts/sdk-publish). Either way the package is called `s2s-plugin-sdk` (docs/PLUGINS.md, "The package").
import PackageDescription

let package = Package(
    name: "s2s-plugin-sdk",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "PluginKit", targets: ["PluginKit"]),
        .library(name: "PluginABI", targets: ["PluginABI"]),
        // For a plugin's tests: drives it in-process through its C table with a recording host.
        .library(name: "PluginKitTesting", targets: ["PluginKitTesting"]),
    ],
    targets: [
        // The C contract between the host and translator plugins.
        .target(name: "PluginABI"),
        // The Swift SDK for translator plugins: the `TranslatorPlugin` protocol and its C export (Plugin/, Export/),
        // typed options (Options/), the protobuf wire layer (Wire/), the schema from a FileDescriptorSet (Schema/)
        // and the schema-driven walker that reads and rewrites messages by field name (Walker/).
        .target(name: "PluginKit", dependencies: ["PluginABI"]),
        // PluginTestHost: a plugin driven from XCTest or Swift Testing exactly as the proxy drives it.
        .target(name: "PluginKitTesting", dependencies: ["PluginKit", "PluginABI"]),
    ],
    swiftLanguageModes: [.v5]
)
