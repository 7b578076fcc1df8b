// The exported entry point of `libacl.so`, the bundled `acl` plugin. It is a target of its own so that tests can
// link the plugin's code (target ACLPlugin) without a second `s2s_plugin_entry` in the test binary.

import ACLPlugin
import PluginKit

/// The one exported C symbol: the host calls it after loading the library.
@c(s2s_plugin_entry)
public func s2sPluginEntry(_ hostMajor: UInt32, _ hostMinor: UInt32) -> UnsafeRawPointer? {
    PluginExport.table(for: ACLPlugin.self, hostMajor: hostMajor, hostMinor: hostMinor)
}
