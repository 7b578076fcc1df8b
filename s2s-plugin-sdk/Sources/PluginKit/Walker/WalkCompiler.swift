// Compiles ``WalkRules`` against a ``ProtoSchema`` into a ``WalkProgram``, once per rule set.
//
// First every message type of the schema becomes a node, and each node's fields become edges: to a target, or to
// the node of the message the field holds (a map entry's variant when its keys or values are targets, a
// container's variant when an embedded-message rule selects the field). Then the nodes that can reach a target
// are found by walking the edges backwards from the targets, so cycles (`Failure.cause`) need no special care.
// Only those nodes, and only their edges to targets or to such nodes, make it into the program.

struct WalkCompiler {
    private enum Variant: Hashable {
        case plain
        case mapEntry(key: Int32?, value: Int32?)
        case container(rule: Int)
    }

    private struct NodeKey: Hashable {
        let messageName: String
        let variant: Variant
    }

    private enum Edge {
        case target(Int32)
        case descend(node: Int, gated: Bool)
    }

    private let schema: ProtoSchema
    private let rules: WalkRules
    private var keys: [NodeKey] = []
    private var nodeIndex: [NodeKey: Int] = [:]
    private var edges: [[(number: Int, edge: Edge)]] = []
    private var targets: [WalkTargetInfo] = []
    private var targetIndex: [WalkTargetInfo: Int32] = [:]

    /// Checks the rules against the schema and compiles them.
    static func compile(_ rules: WalkRules, for schema: ProtoSchema) throws(ProtoSchemaError) -> WalkProgram {
        try WalkRuleValidator(schema: schema, rules: rules).validate()
        var compiler = WalkCompiler(schema: schema, rules: rules)
        return try compiler.build()
    }

    private init(schema: ProtoSchema, rules: WalkRules) {
        self.schema = schema
        self.rules = rules
    }

    private mutating func build() throws(ProtoSchemaError) -> WalkProgram {
        for name in schema.messages.keys.sorted() {
            _ = node(NodeKey(messageName: name, variant: .plain))
        }
        var next = 0
        while next < keys.count {  // discovering edges can add variant nodes, which are processed in turn
            edges[next] = try edgesOf(keys[next])
            next += 1
        }
        let reachesTarget = nodesReachingTargets()
        return try emit(keeping: reachesTarget)
    }

    private mutating func node(_ key: NodeKey) -> Int {
        if let existing = nodeIndex[key] {
            return existing
        }
        keys.append(key)
        edges.append([])
        nodeIndex[key] = keys.count - 1
        return keys.count - 1
    }

    private mutating func target(_ kind: WalkTarget.Kind, _ field: ProtoSchema.Field, of message: String) -> Int32 {
        let info = WalkTargetInfo(kind: kind, messageName: message, fieldName: field.name, fieldNumber: field.number)
        if let existing = targetIndex[info] {
            return existing
        }
        targets.append(info)
        targetIndex[info] = Int32(targets.count - 1)
        return Int32(targets.count - 1)
    }

    private mutating func edgesOf(_ key: NodeKey) throws(ProtoSchemaError) -> [(number: Int, edge: Edge)] {
        guard let message = schema.messages[key.messageName] else {
            throw ProtoSchemaError(.unknownMessage(key.messageName))
        }
        var result: [(number: Int, edge: Edge)] = []
        for field in message.fields {
            if let edge = edge(for: field, of: message, variant: key.variant) {
                result.append((field.number, edge))
            }
        }
        return result
    }

    private mutating func edge(
        for field: ProtoSchema.Field,
        of message: ProtoSchema.Message,
        variant: Variant
    ) -> Edge? {
        switch variant {
        case .mapEntry(let key, _) where field.number == 1 && key != nil:
            return key.map(Edge.target)
        case .mapEntry(_, let value) where field.number == 2 && value != nil:
            return value.map(Edge.target)
        case .container(let ruleIndex):
            let rule = rules.embeddedMessages[ruleIndex]
            if let container = rule.container, field.name == container.bytesField {
                let held = node(NodeKey(messageName: rule.messageName, variant: .plain))
                return .descend(node: held, gated: container.encodingField != nil)
            }
        default:
            break
        }
        switch field.type {
        case .string:
            let selected = rules.strings.contains { $0.matches(field, in: message) }
            return selected ? .target(target(.string, field, of: message.fullName)) : nil
        case .bytes:
            guard
                let rule = rules.embeddedMessages.first(where: {
                    $0.container == nil && $0.fields.matches(field, in: message)
                })
            else {
                return nil
            }
            return .descend(node: node(NodeKey(messageName: rule.messageName, variant: .plain)), gated: false)
        case .message:
            guard let typeName = field.typeName, let held = schema.messages[typeName] else {
                return nil
            }
            return .descend(
                node: node(NodeKey(messageName: typeName, variant: heldVariant(field, of: message, held))),
                gated: false
            )
        default:
            return nil
        }
    }

