// The Go proxy's translation and access-control keys as entries of the plugin chain, so that an existing
// configuration behaves as there and `validate` shows them like any other entry. They come before the explicit
// `plugins:` list, in this order: namespace renaming first, so that every later entry sees local names (responses
// pass the chain in reverse, so the renaming sees them last); then access control, on the inbound side only; then
// the cluster adapters (`replicationEndpoint`, `failoverVersionIncrementTranslation`, `shardCount` in mode lcm) as
// one `cluster-adapter` entry on both sides, labelled with the keys it came from. Shard-count mode `routing` has no
// plugin: ConfigSupportCheck refuses it, so it never reaches this list.

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
        if let adapter = clusterAdapterEntry(of: connection, prefix: prefix) {
            entries.append(adapter)
        }
        return entries
    }

    /// The `cluster-adapter` entry for the connection's cluster-adapter keys, or nil if none is set.
    private static func clusterAdapterEntry(
        of connection: ClusterConnectionConfig, prefix: String
    ) -> (String, PluginEntryConfig)? {
        var keys: [String] = []
        var members: [String] = []
        if let increments = connection.failoverVersionIncrementTranslation,
           increments.local != 0 || increments.remote != 0 {
            keys.append("failoverVersionIncrementTranslation")
            members.append(#""failoverVersionIncrement":{"local":\#(increments.local),"remote":\#(increments.remote)}"#)
        }
        if !connection.replicationEndpoint.isEmpty {
            keys.append("replicationEndpoint")
            var member = #""replicationEndpoint":"#
            YAMLNodeReader.appendJSONString(connection.replicationEndpoint, to: &member)
            members.append(member)
        }
        if let shards = connection.shardCount, shards.mode == "lcm" {
            keys.append("shardCount")
            members.append(
                #""shardCount":{"mode":"lcm","localShardCount":\#(shards.localShardCount),"#
                    + #""remoteShardCount":\#(shards.remoteShardCount)}"#
            )
        }
        guard !keys.isEmpty else { return nil }
        let label = keys.count == 1 ? "\(prefix).\(keys[0])" : "\(prefix).{\(keys.joined(separator: ","))}"
        return (
            label,
            PluginEntryConfig(
                source: .bundled("cluster-adapter"), side: .both, onError: .failClosed,
                optionsJSON: "{" + members.joined(separator: ",") + "}"
            )
        )
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
