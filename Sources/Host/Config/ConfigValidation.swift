// The rules a well-typed configuration must still satisfy before the proxy can run it.
//
// Owns `ConfigValidation`: required addresses per connection type, address syntax, listener collisions, unique
// names and namespace mappings, health-check protocol, shard-count mode, the schema source (one of a file that
// exists or a reflection address), TLS blocks (built as `start` builds them, files read and checked), and the
// ranges of numbers. Where the Go
// proxy accepts a file but then misbehaves (duplicate connection names silently shadow each other), we refuse it.
// It reads positions from the `ConfigSourceMap` and stays quiet about values the decoder already rejected, so a
// single mistake gives a single error. Whether this build can run a valid setting is `ConfigSupportCheck`'s job.

import Foundation

/// Checks a decoded `ProxyConfig` and collects every rule it breaks.
struct ConfigValidation {
    private let config: ProxyConfig
    private let sourceMap: ConfigSourceMap
    private var errors: [ConfigError] = []

    /// Every rule that `config` breaks, located with `sourceMap`.
    static func problems(in config: ProxyConfig, sourceMap: ConfigSourceMap) -> [ConfigError] {
        var validation = ConfigValidation(config: config, sourceMap: sourceMap)
        validation.checkClusterConnections()
        validation.checkLogging()
        validation.checkListenerCollisions()
        validation.checkTopLevelBlocks()
        return validation.errors
    }

    private init(config: ProxyConfig, sourceMap: ConfigSourceMap) {
        self.config = config
        self.sourceMap = sourceMap
    }

    // MARK: - logging

    private mutating func checkLogging() {
        checkRate(config.logging?.throttleMaxRPS, at: .root.appending("logging", "throttleMaxRPS"))
        for (name, settings) in config.logConfigs {
            checkRate(settings.throttleMaxRPS, at: .root.appending("logConfigs", name, "throttleMaxRPS"))
        }
        let path = ConfigKeyPath.root.appending("logging", "level")
        guard let level = config.logging?.level, !sourceMap.isRejected(path) else { return }
        if !LoggingConfig.levelNames.contains(level.lowercased()) {
            report(
                "unknown log level \"\(level)\"; use one of \(LoggingConfig.levelNames.joined(separator: ", "))",
                at: path
            )
        }
    }

    /// A log rate is lines per second: more than 0 (a limit of none is no `throttleMaxRPS` at all).
    private mutating func checkRate(_ rate: Double?, at path: ConfigKeyPath) {
        guard let rate, !sourceMap.isRejected(path) else { return }
        if !(rate > 0) || !rate.isFinite {
            report("must be more than 0 (log lines per second); leave it out for no limit of its own", at: path)
        }
    }

    // MARK: - clusterConnections

    private mutating func checkClusterConnections() {
        let listPath = ConfigKeyPath.root.appending("clusterConnections")
        if config.clusterConnections.isEmpty, !sourceMap.isRejected(listPath) {
            let state = sourceMap.contains(listPath) ? "empty" : "missing"
            report("\(state); the proxy needs at least one entry under clusterConnections", at: listPath)
        }
        var firstIndexByName: [String: Int] = [:]
        for (index, connection) in config.clusterConnections.enumerated() {
            let path = listPath.appending(index: index)
            guard !sourceMap.isRejected(path) else { continue }
            if !sourceMap.isRejected(path.appending("name")) {
                checkUniqueName(connection.name, index: index, in: listPath, seen: &firstIndexByName)
            }
            checkConnection(connection, at: path)
        }
    }

    /// The Go proxy keys connections by name, so a second connection with the same name silently shadows the
    /// first; we refuse the file instead.
    private mutating func checkUniqueName(
        _ name: String,
        index: Int,
        in listPath: ConfigKeyPath,
        seen firstIndexByName: inout [String: Int]
    ) {
        guard let firstIndex = firstIndexByName[name] else {
            firstIndexByName[name] = index
            return
        }
        let firstPath = listPath.appending(index: firstIndex)
        let problem = name.isEmpty
            ? "has no name, like \(located(firstPath))"
            : "duplicate connection name \"\(name)\", already used by \(located(firstPath))"
        report("\(problem); give every connection its own name", at: listPath.appending(index: index).appending("name"))
    }

