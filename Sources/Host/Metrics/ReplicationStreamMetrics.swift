// The Go proxy's replication-stream families, rendered from every listener's `ReplicationStreamRegistry`.
//
// Names, types and meanings are the Go proxy's (`temporal_s2s_proxy_admin_service_stream*`, counters with the
// `_total` its OpenMetrics exposition adds), so its dashboards keep working. Its only label is `direction`; the
// cluster connection's name is added as `config_name`, the label the Go proxy gives its mux families. Two of its
// names read backwards and are kept as they are: `stream_request_count` counts the replication messages forwarded to
// the stream's opener (gRPC *responses*), `stream_response_count` the ACKs forwarded upstream (gRPC *requests*).
//
// Where this differs from the Go proxy: a stream counts as opened (and active) from when its call starts, not from
// when its upstream stream opens, so opened − closed = active at every scrape; every ended stream counts once in
// `terminated_count`, whatever ended it (the Go proxy counts only the ends it sees as an EOF); the duration buckets
// reach 24 h instead of the Go client's default 10 s.

extension ProxyMetrics {
    /// Renders `registry`'s streams with the others from now on.
    func add(_ registry: ReplicationStreamRegistry) {
        replicationStreams.withLockedValue { $0.append(registry) }
    }

    func renderReplicationStreams(into text: inout PrometheusText) {
        let listeners = replicationStreams.withLockedValue { $0 }.map { (registry: $0, snapshot: $0.snapshot()) }
        func labels(_ registry: ReplicationStreamRegistry) -> [(String, String)] {
            [("direction", registry.direction), ("config_name", registry.connection)]
        }
        let prefix = "temporal_s2s_proxy_admin_service_"

        text.family(prefix + "streams_active", .gauge, help: "Replication streams open now.")
        for (registry, snapshot) in listeners {
            text.sample(prefix + "streams_active", labels(registry), Double(snapshot.open.count))
        }

        typealias Counter = (name: String, help: String, value: @Sendable (ReplicationStreamRegistry.Totals) -> UInt64)
        let counters: [Counter] = [
            ("streams_opened_count_total", "Replication streams opened.", { $0.opened }),
            ("streams_closed_count_total", "Replication streams closed.", { $0.closed }),
            ("stream_request_count_total",
             "Replication messages (the stream's gRPC responses) forwarded to the cluster that opened the stream.",
             { $0.responseMessages }),
            ("stream_response_count_total",
             "ACKs (the stream's gRPC requests) forwarded to the cluster that serves the stream.",
             { $0.requestMessages }),
        ]
        for (name, help, value) in counters {
            text.family(prefix + name, .counter, help: help)
            for (registry, snapshot) in listeners {
                text.sample(prefix + name, labels(registry), Double(value(snapshot.totals)))
            }
        }

        let terminated = prefix + "stream_terminated_count_total"
        text.family(terminated, .counter, help: "Replication streams ended, by the side that ended them: source "
            + "(the upstream, which sends the replication tasks) or target (the client, which opened the stream).")
        for (registry, snapshot) in listeners {
            for end in ReplicationStreamEnd.allCases {
                text.sample(terminated, labels(registry) + [("terminated_by", end.rawValue)],
                            Double(snapshot.totals.terminated[end, default: 0]))
            }
        }

        let duration = prefix + "stream_duration"
        text.family(duration, .histogram, help: "How long each replication stream was open, in seconds.")
        for (registry, snapshot) in listeners {
            text.histogram(duration, labels(registry), bounds: ReplicationStreamRegistry.durationBounds,
                           perBucket: snapshot.totals.durationBuckets, sum: snapshot.totals.durationSum)
        }
    }
}
