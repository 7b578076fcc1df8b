// The configuration schema: which keys exist at which place of the file, and which typed value each one fills.
//
// Owns `ProxyConfigDecoder`, which walks a composed YAML tree into a `ProxyConfig`. The key names follow the Go
// s2s-proxy's YAML tags exactly (config/config.go, config/cluster_conn_config.go, encryption/tls.go), plus this
// project's extension blocks `limits`, `shutdown`, `upstream` and, per cluster connection, `schema`. Only shape
// and type problems are found here; rules that relate several values to each other live in `ConfigValidation`.

import Yams

/// Turns the YAML tree of one configuration file into a `ProxyConfig`, reporting every shape and type problem.
struct ProxyConfigDecoder {
    /// The reader that holds the problems found and the position of every key.
    private(set) var reader: YAMLNodeReader
    /// Where relative file paths in the configuration start: the config file's directory (nil: the current one).
    private let baseDirectory: String?

    /// A decoder for the file called `sourceName` in error messages, resolving relative paths against
    /// `baseDirectory`.
    init(sourceName: String, baseDirectory: String? = nil) {
        reader = YAMLNodeReader(sourceName: sourceName)
        self.baseDirectory = baseDirectory
    }

    /// Decodes the whole document; `root` is nil for an empty file. Problems are left in `reader.errors`.
    mutating func decode(_ root: Node?) -> ProxyConfig {
        var config = ProxyConfig()
        guard let root else {
            reader.report(
                "the file is empty; it needs at least one entry under clusterConnections",
                at: .root.appending("clusterConnections")
            )
            return config
        }
        guard let fields = reader.fields(
            of: root,
            at: .root,
            knownKeys: Keys.topLevel,
            retiredKeys: Keys.legacyTopLevel
        ) else {
            return config
        }
        if let connections = reader.items("clusterConnections", in: fields) {
            // A rejected entry keeps its place, so that later checks name the right index.
            config.clusterConnections = connections.map {
                clusterConnection($0.node, at: $0.path) ?? ClusterConnectionConfig()
            }
        }
        if let metrics = reader.mapping("metrics", in: fields, knownKeys: ["prometheus"]) {
            config.metrics = metricsConfig(metrics)
        }
        if let profiling = reader.mapping("profiling", in: fields, knownKeys: ["pprofAddress"]) {
            config.profiling = ProfilingConfig(pprofAddress: reader.string("pprofAddress", in: profiling) ?? "")
        }
        if let logging = reader.mapping("logging", in: fields, knownKeys: Keys.logging) {
            config.logging = loggingConfig(logging)
        }
        for entry in reader.namedEntries("logConfigs", in: fields) ?? [] {
            if let component = reader.fields(of: entry.node, at: entry.path, knownKeys: Keys.logging) {
                config.logConfigs[entry.name] = loggingConfig(component)
            }
        }
        if let limits = reader.mapping(
            "limits", in: fields, knownKeys: ["maxMessageBytes", "handshakeTimeoutSeconds", "idleTimeoutSeconds"]
        ) {
            config.limits.maxMessageBytes =
                reader.integer("maxMessageBytes", in: limits) ?? config.limits.maxMessageBytes
            config.limits.handshakeTimeoutSeconds =
                reader.number("handshakeTimeoutSeconds", in: limits) ?? config.limits.handshakeTimeoutSeconds
            config.limits.idleTimeoutSeconds =
                reader.number("idleTimeoutSeconds", in: limits) ?? config.limits.idleTimeoutSeconds
        }
        if let shutdown = reader.mapping("shutdown", in: fields, knownKeys: ["drainTimeoutSeconds"]) {
            config.shutdown.drainTimeoutSeconds =
                reader.number("drainTimeoutSeconds", in: shutdown) ?? config.shutdown.drainTimeoutSeconds
        }
        if let upstream = reader.mapping("upstream", in: fields, knownKeys: Keys.upstream) {
            config.upstream = upstreamConfig(upstream, defaults: config.upstream)
        }
        return config
    }

