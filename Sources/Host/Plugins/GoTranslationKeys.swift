// The Go proxy's translation and access-control keys as entries of the plugin chain, so that an existing
// configuration behaves as there and `validate` shows them like any other entry. They come before the explicit
// `plugins:` list, in this order: namespace renaming first, so that every later entry (and, in responses, which
// pass the chain in reverse, the renaming last) sees local names.

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
        return entries
    }
}
