// Everything the `/metrics` endpoint exposes, gathered from where it is recorded: the listeners' `CallMetrics`,
// the mux session pools, the plugins' `PluginMetricsRegistry` and the log lines `LogLimits` dropped. Rendering
// happens per scrape; nothing here is on a call's path.
//
// Names follow the Go proxy (`temporal_s2s_proxy_*`) where it has the same figure (its mux session counts), and
// use `s2s_proxy_*` for what it does not have; plugin metrics are `s2s_plugin_*`.

import NIOConcurrencyHelpers

/// The process's metrics sources, rendered as Prometheus text.
public final class ProxyMetrics: Sendable {
    /// One mux connection's session pool and the labels the Go proxy gives its session gauges.
    struct MuxSource: Sendable {
        let pool: MuxSessionPool
        /// The mux address (`muxAddressInfo.address`).
        let address: String
        /// `mux-client` or `mux-server`.
        let mode: String
        /// The cluster connection's name.
        let configName: String
    }

    private let calls: NIOLockedValueBox<[CallMetrics]> = NIOLockedValueBox([])
    private let muxes: NIOLockedValueBox<[MuxSource]> = NIOLockedValueBox([])
    /// Every listener's replication streams (rendered by ReplicationStreamMetrics.swift).
    let replicationStreams: NIOLockedValueBox<[ReplicationStreamRegistry]> = NIOLockedValueBox([])
    /// The chain entries in service (a reload replaces them), for the host's own per-entry counters.
    private let pluginEntries: NIOLockedValueBox<[PluginEntry]> = NIOLockedValueBox([])
    /// Metrics the plugins define.
    public let plugins: PluginMetricsRegistry
    /// The process's log limits, for the lines they dropped; nil when logging is not ours (tests).
    private let logLimits: LogLimits?
    /// The `/health` answers of every health-check listener.
    let healthChecks = HealthCheckCounters()

    public init(plugins: PluginMetricsRegistry = PluginMetricsRegistry(), logLimits: LogLimits? = nil) {
        self.plugins = plugins
        self.logLimits = logLimits
    }

    func add(_ listener: CallMetrics) {
        calls.withLockedValue { $0.append(listener) }
    }

    private let routing: NIOLockedValueBox<[RoutingDirection]> = NIOLockedValueBox([])

    func add(_ direction: RoutingDirection) {
        routing.withLockedValue { $0.append(direction) }
    }

    func add(_ mux: MuxSource) {
        muxes.withLockedValue { $0.append(mux) }
    }

    /// The entries of the plugin chains now in service; their counters start again after a reload swaps them.
    func setPluginEntries(_ setup: PluginSetup) {
        let entries = setup.entries.flatMap { $0 }
        pluginEntries.withLockedValue { $0 = entries }
    }

    /// The exposition of every family, in a fixed order.
    public func render() -> String {
        var text = PrometheusText()
        renderCalls(into: &text)
        renderReplicationStreams(into: &text)
        renderMuxes(into: &text)
        renderPluginEntries(into: &text)
        Self.renderPluginLatencies(pluginEntries.withLockedValue { $0 }, into: &text)
        renderPlugins(into: &text)
        renderLogDrops(into: &text)
        renderHealthChecks(into: &text)
        renderCaptures(into: &text)
        renderRouting(into: &text)
        return text.text
    }

    /// Shard-count mode routing, per connection and listener direction; nothing in other modes.
    private func renderRouting(into text: inout PrometheusText) {
        let directions = routing.withLockedValue { $0 }
        guard !directions.isEmpty else { return }
        let figures = directions.map { ($0, $0.figures.withLockedValue { $0 }) }
        func labels(_ direction: RoutingDirection) -> [(String, String)] {
            [("connection", direction.shape.connectionName), ("direction", direction.shape.side.rawValue)]
        }
        let counters: [(String, String, KeyPath<RoutingDirection.Figures, Int>)] = [
            ("s2s_proxy_routing_tasks_total", "Replication tasks routed to their target shard (shard-level tasks count once).",
             \.tasksRouted),
            ("s2s_proxy_routing_batches_delivered_total", "Batches written to target shards' streams.", \.batchesDelivered),
            ("s2s_proxy_routing_receiver_restarts_total",
             "Source-shard streams restarted because a target left with tasks it had not acknowledged.", \.receiverRestarts),
        ]
        for (name, help, figure) in counters {
            text.family(name, .counter, help: help)
            for (direction, figures) in figures { text.sample(name, labels(direction), Double(figures[keyPath: figure])) }
        }
        let unroutable = "s2s_proxy_routing_unroutable_tasks_total"
        text.family(unroutable, .counter, help: "Replication tasks that name no workflow and were not forwarded, by task type.")
        for (direction, figure) in figures {
            for (type, count) in figure.unroutableTasks.sorted(by: { $0.key < $1.key }) {
                text.sample(unroutable, labels(direction) + [("task_type", String(type))], Double(count))
            }
        }
        let streams = "s2s_proxy_routing_streams"
        text.family(streams, .gauge, help: "Open routing streams: target shards' (role target) and the proxy's own toward source shards (role source).")
        for (direction, figure) in figures {
            text.sample(streams, labels(direction) + [("role", "target")], Double(figure.targetStreams))
            text.sample(streams, labels(direction) + [("role", "source")], Double(figure.sourceStreams))
        }
    }