    // MARK: - clusterConnections[]

    private mutating func clusterConnection(_ node: Node, at path: ConfigKeyPath) -> ClusterConnectionConfig? {
        guard let fields = reader.fields(of: node, at: path, knownKeys: Keys.clusterConnection) else { return nil }
        var connection = ClusterConnectionConfig()
        connection.name = reader.string("name", in: fields) ?? ""
        connection.local = clusterDefinition("local", in: fields)
        connection.remote = clusterDefinition("remote", in: fields)
        connection.replicationEndpoint = reader.string("replicationEndpoint", in: fields) ?? ""
        if let translation = reader.mapping(
            "failoverVersionIncrementTranslation", in: fields, knownKeys: ["local", "remote"]
        ) {
            connection.failoverVersionIncrementTranslation = FailoverVersionIncrementTranslation(
                local: reader.integer("local", in: translation) ?? 0,
                remote: reader.integer("remote", in: translation) ?? 0
            )
        }
        if let acl = reader.mapping("aclPolicy", in: fields, knownKeys: ["allowedMethods", "allowedNamespaces"]) {
            connection.aclPolicy = aclPolicy(acl)
        }
        if let translation = reader.mapping("namespaceTranslation", in: fields, knownKeys: ["mappings"]) {
            connection.namespaceTranslation = namespaceTranslation(translation)
        }
        if let translation = reader.mapping(
            "searchAttributeTranslation", in: fields, knownKeys: ["namespaceMappings"]
        ) {
            connection.searchAttributeTranslation = searchAttributeTranslation(translation)
        }
        if let healthCheck = reader.mapping("remoteClusterHealthCheck", in: fields, knownKeys: Keys.healthCheck) {
            connection.remoteClusterHealthCheck = healthCheckConfig(healthCheck)
        }
        if let healthCheck = reader.mapping("localClusterHealthCheck", in: fields, knownKeys: Keys.healthCheck) {
            connection.localClusterHealthCheck = healthCheckConfig(healthCheck)
        }
        if let shardCount = reader.mapping("shardCount", in: fields, knownKeys: Keys.shardCount) {
            connection.shardCount = ShardCountConfig(
                mode: reader.string("mode", in: shardCount) ?? "",
                localShardCount: reader.integer("localShardCount", in: shardCount) ?? 0,
                remoteShardCount: reader.integer("remoteShardCount", in: shardCount) ?? 0
            )
        }
        if let memberlist = reader.mapping("memberlist", in: fields, knownKeys: Keys.memberlist) {
            connection.memberlist = memberlistConfig(memberlist)
        }
        if let entries = reader.items("plugins", in: fields) {
            connection.plugins = entries.compactMap { pluginEntry($0.node, at: $0.path) }
        }
        if let capture = reader.mapping("capture", in: fields, knownKeys: Keys.capture) {
            let defaults = CaptureConfig(file: "")
            connection.capture = CaptureConfig(
                file: reader.string("file", in: capture).map(resolvedPath) ?? "",
                side: reader.string("side", in: capture) ?? defaults.side,
                methods: reader.stringList("methods", in: capture) ?? [],
                namespaces: reader.stringList("namespaces", in: capture) ?? [],
                maxFileBytes: reader.integer("maxFileBytes", in: capture) ?? defaults.maxFileBytes,
                maxFiles: reader.integer("maxFiles", in: capture) ?? defaults.maxFiles,
                redactHeaders: reader.stringList("redactHeaders", in: capture) ?? []
            )
        }
        if let schema = reader.mapping("schema", in: fields, knownKeys: ["file", "reflectionAddress"]) {
            connection.schema = SchemaConfig(
                file: reader.string("file", in: schema).map(resolvedPath),
                reflectionAddress: reader.string("reflectionAddress", in: schema)
            )
        }
        return connection
    }

