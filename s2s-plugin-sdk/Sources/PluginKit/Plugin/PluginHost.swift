// The host's services for one chain entry: logging into the proxy's log and metrics into its Prometheus registry.
//
// A plugin receives its `PluginHost` in `init(options:host:)` and may keep it and use it from any thread until
// the host destroys the chain entry (the plugin instance is released then; do not hand the host to anything that
// outlives the instance). Every service checks that the host offers it (a host speaks at least ABI 1.0, but its
// table may be shorter than this SDK's), so a missing service is a no-op, never a crash.

import PluginABI

/// A log level of the host's logger.
public enum LogLevel: UInt32, Sendable, Hashable, CaseIterable, Comparable {
    case debug = 1
    case info = 2
    case warning = 3
    case error = 4

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Logging and metrics for one chain entry, bridged to the host's C services.
///
/// `@unchecked Sendable`: it holds the host's handle and function table, which the ABI allows on any thread for
/// the life of the chain entry, and nothing mutable.
public final class PluginHost: @unchecked Sendable {
    /// The plugin ABI version the host speaks, e.g. (1, 0).
    public let abiVersion: (major: Int, minor: Int)

    let services: HostServices
    let handle: OpaquePointer?

    init(services: HostServices, handle: OpaquePointer?) {
        self.services = services
        self.handle = handle
        abiVersion = (services.abiMajor, services.abiMinor)
    }

    // MARK: Logging

    /// Whether a line at `level` would be written; cheap.
    public func isLogEnabled(_ level: LogLevel) -> Bool {
        guard services.log != nil else { return false }
        guard let enabled = services.logEnabled else { return true }
        return enabled(handle, s2s_log_level_t(rawValue: level.rawValue)) != 0
    }

    /// Writes a line into the host's log, tagged by the host with the plugin and chain entry. The message is built
    /// only if the level is enabled.
    public func log(_ level: LogLevel, _ message: @autoclosure () -> String) {
        guard let log = services.log, isLogEnabled(level) else { return }
        var text = message()
        text.withUTF8 { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { chars in
                log(handle, s2s_log_level_t(rawValue: level.rawValue), chars.baseAddress, chars.count)
            }
        }
    }

    /// Logs at debug level.
    public func debug(_ message: @autoclosure () -> String) { log(.debug, message()) }
    /// Logs at info level.
    public func info(_ message: @autoclosure () -> String) { log(.info, message()) }
    /// Logs at warning level.
    public func warning(_ message: @autoclosure () -> String) { log(.warning, message()) }
    /// Logs at error level.
    public func error(_ message: @autoclosure () -> String) { log(.error, message()) }

    // MARK: Metrics

    /// Defines a counter, exported by the host as `s2s_plugin_<name>` with labels `plugin` and `connection`. Only
    /// in `init(options:host:)` or `schemaReady`; defining the same name again returns the same counter.
    ///
    /// - Parameters:
    ///   - name: letters, digits and `_`, e.g. `"calls_rejected_total"`.
    ///   - help: one line for the metric's HELP text.
    /// - Throws: ``PluginConfigError`` if the host refuses the name (invalid, or used for a histogram). A host
    ///   without metrics gives a counter that records nothing.
    public func counter(name: String, help: String) throws(PluginConfigError) -> PluginCounter {
        PluginCounter(metric: try defineMetric(kind: S2S_METRIC_COUNTER, name: name, help: help))
    }

    /// Defines a histogram, under the same rules as ``counter(name:help:)``.
    public func histogram(name: String, help: String) throws(PluginConfigError) -> PluginHistogram {
        PluginHistogram(metric: try defineMetric(kind: S2S_METRIC_HISTOGRAM, name: name, help: help))
    }

    private func defineMetric(
        kind: s2s_metric_kind_t, name: String, help: String
    ) throws(PluginConfigError) -> MetricHandle {
        guard let define = services.defineMetric, let record = services.recordMetric else {
            return MetricHandle(record: nil, handle: handle, id: 0)
        }
        var name = name
        var help = help
        let id = name.withUTF8 { nameBytes in
            help.withUTF8 { helpBytes in
                nameBytes.withMemoryRebound(to: CChar.self) { nameChars in
                    helpBytes.withMemoryRebound(to: CChar.self) { helpChars in
                        define(
                            handle, kind, nameChars.baseAddress, nameChars.count, helpChars.baseAddress,
                            helpChars.count
                        )
                    }
                }
            }
        }
        guard id != 0 else {
            throw PluginConfigError(
                "the host refused metric '\(name)': names are letters, digits and '_', a name may have only one kind,"
                    + " and metrics are defined only while the plugin is configured"
            )
        }
        return MetricHandle(record: record, handle: handle, id: id)
    }
}

/// A defined metric: the host's record function, its handle and the metric's id (0: records nothing).
struct MetricHandle: @unchecked Sendable {
    let record: HostServices.RecordMetric?
    let handle: OpaquePointer?
    let id: UInt32

    func record(_ value: Double) {
        guard id != 0, let record else { return }
        record(handle, id, value)
    }
}

/// A monotonically increasing counter; any thread (the host takes two short locks per record).
public struct PluginCounter: Sendable {
    let metric: MetricHandle

    /// Adds `amount`; a counter never decreases, so negative amounts (and NaN) are ignored.
    public func add(_ amount: Double = 1) {
        guard amount >= 0 else { return }
        metric.record(amount)
    }
}

/// A histogram of observed values; any thread (the host takes two short locks per record).
public struct PluginHistogram: Sendable {
    let metric: MetricHandle

    /// Observes `value`.
    public func record(_ value: Double) {
        metric.record(value)
    }
}
