// Metrics that plugins define through the host api (`define_metric` / `record_metric`), and the host's own
// per-entry plugin counters. Plugins define metrics while their config is created, with fixed names; the host
// prefixes `s2s_plugin_` and labels each series with the plugin and the cluster connection, so a plugin cannot
// create unbounded series. The registry is read by the metrics endpoint.

import NIOConcurrencyHelpers
import PluginABI

/// One plugin-defined metric series.
public final class PluginMetric: Sendable {
    public enum Kind: Sendable, Equatable {
        case counter
        case histogram

        init?(_ kind: s2s_metric_kind_t) {
            switch kind {
            case S2S_METRIC_COUNTER: self = .counter
            case S2S_METRIC_HISTOGRAM: self = .histogram
            default: return nil
            }
        }
    }

    /// Upper bounds of the histogram buckets (the last bucket is +Inf).
    public static let bucketBounds: [Double] = [0.000_01, 0.000_1, 0.001, 0.01, 0.1, 1, 10, 100, 1_000, 10_000]

    public struct Snapshot: Sendable, Equatable {
        public var count: UInt64
        public var sum: Double
        /// Cumulative per bound in `bucketBounds` (histograms only).
        public var buckets: [UInt64]
    }

    public let kind: Kind
    /// Full name, with the `s2s_plugin_` prefix.
    public let name: String
    public let help: String
    public let plugin: String
    public let connection: String
    private let state: NIOLockedValueBox<Snapshot>

    init(kind: Kind, name: String, help: String, plugin: String, connection: String) {
        self.kind = kind
        self.name = name
        self.help = help
        self.plugin = plugin
        self.connection = connection
        state = NIOLockedValueBox(Snapshot(count: 0, sum: 0, buckets: kind == .histogram ? Array(repeating: 0, count: Self.bucketBounds.count) : []))
    }

    func record(_ value: Double) {
        guard value.isFinite else { return }
        switch kind {
        case .counter:
            guard value >= 0 else { return }
            state.withLockedValue { $0.sum += value; $0.count += 1 }
        case .histogram:
            state.withLockedValue { snapshot in
                snapshot.count += 1
                snapshot.sum += value
                for (index, bound) in Self.bucketBounds.enumerated() where value <= bound {
                    snapshot.buckets[index] += 1
                }
            }
        }
    }

    public var snapshot: Snapshot { state.withLockedValue { $0 } }
}

/// Every plugin-defined metric of the process.
public final class PluginMetricsRegistry: Sendable {
    private let metrics = NIOLockedValueBox<[PluginMetric]>([])

    public init() {}

    /// The series for (name, plugin, connection), created on first definition; nil if the name is invalid or
    /// already used with another kind.
    func metric(kind: PluginMetric.Kind, name: String, help: String, plugin: String, connection: String) -> PluginMetric? {
        guard Self.isValidName(name) else { return nil }
        let fullName = "s2s_plugin_" + name
        return metrics.withLockedValue { metrics in
            if metrics.contains(where: { $0.name == fullName && $0.kind != kind }) { return nil }
            if let existing = metrics.first(where: { $0.name == fullName && $0.plugin == plugin && $0.connection == connection }) {
                return existing
            }
            let metric = PluginMetric(kind: kind, name: fullName, help: help, plugin: plugin, connection: connection)
            metrics.append(metric)
            return metric
        }
    }

    public var all: [PluginMetric] { metrics.withLockedValue { $0 } }

    static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first), name.utf8.count <= 200 else {
            return false
        }
        return name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
        }
    }
}