    /// One `plugins[]` entry: exactly one of `name` or `path`, and optional `side`, `onError`, `options`.
    private mutating func pluginEntry(_ node: Node, at path: ConfigKeyPath) -> PluginEntryConfig? {
        guard let fields = reader.fields(of: node, at: path, knownKeys: Keys.pluginEntry) else { return nil }
        let name = reader.string("name", in: fields)
        let file = reader.string("path", in: fields)
        var entry: PluginEntryConfig
        switch (name, file) {
        case (let name?, nil) where !name.isEmpty:
            entry = PluginEntryConfig(source: .bundled(name))
        case (nil, let file?) where !file.isEmpty:
            entry = PluginEntryConfig(source: .path(resolvedPath(file)))
        case (.some, .some):
            reader.report("give either name (a bundled plugin) or path (a plugin file), not both", at: path)
            return nil
        default:
            if !fields.has("name"), !fields.has("path") {
                reader.report("a plugin entry needs name (a bundled plugin) or path (a plugin file)", at: path)
            } else {
                reader.report("the plugin name or path is empty", at: path.appending(fields.has("name") ? "name" : "path"))
            }
            return nil
        }
        if let side = reader.string("side", in: fields) {
            if let value = PluginSides(rawValue: side) {
                entry.side = value
            } else {
                reader.report("unknown side \"\(side)\"; use inbound, outbound or both", at: path.appending("side"))
            }
        }
        if let policy = reader.string("onError", in: fields) {
            if let value = PluginFailurePolicy(rawValue: policy) {
                entry.onError = value
            } else {
                reader.report("unknown onError \"\(policy)\"; use failClosed or failOpen", at: path.appending("onError"))
            }
        }
        if let options = reader.json("options", in: fields) {
            if options.hasPrefix("{") {
                entry.optionsJSON = options
            } else {
                reader.report("options must be a mapping (key: value pairs)", at: path.appending("options"))
            }
        }
        return entry
    }

    /// `local:` or `remote:`; both are required, and so is their `connectionType`.
    private mutating func clusterDefinition(_ side: String, in connection: MappingFields) -> ClusterDefinition {
        var definition = ClusterDefinition()
        let path = connection.path.appending(side)
        guard connection.has(side) else {
            reader.report(
                "missing; every cluster connection needs both local and remote, each with a connectionType",
                at: path
            )
            return definition
        }
        guard let fields = reader.mapping(side, in: connection, knownKeys: Keys.clusterDefinition) else {
            return definition
        }
        let validTypes = "tcp, mux-client, mux-server"
        let typePath = path.appending("connectionType")
        switch reader.string("connectionType", in: fields) {
        case nil where !fields.has("connectionType"):
            reader.report("missing; set it to one of \(validTypes)", at: typePath)
        case "":
            reader.report("empty; set it to one of \(validTypes)", at: typePath)
        case nil:
            break
        case let written?:
            if let type = ConnectionType(rawValue: written) {
                definition.connectionType = type
            } else {
                reader.report("invalid connection type \"\(written)\"; expected one of \(validTypes)", at: typePath)
            }
        }
        definition.tcpClient = endpoint("tcpClient", in: fields)
        definition.tcpServer = endpoint("tcpServer", in: fields)
        definition.muxCount = reader.integer("muxCount", in: fields) ?? 0
        definition.muxAddressInfo = endpoint("muxAddressInfo", in: fields)
        return definition
    }

    private mutating func endpoint(_ key: String, in fields: MappingFields) -> EndpointConfig? {
        guard let endpoint = reader.mapping(key, in: fields, knownKeys: ["address", "tls"]) else { return nil }
        var config = EndpointConfig(address: reader.string("address", in: endpoint) ?? "")
        if let tls = reader.mapping("tls", in: endpoint, knownKeys: Keys.tls) {
            config.tls = TLSConfig(
                certificatePath: reader.string("certificatePath", in: tls) ?? "",
                keyPath: reader.string("keyPath", in: tls) ?? "",
                remoteCAPath: reader.string("remoteCAPath", in: tls) ?? "",
                caServerName: reader.string("caServerName", in: tls) ?? "",
                skipCAVerification: reader.bool("skipCAVerification", in: tls) ?? false
            )
        }
        return config
    }

