// Typed configuration of the proxy.
//
// The shape follows the Go s2s-proxy's YAML format key for key, so that an existing deployment's file loads
// unchanged; keys that exist only here (`limits`, `shutdown`, `upstream`, and `schema` per cluster connection)
// are extensions with defaults.
// This file only declares the values; `ConfigLoader` reads them from YAML and `ConfigValidation` checks them.

/// The whole configuration file.
public struct ProxyConfig: Sendable, Equatable {
    /// One entry per local <-> remote pairing; each runs independently in one process.
    public var clusterConnections: [ClusterConnectionConfig]
    /// `metrics:` block (Prometheus endpoint).
    public var metrics: MetricsConfig?
    /// `profiling:` block. pprof is specific to the Go runtime.
    public var profiling: ProfilingConfig?
    /// `logging:` block (root logger).
    public var logging: LoggingConfig?
    /// `logConfigs:` per-component logger settings, by component name.
    public var logConfigs: [String: LoggingConfig]
    /// Extension: per-message limits.
    public var limits: LimitsConfig
    /// Extension: graceful-shutdown behaviour.
    public var shutdown: ShutdownConfig
    /// Extension: how upstream connections are made.
    public var upstream: UpstreamConfig

    public init(
        clusterConnections: [ClusterConnectionConfig] = [],
        metrics: MetricsConfig? = nil,
        profiling: ProfilingConfig? = nil,
        logging: LoggingConfig? = nil,
        logConfigs: [String: LoggingConfig] = [:],
        limits: LimitsConfig = LimitsConfig(),
        shutdown: ShutdownConfig = ShutdownConfig(),
        upstream: UpstreamConfig = UpstreamConfig()
    ) {
        self.clusterConnections = clusterConnections
        self.metrics = metrics
        self.profiling = profiling
        self.logging = logging
        self.logConfigs = logConfigs
        self.limits = limits
        self.shutdown = shutdown
        self.upstream = upstream
    }
}

/// One `clusterConnections[]` entry: how the local Temporal and the remote side are reached and served.
public struct ClusterConnectionConfig: Sendable, Equatable {
    public var name: String
    public var local: ClusterDefinition
    public var remote: ClusterDefinition
    public var replicationEndpoint: String
    public var failoverVersionIncrementTranslation: FailoverVersionIncrementTranslation?
    public var aclPolicy: ACLPolicyConfig?
    public var namespaceTranslation: NamespaceTranslationConfig?
    public var searchAttributeTranslation: SearchAttributeTranslationConfig?
    public var remoteClusterHealthCheck: HealthCheckConfig?
    public var localClusterHealthCheck: HealthCheckConfig?
    public var shardCount: ShardCountConfig?
    public var memberlist: MemberlistConfig?
    /// Extension: the plugin chain, in order (`plugins:`).
    public var plugins: [PluginEntryConfig] = []
    /// Extension `schema:`: where the Temporal schema comes from when a plugin of this connection needs it.
    public var schema: SchemaConfig?
    /// Extension `capture:`: record calls of this connection into a file (docs/PLUGINS.md, "Capturing traffic").
    public var capture: CaptureConfig?

    public init(
        name: String = "",
        local: ClusterDefinition = ClusterDefinition(),
        remote: ClusterDefinition = ClusterDefinition(),
        replicationEndpoint: String = "",
        failoverVersionIncrementTranslation: FailoverVersionIncrementTranslation? = nil,
        aclPolicy: ACLPolicyConfig? = nil,
        namespaceTranslation: NamespaceTranslationConfig? = nil,
        searchAttributeTranslation: SearchAttributeTranslationConfig? = nil,
        remoteClusterHealthCheck: HealthCheckConfig? = nil,
        localClusterHealthCheck: HealthCheckConfig? = nil,
        shardCount: ShardCountConfig? = nil,
        memberlist: MemberlistConfig? = nil,
        schema: SchemaConfig? = nil
    ) {
        self.name = name
        self.local = local
        self.remote = remote
        self.replicationEndpoint = replicationEndpoint
        self.failoverVersionIncrementTranslation = failoverVersionIncrementTranslation
        self.aclPolicy = aclPolicy
        self.namespaceTranslation = namespaceTranslation
        self.searchAttributeTranslation = searchAttributeTranslation
        self.remoteClusterHealthCheck = remoteClusterHealthCheck
        self.localClusterHealthCheck = localClusterHealthCheck
        self.shardCount = shardCount
        self.memberlist = memberlist
        self.schema = schema
    }
}

