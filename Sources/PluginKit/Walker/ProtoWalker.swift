// A rule set compiled against a schema: the entry point of the schema-driven walker.
//
// Build one per (schema, rules) when the schema arrives (a plugin's `schemaReady`); it is immutable and shared by
// every event loop. Asking it for the plan of a message type or of a gRPC method is a dictionary lookup, cheap
// enough per call; a plan whose message cannot contain any target says so (`canMatch`), and walking with it costs
// nothing.
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

    /// Compiles `rules` against `schema`.
    ///
    /// - Parameter maximumDepth: the nesting bound (protobuf's parsers use 100); at least 1.
    /// - Throws: ``ProtoSchemaError`` with ``ProtoSchemaError/Kind/invalidRule(_:)`` when a rule names a message or
    ///   field the schema lacks, or one of the wrong type.
    public init(schema: ProtoSchema, rules: WalkRules, maximumDepth: Int = 100) throws(ProtoSchemaError) {
        self.schema = schema
        self.rules = rules
        self.maximumDepth = max(1, maximumDepth)
        program = try WalkCompiler.compile(rules, for: schema)
    }

    /// The plan for walking messages of type `messageName` (a full name).
    ///
    /// - Throws: ``ProtoSchemaError`` with ``ProtoSchemaError/Kind/unknownMessage(_:)``.
    public func plan(message messageName: String) throws(ProtoSchemaError) -> WalkPlan {
        guard let message = schema.message(named: messageName) else {
            throw ProtoSchemaError(.unknownMessage(messageName))
        }
        return WalkPlan(walker: self, messageName: message.fullName, root: program.roots[message.fullName] ?? -1)
    }

    /// The plan for the request or response messages of the method at gRPC path `path`
    /// (`/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution`).
    ///
    /// - Throws: ``ProtoSchemaError`` with ``ProtoSchemaError/Kind/unknownMethod(_:)``.
    public func plan(method path: String, direction: MessageDirection) throws(ProtoSchemaError) -> WalkPlan {
        guard let method = schema.method(path: path) else {
            throw ProtoSchemaError(.unknownMethod(path))
        }
        return try plan(message: direction == .request ? method.inputType : method.outputType)
    }
}

extension ProtoSchema {
    /// Compiles `rules` against this schema; see ``ProtoWalker/init(schema:rules:maximumDepth:)``.
    public func walker(rules: WalkRules, maximumDepth: Int = 100) throws(ProtoSchemaError) -> ProtoWalker {
        try ProtoWalker(schema: self, rules: rules, maximumDepth: maximumDepth)
    }
}
