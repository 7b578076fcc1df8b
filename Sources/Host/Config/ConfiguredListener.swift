// Which keys of a configuration make the proxy open a listening socket.
//
// Owns `ConfiguredListener` and `ProxyConfig.configuredListeners`: the single list of listen addresses that both
// the collision check in `ConfigValidation` and the `validate` summary count. It opens nothing.

/// One address the configuration asks the proxy to listen on, with the key that asks for it.
struct ConfiguredListener: Sendable {
    /// The key holding the address, e.g. `clusterConnections[0].local.tcpServer.address`.
    let keyPath: ConfigKeyPath
    /// The address as written.
    let address: String
}

extension ProxyConfig {
    /// Every non-empty listen address of the file, in file order: per connection the `local` and `remote`
    /// listeners (`tcpServer` of a tcp side, `muxAddressInfo` of a mux-server side) and the health checks, then
    /// the Prometheus endpoint. A mux-client side dials out and listens on nothing.
    var configuredListeners: [ConfiguredListener] {
        var listeners: [ConfiguredListener] = []
        func add(_ address: String?, at path: ConfigKeyPath) {
            guard let address, !address.isEmpty else { return }
            listeners.append(ConfiguredListener(keyPath: path, address: address))
        }
        for (index, connection) in clusterConnections.enumerated() {
            let connectionPath = ConfigKeyPath.root.appending("clusterConnections").appending(index: index)
            for (side, definition) in [("local", connection.local), ("remote", connection.remote)] {
                let sidePath = connectionPath.appending(side)
                switch definition.connectionType {
                case .tcp:
                    add(definition.tcpServer?.address, at: sidePath.appending("tcpServer", "address"))
                case .muxServer:
                    add(definition.muxAddressInfo?.address, at: sidePath.appending("muxAddressInfo", "address"))
                case .muxClient:
                    break
                }
            }
            add(
                connection.remoteClusterHealthCheck?.listenAddress,
                at: connectionPath.appending("remoteClusterHealthCheck", "listenAddress")
            )
            add(
                connection.localClusterHealthCheck?.listenAddress,
                at: connectionPath.appending("localClusterHealthCheck", "listenAddress")
            )
        }
        add(
            metrics?.prometheusListenAddress,
            at: ConfigKeyPath.root.appending("metrics", "prometheus", "listenAddress")
        )
        return listeners
    }
}