/// The transport kind of one side of a cluster connection.
public enum ConnectionType: String, Sendable, Equatable {
    case tcp
    case muxClient = "mux-client"
    case muxServer = "mux-server"
}

/// `local:` or `remote:` of a cluster connection.
public struct ClusterDefinition: Sendable, Equatable {
    public var connectionType: ConnectionType
    public var tcpClient: EndpointConfig?
    public var tcpServer: EndpointConfig?
    /// Number of yamux sessions; 0 in the file means the default of 10.
    public var muxCount: Int
    public var muxAddressInfo: EndpointConfig?

    public init(
        connectionType: ConnectionType = .tcp,
        tcpClient: EndpointConfig? = nil,
        tcpServer: EndpointConfig? = nil,
        muxCount: Int = 0,
        muxAddressInfo: EndpointConfig? = nil
    ) {
        self.connectionType = connectionType
        self.tcpClient = tcpClient
        self.tcpServer = tcpServer
        self.muxCount = muxCount
        self.muxAddressInfo = muxAddressInfo
    }
}

/// An address to dial or listen on, with its optional TLS block.
public struct EndpointConfig: Sendable, Equatable {
    /// `host:port`.
    public var address: String
    public var tls: TLSConfig?

    public init(address: String = "", tls: TLSConfig? = nil) {
        self.address = address
        self.tls = tls
    }
}

/// A `tls:` block, as the Go proxy defines it.
public struct TLSConfig: Sendable, Equatable {
    public var certificatePath: String
    public var keyPath: String
    public var remoteCAPath: String
    public var caServerName: String
    public var skipCAVerification: Bool

    public init(
        certificatePath: String = "",
        keyPath: String = "",
        remoteCAPath: String = "",
        caServerName: String = "",
        skipCAVerification: Bool = false
    ) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.remoteCAPath = remoteCAPath
        self.caServerName = caServerName
        self.skipCAVerification = skipCAVerification
    }

    /// TLS is on when a certificate and key are both given, or a server name to verify is.
    public var isEnabled: Bool {
        (!certificatePath.isEmpty && !keyPath.isEmpty) || !caServerName.isEmpty
    }
}

/// `failoverVersionIncrementTranslation:`; 0 means "no override" for that direction.
public struct FailoverVersionIncrementTranslation: Sendable, Equatable {
    public var local: Int64
    public var remote: Int64

    public init(local: Int64 = 0, remote: Int64 = 0) {
        self.local = local
        self.remote = remote
    }
}

/// `aclPolicy:`.
public struct ACLPolicyConfig: Sendable, Equatable {
    /// `allowedMethods.adminService`; nil when the key is absent.
    public var allowedAdminServiceMethods: [String]?
    public var allowedNamespaces: [String]

    public init(allowedAdminServiceMethods: [String]? = nil, allowedNamespaces: [String] = []) {
        self.allowedAdminServiceMethods = allowedAdminServiceMethods
        self.allowedNamespaces = allowedNamespaces
    }
}

/// `namespaceTranslation:`.
public struct NamespaceTranslationConfig: Sendable, Equatable {
    public struct Mapping: Sendable, Equatable {
        public var local: String
        public var remote: String
        public init(local: String, remote: String) {
            self.local = local
            self.remote = remote
        }
    }

    public var mappings: [Mapping]

    public init(mappings: [Mapping] = []) {
        self.mappings = mappings
    }
}

/// `searchAttributeTranslation:`.
public struct SearchAttributeTranslationConfig: Sendable, Equatable {
    public struct FieldMapping: Sendable, Equatable {
        public var localFieldName: String
        public var remoteFieldName: String
        public init(localFieldName: String, remoteFieldName: String) {
            self.localFieldName = localFieldName
            self.remoteFieldName = remoteFieldName
        }
    }

    public struct NamespaceMapping: Sendable, Equatable {
        public var name: String
        public var namespaceId: String
        public var mappings: [FieldMapping]
        public init(name: String = "", namespaceId: String = "", mappings: [FieldMapping] = []) {
            self.name = name
            self.namespaceId = namespaceId
            self.mappings = mappings
        }
    }

    public var namespaceMappings: [NamespaceMapping]

    public init(namespaceMappings: [NamespaceMapping] = []) {
        self.namespaceMappings = namespaceMappings
    }
}

/// `remoteClusterHealthCheck:` / `localClusterHealthCheck:`.
public struct HealthCheckConfig: Sendable, Equatable {
    public var `protocol`: String
    public var listenAddress: String

