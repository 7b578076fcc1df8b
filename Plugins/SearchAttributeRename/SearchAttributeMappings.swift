// The options of search-attribute-rename: which namespaces' search attributes are renamed, and to what.
//
//     namespaceMappings:
//       - namespaceId: 5f3c0b4e-...             # matched against namespace ids in the message
//         namespaces: [orders, orders.acct123]  # and/or names (either side's, see below)
//         mappings:
//           - { localFieldName: CustomerId, remoteFieldName: Keyword01 }
//     services: [AdminService]                  # default: the Go proxy's choice
//
// An entry with neither an id nor a name applies to every namespace that no other entry claims: the Go proxy's
// behaviour for its single entry, whose id it never looks at. Names are matched as the message carries them at
// this plugin's place in the chain; with namespace-rename in the same chain that is the remote name on one side and
// the local one on the other, so an entry keyed by name lists both (the Go keys do it for you).

import PluginKit

/// One namespace's renames, both ways.
struct SearchAttributeMapping: Sendable {
    let localToRemote: [String: String]
    let remoteToLocal: [String: String]
}

/// Every entry of the options, indexed for lookup by namespace id and name.
struct SearchAttributeMappings: Sendable {
    /// Short names accepted for `services`, and the services the Go proxy translates by default.
    static let serviceShortNames = [
        "AdminService": "temporal.server.api.adminservice.v1.AdminService",
        "WorkflowService": "temporal.api.workflowservice.v1.WorkflowService",
        "OperatorService": "temporal.api.operatorservice.v1.OperatorService",
    ]
    static let defaultServices = ["temporal.server.api.adminservice.v1.AdminService"]

    let mappings: [SearchAttributeMapping]
    let byNamespaceID: [String: Int]
    let byNamespaceName: [String: Int]
    /// The entry with no id and no name, if any.
    let fallback: Int?
    /// Every name any entry renames, on either side: a message holding none of them is left alone after one read.
    let knownFieldNames: Set<String>
    /// The method prefixes ("/temporal.server.api.adminservice.v1.AdminService/") the plugin translates.
    let methodPrefixes: [String]

    var isEmpty: Bool { mappings.isEmpty }

    init(options: PluginOptions) throws(PluginConfigError) {
        var mappings: [SearchAttributeMapping] = []
        var byNamespaceID: [String: Int] = [:]
        var byNamespaceName: [String: Int] = [:]
        var fallback: Int?
        var knownFieldNames: Set<String> = []
        for (index, entry) in try options.requiredOptionsArray(forKey: "namespaceMappings").enumerated() {
            let label = "namespaceMappings[\(index)]"
            var names = try entry.stringArray(forKey: "namespaces") ?? []
            if let name = try entry.string(forKey: "name"), !name.isEmpty, !names.contains(name) {
                names.append(name)
            }
            let namespaceID = try entry.string(forKey: "namespaceId") ?? ""
            if !namespaceID.isEmpty {
                if let earlier = byNamespaceID[namespaceID] {
                    throw PluginConfigError(
                        "namespaceMappings[\(earlier)] and \(label) both have namespaceId \(namespaceID); merge them")
                }
                byNamespaceID[namespaceID] = index
            }
            for name in names where !name.isEmpty {
                if let earlier = byNamespaceName[name], earlier != index {
                    throw PluginConfigError(
                        "namespaceMappings[\(earlier)] and \(label) both name the namespace \(name); merge them")
                }
                byNamespaceName[name] = index
            }
            if namespaceID.isEmpty, names.allSatisfy(\.isEmpty) {
                if let earlier = fallback {
                    throw PluginConfigError(
                        "namespaceMappings[\(earlier)] and \(label) both apply to every namespace (neither has a "
                            + "namespaceId or a name); give each the namespace it is for")
                }
                fallback = index
            }
            let mapping = try Self.fieldMapping(entry, label: label)
            knownFieldNames.formUnion(mapping.localToRemote.keys)
            knownFieldNames.formUnion(mapping.remoteToLocal.keys)
            mappings.append(mapping)
        }
        var methodPrefixes: [String] = []
        for service in try options.stringArray(forKey: "services") ?? Self.defaultServices {
            let fullName = Self.serviceShortNames[service] ?? service
            guard fullName.contains("."), !fullName.contains("/") else {
                throw PluginConfigError(
                    "services: \(service) is not a service; use a full name such as "
                        + "temporal.server.api.adminservice.v1.AdminService, or AdminService, WorkflowService, "
                        + "OperatorService")
            }
            methodPrefixes.append("/\(fullName)/")
        }
        self.mappings = mappings
        self.byNamespaceID = byNamespaceID
        self.byNamespaceName = byNamespaceName
        self.fallback = fallback
        self.knownFieldNames = knownFieldNames
        self.methodPrefixes = methodPrefixes
    }

    private static func fieldMapping(
        _ entry: PluginOptions,
        label: String
    ) throws(PluginConfigError) -> SearchAttributeMapping {
        var localToRemote: [String: String] = [:]
        var remoteToLocal: [String: String] = [:]
        var localEntry: [String: Int] = [:]
        var remoteEntry: [String: Int] = [:]
        for (index, field) in try entry.requiredOptionsArray(forKey: "mappings").enumerated() {
            let local = try field.requiredString(forKey: "localFieldName")
            let remote = try field.requiredString(forKey: "remoteFieldName")
            guard !local.isEmpty, !remote.isEmpty else {
                throw PluginConfigError("\(label).mappings[\(index)]: localFieldName and remoteFieldName must be non-empty")
            }
            if let earlier = localEntry[local] {
                throw PluginConfigError(
                    "\(label).mappings[\(earlier)] and \(label).mappings[\(index)] both map the local field \(local); "
                        + "a mapping is one to one")
            }
            if let earlier = remoteEntry[remote] {
                throw PluginConfigError(
                    "\(label).mappings[\(earlier)] and \(label).mappings[\(index)] both map the remote field "
                        + "\(remote); a mapping is one to one")
            }
            localEntry[local] = index
            remoteEntry[remote] = index
            localToRemote[local] = remote
            remoteToLocal[remote] = local
        }
        return SearchAttributeMapping(localToRemote: localToRemote, remoteToLocal: remoteToLocal)
    }

    /// The entry for a namespace known by `id` and/or `name`: the entry with that id, else the one with that
    /// name, else the entry for every namespace.
    func entry(namespaceID id: String?, name: String?) -> Int? {
        if let id, let index = byNamespaceID[id] { return index }
        if let name, let index = byNamespaceName[name] { return index }
        return fallback
    }
}
