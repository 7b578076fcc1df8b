// TEMPORARY: replaced by the real loader from the config branch before this reaches main.
import Foundation
import Yams

public struct ConfigErrors: Error, CustomStringConvertible {
    public var errors: [String]
    public var description: String { errors.joined(separator: "\n") }
}

public struct LoadedConfig: Sendable {
    public var config: ProxyConfig
    public var unsupported: [String] = []
    public var warnings: [String] = []
    public var summary: String { "config OK: \(config.clusterConnections.count) cluster connections" }
}

public enum ConfigLoader {
    public static func load(path: String) throws -> LoadedConfig {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        guard let root = try Yams.load(yaml: text) as? [String: Any] else { throw ConfigErrors(errors: ["not a map"]) }
        var config = ProxyConfig()
        for entry in root["clusterConnections"] as? [[String: Any]] ?? [] {
            func endpoint(_ side: String, _ key: String) -> EndpointConfig? {
                guard let s = entry[side] as? [String: Any], let e = s[key] as? [String: Any] else { return nil }
                return EndpointConfig(address: "\(e["address"] ?? "")")
            }
            config.clusterConnections.append(ClusterConnectionConfig(
                name: entry["name"] as? String ?? "",
                local: ClusterDefinition(tcpClient: endpoint("local", "tcpClient"), tcpServer: endpoint("local", "tcpServer")),
                remote: ClusterDefinition(tcpClient: endpoint("remote", "tcpClient"), tcpServer: endpoint("remote", "tcpServer"))
            ))
        }
        if let limits = root["limits"] as? [String: Any], let max = limits["maxMessageBytes"] as? Int {
            config.limits.maxMessageBytes = max
        }
        if let s = root["shutdown"] as? [String: Any], let t = s["drainTimeoutSeconds"] as? Double ?? (s["drainTimeoutSeconds"] as? Int).map(Double.init) {
            config.shutdown.drainTimeoutSeconds = t
        }
        return LoadedConfig(config: config)
    }
}