    /// Capture files (`capture:`): records written and calls left out, per file; nothing without capture.
    private func renderCaptures(into text: inout PrometheusText) {
        let writers = CaptureWriter.all()
        guard !writers.isEmpty else { return }
        let written = "s2s_proxy_capture_records_total"
        text.family(written, .counter, help: "Capture records written, by file.")
        for writer in writers { text.sample(written, [("file", writer.file)], Double(writer.counts().written)) }
        let dropped = "s2s_proxy_capture_dropped_calls_total"
        text.family(dropped, .counter, help: "Calls a capture left out (its queue was full or its file failed), by file.")
        for writer in writers { text.sample(dropped, [("file", writer.file)], Double(writer.counts().dropped)) }
    }

    private func renderLogDrops(into text: inout PrometheusText) {
        guard let logLimits else { return }
        let name = "s2s_proxy_log_lines_dropped_total"
        text.family(name, .counter, help: "Log lines not written, by component and reason (rate_limit, disabled).")
        for count in logLimits.dropTotals() {
            let component = count.component?.name ?? "none"
            if count.rateLimited > 0 {
                text.sample(name, [("component", component), ("reason", "rate_limit")], Double(count.rateLimited))
            }
            if count.silenced > 0 {
                text.sample(name, [("component", component), ("reason", "disabled")], Double(count.silenced))
            }
        }
    }

    private func renderCalls(into text: inout PrometheusText) {
        let listeners = calls.withLockedValue { $0 }.map { (listener: $0, snapshot: $0.snapshot) }
        func labels(_ listener: CallMetrics) -> [(String, String)] {
            [("connection", listener.connection), ("direction", listener.direction)]
        }
        text.family("s2s_proxy_calls_in_flight", .gauge, help: "Calls being forwarded now.")
        for (listener, snapshot) in listeners {
            text.sample("s2s_proxy_calls_in_flight", labels(listener), Double(snapshot.inFlight))
        }
        text.family("s2s_proxy_calls_total", .counter,
                    help: "Calls forwarded, by method and the gRPC status the client got.")
        for (listener, snapshot) in listeners {
            for method in snapshot.methods.keys.sorted() {
                for (code, count) in snapshot.methods[method]!.callsByCode.sorted(by: { $0.key < $1.key }) {
                    let series = labels(listener) + [("method", method), ("grpc_code", Self.codeName(code))]
                    text.sample("s2s_proxy_calls_total", series, Double(count))
                }
            }
        }
        text.family("s2s_proxy_call_duration_seconds", .histogram,
                    help: "Time from a call's request headers to its end, by method.")
        for (listener, snapshot) in listeners {
            for method in snapshot.methods.keys.sorted() {
                let stats = snapshot.methods[method]!
                text.histogram("s2s_proxy_call_duration_seconds", labels(listener) + [("method", method)],
                               bounds: CallMetrics.durationBounds, perBucket: stats.durationBuckets,
                               sum: stats.durationSum)
            }
        }
        text.family("s2s_proxy_calls_failed_in_proxy_total", .counter,
                    help: "Calls the proxy ended itself (upstream unreachable, limits, plugins), by status sent.")
        for (listener, snapshot) in listeners {
            for (code, count) in snapshot.failedInProxyByCode.sorted(by: { $0.key < $1.key }) {
                let series = labels(listener) + [("grpc_code", Self.codeName(code))]
                text.sample("s2s_proxy_calls_failed_in_proxy_total", series, Double(count))
            }
        }
        text.family("s2s_proxy_rapid_reset_connections_closed_total", .counter,
                    help: "Client connections closed for resetting most of their calls before they were answered.")
        for (listener, snapshot) in listeners {
            text.sample("s2s_proxy_rapid_reset_connections_closed_total", labels(listener), Double(snapshot.rapidResetClosures))
        }
        renderGoGRPCServer(listeners, into: &text)
    }

