// The families that say how long plugins take, rendered from the chain entries' stats:
// `s2s_proxy_plugin_hook_duration_seconds{plugin,entry,connection,hook}`, every hook invocation of every chain
// entry, by hook (`call_start`, `on_message`, `call_end`), so that each series' count matches a counter of
// `renderPluginEntries` (calls, messages) and their sums add up to `s2s_proxy_plugin_hook_seconds_total`.
//
// Like the rest of `ProxyMetrics`, this runs per scrape, never on a call's path.

extension ProxyMetrics {
    /// Renders the families for `entries`, the chain entries in service.
    static func renderPluginLatencies(_ entries: [PluginEntry], into text: inout PrometheusText) {
        renderHookDurations(entries, into: &text)
    }

    /// `s2s_proxy_plugin_hook_duration_seconds`, one series per entry and hook.
    static func renderHookDurations(_ entries: [PluginEntry], into text: inout PrometheusText) {
        let name = "s2s_proxy_plugin_hook_duration_seconds"
        text.family(name, .histogram, help: "Time inside one call of a chain entry's hook, by hook.")
        for entry in entries {
            let stats = entry.stats
            let hooks = [
                ("call_start", stats.callStartDurations), ("on_message", stats.messageDurations),
                ("call_end", stats.callEndDurations),
            ]
            for (hook, durations) in hooks {
                let labels = [
                    ("plugin", entry.library.name), ("entry", entry.label), ("connection", entry.context.connectionName),
                    ("hook", hook),
                ]
                text.histogram(name, labels, durations)
            }
        }
    }
}

extension PrometheusText {
    /// The series of one `DurationHistogram`, in seconds.
    mutating func histogram(_ name: String, _ labels: [(String, String)], _ durations: DurationHistogram) {
        histogram(name, labels, bounds: DurationHistogram.boundsInSeconds, cumulativeBuckets: durations.cumulativeBuckets,
                  sum: durations.sumSeconds, count: durations.count)
    }
}
