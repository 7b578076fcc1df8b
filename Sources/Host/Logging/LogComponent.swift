// Which part of the proxy a log line comes from, for per-component rate limits (`logConfigs.<component>`) and the
// component tag on every line.
//
// Owns `LogComponent` and `Logger.component(_:)`. A logger belongs to a component through the metadata key
// `component`, set once where a long-lived part of the proxy (a listener, a pool, a plugin entry) makes its logger;
// `ProxyLogHandler` reads that key when it is set, not when a line is written, so choosing a component costs
// nothing per line and nothing per call. The names are the Go proxy's where the same part exists here.

import Logging

/// A part of the proxy whose log lines can be limited or silenced on their own.
public enum LogComponent: Int, CaseIterable, Sendable {
    /// Calls of Temporal's AdminService, except replication streams.
    case adminService
    /// Calls of Temporal's WorkflowService.
    case workflowService
    /// `AdminService/StreamWorkflowReplicationMessages` calls.
    case replicationStreams
    /// Routing mode's replicas (`memberlist`): who holds which shard, the links between replicas.
    case shardManager
    /// Shard-count mode routing (Host/Routing).
    case shardRouting
    /// Start-up, reload and shutdown of the process (Go's `init`).
    case startup
    /// The metrics endpoint.
    case metrics
    /// The health-check endpoints.
    case healthCheck
    /// Go's replication-stream observer; nothing here logs under it.
    case streamObserver
    /// The mux tunnel: sessions dialled or accepted, and calls over them.
    case muxManager
    /// The listeners: accepted connections and what is wrong with them.
    case tcpServer
    /// The connections to the upstreams (each cluster connection's local Temporal and remote side).
    case clusterConnection
    /// The plugin host: plugins' own lines and what the host says about them.
    case interceptor
    /// TLS handshakes, listening and dialling.
    case tlsHandshake
    /// Extension: calls of any other gRPC service (OperatorService, health, reflection) and non-gRPC requests.
    case otherServices
    /// Extension: getting the Temporal schema for the plugins that need it.
    case schema

    /// The metadata key that carries a logger's component.
    public static let metadataKey = "component"

    /// The name used in `logConfigs` and in log lines.
    public var name: String {
        switch self {
        case .adminService: "adminService"
        case .workflowService: "workflowService"
        case .replicationStreams: "replicationStreams"
        case .shardManager: "shardManager"
        case .shardRouting: "shardRouting"
        case .startup: "init"
        case .metrics: "metrics"
        case .healthCheck: "healthCheck"
        case .streamObserver: "streamObserver"
        case .muxManager: "muxManager"
        case .tcpServer: "tcpServer"
        case .clusterConnection: "clusterConnection"
        case .interceptor: "interceptor"
        case .tlsHandshake: "tlsHandshake"
        case .otherServices: "otherServices"
        case .schema: "schema"
        }
    }

    /// The component named `name` in `logConfigs`, or nil for a name this proxy does not know.
    public init?(name: String) {
        guard let found = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = found
    }

    /// Every name `logConfigs` accepts, in declaration order.
    public static var names: [String] { allCases.map(\.name) }

    /// False for Go's components that have no counterpart in this build: settings for them change nothing.
    public var hasLogSites: Bool {
        switch self {
        case .streamObserver: false
        default: true
        }
    }

    /// The Go proxy's built-in rate limit (lines per second) for this component when `logConfigs` sets none.
    ///
    /// Kept for the components that exist here, so a Go config that relies on them logs as much as before.
    public var defaultLinesPerSecond: Double? {
        switch self {
        case .adminService, .shardManager: 3
        case .replicationStreams, .shardRouting: 0.05
        default: nil
        }
    }

    /// The component of a gRPC call, by its `:path`.
    public static func ofCall(path: String) -> LogComponent {
        if path.hasPrefix("/temporal.server.api.adminservice.v1.AdminService/") {
            return path.hasSuffix("/StreamWorkflowReplicationMessages") ? .replicationStreams : .adminService
        }
        if path.hasPrefix("/temporal.api.workflowservice.v1.WorkflowService/") {
            return .workflowService
        }
        return .otherServices
    }
}

extension Logger {
    /// This logger for the lines of `component`: the same metadata, the component's rate limit and tag.
    ///
    /// Call where a long-lived logger is made, not per call or per line: it copies the logger's handler.
    public func component(_ component: LogComponent) -> Logger {
        var logger = self
        logger[metadataKey: LogComponent.metadataKey] = .string(component.name)
        return logger
    }
}
