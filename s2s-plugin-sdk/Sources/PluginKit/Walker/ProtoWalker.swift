// A rule set compiled against a schema: the entry point of the schema-driven walker.
//
// Build one per (schema, rules) when the schema arrives (a plugin's `schemaReady`); it is immutable and shared by
// every event loop. The plans of every message type and of both directions of every method are made when it is
// built, so asking for them per call is one dictionary lookup (``plans(method:)`` gives both directions of a call
// for one); a plan whose message cannot contain any target says so (`canMatch`), and walking with it costs nothing.
//
//     let schema = try ProtoSchema(fileDescriptorSet: bytes)
//     let walker = try schema.walker(rules: .temporalNamespaces())
//     let plan = try walker.plan(method: "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution",
//                                direction: .request)
//     let renamed = try plan.rewrite(message) { target in target.value == "orders" ? "orders.acct123" : nil }

/// Walk rules compiled against a schema; hands out ``WalkPlan``s for message types and methods.
public final class ProtoWalker: Sendable {
    /// The schema the rules were compiled against.
    public let schema: ProtoSchema
    /// The rules.
    public let rules: WalkRules
    /// How many levels of nested messages a walk descends before failing with
    /// ``ProtoWireError/Kind/nestingTooDeep(limit:)``.
    public let maximumDepth: Int
    let program: WalkProgram
    /// The roots of both message types of every method, by gRPC path: a plan's parts (a plan itself refers to its
    /// walker, so the walker cannot hold plans without a reference cycle).
    private let methodRoots: [String: (request: PlanRoot, response: PlanRoot)]

    /// Compiles `rules` against `schema`.
    ///
    /// - Parameter maximumDepth: the nesting bound (protobuf's parsers use 100); at least 1.
    /// - Throws: ``ProtoSchemaError`` with ``ProtoSchemaError/Kind/invalidRule(_:)`` when a rule names a message or
    ///   field the schema lacks, or one of the wrong type.
    public init(schema: ProtoSchema, rules: WalkRules, maximumDepth: Int = 100) throws(ProtoSchemaError) {
        self.schema = schema
        self.rules = rules
        self.maximumDepth = max(1, maximumDepth)
        let program = try WalkCompiler.compile(rules, for: schema)
        self.program = program
        var methodRoots: [String: (request: PlanRoot, response: PlanRoot)] = [:]
        methodRoots.reserveCapacity(schema.methods.count)
        for (path, method) in schema.methods {
            // The schema resolved every method's types to messages it holds.
            guard schema.messages[method.inputType] != nil, schema.messages[method.outputType] != nil else { continue }
            methodRoots[path] = (PlanRoot(method.inputType, in: program), PlanRoot(method.outputType, in: program))
        }
        self.methodRoots = methodRoots
    }

    /// The plan for walking messages of type `messageName` (a full name).
    ///
    /// - Throws: ``ProtoSchemaError`` with ``ProtoSchemaError/Kind/unknownMessage(_:)``.
    public func plan(message messageName: String) throws(ProtoSchemaError) -> WalkPlan {
        guard let message = schema.message(named: messageName) else {
            throw ProtoSchemaError(.unknownMessage(messageName))
        }
        return plan(PlanRoot(message.fullName, in: program))
    }

    /// The plans for the request and the response messages of the method at gRPC path `path`, or nil when the
    /// schema has no such method (a Temporal newer than the schema): one lookup for both directions of a call.
    public func plans(method path: String) -> MethodPlans? {
        guard let roots = methodRoots[path] else { return nil }
        return MethodPlans(request: plan(roots.request), response: plan(roots.response))
    }

    /// The plan for the request or response messages of the method at gRPC path `path`
    /// (`/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution`).
    ///
    /// - Throws: ``ProtoSchemaError`` with ``ProtoSchemaError/Kind/unknownMethod(_:)``.
    public func plan(method path: String, direction: MessageDirection) throws(ProtoSchemaError) -> WalkPlan {
        guard let roots = methodRoots[path] else {
            throw ProtoSchemaError(.unknownMethod(path))
        }
        return plan(direction == .request ? roots.request : roots.response)
    }

    private func plan(_ root: PlanRoot) -> WalkPlan {
        WalkPlan(walker: self, messageName: root.messageName, root: root.root)
    }
}

/// What a ``WalkPlan`` is made of besides its walker.
private struct PlanRoot: Sendable {
    let messageName: String
    let root: Int32

    /// The message type's compiled root in `program`; -1 when no target can be reached from it.
    init(_ messageName: String, in program: WalkProgram) {
        self.messageName = messageName
        root = program.roots[messageName] ?? -1
    }
}

/// The walk plans of one method's two message types.
public struct MethodPlans: Sendable {
    /// The plan for the method's request messages.
    public let request: WalkPlan
    /// The plan for the method's response messages.
    public let response: WalkPlan
}

extension ProtoSchema {
    /// Compiles `rules` against this schema; see ``ProtoWalker/init(schema:rules:maximumDepth:)``.
    public func walker(rules: WalkRules, maximumDepth: Int = 100) throws(ProtoSchemaError) -> ProtoWalker {
        try ProtoWalker(schema: self, rules: rules, maximumDepth: maximumDepth)
    }
}
