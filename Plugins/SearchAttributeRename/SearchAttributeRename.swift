// search-attribute-rename: the bundled plugin behind the Go proxy's `searchAttributeTranslation` key. Renames
// search attributes between the names the local cluster uses and those of the remote one, per namespace; the
// typical use is a self-hosted cluster whose custom attributes (`CustomerId`) become the pre-allocated fields of a
// hosted service (`Keyword01`) on the way there.
//
//     plugins:
//       - name: search-attribute-rename
//         options:
//           namespaceMappings:
//             - namespaceId: 5f3c0b4e-7a8e-4a55-9d8c-0d1b2e3f4a5b
//               mappings:
//                 - { localFieldName: CustomerId, remoteFieldName: Keyword01 }
//
// What is renamed: the keys of `SearchAttributes.indexed_fields` and of `map<string, Payload>` fields named
// `search_attributes` (mutable state in replication tasks), also inside the history events that `DataBlob`
// fields carry (`WalkRules.temporalSearchAttributes()`); never the values, never `memo` or other maps of the same
// shape. Which way: as namespace-rename, toward the cluster a message goes to (outbound requests and inbound
// responses local -> remote, the others back).
//
// Which namespace's mapping: the Go proxy applies its single mapping to everything and refuses more than one. Here
// each search-attributes map takes the mapping of the namespace it belongs to: the namespace id or name in the
// innermost message around it (a replication task's `namespace_id`, a child workflow's `namespace` beside the
// child's attributes), completed or replaced by the namespace of the call's request (its top-level `namespace_id`
// or `namespace`, or the `temporal-namespace` header) where that message says nothing, else the entry that names no
// namespace. A map whose namespace has no entry is
// left alone, and one whose namespace cannot be told while no entry covers every namespace is left alone and
// counted (`search_attribute_unscoped_total`), because renaming it with a guess would corrupt it.
//
// Where: by default only AdminService (its RPCs and the replication stream), as the Go proxy: WorkflowService
// callers already speak the names of the cluster they call. The `services` option changes the list. A call whose
// request carries `s2s-request-translation: false` is left untouched.
//
// This target holds the logic; `SearchAttributeRenameExport` exports it as `libsearch-attribute-rename.so`.

import PluginKit

public final class SearchAttributeRename: TranslatorPlugin {
    public static let name = "search-attribute-rename"
    public static let version = "1.0.0"
    public static let description =
        "Renames search attributes between the local and the remote cluster, per namespace (searchAttributeTranslation)"
    public static let needsSchema = true

    /// The namespace a call's request named, for its responses.
    struct CallNamespace {
        var id: String?
        var name: String?
    }

    public struct CallState {
        var request: WalkPlan?
        var response: WalkPlan?
        let outbound: Bool
        var namespace: CallNamespace
    }

    /// The namespace id and name a message carries (where their bytes are), by the message's payload start.
    /// Kept as offsets: most messages need no lookup, and those that do make each string once.
    private struct Scope {
        var id: Range<Int>?
        var name: Range<Int>?
    }

    let mappings: SearchAttributeMappings
    let walker = SchemaDerived<ProtoWalker>()
    let renamed: PluginCounter
    let unscoped: PluginCounter

    public init(options: PluginOptions, host: PluginHost) throws {
        mappings = try SearchAttributeMappings(options: options)
        renamed = try host.counter(name: "search_attribute_renames_total", help: "Search attribute names renamed")
        unscoped = try host.counter(
            name: "search_attribute_unscoped_total",
            help: "Search attribute names left as they were because the namespace they belong to could not be told"
        )
    }

    /// Search-attribute keys, plus the namespace ids and names that tell which mapping applies to them.
    static let rules: WalkRules = {
        var rules = WalkRules.temporalSearchAttributes()
        rules.strings = [.named(["namespace_id", "namespace"])]
        return rules
    }()

    public func schemaReady(_ fileDescriptorSet: UnsafeRawBufferPointer) throws {
        walker.value = try ProtoSchema(fileDescriptorSet: fileDescriptorSet).walker(rules: Self.rules)
    }

    public func wants(method: String, side: CallSide) -> Wants {
        guard !mappings.isEmpty, mappings.methodPrefixes.contains(where: method.hasPrefix) else { return .nothing }
        return .allMessages
    }

