// The C entry point of libcluster-adapter.so. Kept apart from the logic (Plugins/ClusterAdapter), so that tests
// and other images can link the logic without a second `s2s_plugin_entry`.

import ClusterAdapter
import PluginKit

@c(s2s_plugin_entry)
public func s2sPluginEntry(_ hostMajor: UInt32, _ hostMinor: UInt32) -> UnsafeRawPointer? {
    PluginExport.table(for: ClusterAdapter.self, hostMajor: hostMajor, hostMinor: hostMinor)
}
