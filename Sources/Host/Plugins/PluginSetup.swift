// Every plugin chain of a configuration: loads the plugin files the `plugins:` lists name, creates one config per
// entry from its options, and arranges the entries into one chain per cluster connection and side.
//
// Everything that can be checked before traffic flows is checked here, on the control thread, and reported all
// at once with the entry's key path: a missing file, a file that is no plugin, an ABI mismatch, options the
// plugin refuses. `validate` runs this too, so a configuration that validates also starts.

import Logging

/// The plugin chains of a whole configuration.
public final class PluginSetup: Sendable {
    /// Per cluster connection (same order as the config), its entries in chain order.
    public let entries: [[PluginEntry]]
    private let chains: [(outbound: PluginChain, inbound: PluginChain)]

    private init(entries: [[PluginEntry]], connectionNames: [String], captures: [CaptureConfig?] = [], logger: Logger? = nil) {
        self.entries = entries
        chains = zip(entries, connectionNames).enumerated().map { index, pair in
            let (entries, name) = pair
            let capture = index < captures.count ? captures[index] : nil
            func tap(_ side: PluginSide) -> CaptureTap? {
                guard let capture, let logger, capture.side == "both" || capture.side == side.rawValue else { return nil }
                let writer = CaptureWriter.shared(
                    file: capture.file, maxFileBytes: capture.maxFileBytes, maxFiles: capture.maxFiles,
                    logger: logger.component(.interceptor)
                )
                return CaptureTap(config: capture, connection: name, side: side, writer: writer)
            }
            return (PluginChain(side: .outbound, connectionName: name, entries: entries, capture: tap(.outbound)),
                    PluginChain(side: .inbound, connectionName: name, entries: entries, capture: tap(.inbound)))
        }
    }

    /// A setup without plugins.
    public static let empty = PluginSetup(entries: [], connectionNames: [])

    /// The chain for the calls of connection `index` on `side`; empty when nothing is configured.
    public func chain(connection index: Int, side: PluginSide) -> PluginChain? {
        guard chains.indices.contains(index) else { return nil }
        return side == .outbound ? chains[index].outbound : chains[index].inbound
    }

    public var allEntries: [PluginEntry] { entries.flatMap { $0 } }

    /// Whether any entry waits for the Temporal schema.
    public func needsSchema(connection index: Int) -> Bool {
        entries.indices.contains(index) && entries[index].contains { $0.library.needsSchema }
    }

    /// Waits (a little) until every capture file has what was recorded: at exit, after the drain.
    public static func flushCaptures() {
        CaptureWriter.flushAll()
    }

    /// Releases every plugin config. Control thread, after the last call ended.
    public func destroy() {
        for entry in allEntries { entry.destroy() }
    }

    /// Lines for `validate`: the chain of each side of each connection.
    public func describe(connectionNames: [String]) -> [String] {
        var lines: [String] = []
        for (index, name) in connectionNames.enumerated() where chains.indices.contains(index) {
            for chain in [chains[index].outbound, chains[index].inbound] where !chain.isEmpty {
                let list = chain.entries.map { entry in
                    let library = entry.library
                    return "\(library.name) \(library.version)" + (entry.policy == .failOpen ? " (failOpen)" : "")
                        + (library.needsSchema ? " [needs schema]" : "")
                }
                lines.append("plugins \(name)/\(chain.side.rawValue): " + list.joined(separator: " -> "))
            }
        }
        // Which build of which file each plugin is, so that an operator can tell what code runs.
        var seen = Set<ObjectIdentifier>()
        for library in allEntries.map(\.library) where seen.insert(ObjectIdentifier(library)).inserted {
            lines.append(
                "plugin \(library.name) \(library.version): \(library.path), sha256 \(library.shortSHA256)"
                    + (library.inPlaceReason == nil ? "" : " (loaded in place)")
            )
        }
        return lines
    }

    /// Loads and configures every `plugins:` entry of `config`. `configPath` is the file the config came from;
    /// relative plugin paths are resolved against its directory.
    public static func build(
        config: ProxyConfig, configPath: String?, logger: Logger, metrics: PluginMetricsRegistry
    ) throws(PluginSetupError) -> PluginSetup {
        var all: [[PluginEntry]] = []
        var problems: [String] = []
        for (connectionIndex, connection) in config.clusterConnections.enumerated() {
            var entries: [PluginEntry] = []
            let prefix = "clusterConnections[\(connectionIndex)]"
            let explicit = connection.plugins.enumerated().map { ("\(prefix).plugins[\($0.offset)]", $0.element) }
            for (label, entryConfig) in GoTranslationKeys.chainEntries(of: connection, prefix: prefix) + explicit {
                do {
                    let loading: PluginLibrary.Loading
                    switch entryConfig.source {
                    case .bundled(let name):
                        loading = try PluginLibrary.loadNoting(bundledName: name)
                    case .path(let path):
                        loading = try PluginLibrary.loadNoting(path: resolve(path, relativeTo: configPath))
                    }
                    let library = loading.library
                    if loading.isNew, let reason = library.inPlaceReason {
                        logger.warning(
                            "plugin file \(library.path) is loaded in place, \(reason): rebuilding or overwriting the file while the proxy runs may crash it, and a reload cannot load a rebuild of it",
                            metadata: ["entry": "\(label)"]
                        )
                    }
                    if let replaced = loading.replacedBuild {
                        let note =
                            "plugin file \(library.path) holds a new build of \(library.name) (\(library.version), sha256"
                                + " \(library.shortSHA256); the build loaded before was sha256 \(replaced.prefix(12))):"
                                + " calls that start once the new chains are in place use it, calls in flight finish on"
                                + " the old one"
                        logger.notice("\(note)", metadata: ["entry": "\(label)"])
                    }
                    var entryLogger = logger.component(.interceptor)
                    entryLogger[metadataKey: "connection"] = "\(connection.name)"
                    entries.append(try PluginEntry(
                        library: library, label: label, connectionName: connection.name, sides: entryConfig.side,
                        policy: entryConfig.onError, optionsJSON: entryConfig.optionsJSON, logger: entryLogger, metrics: metrics
                    ))
                } catch let error as PluginConfigError {
                    problems.append(error.description)
                } catch {
                    problems.append("\(label): \(error)")
                }
            }
            all.append(entries)
        }
        guard problems.isEmpty else {
            for entry in all.flatMap({ $0 }) { entry.destroy() }
            throw PluginSetupError(problems: problems)
        }
        return PluginSetup(
            entries: all, connectionNames: config.clusterConnections.map(\.name),
            captures: config.clusterConnections.map(\.capture), logger: logger
        )
    }

    /// `path` as written in the config, resolved against the config file's directory when relative.
    static func resolve(_ path: String, relativeTo configPath: String?) -> String {
        guard !path.hasPrefix("/"), let configPath, let slash = configPath.lastIndex(of: "/") else { return path }
        return String(configPath[...slash]) + path
    }
}

/// Plugins named by the configuration could not be set up; one line per problem.
public struct PluginSetupError: Error, CustomStringConvertible, Sendable {
    public let problems: [String]

    public var description: String {
        problems.joined(separator: "\n")
    }
}
