// The Go proxy's translation and access-control keys as entries of the plugin chain, so that an existing
// configuration behaves as there and `validate` shows them like any other entry. They come before the explicit
// `plugins:` list, in this order: namespace renaming first, so that every later entry sees local names (responses
// pass the chain in reverse, so the renaming sees them last); then access control, on the inbound side only; then
// search attribute renaming, so that a call access control refuses costs no walk; then the cluster adapters
// (`replicationEndpoint`, `failoverVersionIncrementTranslation`, `shardCount`) as one `cluster-adapter` entry on both
// sides, labelled with the keys it came from (in mode `routing` it only rewrites DescribeCluster: the host terminates
// the replication streams, docs/design/routing.md); last, with either renaming, UTF-8 repair of Failure messages, which the Go proxy
// does as it decodes.
//
// `searchAttributeTranslation` with one entry becomes a search-attribute-rename entry for every namespace, as the Go
// proxy applies it (it never reads the entry's namespaceId). With several (which the Go proxy refuses), each entry is
// for its `namespaceId`, and for its `name` on either side of `namespaceTranslation`: the plugin sees remote names
// on one side of the renaming and local ones on the other.

enum GoTranslationKeys {
    /// (label for messages, entry) for each Go key of `connection` that maps to a bundled plugin.
    static func chainEntries(of connection: ClusterConnectionConfig, prefix: String) -> [(String, PluginEntryConfig)] {
        var entries: [(String, PluginEntryConfig)] = []
        if let translation = connection.namespaceTranslation, !translation.mappings.isEmpty {
            let pairs = translation.mappings.map { ($0.local, $0.remote) }
            let options = #"{"mappings":"# + jsonPairs(pairs, keys: ("local", "remote")) + "}"
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
        if let translation = connection.searchAttributeTranslation, !translation.namespaceMappings.isEmpty {
            entries.append((
                "\(prefix).searchAttributeTranslation",
                PluginEntryConfig(
                    source: .bundled("search-attribute-rename"), side: .both, onError: .failClosed,
                    optionsJSON: searchAttributeOptions(translation, namespaces: connection.namespaceTranslation)
                )
            ))
        }
        if let adapter = clusterAdapterEntry(of: connection, prefix: prefix) {
            entries.append(adapter)
        }
        // The Go proxy repairs invalid UTF-8 in Failure messages as it decodes (messages from Temporal 1.22 peers),
        // and inside history blobs when it translates names; a connection that translates names gets the same
        // repair here, last in the chain so that responses meet it first, unless `plugins:` places it already.
        let translates = entries.contains { _, entry in
            entry.source == .bundled("namespace-rename") || entry.source == .bundled("search-attribute-rename")
        }
        if translates, !connection.plugins.contains(where: { $0.source == .bundled("utf8-repair") }) {
            entries.append((
                "\(prefix) (UTF-8 repair, implied by name translation)",
                PluginEntryConfig(
                    source: .bundled("utf8-repair"), side: .both, onError: .failClosed,
                    optionsJSON: #"{"fields":"failureMessages"}"#
                )
            ))
        }
        return entries
    }

    private static func searchAttributeOptions(
        _ translation: SearchAttributeTranslationConfig,
        namespaces: NamespaceTranslationConfig?
    ) -> String {
        let perNamespace = translation.namespaceMappings.count > 1
        var options = #"{"namespaceMappings":["#
        for (index, entry) in translation.namespaceMappings.enumerated() {
            if index > 0 { options += "," }
            options += "{"
            if perNamespace {
                if !entry.namespaceId.isEmpty {
                    options += #""namespaceId":"#
                    YAMLNodeReader.appendJSONString(entry.namespaceId, to: &options)
                    options += ","
                }
                if !entry.name.isEmpty {
                    var names = [entry.name]
                    for mapping in namespaces?.mappings ?? [] {
                        if mapping.local == entry.name { names.append(mapping.remote) }
                        if mapping.remote == entry.name { names.append(mapping.local) }
                    }
                    options += #""namespaces":"# + jsonArray(names) + ","
                }
            }
            let pairs = entry.mappings.map { ($0.localFieldName, $0.remoteFieldName) }
            options += #""mappings":"# + jsonPairs(pairs, keys: ("localFieldName", "remoteFieldName")) + "}"
        }
        return options + "]}"
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
        if let shards = connection.shardCount, shards.mode == "lcm" || shards.mode == "routing" {
            keys.append("shardCount")
            members.append(
                #""shardCount":{"mode":"\#(shards.mode)","localShardCount":\#(shards.localShardCount),"#
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

    /// `[{"<key 0>": first, "<key 1>": second}, ...]`.
    private static func jsonPairs(_ pairs: [(String, String)], keys: (String, String)) -> String {
        var text = "["
        for (index, (first, second)) in pairs.enumerated() {
            if index > 0 { text += "," }
            text += "{"
            YAMLNodeReader.appendJSONString(keys.0, to: &text)
            text += ":"
            YAMLNodeReader.appendJSONString(first, to: &text)
            text += ","
            YAMLNodeReader.appendJSONString(keys.1, to: &text)
            text += ":"
            YAMLNodeReader.appendJSONString(second, to: &text)
            text += "}"
        }
        return text + "]"
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