    public init(protocol: String = "", listenAddress: String = "") {
        self.protocol = `protocol`
        self.listenAddress = listenAddress
    }
}

/// `shardCount:`.
public struct ShardCountConfig: Sendable, Equatable {
    /// "" (pass-through), "lcm" or "routing".
    public var mode: String
    public var localShardCount: Int32
    public var remoteShardCount: Int32

    public init(mode: String = "", localShardCount: Int32 = 0, remoteShardCount: Int32 = 0) {
        self.mode = mode
        self.localShardCount = localShardCount
        self.remoteShardCount = remoteShardCount
    }
}

/// `memberlist:` (cross-replica gossip of the Go proxy's routing mode).
public struct MemberlistConfig: Sendable, Equatable {
    public var enabled: Bool
    public var nodeName: String
    public var bindAddr: String
    public var bindPort: Int
    public var joinAddrs: [String]
    public var shardStrategy: String
    public var proxyAddresses: [String: String]
    public var tcpOnly: Bool
    public var disableTCPPings: Bool
    public var probeTimeoutMs: Int
    public var probeIntervalMs: Int

    public init(
        enabled: Bool = false,
        nodeName: String = "",
        bindAddr: String = "",
        bindPort: Int = 0,
        joinAddrs: [String] = [],
        shardStrategy: String = "",
        proxyAddresses: [String: String] = [:],
        tcpOnly: Bool = false,
        disableTCPPings: Bool = false,
        probeTimeoutMs: Int = 0,
        probeIntervalMs: Int = 0
    ) {
        self.enabled = enabled
        self.nodeName = nodeName
        self.bindAddr = bindAddr
        self.bindPort = bindPort
        self.joinAddrs = joinAddrs
        self.shardStrategy = shardStrategy
        self.proxyAddresses = proxyAddresses
        self.tcpOnly = tcpOnly
        self.disableTCPPings = disableTCPPings
        self.probeTimeoutMs = probeTimeoutMs
        self.probeIntervalMs = probeIntervalMs
    }
}

/// `metrics:`.
public struct MetricsConfig: Sendable, Equatable {
    /// `metrics.prometheus.listenAddress`; nil when absent.
    public var prometheusListenAddress: String?
    /// `metrics.prometheus.framework` (unused by the Go proxy too).
    public var prometheusFramework: String?

    public init(prometheusListenAddress: String? = nil, prometheusFramework: String? = nil) {
        self.prometheusListenAddress = prometheusListenAddress
        self.prometheusFramework = prometheusFramework
    }
}

/// `profiling:`.
public struct ProfilingConfig: Sendable, Equatable {
    public var pprofAddress: String

    public init(pprofAddress: String = "") {
        self.pprofAddress = pprofAddress
    }
}

/// `logging:` and each `logConfigs.<component>:`.
public struct LoggingConfig: Sendable, Equatable {
    public var throttleMaxRPS: Double?
    public var disabled: Bool
    /// Extension: the log level when the command line gives none (`trace` ... `critical`, or `warn`).
    public var level: String?

    public init(throttleMaxRPS: Double? = nil, disabled: Bool = false, level: String? = nil) {
        self.throttleMaxRPS = throttleMaxRPS
        self.disabled = disabled
        self.level = level
    }

    /// The levels `level` (and the command line's `--log-level`) accept, with the Go proxy's `warn`.
    public static let levelNames = ["trace", "debug", "info", "notice", "warning", "warn", "error", "critical"]
}

/// Extension `schema:` of a cluster connection. Without `file`, the schema is pulled by gRPC reflection from
/// `reflectionAddress`, or from the local Temporal (`local.tcpClient.address`) when that is absent too.
public struct SchemaConfig: Sendable, Equatable {
    /// A saved binary FileDescriptorSet; a relative path in the file is resolved against the config file's
    /// directory, so this holds the path to open.
    public var file: String?
    /// `host:port` of a server with gRPC reflection.
    public var reflectionAddress: String?

    public init(file: String? = nil, reflectionAddress: String? = nil) {
        self.file = file
        self.reflectionAddress = reflectionAddress
    }
}