    private func renderMuxes(into text: inout PrometheusText) {
        let sources = muxes.withLockedValue { $0 }
        guard !sources.isEmpty else { return }
        let counts = sources.map { (source: $0, counts: $0.pool.counts) }
        func labels(_ source: MuxSource) -> [(String, String)] {
            [("addr", source.address), ("mode", source.mode), ("config_name", source.configName)]
        }
        text.family("temporal_s2s_proxy_num_muxes_active", .gauge, help: "Live yamux sessions of the mux connection.")
        for (source, counts) in counts {
            text.sample("temporal_s2s_proxy_num_muxes_active", labels(source), Double(counts.active))
        }
        text.family("temporal_s2s_proxy_mux_connection_establish_total", .counter, help: "Yamux sessions established.")
        for (source, counts) in counts {
            text.sample("temporal_s2s_proxy_mux_connection_establish_total", labels(source), Double(counts.established))
        }
        text.family("s2s_proxy_mux_sessions_ended_total", .counter, help: "Yamux sessions that ended.")
        for (source, counts) in counts {
            text.sample("s2s_proxy_mux_sessions_ended_total", labels(source), Double(counts.ended))
        }
        let sessions = sources.map { (source: $0, metrics: $0.pool.sessionMetrics) }
        text.family("temporal_s2s_proxy_mux_errors_total", .counter,
                    help: "Yamux sessions that could not be established, by why.")
        for (source, metrics) in sessions {
            for error in MuxEstablishError.allCases {
                let count = metrics.errors[error] ?? 0
                text.sample("temporal_s2s_proxy_mux_errors_total", labels(source) + [("error", error.rawValue)],
                            Double(count))
            }
        }
        // The Go proxy's per-session gauges: its labels name the two hosts, not the ports, so sessions between the
        // same hosts are summed into one series.
        func sessionLabels(_ source: MuxSource, _ hosts: (localHost: String, remoteHost: String)) -> [(String, String)] {
            [("local_addr", hosts.localHost), ("remote_addr", hosts.remoteHost), ("mode", "muxed"),
             ("config_name", source.configName)]
        }
        text.family("temporal_s2s_proxy_mux_connection_active", .gauge, help: "Live yamux sessions between two hosts.")
        for (source, metrics) in sessions {
            for pair in metrics.byHosts {
                text.sample("temporal_s2s_proxy_mux_connection_active",
                            sessionLabels(source, (pair.localHost, pair.remoteHost)), Double(pair.sessions))
            }
        }
        text.family("temporal_s2s_proxy_mux_streams_active", .gauge,
                    help: "Yamux streams open on the sessions between two hosts (one per tunnelled HTTP/2 connection).")
        for (source, metrics) in sessions {
            for pair in metrics.byHosts {
                text.sample("temporal_s2s_proxy_mux_streams_active",
                            sessionLabels(source, (pair.localHost, pair.remoteHost)), Double(pair.streams))
            }
        }
    }

    /// What the host counts for every chain entry: calls and messages it saw, what it did with them, and the time
    /// spent in its hooks.
    private func renderPluginEntries(into text: inout PrometheusText) {
        let entries = pluginEntries.withLockedValue { $0 }.map { (entry: $0, stats: $0.stats) }
        typealias Family = (name: String, help: String, value: @Sendable (PluginEntryStats) -> Double)
        let families: [Family] = [
            ("s2s_proxy_plugin_calls_total", "Calls a chain entry took part in.", { Double($0.calls) }),
            ("s2s_proxy_plugin_messages_total", "Messages handed to a chain entry.", { Double($0.messages) }),
            ("s2s_proxy_plugin_rewrites_total", "Messages a chain entry replaced.", { Double($0.replaced) }),
            ("s2s_proxy_plugin_rejections_total", "Calls a chain entry rejected.", { Double($0.rejected) }),
            ("s2s_proxy_plugin_errors_total", "Hooks of a chain entry that failed (S2S_ERROR or an ABI breach).",
             { Double($0.failures) }),
            ("s2s_proxy_plugin_failed_open_total", "Failures let through because the entry fails open.",
             { Double($0.failedOpen) }),
            ("s2s_proxy_plugin_hook_seconds_total", "Time spent inside a chain entry's hooks.",
             { Double($0.hookNanoseconds) / 1e9 }),
        ]
        for (name, help, value) in families {
            text.family(name, .counter, help: help)
            for (entry, stats) in entries {
                let labels = [
                    ("plugin", entry.library.name), ("entry", entry.label), ("connection", entry.context.connectionName),
                ]
                text.sample(name, labels, value(stats))
            }
        }
    }

    private func renderPlugins(into text: inout PrometheusText) {
        let all = plugins.all
        var order: [String] = []
        var byName: [String: [PluginMetric]] = [:]
        for metric in all {
            if byName[metric.name] == nil { order.append(metric.name) }
            byName[metric.name, default: []].append(metric)
        }
        for name in order {
            let series = byName[name]!
            let first = series[0]
            // Counters carry the conventional `_total` suffix; the plugin names the metric without it.
            let exposed = first.kind == .counter && !name.hasSuffix("_total") ? name + "_total" : name
            text.family(exposed, first.kind == .counter ? .counter : .histogram,
                        help: first.help.isEmpty ? "Defined by plugin \(first.plugin)." : first.help)
            for metric in series {
                let labels = [("plugin", metric.plugin), ("connection", metric.connection)]
                let snapshot = metric.snapshot
                switch metric.kind {
                case .counter:
                    text.sample(exposed, labels, snapshot.sum)
                case .histogram:
                    text.histogram(exposed, labels, bounds: PluginMetric.bucketBounds,
                                   cumulativeBuckets: snapshot.buckets, sum: snapshot.sum, count: snapshot.count)
                }
            }
        }
    }

    /// `OK`, `UNAVAILABLE`, ... ; `none` for calls that ended without a status.
    static func codeName(_ code: Int32) -> String {
        if code < 0 { return "none" }
        return GRPCStatusCode(rawValue: Int(code))?.description ?? String(code)
    }
}
