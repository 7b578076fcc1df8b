// The access policy of the `acl` plugin: the Go s2s-proxy's `aclPolicy` block, read from the chain entry's
// options, and the per-method decisions drawn from it. Nothing here reads messages; that is ACLPlugin's part.
//
// The rules (behaviour reference, section 5), with this port's two deliberate differences marked:
// * AdminService methods must be in `allowedMethods.adminService` when that list has entries.
// * WorkflowService `RegisterNamespace` and `DeprecateNamespace` are always denied.
// * Every namespace name in a request must be in `allowedNamespaces` when that list has entries; an empty name
//   is "no namespace" and passes (the Go proxy denies it).
// * `ListNamespaces` responses keep only allowed namespaces.
// * Methods of any other service are denied as soon as either list has entries (the Go proxy has no such
//   services; a generic forwarder would otherwise let a newer Temporal's services past the policy).

import PluginKit

/// The `aclPolicy` options and what they mean for each method path.
public struct ACLPolicy: Sendable, Equatable {
    /// The method path prefix of Temporal's AdminService (the server's replication and admin API).
    public static let adminService = "/temporal.server.api.adminservice.v1.AdminService/"
    /// The method path prefix of Temporal's WorkflowService (the public API).
    public static let workflowService = "/temporal.api.workflowservice.v1.WorkflowService/"
    /// WorkflowService methods denied whatever the lists say (the Go proxy's "migration API" policy).
    public static let alwaysDeniedWorkflowMethods: Set<String> = ["RegisterNamespace", "DeprecateNamespace"]

    /// Bare AdminService method names allowed; empty allows every AdminService method.
    public let allowedAdminMethods: Set<String>
    /// Local namespace names a request may carry; empty allows every namespace.
    public let allowedNamespaces: Set<String>

    /// A policy from explicit lists (tests, and the options reader below).
    public init(allowedAdminMethods: Set<String>, allowedNamespaces: Set<String>) {
        self.allowedAdminMethods = allowedAdminMethods
        self.allowedNamespaces = allowedNamespaces
    }

    /// Reads `{"allowedMethods": {"adminService": [...]}, "allowedNamespaces": [...]}`, every key optional.
    ///
    /// - Throws: ``PluginConfigError`` for a method written as a path or an empty name, saying what to write.
    public init(options: PluginOptions) throws(PluginConfigError) {
        let methods = try options.options(forKey: "allowedMethods")?.stringArray(forKey: "adminService") ?? []
        for (index, method) in methods.enumerated() where method.isEmpty || method.contains("/") {
            throw PluginConfigError(
                "options.allowedMethods.adminService[\(index)] must be a bare AdminService method name such as "
                    + "DescribeCluster, not '\(method)'"
            )
        }
        let namespaces = try options.stringArray(forKey: "allowedNamespaces") ?? []
        for (index, namespace) in namespaces.enumerated() where namespace.isEmpty {
            throw PluginConfigError(
                "options.allowedNamespaces[\(index)] is empty: list local namespace names such as orders"
            )
        }
        self.init(allowedAdminMethods: Set(methods), allowedNamespaces: Set(namespaces))
    }

    /// Whether any list restricts anything: when neither does, only the two always-denied methods are refused.
    public var restrictsAnything: Bool {
        !allowedAdminMethods.isEmpty || !allowedNamespaces.isEmpty
    }

    /// Whether a namespace name found in a request is allowed. An empty name means "no namespace" and passes.
    public func allows(namespace: String) -> Bool {
        namespace.isEmpty || allowedNamespaces.isEmpty || allowedNamespaces.contains(namespace)
    }

    /// What the plugin does with the calls of the method at gRPC path `path`.
    public func rule(forMethod path: String) -> MethodRule {
        let name = Self.methodName(of: path)
        // The denial text is built only for a call that is refused: this runs for every call.
        var denied: MethodRule { MethodRule(methodName: name, denial: Self.methodDenial(name)) }
        let checksNamespaces = !allowedNamespaces.isEmpty
        if path.hasPrefix(Self.adminService) {
            if !allowedAdminMethods.isEmpty, !allowedAdminMethods.contains(name) {
                return denied
            }
            return MethodRule(methodName: name, checksRequestNamespaces: checksNamespaces)
        }
        if path.hasPrefix(Self.workflowService) {
            if Self.alwaysDeniedWorkflowMethods.contains(name) {
                return denied
            }
            return MethodRule(
                methodName: name,
                checksRequestNamespaces: checksNamespaces,
                filtersNamespaceList: checksNamespaces && name == "ListNamespaces"
            )
        }
        return restrictsAnything ? denied : MethodRule(methodName: name)
    }

    /// The method name the Go proxy puts in its messages: the part of the path after the last `/`.
    static func methodName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else {
            return path
        }
        return String(path[path.index(after: slash)...])
    }

    /// The Go proxy's text for a method it refuses.
    static func methodDenial(_ name: String) -> String {
        "Calling method \(name) is not allowed."
    }

    /// The Go proxy's text for a request that names a namespace outside the allow-list.
    static func namespaceDenial(_ name: String) -> String {
        "Calling method \(name) is not allowed by namespace access control."
    }
}

/// The policy's decision for one method, taken once per call from its path alone.
public struct MethodRule: Sendable, Equatable {
    /// The bare method name, for messages.
    public let methodName: String
    /// The status message when the call is refused outright, before any message is read.
    public let denial: String?
    /// Whether the namespace names of each request message must be checked.
    public let checksRequestNamespaces: Bool
    /// Whether response messages are `ListNamespacesResponse`s to filter.
    public let filtersNamespaceList: Bool

    init(
        methodName: String,
        denial: String? = nil,
        checksRequestNamespaces: Bool = false,
        filtersNamespaceList: Bool = false
    ) {
        self.methodName = methodName
        self.denial = denial
        self.checksRequestNamespaces = checksRequestNamespaces
        self.filtersNamespaceList = filtersNamespaceList
    }

    /// What the plugin asks the host for: nothing for a method it has no business with.
    public var wants: Wants {
        if denial != nil {
            return .call
        }
        var wants: Wants = []
        if checksRequestNamespaces {
            wants.formUnion([.call, .requestMessages])
        }
        if filtersNamespaceList {
            wants.formUnion([.call, .responseMessages])
        }
        return wants
    }

    /// The status message for a request that names a namespace the policy does not allow.
    public var namespaceDenial: String {
        ACLPolicy.namespaceDenial(methodName)
    }
}

extension ACLPolicy {
    /// The walk rules of the namespace check: the Go proxy's namespace fields, with history blobs in an encoding
    /// the walker cannot read failing the walk rather than hiding the names inside them.
    public static func namespaceRules() -> WalkRules {
        .temporalNamespaces(historyBlobs: .fail)
    }

    /// The first namespace name in `payload`, a message of `plan`'s type, that the policy refuses, described with
    /// its path (`commands[1]....namespace = billing`); `nil` when every name is allowed.
    ///
    /// - Throws: ``ProtoWireError`` when the message cannot be read completely, which a check must treat as a
    ///   refusal.
    public func refusedNamespace(in payload: UnsafeRawBufferPointer, plan: WalkPlan) throws(ProtoWireError) -> String? {
        guard !allowedNamespaces.isEmpty, plan.canMatch else {
            return nil
        }
        var refused: String?
        try plan.visit(payload) { target in
            if refused == nil, !allows(namespace: target.value) {
                refused = "\(target.pathDescription) = \(target.value)"
            }
        }
        return refused
    }
}