    private mutating func aclPolicy(_ fields: MappingFields) -> ACLPolicyConfig {
        var policy = ACLPolicyConfig(allowedNamespaces: reader.stringList("allowedNamespaces", in: fields) ?? [])
        if let methods = reader.mapping("allowedMethods", in: fields, knownKeys: ["adminService"]) {
            policy.allowedAdminServiceMethods = reader.stringList("adminService", in: methods)
        }
        return policy
    }

    private mutating func namespaceTranslation(_ fields: MappingFields) -> NamespaceTranslationConfig {
        var translation = NamespaceTranslationConfig()
        for item in reader.items("mappings", in: fields) ?? [] {
            // A rejected entry keeps its place (as an empty mapping), so that later checks name the right index.
            let mapping = reader.fields(of: item.node, at: item.path, knownKeys: ["local", "remote"])
            translation.mappings.append(NamespaceTranslationConfig.Mapping(
                local: mapping.flatMap { reader.string("local", in: $0) } ?? "",
                remote: mapping.flatMap { reader.string("remote", in: $0) } ?? ""
            ))
        }
        return translation
    }

    private mutating func searchAttributeTranslation(_ fields: MappingFields) -> SearchAttributeTranslationConfig {
        var translation = SearchAttributeTranslationConfig()
        for item in reader.items("namespaceMappings", in: fields) ?? [] {
            guard let namespace = reader.fields(
                of: item.node, at: item.path, knownKeys: ["name", "namespaceId", "mappings"]
            ) else {
                continue
            }
            var namespaceMapping = SearchAttributeTranslationConfig.NamespaceMapping(
                name: reader.string("name", in: namespace) ?? "",
                namespaceId: reader.string("namespaceId", in: namespace) ?? ""
            )
            for fieldItem in reader.items("mappings", in: namespace) ?? [] {
                guard let field = reader.fields(
                    of: fieldItem.node, at: fieldItem.path, knownKeys: ["localFieldName", "remoteFieldName"]
                ) else {
                    continue
                }
                namespaceMapping.mappings.append(SearchAttributeTranslationConfig.FieldMapping(
                    localFieldName: reader.string("localFieldName", in: field) ?? "",
                    remoteFieldName: reader.string("remoteFieldName", in: field) ?? ""
                ))
            }
            translation.namespaceMappings.append(namespaceMapping)
        }
        return translation
    }

    private mutating func healthCheckConfig(_ fields: MappingFields) -> HealthCheckConfig {
        HealthCheckConfig(
            protocol: reader.string("protocol", in: fields) ?? "",
            listenAddress: reader.string("listenAddress", in: fields) ?? ""
        )
    }

    private mutating func memberlistConfig(_ fields: MappingFields) -> MemberlistConfig {
        var proxyAddresses: [String: String] = [:]
        for entry in reader.namedEntries("proxyAddresses", in: fields) ?? [] {
            proxyAddresses[entry.name] = reader.string(from: entry.node, at: entry.path)
        }
        return MemberlistConfig(
            enabled: reader.bool("enabled", in: fields) ?? false,
            nodeName: reader.string("nodeName", in: fields) ?? "",
            bindAddr: reader.string("bindAddr", in: fields) ?? "",
            bindPort: reader.integer("bindPort", in: fields) ?? 0,
            joinAddrs: reader.stringList("joinAddrs", in: fields) ?? [],
            shardStrategy: reader.string("shardStrategy", in: fields) ?? "",
            proxyAddresses: proxyAddresses,
            tcpOnly: reader.bool("tcpOnly", in: fields) ?? false,
            disableTCPPings: reader.bool("disableTCPPings", in: fields) ?? false,
            probeTimeoutMs: reader.integer("probeTimeoutMs", in: fields) ?? 0,
            probeIntervalMs: reader.integer("probeIntervalMs", in: fields) ?? 0
        )
    }

