// The compiled form of a rule set over a schema: one node per message type that can lead to a target, each with
// a table from field number to what the walker does with that field. Everything else is absent, so the walker
// skips a field that cannot lead to a target in one table lookup, without looking inside it.
//
// A message type can need several nodes: a map entry is walked differently when its map's keys are targets, and
// a `DataBlob` reached through a history field holds a walkable `History` while any other `DataBlob` does not.

/// What the walker does with one length-delimited field of a node's message.
struct FieldAction: Sendable, Equatable {
    enum Kind: UInt8, Sendable {
        /// Nothing under this field can be a target: step over it.
        case skip
        /// The field's value is a target string; ``FieldAction/index`` names its ``WalkTargetInfo``.
        case target
        /// Walk the field's payload as the message of node ``FieldAction/index``.
        case descend
        /// As `descend`, but only when the enclosing container's encoding gate is open.
        case descendGated
    }

    let kind: Kind
    let index: Int32

    static let skip = FieldAction(kind: .skip, index: -1)
}

/// One message type as the walker sees it; plain integers only, so taking one costs no reference counting.
struct WalkNode: Sendable {
    /// Field numbers `0..<denseCount` are looked up at `denseBase + number` of ``WalkProgram/denseActions``.
    let denseBase: Int
    let denseCount: Int
    /// Larger field numbers, sorted, at `sparseBase..<sparseBase + sparseCount` of ``WalkProgram/sparseActions``.
    let sparseBase: Int
    let sparseCount: Int
    /// Index into ``WalkProgram/gates`` for a container node (e.g. a history `DataBlob`), otherwise -1.
    let gate: Int
}

/// The target a ``FieldAction/Kind/target`` action stands for, reported to callbacks.
struct WalkTargetInfo: Sendable, Hashable {
    let kind: WalkTarget.Kind
    /// The message declaring the field (for map keys and values: the message declaring the map).
    let messageName: String
    let fieldName: String
    let fieldNumber: Int
}

/// How a container node decides whether its serialized message is walked.
struct EncodingGate: Sendable {
    let encodingFieldNumber: Int
    /// A handful of values at most: an array is faster to search than a set is to hash.
    let walkedEncodings: [UInt64]
    let otherEncodings: EmbeddedMessageRule.OtherEncodings

    /// Reads the encoding field of the container in `payload` (the last occurrence wins, an absent one is 0).
    /// A value in another wire type is not the field protobuf parsers would read, so it is ignored as they do.
    func evaluate(
        _ bytes: UnsafeRawBufferPointer,
        payload: Range<Int>
    ) throws(ProtoWireError) -> (open: Bool, encoding: UInt64) {
        var encoding: UInt64 = 0
        var position = payload.lowerBound
        while position < payload.upperBound {
            let field = try ProtoWireScanner.field(in: bytes, at: position, end: payload.upperBound)
            if field.fieldNumber == encodingFieldNumber, field.wireType == .varint {
                encoding = try ProtoVarint.decode(bytes, at: field.payloadRange.lowerBound, end: payload.upperBound)
                    .value
            }
            position = field.fieldRange.upperBound
        }
        return (walkedEncodings.contains(encoding), encoding)
    }
}

/// The tables of a compiled rule set: immutable, shared by every walk, and a class so that a walk holds one
/// reference to it rather than one per table.
final class WalkProgram: Sendable {
    let nodes: [WalkNode]
    /// The full name of each node's message, for callbacks and paths.
    let nodeMessageNames: [String]
    let denseActions: [FieldAction]
    let sparseActions: [(number: Int, action: FieldAction)]
    let targets: [WalkTargetInfo]
    /// ``targets``' kinds alone, so the walk reads a kind without touching the strings beside it.
    let targetKinds: [WalkTarget.Kind]
    let gates: [EncodingGate]
    /// The node walking each message type from the top, for the types that can contain a target.
    let roots: [String: Int32]

    init(_ tables: WalkTables) {
        nodes = tables.nodes
        nodeMessageNames = tables.nodeMessageNames
        denseActions = tables.denseActions
        sparseActions = tables.sparseActions
        targets = tables.targets
        targetKinds = tables.targets.map(\.kind)
        gates = tables.gates
        roots = tables.roots
    }

    @inline(__always)
    func action(for number: Int, in node: WalkNode) -> FieldAction {
        if number < node.denseCount {
            return denseActions[node.denseBase + number]
        }
        var low = node.sparseBase
        var high = node.sparseBase + node.sparseCount
        while low < high {
            let middle = (low + high) / 2
            let candidate = sparseActions[middle]
            if candidate.number == number {
                return candidate.action
            }
            if candidate.number < number {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return .skip
    }
}

/// The tables while the compiler fills them.
struct WalkTables {
    /// Field numbers at or above this go to the sparse table, so one large field number cannot blow up a node.
    static let denseLimit = 512

    var nodes: [WalkNode] = []
    var nodeMessageNames: [String] = []
    var denseActions: [FieldAction] = []
    var sparseActions: [(number: Int, action: FieldAction)] = []
    var targets: [WalkTargetInfo] = []
    var gates: [EncodingGate] = []
    var roots: [String: Int32] = [:]

    /// Appends a node whose actions are `actions` (field number, action) and returns its index.
    mutating func appendNode(messageName: String, actions: [(number: Int, action: FieldAction)], gate: Int) -> Int32 {
        let sorted = actions.sorted { $0.number < $1.number }
        let dense = sorted.filter { $0.number < Self.denseLimit }
        let sparse = sorted.filter { $0.number >= Self.denseLimit }
        let denseCount = (dense.last?.number ?? -1) + 1
        let denseBase = denseActions.count
        denseActions.append(contentsOf: repeatElement(.skip, count: denseCount))
        for (number, action) in dense {
            denseActions[denseBase + number] = action
        }
        let sparseBase = sparseActions.count
        sparseActions.append(contentsOf: sparse)
        nodeMessageNames.append(messageName)
        nodes.append(
            WalkNode(
                denseBase: denseBase,
                denseCount: denseCount,
                sparseBase: sparseBase,
                sparseCount: sparse.count,
                gate: gate
            )
        )
        return Int32(nodes.count - 1)
    }
}
