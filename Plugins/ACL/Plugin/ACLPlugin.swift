// The `acl` translator plugin: the Go s2s-proxy's `aclPolicy` as a chain entry for the inbound side (calls the
// remote cluster makes to ours). ACLPolicy decides per method; this type applies the decisions to calls:
// refusing methods at call start, checking every namespace name of each request with the schema-driven walker,
// and filtering `ListNamespaces` responses.
//
// It runs after namespace renaming in the chain, so it sees, and its lists name, local namespaces. Failing to
// check is never passing: a request the walker cannot read completely (malformed, compressed, a history blob in
// another encoding, a method the schema lacks) is refused as the Go proxy refuses a request its visitor fails on.

import PluginKit

/// One instance per chain entry; immutable after `init` apart from what `schemaReady` derives.
public final class ACLPlugin: TranslatorPlugin {
    public static let name = "acl"
    public static let version = "1.0.0"
    public static let description =
        "Allows AdminService methods and namespaces by list, as the Go s2s-proxy's aclPolicy (inbound side)"
    public static let needsSchema = true

    /// What one checked call carries from its start to its messages.
    public struct CallState {
        let rule: MethodRule
        let requestPlan: WalkPlan?
    }

    private struct Derived: Sendable {
        let listFilter: NamespaceListFilter
        /// The rule and the request plan of every method of the schema, decided once: a call of one of them costs
        /// one lookup of its path.
        let methods: [String: (rule: MethodRule, requestPlan: WalkPlan)]
    }

    /// The policy read from the options.
    public let policy: ACLPolicy
    private let derived = SchemaDerived<Derived>()
    private let host: PluginHost
    private let denials: PluginCounter
    private let filteredNamespaces: PluginCounter

    public init(options: PluginOptions, host: PluginHost) throws {
        policy = try ACLPolicy(options: options)
        self.host = host
        denials = try host.counter(name: "acl_denied_calls_total", help: "Calls refused by the ACL")
        filteredNamespaces = try host.counter(
            name: "acl_filtered_namespaces_total",
            help: "Namespaces removed from ListNamespaces responses"
        )
    }

    /// Compiles the namespace walk (``ACLPolicy/namespaceRules()``) and finds the `ListNamespaces` fields; warns
    /// about allowed AdminService methods this Temporal does not have (a typo allows nothing).
    public func schemaReady(_ fileDescriptorSet: UnsafeRawBufferPointer) throws {
        let schema = try ProtoSchema(fileDescriptorSet: fileDescriptorSet)
        let walker = try schema.walker(rules: ACLPolicy.namespaceRules())
        var methods: [String: (rule: MethodRule, requestPlan: WalkPlan)] = [:]
        for path in schema.methods.keys {
            if let plans = walker.plans(method: path) {
                methods[path] = (policy.rule(forMethod: path), plans.request)
            }
        }
        derived.value = Derived(listFilter: try NamespaceListFilter(schema: schema), methods: methods)
        for method in policy.allowedAdminMethods.sorted()
        where schema.method(path: ACLPolicy.adminService + method) == nil {
            host.warning("acl: allowedMethods.adminService lists \(method), which this Temporal's AdminService lacks")
        }
    }

    public func wants(method: String, side: CallSide) -> Wants {
        policy.rule(forMethod: method).wants
    }

    public func startCall(_ call: borrowing CallStart) throws -> CallDecision<CallState> {
        let method = call.method
        let schemaDerived = derived.value
        let known = schemaDerived?.methods[method]
        let rule = known?.rule ?? policy.rule(forMethod: method)
        if let denial = rule.denial {
            return deny(denial, because: "\(method) is not allowed")
        }
        guard rule.checksRequestNamespaces else {
            return .proceed(with: CallState(rule: rule, requestPlan: nil))
        }
        guard schemaDerived != nil else {
            throw PluginFailure("the Temporal schema has not been delivered")
        }
        // Every method the schema has is in `methods`: one that is not cannot have its namespaces checked.
        guard let known else {
            return deny(rule.namespaceDenial, because: "the Temporal schema lacks \(method): namespaces not checkable")
        }
        return .proceed(with: CallState(rule: rule, requestPlan: known.requestPlan))
    }

    public func message(_ message: borrowing MessageView, state: inout CallState) throws -> MessageDecision {
        switch message.direction {
        case .request:
            return checkNamespaces(message, state: state)
        case .response:
            return try filterNamespaceList(message, state: state)
        }
    }

    /// Refuses the request if any namespace name in it is not allowed.
    private func checkNamespaces(_ message: borrowing MessageView, state: CallState) -> MessageDecision {
        guard let plan = state.requestPlan, plan.canMatch else {
            return .unchanged
        }
        let denial = state.rule.namespaceDenial
        if message.isCompressed {
            return rejected(denial, because: "a compressed request of \(state.rule.methodName) cannot be checked")
        }
        do {
            if let refused = try policy.refusedNamespace(in: message.payload, plan: plan) {
                return rejected(denial, because: "namespace \(refused) is not in allowedNamespaces")
            }
        } catch {
            return rejected(denial, because: "the request of \(state.rule.methodName) cannot be read: \(error)")
        }
        return .unchanged
    }

    /// Drops the namespaces the policy does not allow from a `ListNamespaces` response.
    private func filterNamespaceList(_ message: borrowing MessageView, state: CallState) throws -> MessageDecision {
        guard state.rule.filtersNamespaceList else {
            return .unchanged
        }
        guard !message.isCompressed else {
            throw PluginFailure("a compressed ListNamespaces response cannot be filtered")
        }
        guard let filter = derived.value?.listFilter else {
            throw PluginFailure("the Temporal schema has not been delivered")
        }
        var removed = 0
        let filtered = try filter.filter(message.payload) { name in
            let allowed = !name.isEmpty && policy.allows(namespace: name)
            if !allowed {
                removed += 1
            }
            return allowed
        }
        guard let filtered else {
            return .unchanged
        }
        filteredNamespaces.add(Double(removed))
        return .replaced(filtered)
    }

    private func deny(_ message: String, because reason: @autoclosure () -> String) -> CallDecision<CallState> {
        denials.add()
        host.debug("acl: refused: \(reason())")
        return .rejected(.permissionDenied, message)
    }

    private func rejected(_ message: String, because reason: @autoclosure () -> String) -> MessageDecision {
        denials.add()
        host.debug("acl: refused: \(reason())")
        return .rejected(.permissionDenied, message)
    }
}
