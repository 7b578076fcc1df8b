// The C entry point of libsearch-attribute-rename.so. Kept apart from the logic (Plugins/SearchAttributeRename), so
// that tests and other images can link the logic without a second `s2s_plugin_entry`.

import PluginKit
import SearchAttributeRename

@c(s2s_plugin_entry)
public func s2sPluginEntry(_ hostMajor: UInt32, _ hostMinor: UInt32) -> UnsafeRawPointer? {
    PluginExport.table(for: SearchAttributeRename.self, hostMajor: hostMajor, hostMinor: hostMinor)
}
