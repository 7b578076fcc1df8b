// The result of loading a configuration file that has no errors.
//
// Owns `LoadedConfig`: the typed configuration together with what this build cannot run yet and what it ignores,
// and the one-line summary that `s2s-proxy validate` prints. Deciding what to do with the unsupported list (refuse
// to start, or only report) is the caller's business.

/// A configuration file that parsed and validated, with the notes the operator should see.
public struct LoadedConfig: Sendable, Equatable {
    /// The typed configuration, with the defaults of every key the file leaves out.
    public var config: ProxyConfig
    /// Settings present in the file whose behaviour this build does not have yet. `start` refuses to run while
    /// this is non-empty; `validate` prints them as notes.
    public var unsupported: [ConfigError]
    /// Settings accepted but deliberately without effect, one formatted line each (`file:line:column: key: ...`).
    public var warnings: [String]

    /// Bundles a loaded configuration with its notes.
    public init(config: ProxyConfig, unsupported: [ConfigError] = [], warnings: [String] = []) {
        self.config = config
        self.unsupported = unsupported
        self.warnings = warnings
    }

    /// One line for `s2s-proxy validate`, e.g.
    /// `config OK: 2 cluster connections (a-to-b: tcp/tcp, cloud: tcp/mux-client), 4 listeners`.
    public var summary: String {
        let connections = config.clusterConnections.map { connection in
            let name = connection.name.isEmpty ? "(unnamed)" : connection.name
            return "\(name): \(connection.local.connectionType.rawValue)/\(connection.remote.connectionType.rawValue)"
        }
        let connectionCount = Self.counted(connections.count, "cluster connection")
        let listenerCount = Self.counted(config.configuredListeners.count, "listener")
        return "config OK: \(connectionCount) (\(connections.joined(separator: ", "))), \(listenerCount)"
    }

    private static func counted(_ count: Int, _ noun: String) -> String {
        "\(count) \(noun)\(count == 1 ? "" : "s")"
    }
}