    /// The variant of the node for the message that `field` of `message` holds.
    private mutating func heldVariant(
        _ field: ProtoSchema.Field,
        of message: ProtoSchema.Message,
        _ held: ProtoSchema.Message
    ) -> Variant {
        if field.isMap {
            let keyIsString = held.field(number: 1)?.type == .string
            let valueIsString = held.field(number: 2)?.type == .string
            let key =
                keyIsString && rules.mapKeys.contains { $0.matches(field, in: message) }
                ? target(.mapKey, field, of: message.fullName) : nil
            let value =
                valueIsString && rules.mapValues.contains { $0.matches(field, in: message) }
                ? target(.mapValue, field, of: message.fullName) : nil
            return key == nil && value == nil ? .plain : .mapEntry(key: key, value: value)
        }
        let ruleIndex = rules.embeddedMessages.firstIndex {
            $0.container?.messageName == held.fullName && $0.fields.matches(field, in: message)
        }
        return ruleIndex.map { .container(rule: $0) } ?? .plain
    }

    /// Marks every node from which some path of edges leads to a target.
    private func nodesReachingTargets() -> [Bool] {
        var predecessors = [[Int]](repeating: [], count: keys.count)
        var reaches = [Bool](repeating: false, count: keys.count)
        var pending: [Int] = []
        for (index, nodeEdges) in edges.enumerated() {
            for (_, edge) in nodeEdges {
                switch edge {
                case .target:
                    if !reaches[index] {
                        reaches[index] = true
                        pending.append(index)
                    }
                case .descend(let child, _):
                    predecessors[child].append(index)
                }
            }
        }
        while let index = pending.popLast() {
            for predecessor in predecessors[index] where !reaches[predecessor] {
                reaches[predecessor] = true
                pending.append(predecessor)
            }
        }
        return reaches
    }

    private func emit(keeping reaches: [Bool]) throws(ProtoSchemaError) -> WalkProgram {
        var program = WalkTables()
        program.targets = targets
        var newIndex = [Int32](repeating: -1, count: keys.count)
        var next: Int32 = 0
        for index in keys.indices where reaches[index] {
            newIndex[index] = next
            next += 1
        }
        for index in keys.indices where reaches[index] {
            var actions: [(number: Int, action: FieldAction)] = []
            for (number, edge) in edges[index] {
                switch edge {
                case .target(let target):
                    actions.append((number, FieldAction(kind: .target, index: target)))
                case .descend(let child, let gated) where reaches[child]:
                    actions.append(
                        (number, FieldAction(kind: gated ? .descendGated : .descend, index: newIndex[child]))
                    )
                case .descend:
                    break
                }
            }
            let key = keys[index]
            var gate = -1
            if case .container(let ruleIndex) = key.variant {
                gate = try appendGate(for: rules.embeddedMessages[ruleIndex], to: &program)
            }
            let added = program.appendNode(messageName: key.messageName, actions: actions, gate: gate)
            if key.variant == .plain {
                program.roots[key.messageName] = added
            }
        }
        return WalkProgram(program)
    }

    private func appendGate(
        for rule: EmbeddedMessageRule,
        to program: inout WalkTables
    ) throws(ProtoSchemaError) -> Int {
        guard let container = rule.container, let encodingField = container.encodingField else {
            return -1
        }
        guard let number = schema.messages[container.messageName]?.field(named: encodingField)?.number else {
            throw ProtoSchemaError(.invalidRule("\(container.messageName) has no field \(encodingField)"))
        }
        program.gates.append(
            EncodingGate(
                encodingFieldNumber: number,
                walkedEncodings: container.walkedEncodings.sorted(),
                otherEncodings: rule.otherEncodings
            )
        )
        return program.gates.count - 1
    }
}
