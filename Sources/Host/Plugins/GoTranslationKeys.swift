// The Go proxy's translation and access-control keys as entries of the plugin chain, so that an existing
// configuration behaves as there and `validate` shows them like any other entry. They come before the explicit
// `plugins:` list, in this order: namespace renaming first, so that every later entry sees local names (responses
// pass the chain in reverse, so the renaming sees them last); then access control, on the inbound side only.

enum GoTranslationKeys {
    /// (label for messages, entry) for each Go key of `connection` that maps to a bundled plugin.
    static func chainEntries(of connection: ClusterConnectionConfig, prefix: String) -> [(String, PluginEntryConfig)] {
        var entries: [(String, PluginEntryConfig)] = []
        if let translation = connection.namespaceTranslation, !translation.mappings.isEmpty {
            var options = #"{"mappings":["#
            for (index, mapping) in translation.mappings.enumerated() {
                if index > 0 { options += "," }
                options += #"{"local":"#
                YAMLNodeReader.appendJSONString(mapping.local, to: &options)
                options += #","remote":"#
                YAMLNodeReader.appendJSONString(mapping.remote, to: &options)
                options += "}"
            }
            options += "]}"
            entries.append((
                "\(prefix).namespaceTranslation",
                PluginEntryConfig(source: .bundled("namespace-rename"), side: .both, onError: .failClosed, optionsJSON: options)
            ))
        }
        if let policy = connection.aclPolicy {
            var options = "{"
            if let methods = policy.allowedAdminServiceMethods {
                options += #""allowedMethods":{"adminService":"# + jsonArray(methods) + "},"
            }
            options += #""allowedNamespaces":"# + jsonArray(policy.allowedNamespaces) + "}"
            entries.append((
                "\(prefix).aclPolicy",
                PluginEntryConfig(source: .bundled("acl"), side: .inbound, onError: .failClosed, optionsJSON: options)
            ))
        }
        return entries
    }

    private static func jsonArray(_ strings: [String]) -> String {
        var text = "["
        for (index, string) in strings.enumerated() {
            if index > 0 { text += "," }
            YAMLNodeReader.appendJSONString(string, to: &text)
        }
        return text + "]"
    }
}
