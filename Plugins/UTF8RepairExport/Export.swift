// The C entry point of libutf8-repair.so. Kept apart from the logic (Plugins/UTF8Repair), so that tests and other
// images can link the logic without a second `s2s_plugin_entry`.

import PluginKit
import UTF8Repair

@c(s2s_plugin_entry)
public func s2sPluginEntry(_ hostMajor: UInt32, _ hostMinor: UInt32) -> UnsafeRawPointer? {
    PluginExport.table(for: UTF8Repair.self, hostMajor: hostMajor, hostMinor: hostMinor)
}
