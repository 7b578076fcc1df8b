// Exporting a Swift plugin type through the C plugin ABI.
//
// A plugin's shared object exports one C symbol, `s2s_plugin_entry`, with one line of Swift:
//
//     @c(s2s_plugin_entry)
//     public func s2sPluginEntry(_ hostMajor: UInt32, _ hostMinor: UInt32) -> UnsafeRawPointer? {
//         PluginExport.table(for: MyPlugin.self, hostMajor: hostMajor, hostMinor: hostMinor)
//     }
//
// The return type is the C `const s2s_plugin_api_t *`, spelled as a raw pointer so the plugin's code needs no C
// module. Everything behind the table is PluginKit's: the rules below hold for every Swift plugin.
//
// THE ABI'S RULES, AS THEY APPLY TO A SWIFT PLUGIN
// * Versions. The table says ABI 1.1 (this SDK's header). A host of another major gets NULL, and a line on stderr
//   naming both versions; a host of any 1.x minor is served, using only the host services its table covers (a
//   service it lacks is a no-op: a log line dropped, a counter that records nothing, a header edit refused).
// * Ownership. Everything the host passes (options, schema, method, metadata, payloads) is borrowed for the hook:
//   `CallStart` and `MessageView` are non-copyable views that cannot outlive it, and what a plugin keeps it copies.
//   What a plugin hands back (replacement bytes, header edits, status and error text) is copied by the host before
//   the hook returns, so a Swift plugin never manages memory across the boundary. The plugin instance is retained
//   from config_new until config_destroy; a call's state from call_start until call_end.
// * Threads. `init` and `schemaReady` run on the control thread; `wants` anywhere, concurrently; a call's hooks one
//   at a time on the call's thread, different calls concurrently. Hence `TranslatorPlugin: Sendable`, and no
//   blocking in hooks.
// * Failures. A thrown error becomes config_new's error text (from `init`) or S2S_ERROR with the error's text as
//   the status detail (from a hook); the chain entry's policy then fails the call closed or open. Errors never
//   unwind across C. A trap (force-unwrap of nil, array index out of range, `fatalError`, arithmetic overflow) is
//   not an error: it ends the whole proxy process, as in any native plugin. PluginKit itself never traps on what
//   the host passes: it checks pointers, lengths, enum values and struct sizes, and reports violations as errors.
// * Unloading. The host never unloads a plugin (the Swift runtime cannot be unloaded), so the table and the
//   strings it points at live until the process exits.

import PluginABI

/// Builds the C table through which the host drives a ``TranslatorPlugin`` type.
public enum PluginExport {
    /// The plugin's table (`const s2s_plugin_api_t *`) for a host speaking ABI `hostMajor.hostMinor`, or nil
    /// (after a line on stderr) if the host speaks another major version or the type cannot be exported. Built on
    /// the first call and the same for the life of the process.
    @inlinable
    public static func table<Plugin: TranslatorPlugin>(
        for type: Plugin.Type, hostMajor: UInt32, hostMinor: UInt32
    ) -> UnsafeRawPointer? {
        // The call hooks as closures made here, in the plugin's image and for its type, so that they run
        // specialized (ExportedConfig.swift).
        table(for: type, hostMajor: hostMajor, hostMinor: hostMinor) { config in
            ExportedConfigBox(
                hooks: config,
                callStart: { config.callStart($0, $1, $2) },
                onMessage: { config.onMessage($0, $1, $2) },
                callEnd: { config.callEnd($0, $1) },
                onResponseMetadata: { config.onResponseMetadata($0, $1, $2) }
            )
        }
    }

    @usableFromInline
    static func table<Plugin: TranslatorPlugin>(
        for type: Plugin.Type, hostMajor: UInt32, hostMinor: UInt32,
        box: @escaping (ExportedConfig<Plugin>) -> ExportedConfigBox
    ) -> UnsafeRawPointer? {
        let ours = "\(S2S_PLUGIN_ABI_MAJOR).\(S2S_PLUGIN_ABI_MINOR)"
        guard hostMajor == UInt32(S2S_PLUGIN_ABI_MAJOR) else {
            ErrorText.printToStandardError(
                "s2s-proxy plugin \(Plugin.name) \(Plugin.version) was built for plugin ABI \(ours), but the host"
                    + " speaks plugin ABI \(hostMajor).\(hostMinor); rebuild the plugin with a PluginKit for ABI"
                    + " \(hostMajor).x, or use an s2s-proxy that speaks ABI \(S2S_PLUGIN_ABI_MAJOR).x"
            )
            return nil
        }
        switch ExportRegistry.shared.table(for: type, box: box) {
        case .success(let table):
            return UnsafeRawPointer(table)
        case .failure(let error):
            ErrorText.printToStandardError("s2s-proxy plugin \(Plugin.name) cannot be exported: \(error.message)")
            return nil
        }
    }
}
