// The Go proxy's health-check and start counters: `health_check_success_count` (every `/health` answered) and
// `health_check_success` (those answered 200), by `direction` (`inbound` for `localClusterHealthCheck`, `outbound`
// for `remoteClusterHealthCheck`, as the Go proxy labels them), and `proxy_start_count`. The Go names are kept,
// odd as the first one is; `config_name` is added because every cluster connection here has its own checks.

import NIOConcurrencyHelpers

/// How many health checks each listener answered, and how many of them said healthy.
final class HealthCheckCounters: Sendable {
    struct Key: Hashable, Comparable {
        var configName: String
        var direction: String
        static func < (a: Key, b: Key) -> Bool { (a.configName, a.direction) < (b.configName, b.direction) }

        /// The Go proxy's direction for a check: `inbound` for the local one, `outbound` for the remote one.
        init(configName: String, check: HealthVerdict.Check) {
            self.configName = configName
            direction = check == .local ? "inbound" : "outbound"
        }
    }

    private let counts = NIOLockedValueBox<[Key: (checks: UInt64, healthy: UInt64)]>([:])

    /// A `/health` answer of `check` for the connection `configName`.
    func record(configName: String, check: HealthVerdict.Check, healthy: Bool) {
        let key = Key(configName: configName, check: check)
        counts.withLockedValue { counts in
            var entry = counts[key] ?? (0, 0)
            entry.checks += 1
            if healthy { entry.healthy += 1 }
            counts[key] = entry
        }
    }

    /// Declares a configured check, so that its series exist (at 0) before the first request.
    func declare(configName: String, check: HealthVerdict.Check) {
        let key = Key(configName: configName, check: check)
        counts.withLockedValue { counts in
            if counts[key] == nil { counts[key] = (0, 0) }
        }
    }

    var snapshot: [(key: Key, checks: UInt64, healthy: UInt64)] {
        counts.withLockedValue { $0 }.sorted { $0.key < $1.key }.map { ($0.key, $0.value.checks, $0.value.healthy) }
    }
}

extension ProxyMetrics {
    func renderHealthChecks(into text: inout PrometheusText) {
        let all = "temporal_s2s_proxy_health_check_success_count_total"
        let healthy = "temporal_s2s_proxy_health_check_success_total"
        let counts = healthChecks.snapshot
        text.family("temporal_s2s_proxy_proxy_start_count_total", .counter, help: "Proxy starts (1 per process).")
        text.sample("temporal_s2s_proxy_proxy_start_count_total", [], 1)
        guard !counts.isEmpty else { return }
        text.family(all, .counter, help: "Health checks answered (the Go proxy's name).")
        for (key, checks, _) in counts {
            text.sample(all, [("direction", key.direction), ("config_name", key.configName)], Double(checks))
        }
        text.family(healthy, .counter, help: "Health checks answered 200.")
        for (key, _, ok) in counts {
            text.sample(healthy, [("direction", key.direction), ("config_name", key.configName)], Double(ok))
        }
    }
}