    private mutating func checkConnection(_ connection: ClusterConnectionConfig, at path: ConfigKeyPath) {
        checkSide(connection.local, at: path.appending("local"))
        checkSide(connection.remote, at: path.appending("remote"))
        checkAddress(connection.replicationEndpoint, at: path.appending("replicationEndpoint"))
        if let translation = connection.failoverVersionIncrementTranslation {
            for (direction, value) in [("local", translation.local), ("remote", translation.remote)] where value < 0 {
                report(
                    "\(value) is negative; use 0 (no override) or the positive increment to report",
                    at: path.appending("failoverVersionIncrementTranslation", direction)
                )
            }
        }
        if let translation = connection.namespaceTranslation {
            checkNamespaceMappings(translation.mappings, at: path.appending("namespaceTranslation", "mappings"))
        }
        if let translation = connection.searchAttributeTranslation {
            checkSearchAttributeMappings(translation, at: path.appending("searchAttributeTranslation"))
        }
        if let healthCheck = connection.remoteClusterHealthCheck {
            checkHealthCheck(healthCheck, at: path.appending("remoteClusterHealthCheck"))
        }
        if let healthCheck = connection.localClusterHealthCheck {
            checkHealthCheck(healthCheck, at: path.appending("localClusterHealthCheck"))
        }
        if let shardCount = connection.shardCount {
            checkShardCount(shardCount, at: path.appending("shardCount"))
        }
        if let memberlist = connection.memberlist {
            checkMemberlist(memberlist, at: path.appending("memberlist"))
        }
        if let schema = connection.schema {
            checkSchema(schema, at: path.appending("schema"))
        }
        if let capture = connection.capture {
            checkCapture(capture, at: path.appending("capture"))
        }
    }