    /// `path` as written if absolute (or empty, which validation reports), else joined to `baseDirectory`.
    private func resolvedPath(_ path: String) -> String {
        guard !path.isEmpty, !path.hasPrefix("/"), let baseDirectory else { return path }
        return baseDirectory.hasSuffix("/") ? baseDirectory + path : "\(baseDirectory)/\(path)"
    }

    // MARK: - Top-level blocks

    private mutating func metricsConfig(_ fields: MappingFields) -> MetricsConfig {
        var metrics = MetricsConfig()
        if let prometheus = reader.mapping("prometheus", in: fields, knownKeys: ["listenAddress", "framework"]) {
            metrics.prometheusListenAddress = reader.string("listenAddress", in: prometheus)
            metrics.prometheusFramework = reader.string("framework", in: prometheus)
        }
        return metrics
    }

    private mutating func loggingConfig(_ fields: MappingFields) -> LoggingConfig {
        LoggingConfig(
            throttleMaxRPS: reader.number("throttleMaxRPS", in: fields),
            disabled: reader.bool("disabled", in: fields) ?? false,
            level: reader.string("level", in: fields)
        )
    }

    private mutating func upstreamConfig(_ fields: MappingFields, defaults: UpstreamConfig) -> UpstreamConfig {
        UpstreamConfig(
            connectTimeoutSeconds: reader.number("connectTimeoutSeconds", in: fields)
                ?? defaults.connectTimeoutSeconds,
            reconnectBackoffInitialSeconds: reader.number("reconnectBackoffInitialSeconds", in: fields)
                ?? defaults.reconnectBackoffInitialSeconds,
            reconnectBackoffMaxSeconds: reader.number("reconnectBackoffMaxSeconds", in: fields)
                ?? defaults.reconnectBackoffMaxSeconds,
            keepaliveIntervalSeconds: reader.number("keepaliveIntervalSeconds", in: fields)
                ?? defaults.keepaliveIntervalSeconds
        )
    }

    // MARK: - Key names

    /// The keys valid at each place of the file.
    private enum Keys {
        static let topLevel = [
            "clusterConnections", "metrics", "profiling", "logging", "logConfigs", "limits", "shutdown", "upstream",
        ]
        /// Top-level keys of the Go proxy's legacy format, which it no longer reads either.
        static let legacyTopLevel = Dictionary(
            uniqueKeysWithValues: ["inbound", "outbound", "mux", "api_overrides"].map { key in
                (key, "it belongs to the legacy configuration format that the Go proxy removed; "
                    + "describe each local/remote pairing under clusterConnections instead")
            }
        )
        static let clusterConnection = [
            "name", "local", "remote", "replicationEndpoint", "failoverVersionIncrementTranslation", "aclPolicy",
            "namespaceTranslation", "searchAttributeTranslation", "remoteClusterHealthCheck",
            "localClusterHealthCheck", "shardCount", "memberlist", "plugins", "schema", "capture",
        ]
        static let capture = ["file", "side", "methods", "namespaces", "maxFileBytes", "maxFiles", "redactHeaders"]
        static let pluginEntry = ["name", "path", "side", "onError", "options"]
        static let clusterDefinition = ["connectionType", "tcpClient", "tcpServer", "muxCount", "muxAddressInfo"]
        static let tls = ["certificatePath", "keyPath", "remoteCAPath", "caServerName", "skipCAVerification"]
        static let healthCheck = ["protocol", "listenAddress"]
        static let shardCount = ["mode", "localShardCount", "remoteShardCount"]
        static let memberlist = [
            "enabled", "nodeName", "bindAddr", "bindPort", "joinAddrs", "shardStrategy", "proxyAddresses", "tcpOnly",
            "disableTCPPings", "probeTimeoutMs", "probeIntervalMs",
        ]
        static let logging = ["throttleMaxRPS", "disabled", "level"]
        static let upstream = [
            "connectTimeoutSeconds", "reconnectBackoffInitialSeconds", "reconnectBackoffMaxSeconds",
            "keepaliveIntervalSeconds",
        ]
    }
}
