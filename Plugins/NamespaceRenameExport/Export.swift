// The C entry point of libnamespace-rename.so. Kept apart from the logic (Plugins/NamespaceRename), so that tests
// and other images can link the logic without a second `s2s_plugin_entry`.

import NamespaceRename
import PluginKit

@c(s2s_plugin_entry)
public func s2sPluginEntry(_ hostMajor: UInt32, _ hostMinor: UInt32) -> UnsafeRawPointer? {
    PluginExport.table(for: NamespaceRename.self, hostMajor: hostMajor, hostMinor: hostMinor)
}