    private mutating func checkCapture(_ capture: CaptureConfig, at path: ConfigKeyPath) {
        let filePath = path.appending("file")
        if capture.file.isEmpty {
            if !sourceMap.isRejected(filePath) {
                report("missing; set the file calls are recorded into (JSON Lines), or remove capture", at: filePath)
            }
        } else {
            let directory = (capture.file as NSString).deletingLastPathComponent
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: directory.isEmpty ? "." : directory, isDirectory: &isDirectory)
                || !isDirectory.boolValue {
                report("the directory \"\(directory)\" does not exist; create it or record elsewhere", at: filePath)
            }
        }
        if !["inbound", "outbound", "both"].contains(capture.side) {
            report("\"\(capture.side)\" is not a side; use inbound, outbound or both", at: path.appending("side"))
        }
        for (index, method) in capture.methods.enumerated() where !method.hasPrefix("/") || method.dropFirst().split(separator: "/").count != 2 {
            report(
                "\"\(method)\" is not a method path like /temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution",
                at: path.appending("methods").appending(index: index)
            )
        }
        if capture.maxFileBytes < 4096 {
            report("\(capture.maxFileBytes) is too small; give at least 4096 bytes (default 64 MiB)", at: path.appending("maxFileBytes"))
        }
        if capture.maxFiles < 1 {
            report("\(capture.maxFiles) keeps no file; give at least 1 (default 4)", at: path.appending("maxFiles"))
        }
    }

    /// A tcp side dials `tcpClient` and listens on `tcpServer`; a mux side dials or listens on `muxAddressInfo`.
    private mutating func checkSide(_ side: ClusterDefinition, at path: ConfigKeyPath) {
        guard !sourceMap.isRejected(path.appending("connectionType")) else { return }
        switch side.connectionType {
        case .tcp:
            requireAddress(side.tcpClient, at: path.appending("tcpClient"), purpose: "the address this side dials")
            requireAddress(side.tcpServer, at: path.appending("tcpServer"), purpose: "the address this side listens on")
            checkTLS(side.tcpClient?.tls, at: path.appending("tcpClient", "tls")) { tls, label throws(TLSSetupError) in
                _ = try TLSClientSetup(config: tls, label: label)
            }
            checkTLS(side.tcpServer?.tls, at: path.appending("tcpServer", "tls")) { tls, label throws(TLSSetupError) in
                _ = try TLSServerSetup(config: tls, label: label)
            }
        case .muxClient:
            requireAddress(
                side.muxAddressInfo, at: path.appending("muxAddressInfo"), purpose: "the mux server this side dials"
            )
            checkTLS(side.muxAddressInfo?.tls, at: path.appending("muxAddressInfo", "tls")) {
                tls, label throws(TLSSetupError) in
                _ = try TLSClientSetup(config: tls, label: label)
            }
        case .muxServer:
            requireAddress(
                side.muxAddressInfo, at: path.appending("muxAddressInfo"), purpose: "the address this side listens on"
            )
            checkTLS(side.muxAddressInfo?.tls, at: path.appending("muxAddressInfo", "tls")) {
                tls, label throws(TLSSetupError) in
                _ = try TLSServerSetup(config: tls, label: label)
            }
        }
        for (key, endpoint) in [("tcpClient", side.tcpClient), ("tcpServer", side.tcpServer),
                                ("muxAddressInfo", side.muxAddressInfo)] {
            checkAddress(endpoint?.address ?? "", at: path.appending(key, "address"))
        }
        if side.muxCount < 0 {
            report(
                "\(side.muxCount) is negative; use 0 for the default of 10 sessions, or a positive count",
                at: path.appending("muxCount")
            )
        }
    }

    /// Builds the TLS setup of an enabled block as `start` will, so that a config that validates also starts:
    /// files exist and parse, the key matches its certificate, CA bundles hold a CA.
    private mutating func checkTLS(
        _ tls: TLSConfig?,
        at path: ConfigKeyPath,
        build: (TLSConfig, String) throws(TLSSetupError) -> Void
    ) {
        guard let tls, tls.isEnabled, !sourceMap.isRejected(path) else { return }
        do {
            try build(tls, path.description)
        } catch {
            report(error.message, at: error.key.isEmpty ? path : path.appending(error.key))
        }
    }

    private mutating func requireAddress(_ endpoint: EndpointConfig?, at path: ConfigKeyPath, purpose: String) {
        let addressPath = path.appending("address")
        guard endpoint?.address.isEmpty ?? true, !sourceMap.isRejected(addressPath) else { return }
        report("missing; set it to \(purpose), as host:port", at: addressPath)
    }

    private mutating func checkNamespaceMappings(
        _ mappings: [NamespaceTranslationConfig.Mapping],
        at path: ConfigKeyPath
    ) {
        var firstIndexByLocal: [String: Int] = [:]
        var firstIndexByRemote: [String: Int] = [:]
        for (index, mapping) in mappings.enumerated() {
            let itemPath = path.appending(index: index)
            guard !sourceMap.isRejected(itemPath) else { continue }
            for (side, name) in [("local", mapping.local), ("remote", mapping.remote)]
            where name.isEmpty && !sourceMap.isRejected(itemPath.appending(side)) {
                report("missing; each mapping needs a \(side) namespace name", at: itemPath.appending(side))
            }
            if !mapping.local.isEmpty {
                checkUnique(mapping.local, side: "local", index: index, in: path, seen: &firstIndexByLocal)
            }
            if !mapping.remote.isEmpty {
                checkUnique(mapping.remote, side: "remote", index: index, in: path, seen: &firstIndexByRemote)
            }
        }
    }

    /// Translation is a one-to-one map in both directions, so a name may appear once per side.
    private mutating func checkUnique(
        _ name: String,
        side: String,
        index: Int,
        in path: ConfigKeyPath,
        seen firstIndexByName: inout [String: Int]
    ) {
        guard let firstIndex = firstIndexByName[name] else {
            firstIndexByName[name] = index
            return
        }
        let firstPath = path.appending(index: firstIndex)
        report(
            "\(side) namespace \"\(name)\" is mapped twice, by \(located(firstPath)) and "
                + "\(path.appending(index: index)); translation must be one-to-one, so keep one of them",
            at: path.appending(index: index).appending(side)
        )
    }

    private mutating func checkSearchAttributeMappings(
        _ translation: SearchAttributeTranslationConfig,
        at path: ConfigKeyPath
    ) {
        let listPath = path.appending("namespaceMappings")
        // One entry applies to every namespace, as in the Go proxy; with several (which the Go proxy refuses),
        // each is for the namespace whose id it names, once: replication tasks name namespaces by id only.
        if translation.namespaceMappings.count > 1 {
            var entryOfID: [String: Int] = [:]
            for (index, namespace) in translation.namespaceMappings.enumerated() {
                let idPath = listPath.appending(index: index).appending("namespaceId")
                if namespace.namespaceId.isEmpty {
                    if !sourceMap.isRejected(idPath) {
                        report(
                            "missing; with several entries each must give the id of its namespace (the id both "
                                + "clusters share; replication tasks name namespaces by id only)",
                            at: idPath
                        )
                    }
                    continue
                }
                if let earlier = entryOfID[namespace.namespaceId] {
                    report(
                        "namespace id \(namespace.namespaceId) already has \(listPath.appending(index: earlier)); "
                            + "merge their field mappings into one entry",
                        at: idPath
                    )
                }
                entryOfID[namespace.namespaceId] = index
            }
        }
        for (namespaceIndex, namespace) in translation.namespaceMappings.enumerated() {
            let fieldsPath = listPath.appending(index: namespaceIndex).appending("mappings")
            for (fieldIndex, field) in namespace.mappings.enumerated() {
                let fieldPath = fieldsPath.appending(index: fieldIndex)
                for (key, name) in [("localFieldName", field.localFieldName),
                                    ("remoteFieldName", field.remoteFieldName)]
                where name.isEmpty && !sourceMap.isRejected(fieldPath.appending(key)) {
                    report(
                        "missing; each search attribute mapping needs both field names",
                        at: fieldPath.appending(key)
                    )
                }
            }
        }
    }

    private mutating func checkHealthCheck(_ healthCheck: HealthCheckConfig, at path: ConfigKeyPath) {
        let protocolPath = path.appending("protocol")
        if healthCheck.protocol != "http", !sourceMap.isRejected(protocolPath) {
            let found = healthCheck.protocol.isEmpty ? "missing" : "unsupported protocol \"\(healthCheck.protocol)\""
            report("\(found); the only health check protocol is \"http\"", at: protocolPath)
        }
        let addressPath = path.appending("listenAddress")
        if healthCheck.listenAddress.isEmpty, !sourceMap.isRejected(addressPath) {
            report("missing; set the host:port the health check listens on", at: addressPath)
        }
        checkAddress(healthCheck.listenAddress, at: addressPath)
    }

    private mutating func checkShardCount(_ shardCount: ShardCountConfig, at path: ConfigKeyPath) {
        for (key, count) in [("localShardCount", shardCount.localShardCount),
                             ("remoteShardCount", shardCount.remoteShardCount)] where count < 0 {
            report("\(count) is negative; give the cluster's real number of history shards", at: path.appending(key))
        }
        let modePath = path.appending("mode")
        let modes = ["lcm", "routing"]
        switch shardCount.mode {
        case "":
            break
        case let mode where modes.contains(mode):
            for (key, count) in [("localShardCount", shardCount.localShardCount),
                                 ("remoteShardCount", shardCount.remoteShardCount)]
            where count == 0 && !sourceMap.isRejected(path.appending(key)) {
                report(
                    "mode \"\(mode)\" needs the real number of history shards of both clusters; set \(key) above 0",
                    at: path.appending(key)
                )
            }
        case let mode:
            let suggestion = KeySuggestion.closest(to: mode, among: modes).map { " (did you mean \"\($0)\"?)" } ?? ""
            report(
                "unknown mode \"\(mode)\"\(suggestion); use \"lcm\", \"routing\", or leave it empty to pass shard "
                    + "ids through unchanged",
                at: modePath
            )
        }
    }

    private mutating func checkMemberlist(_ memberlist: MemberlistConfig, at path: ConfigKeyPath) {
        if memberlist.nodeName.isEmpty {
            report("missing; set this replica's name (its key in proxyAddresses on the other replicas)", at: path.appending("nodeName"))
        }
        if !(0...65535).contains(memberlist.bindPort) {
            report("\(memberlist.bindPort) is not a port; use a number from 0 to 65535", at: path.appending("bindPort"))
        }
        for (key, value) in [("probeTimeoutMs", memberlist.probeTimeoutMs),
                             ("probeIntervalMs", memberlist.probeIntervalMs)] where value < 0 {
            report(
                "\(value) is negative; use 0 for memberlist's default or a positive duration",
                at: path.appending(key)
            )
        }
        for (nodeName, address) in memberlist.proxyAddresses.sorted(by: { $0.key < $1.key }) {
            let addressPath = path.appending("proxyAddresses", nodeName)
            if address.isEmpty {
                report("missing; set the host:port where this replica's proxy listens", at: addressPath)
            }
            checkAddress(address, at: addressPath)
        }
    }

    /// The schema comes from one place: a saved file that exists, or a reflection address.
    private mutating func checkSchema(_ schema: SchemaConfig, at path: ConfigKeyPath) {
        let filePath = path.appending("file")
        let addressPath = path.appending("reflectionAddress")
        if schema.file != nil, schema.reflectionAddress != nil {
            report(
                "set either file or reflectionAddress, not both: \(located(filePath)) already names the schema",
                at: addressPath
            )
        }
        if let address = schema.reflectionAddress {
            if address.isEmpty {
                report("empty; set the host:port of a server with gRPC reflection, or remove the key", at: addressPath)
            }
            checkAddress(address, at: addressPath)
        }
        if let file = schema.file, !sourceMap.isRejected(filePath) {
            var isDirectory: ObjCBool = false
            if file.isEmpty {
                report("empty; set the path of a saved FileDescriptorSet, or remove the key", at: filePath)
            } else if !FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) {
                report(
                    "no such file \"\(file)\"; save one with `s2s-proxy schema pull --address HOST:PORT --out FILE` "
                        + "(a relative path starts at the config file's directory)",
                    at: filePath
                )
            } else if isDirectory.boolValue {
                report("\"\(file)\" is a directory; name the FileDescriptorSet file in it", at: filePath)
            }
        }
    }

    // MARK: - Listeners and addresses

    /// Two listeners on the same port of a shared interface cannot both start.
    private mutating func checkListenerCollisions() {
        var earlier: [(listener: ConfiguredListener, address: HostAndPort)] = []
        for listener in config.configuredListeners {
            guard !sourceMap.isRejected(listener.keyPath),
                  let address = try? HostAndPort(validating: listener.address) else { continue }
            if let clash = earlier.first(where: { $0.address.collides(with: address) }) {
                let line = sourceMap.position(of: clash.listener.keyPath).map { ", line \($0.line)" } ?? ""
                report(
                    "\"\(listener.address)\" collides with \(clash.listener.keyPath) "
                        + "(\"\(clash.listener.address)\"\(line)); every listener needs its own address",
                    at: listener.keyPath
                )
            }
            earlier.append((listener, address))
        }
    }

    /// Reports `address` unless it is empty (absence is checked where an address is required) or a valid
    /// `host:port`.
    private mutating func checkAddress(_ address: String, at path: ConfigKeyPath) {
        guard !address.isEmpty, !sourceMap.isRejected(path) else { return }
        do {
            _ = try HostAndPort(validating: address)
        } catch {
            report(error.message, at: path)
        }
    }

    // MARK: - Top-level blocks

    private mutating func checkTopLevelBlocks() {
        if let pprofAddress = config.profiling?.pprofAddress {
            checkAddress(pprofAddress, at: .root.appending("profiling", "pprofAddress"))
        }
        if let listenAddress = config.metrics?.prometheusListenAddress {
            checkAddress(listenAddress, at: .root.appending("metrics", "prometheus", "listenAddress"))
        }
        requirePositive(Double(config.limits.maxMessageBytes), at: .root.appending("limits", "maxMessageBytes"))
        requirePositive(config.limits.handshakeTimeoutSeconds, at: .root.appending("limits", "handshakeTimeoutSeconds"))
        if config.limits.idleTimeoutSeconds < 0 {
            report(
                "\(config.limits.idleTimeoutSeconds.plainText) is negative; use a number of seconds, or 0 to keep idle "
                    + "connections open",
                at: .root.appending("limits", "idleTimeoutSeconds")
            )
        }
        requirePositive(config.shutdown.drainTimeoutSeconds, at: .root.appending("shutdown", "drainTimeoutSeconds"))
        let upstream = config.upstream
        let upstreamPath = ConfigKeyPath.root.appending("upstream")
        requirePositive(upstream.connectTimeoutSeconds, at: upstreamPath.appending("connectTimeoutSeconds"))
        requirePositive(
            upstream.reconnectBackoffInitialSeconds, at: upstreamPath.appending("reconnectBackoffInitialSeconds")
        )
        requirePositive(upstream.reconnectBackoffMaxSeconds, at: upstreamPath.appending("reconnectBackoffMaxSeconds"))
        if upstream.keepaliveIntervalSeconds < 0 {
            report(
                "\(upstream.keepaliveIntervalSeconds.plainText) is negative; use a number of seconds, or 0 to turn "
                    + "upstream keepalive pings off",
                at: upstreamPath.appending("keepaliveIntervalSeconds")
            )
        }
        if upstream.reconnectBackoffMaxSeconds < upstream.reconnectBackoffInitialSeconds {
            report(
                "\(upstream.reconnectBackoffMaxSeconds.plainText) is below reconnectBackoffInitialSeconds "
                    + "(\(upstream.reconnectBackoffInitialSeconds.plainText)); the maximum delay must be at least "
                    + "the first one",
                at: upstreamPath.appending("reconnectBackoffMaxSeconds")
            )
        }
    }

    private mutating func requirePositive(_ value: Double, at path: ConfigKeyPath) {
        if value <= 0 {
            report("must be greater than 0, found \(value.plainText)", at: path)
        }
    }

    // MARK: - Reporting

    private mutating func report(_ message: String, at path: ConfigKeyPath) {
        errors.append(sourceMap.error(message, at: path))
    }

    /// `path (line N)` when the line is known, to point at the other half of a conflict.
    private func located(_ path: ConfigKeyPath) -> String {
        guard let line = sourceMap.position(of: path)?.line else { return path.description }
        return "\(path) (line \(line))"
    }
}

private extension Double {
    /// Whole numbers without a trailing ".0", as the operator most likely wrote them.
    var plainText: String {
        rounded() == self && abs(self) < 1e15 ? String(Int64(self)) : String(self)
    }
}
