// The families that say how long plugins take, rendered from the chain entries' stats:
//
// * `s2s_proxy_plugin_hook_duration_seconds{plugin,entry,connection,hook}`: every hook invocation of every chain
//   entry, by hook (`call_start`, `on_message`, `call_end`), so that each series' count matches a counter of
//   `renderPluginEntries` (calls, messages) and their sums add up to `s2s_proxy_plugin_hook_seconds_total`.
// * The Go proxy's `temporal_s2s_proxy_translation_{success_total,error_total,latency}{kind,message_type}`, for the
//   entries that do one of its translations (`TranslationKind`), summed over the entries, sides and cluster
//   connections that share a kind, as the Go proxy's process-wide series are. `message_type` is the protobuf full
//   name where the Go proxy writes its Go type name.
//
// Like the rest of `ProxyMetrics`, this runs per scrape, never on a call's path.

extension ProxyMetrics {
    /// Renders both groups of families for `entries`, the chain entries in service.
    static func renderPluginLatencies(_ entries: [PluginEntry], into text: inout PrometheusText) {
        renderHookDurations(entries, into: &text)
        renderTranslations(entries, into: &text)
    }

    /// `s2s_proxy_plugin_hook_duration_seconds`, one series per entry and hook.
    static func renderHookDurations(_ entries: [PluginEntry], into text: inout PrometheusText) {
        let name = "s2s_proxy_plugin_hook_duration_seconds"
        text.family(name, .histogram, help: "Time inside one call of a chain entry's hook, by hook.")
        for entry in entries {
            let stats = entry.stats
            var hooks = [
                ("call_start", stats.callStartDurations), ("on_message", stats.messageDurations),
                ("call_end", stats.callEndDurations),
            ]
            // Only for plugins with the hook (ABI 1.1), so that the others' series stay as they were.
            if entry.library.responseMetadataHook != nil {
                hooks.append(("on_response_metadata", stats.responseMetadataDurations))
            }
            for (hook, durations) in hooks {
                let labels = [
                    ("plugin", entry.library.name), ("entry", entry.label), ("connection", entry.context.connectionName),
                    ("hook", hook),
                ]
                text.histogram(name, labels, durations)
            }
        }
    }

    /// The Go proxy's translation families, one series per kind and message type that some entry has seen.
    static func renderTranslations(_ entries: [PluginEntry], into text: inout PrometheusText) {
        struct Series: Hashable {
            let kind: TranslationKind
            let messageType: String
        }
        var totals: [Series: TranslationCounters] = [:]
        for snapshot in entries.compactMap(\.translationSnapshot) {
            for (messageType, counters) in snapshot.seen {
                let series = Series(kind: snapshot.kind, messageType: messageType)
                totals[series, default: TranslationCounters()].add(counters)
            }
        }
        let kinds = TranslationKind.allCases
        let ordered = totals.sorted { left, right in
            left.key.kind == right.key.kind
                ? left.key.messageType < right.key.messageType
                : kinds.firstIndex(of: left.key.kind)! < kinds.firstIndex(of: right.key.kind)!
        }
        func labels(_ series: Series) -> [(String, String)] {
            [("kind", series.kind.rawValue), ("message_type", series.messageType)]
        }
        let success = "temporal_s2s_proxy_translation_success_total"
        text.family(success, .counter, help: "Messages a translation changed, by kind and message type.")
        for (series, counters) in ordered {
            text.sample(success, labels(series), Double(counters.succeeded))
        }
        let error = "temporal_s2s_proxy_translation_error_total"
        text.family(error, .counter, help: "Messages a translation failed on, by kind and message type.")
        for (series, counters) in ordered {
            text.sample(error, labels(series), Double(counters.failed))
        }
        let latency = "temporal_s2s_proxy_translation_latency"
        text.family(latency, .histogram, help: "Time a translation took over one message, in seconds.")
        for (series, counters) in ordered {
            text.histogram(latency, labels(series), counters.latency)
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