/// Extension `capture:` of a cluster connection: which calls to record, and where.
public struct CaptureConfig: Sendable, Equatable {
    /// The file records are appended to (JSON Lines); a relative path is resolved against the config file's
    /// directory, so this holds the path to open.
    public var file: String
    /// `inbound`, `outbound` or `both` (default).
    public var side: String
    /// Method paths to record; empty: every method.
    public var methods: [String]
    /// `temporal-namespace` values (as received) to record; empty: every call.
    public var namespaces: [String]
    /// Size at which the file is rotated (`file` -> `file.1` ...).
    public var maxFileBytes: Int
    /// How many files are kept, the current one included.
    public var maxFiles: Int
    /// Header names whose values are written as "<redacted>", besides the built-in ones.
    public var redactHeaders: [String]

    public init(
        file: String, side: String = "both", methods: [String] = [], namespaces: [String] = [],
        maxFileBytes: Int = 64 * 1024 * 1024, maxFiles: Int = 4, redactHeaders: [String] = []
    ) {
        self.file = file
        self.side = side
        self.methods = methods
        self.namespaces = namespaces
        self.maxFileBytes = maxFileBytes
        self.maxFiles = maxFiles
        self.redactHeaders = redactHeaders
    }
}

/// Extension `limits:`.
public struct LimitsConfig: Sendable, Equatable {
    /// Largest gRPC message accepted in either direction; larger ones fail the call with RESOURCE_EXHAUSTED.
    public var maxMessageBytes: Int
    /// How long an accepted connection may take to send the HTTP/2 client preface and its first SETTINGS (over TLS,
    /// the TLS handshake included) before it is closed.
    public var handshakeTimeoutSeconds: Double
    /// How long an accepted connection may go without a call before the proxy sends GOAWAY and closes it; 0: never.
    public var idleTimeoutSeconds: Double

    public init(maxMessageBytes: Int = 128 * 1024 * 1024, handshakeTimeoutSeconds: Double = 10, idleTimeoutSeconds: Double = 300) {
        self.maxMessageBytes = maxMessageBytes
        self.handshakeTimeoutSeconds = handshakeTimeoutSeconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
    }
}

/// Extension `shutdown:`.
public struct ShutdownConfig: Sendable, Equatable {
    /// How long SIGTERM/SIGINT waits for in-flight calls before closing them.
    public var drainTimeoutSeconds: Double

    public init(drainTimeoutSeconds: Double = 30) {
        self.drainTimeoutSeconds = drainTimeoutSeconds
    }
}

/// Extension `upstream:`.
public struct UpstreamConfig: Sendable, Equatable {
    /// How long one TCP connect to an upstream address may take.
    public var connectTimeoutSeconds: Double
    /// First reconnect delay after an upstream connection fails or drops; grows by 1.6x per failure.
    public var reconnectBackoffInitialSeconds: Double
    /// Upper bound of the reconnect delay.
    public var reconnectBackoffMaxSeconds: Double
    /// A connection with calls in flight that has been silent this long gets an HTTP/2 PING; unanswered for another
    /// interval, the connection is closed and replaced. 0 turns this off. The default, 5 minutes, is the most
    /// frequent ping a grpc-go server accepts by default (`keepalive.EnforcementPolicy.MinTime`); Temporal's
    /// frontend accepts pings every 10 s.
    public var keepaliveIntervalSeconds: Double

    public init(
        connectTimeoutSeconds: Double = 5,
        reconnectBackoffInitialSeconds: Double = 1,
        reconnectBackoffMaxSeconds: Double = 10,
        keepaliveIntervalSeconds: Double = 300
    ) {
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.reconnectBackoffInitialSeconds = reconnectBackoffInitialSeconds
        self.reconnectBackoffMaxSeconds = reconnectBackoffMaxSeconds
        self.keepaliveIntervalSeconds = keepaliveIntervalSeconds
    }
}

/// One `plugins[]` entry of a cluster connection: which plugin, on which side, with which options.
public struct PluginEntryConfig: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        /// `name:` - a bundled plugin, found as `lib<name>.so` (see `PluginLibrary.load(bundledName:)`).
        case bundled(String)
        /// `path:` - a file; relative paths are resolved against the config file's directory when loaded.
        case path(String)
    }

    public var source: Source
    /// `side:` - which listener's calls the plugin sees (default both).
    public var side: PluginSides
    /// `onError:` - what a plugin failure does to the call (default failClosed).
    public var onError: PluginFailurePolicy
    /// `options:` - handed to the plugin as a JSON object ("{}" when absent).
    public var optionsJSON: String

    public init(source: Source, side: PluginSides = .both, onError: PluginFailurePolicy = .failClosed, optionsJSON: String = "{}") {
        self.source = source
        self.side = side
        self.onError = onError
        self.optionsJSON = optionsJSON
    }
}