    public func startCall(_ call: borrowing CallStart) throws -> CallDecision<CallState> {
        let outbound = call.side == .outbound
        guard call.translationRequested else {
            return .proceed(with: CallState(request: nil, response: nil, outbound: outbound, namespace: .init()))
        }
        // A method the schema does not know (a Temporal newer than the schema) passes untouched.
        let plans = walker.value?.plans(method: call.method)
        return .proceed(with: CallState(
            request: plans?.request,
            response: plans?.response,
            outbound: outbound,
            namespace: CallNamespace(id: nil, name: call.header("temporal-namespace"))
        ))
    }

    public func message(_ message: borrowing MessageView, state: inout CallState) throws -> MessageDecision {
        let isRequest = message.direction == .request
        guard let plan = isRequest ? state.request : state.response, plan.canMatch else { return .unchanged }
        if message.isCompressed {
            throw PluginFailure(
                "search-attribute-rename cannot translate a message compressed in an encoding the proxy does not"
                    + " inflate (it inflates gzip and deflate); use one of those, or none, between Temporal and the proxy")
        }
        let payload = message.payload
        // First read: where the namespaces are, and whether any key is a name some mapping renames.
        var scopes: [Int: Scope] = [:]
        var renamable = false
        try plan.visit(payload) { target in
            if target.kind == .string {
                if !target.valueBytes.isEmpty {
                    let value = target.valueOffset..<(target.valueOffset + target.valueBytes.count)
                    let start = target.enclosingMessageRange.lowerBound
                    if target.fieldName == "namespace_id" {
                        scopes[start, default: Scope()].id = value
                    } else {
                        scopes[start, default: Scope()].name = value
                    }
                }
            } else if !renamable, mappings.knownFieldNames.contains(target.value) {
                renamable = true
            }
        }
        if isRequest, let root = scopes[0] {
            if let id = root.id { state.namespace.id = String(decoding: payload[id], as: UTF8.self) }
            if let name = root.name { state.namespace.name = String(decoding: payload[name], as: UTF8.self) }
        }
        guard renamable else { return .unchanged }
        // Second: rename each key with the mapping of the namespace it belongs to: that of the innermost message
        // around it that names one (resolved once per such message), else the call's.
        let localToRemote = isRequest == state.outbound
        let callNamespace = state.namespace
        let callEntry = mappings.entry(namespaceID: callNamespace.id, name: callNamespace.name)
        let callResolved = callNamespace.id != nil || callNamespace.name != nil || mappings.fallback != nil
        var resolved: [Int: Int?] = [:]
        var renamedCount = 0
        var unscopedCount = 0
        let output = try plan.rewrite(payload) { target in
            guard target.kind == .mapKey else { return nil }
            var scopeStart: Int?
            target.forEachEnclosingMessageStart { start in
                if scopes[start] != nil {
                    scopeStart = start
                    return false
                }
                return true
            }
            let entry: Int?
            if let scopeStart {
                if let known = resolved[scopeStart] {
                    entry = known
                } else {
                    let scope = scopes[scopeStart]!
                    // A message that names its namespace one way only (mutable state has the id) takes the other
                    // from the call, so that an entry keyed by name still finds the state a request by name returns.
                    let id = scope.id.map { String(decoding: payload[$0], as: UTF8.self) } ?? callNamespace.id
                    let name = scope.name.map { String(decoding: payload[$0], as: UTF8.self) } ?? callNamespace.name
                    entry = mappings.entry(namespaceID: id, name: name)
                    resolved[scopeStart] = entry
                }
            } else if callResolved {
                entry = callEntry
            } else {
                if mappings.knownFieldNames.contains(target.value) { unscopedCount += 1 }
                return nil
            }
            guard let entry else { return nil }
            let mapping = mappings.mappings[entry]
            guard let new = (localToRemote ? mapping.localToRemote : mapping.remoteToLocal)[target.value] else {
                return nil
            }
            renamedCount += 1
            return new
        }
        if unscopedCount > 0 {
            unscoped.add(Double(unscopedCount))
        }
        guard let output else { return .unchanged }
        renamed.add(Double(renamedCount))
        return .replaced(output)
    }
}
