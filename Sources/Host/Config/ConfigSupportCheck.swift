// What a valid configuration asks for that this build cannot do (yet), and what it accepts without effect.
//
// Owns `ConfigSupportCheck`. The Go proxy's format is accepted whole so that existing files load unchanged, but
// features arrive here one at a time: every setting whose behaviour is missing is listed as unsupported (the
// `start` command refuses to run with any, `validate` prints them as notes), and settings that are deliberately
// without effect become warnings. When a feature lands, its entry here is the one to delete.

/// Sorts the settings of a valid configuration into "not built yet" and "accepted without effect".
struct ConfigSupportCheck {
    private let config: ProxyConfig
    private let sourceMap: ConfigSourceMap
    private var unsupported: [ConfigError] = []
    private var warnings: [ConfigError] = []

    /// The settings this build cannot run yet, and those it accepts but ignores.
    static func assess(
        _ config: ProxyConfig,
        sourceMap: ConfigSourceMap
    ) -> (unsupported: [ConfigError], warnings: [ConfigError]) {
        var check = ConfigSupportCheck(config: config, sourceMap: sourceMap)
        for (index, connection) in config.clusterConnections.enumerated() {
            check.assess(connection, at: ConfigKeyPath.root.appending("clusterConnections").appending(index: index))
        }
        check.assessTopLevelBlocks()
        return (check.unsupported, check.warnings)
    }

    private init(config: ProxyConfig, sourceMap: ConfigSourceMap) {
        self.config = config
        self.sourceMap = sourceMap
    }

    private mutating func assess(_ connection: ClusterConnectionConfig, at path: ConfigKeyPath) {
        assess(connection.local, at: path.appending("local"), remote: false)
        assess(connection.remote, at: path.appending("remote"), remote: true)
        // failoverVersionIncrementTranslation, replicationEndpoint and shardCount run as the bundled cluster-adapter
        // plugin (GoTranslationKeys); in mode routing the host also terminates the replication streams
        // (docs/design/routing.md).
        if let memberlist = connection.memberlist {
            let memberlistPath = path.appending("memberlist")
            if connection.shardCount?.mode != "routing" {
                noEffect(
                    "has an effect only with shardCount mode routing (replicas sharing its target shards), as in the Go proxy",
                    at: memberlistPath)
            }
            // Replicas tell each other what they hold over their own connections (docs/design/routing.md): the
            // gossip settings of the Go proxy's memberlist have nothing to set here.
            for key in ["bindAddr", "bindPort", "joinAddrs", "tcpOnly", "disableTCPPings", "probeTimeoutMs",
                        "probeIntervalMs"] where sourceMap.contains(memberlistPath.appending(key)) {
                noEffect(
                    "unused: replicas reach each other at memberlist.proxyAddresses, not by memberlist gossip",
                    at: memberlistPath.appending(key))
            }
            if sourceMap.contains(memberlistPath.appending("enabled")) {
                noEffect(
                    "unused, as in the Go proxy: the presence of the memberlist block is what enables it",
                    at: memberlistPath.appending("enabled")
                )
            }
            if !memberlist.shardStrategy.isEmpty {
                noEffect("deprecated and unused, as in the Go proxy", at: memberlistPath.appending("shardStrategy"))
            }
        }
    }

    private mutating func assess(_ side: ClusterDefinition, at path: ConfigKeyPath, remote: Bool) {
        // The mux tunnel joins this proxy to its peer, which is the remote side; the local Temporal is reached
        // and reaches us over TCP.
        if side.connectionType != .tcp, !remote {
            notYet(
                "connectionType \"\(side.connectionType.rawValue)\" for the local side",
                remedy: "use tcp for local; mux-client and mux-server belong to remote",
                at: path.appending("connectionType")
            )
        }
        // A mux-server hands its muxCount sessions to whoever connects first; without verified client certificates a
        // stranger can hold them. The proxy ends a session that takes streams and never serves them, but only once
        // a call has found out.
        if remote, side.connectionType == .muxServer {
            let tls = side.muxAddressInfo?.tls
            if tls?.isEnabled != true || tls?.skipCAVerification == true {
                warnings.append(sourceMap.error(
                    "a mux-server that does not verify client certificates gives its sessions to whoever connects "
                        + "first; set muxAddressInfo.tls (certificatePath, keyPath, remoteCAPath) with "
                        + "skipCAVerification false, or keep the port reachable by the peer proxy only",
                    at: path.appending("connectionType")
                ))
            }
        }
        // TLS is built (Transport/TLSSetup); a block that sets keys without turning TLS on leaves the connection in
        // plain TCP, as in the Go proxy, which the operator should hear about.
        for (key, endpoint) in [("tcpClient", side.tcpClient), ("tcpServer", side.tcpServer),
                                ("muxAddressInfo", side.muxAddressInfo)] {
            if let tls = endpoint?.tls, tls != TLSConfig(), !tls.isEnabled {
                noEffect(
                    "TLS stays off for this endpoint, as in the Go proxy: it needs certificatePath and keyPath, "
                        + "or caServerName (a client that verifies the server); connections here are plain TCP",
                    at: path.appending(key, "tls")
                )
            }
        }
    }

    private mutating func assessTopLevelBlocks() {
        if config.metrics?.prometheusFramework != nil {
            noEffect("unused, as in the Go proxy", at: .root.appending("metrics", "prometheus", "framework"))
        }
        if config.profiling != nil {
            let addressPath = ConfigKeyPath.root.appending("profiling", "pprofAddress")
            noEffect(
                "not served: pprof is specific to the Go runtime",
                at: sourceMap.contains(addressPath) ? addressPath : .root.appending("profiling")
            )
        }
        if config.logging?.disabled == true {
            noEffect(
                "unused at the root, as in the Go proxy; silence one component with logConfigs.<component>.disabled",
                at: .root.appending("logging", "disabled")
            )
        }
        assessLogConfigs()
    }

    /// `logConfigs` names components; a name this proxy does not log under changes nothing, which is worth a
    /// warning rather than a refusal: the Go proxy accepts any name the same way.
    private mutating func assessLogConfigs() {
        for name in config.logConfigs.keys.sorted() {
            let path = ConfigKeyPath.root.appending("logConfigs", name)
            guard let component = LogComponent(name: name) else {
                let suggestion = KeySuggestion.closest(to: name, among: LogComponent.names)
                    .map { "did you mean \"\($0)\"? " }
                noEffect(
                    "unknown log component \"\(name)\"; \(suggestion ?? "")the components are "
                        + LogComponent.names.joined(separator: ", "),
                    at: path
                )
                continue
            }
            if !component.hasLogSites {
                noEffect("nothing in this build logs as \(name) (a Go proxy part that is not built here)", at: path)
            }
            if config.logConfigs[name]?.level != nil {
                noEffect(
                    "the log level is the same for every component (logging.level or --log-level)",
                    at: path.appending("level")
                )
            }
        }
    }

    /// Records a setting whose behaviour this build does not have, with the way to run without it.
    private mutating func notYet(_ feature: String, remedy: String, at path: ConfigKeyPath) {
        unsupported.append(sourceMap.error(
            "\(feature) is not supported yet by this build; \(remedy), or wait for a build that supports it",
            at: path
        ))
    }

    /// Records a setting that is accepted but deliberately changes nothing.
    private mutating func noEffect(_ reason: String, at path: ConfigKeyPath) {
        warnings.append(sourceMap.error("has no effect: \(reason)", at: path))
    }
}
