// The walk itself: one forward pass over the message with an explicit stack of the sub-messages it is inside,
// descending only where the compiled program says a target can be, and recording splices for changed values.
//
// Every offset comes from the wire layer's field decoder, which checks each key, varint, fixed-width value and
// length against the end of the enclosing message; the stack is bounded by the walker's maximum depth. Subtrees
// the program skips are stepped over by their length and not validated inside: they are forwarded as they came.
// Fields whose wire type is not length-delimited are never targets or messages, whatever the schema says: a
// protobuf parser (Temporal's included) treats a field with the wrong wire type as unknown, so the walker does too.

/// One message the walk is inside: where it is, and how much its payload has grown or shrunk so far.
struct WalkFrame {
    /// The node walking this message.
    var node: Int32
    /// The number of the field holding this message in its parent (0 for the root).
    var fieldNumber: Int32
    /// For a container node: whether its serialized message is walked (its encoding gate), and the encoding read.
    var gateOpen: Bool
    var encoding: UInt64
    /// Where the field holding this message starts in the parent, and where its length prefix and payload start
    /// (the root: -1, 0 and 0).
    var fieldStart: Int
    var prefixStart: Int
    var payloadStart: Int
    /// Where the payload ends.
    var end: Int
    /// Bytes added (or removed, if negative) inside the payload by the splices recorded so far.
    var delta: Int
    /// How many splices existed when this message was entered: its own length splice, if needed, goes there.
    var spliceIndex: Int
}

enum WalkEngine {
    /// Walks `bytes` as a message of the program's node `root`, calling `callback` for every target in order;
    /// a non-nil result that differs from the value replaces it.
    static func run(
        _ walker: ProtoWalker,
        root: Int32,
        bytes: UnsafeRawBufferPointer,
        callback: (WalkTarget) -> String?
    ) throws(ProtoWireError) -> WalkEdits {
        // Temporary allocations up to 1 KiB are always on the stack; larger ones may come from the heap (on Linux
        // they did, once per walk, a third of a small message's cost). 1 KiB holds the nesting of ordinary
        // messages; a deeper walk moves its frames to the heap when it gets there.
        let stackFrames = min(walker.maximumDepth + 1, 1024 / MemoryLayout<WalkFrame>.stride)
        return try withUnsafeTemporaryAllocation(of: WalkFrame.self, capacity: stackFrames) {
            (frames) throws(ProtoWireError) -> WalkEdits in
            var state = WalkState(walker: walker, bytes: bytes, frames: frames, root: root)
            defer {
                state.releaseHeapFrames()
            }
            try walk(&state, callback: callback)
            return state.edits()
        }
    }

    /// The hot loop: decode a field, look up its action, step over it unless it is a target or leads to one.
    /// Everything rarer (a target, entering or leaving a message) is a call into ``WalkState``, which keeps this
    /// loop small enough for the field decoder to be inlined into it.
    private static func walk(_ state: inout WalkState, callback: (WalkTarget) -> String?) throws(ProtoWireError) {
        let bytes = state.bytes
        let program = state.program
        var position = 0
        var end = bytes.count
        var node = program.nodes[Int(state.frames[0].node)]
        while true {
            if position >= end {
                guard state.depth > 0 else {
                    return
                }
                state.leave()
                end = state.frames[state.depth].end
                node = program.nodes[Int(state.frames[state.depth].node)]
                continue
            }
            let field = try ProtoWireScanner.field(in: bytes, at: position, end: end)
            position = field.fieldRange.upperBound
            guard field.wireType == .lengthDelimited else {
                continue
            }
            let action = program.action(for: field.fieldNumber, in: node)
            switch action.kind {
            case .skip:
                continue
            case .target:
                state.visit(field, target: Int(action.index), callback: callback)
            case .descend, .descendGated:
                guard try state.enter(field, action: action, from: node) else {
                    continue
                }
                position = field.payloadRange.lowerBound
                end = field.payloadRange.upperBound
                node = program.nodes[Int(action.index)]
            }
        }
    }
}

/// The walk's frame stack and the edits recorded so far.
private struct WalkState {
    let walker: ProtoWalker
    let program: WalkProgram
    let bytes: UnsafeRawBufferPointer
    private(set) var frames: UnsafeMutableBufferPointer<WalkFrame>
    private var framesOnHeap = false
    private(set) var depth = 0
    private var splices: [WalkEdits.Splice] = []
    private var replacementBytes: [UInt8] = []
    private var replacedValueCount = 0

    init(
        walker: ProtoWalker,
        bytes: UnsafeRawBufferPointer,
        frames: UnsafeMutableBufferPointer<WalkFrame>,
        root: Int32
    ) {
        self.walker = walker
        self.program = walker.program
        self.bytes = bytes
        self.frames = frames
        frames.initializeElement(
            at: 0,
            to: WalkFrame(
                node: root,
                fieldNumber: 0,
                gateOpen: true,
                encoding: 0,
                fieldStart: -1,
                prefixStart: 0,
                payloadStart: 0,
                end: bytes.count,
                delta: 0,
                spliceIndex: 0
            )
        )
    }

    /// Hands the target in `field` to `callback` and records its replacement, if any.
    @inline(never)
    mutating func visit(_ field: ProtoWireField, target: Int, callback: (WalkTarget) -> String?) {
        let payload = field.payloadRange
        let value = UnsafeRawBufferPointer(rebasing: bytes[payload])
        let visited = WalkTarget(
            kind: program.targetKinds[target],
            valueBytes: value,
            valueOffset: payload.lowerBound,
            targetIndex: target,
            fieldStart: field.fieldRange.lowerBound,
            frames: UnsafeBufferPointer(rebasing: frames[0...depth]),
            message: bytes,
            walker: walker
        )
        guard let replacement = callback(visited), !Self.utf8(of: replacement, equals: value) else {
            return
        }
        if splices.isEmpty {
            // One value usually brings a length prefix per enclosing message: room for a few of each at once.
            splices.reserveCapacity(16)
            replacementBytes.reserveCapacity(64 + replacement.utf8.count)
        }
        let start = replacementBytes.count
        ProtoVarint.append(UInt64(replacement.utf8.count), to: &replacementBytes)
        replacementBytes.append(contentsOf: replacement.utf8)
        let replaced = field.keyEnd..<payload.upperBound
        splices.append(WalkEdits.Splice(original: replaced, replacement: start..<replacementBytes.count))
        frames[depth].delta += replacementBytes.count - start - replaced.count
        replacedValueCount += 1
    }

    /// Pushes the message in `field` onto the stack, unless the enclosing container's encoding gate is closed.
    ///
    /// - Returns: whether the walk continues inside the field.
    @inline(never)
    mutating func enter(
        _ field: ProtoWireField,
        action: FieldAction,
        from node: WalkNode
    ) throws(ProtoWireError) -> Bool {
        if action.kind == .descendGated, !frames[depth].gateOpen {
            if program.gates[node.gate].otherEncodings == .fail {
                throw ProtoWireError(
                    offset: field.fieldRange.lowerBound,
                    kind: .embeddedEncodingNotWalked(encoding: frames[depth].encoding)
                )
            }
            return false
        }
        guard depth < walker.maximumDepth else {
            throw ProtoWireError(offset: field.fieldRange.lowerBound, kind: .nestingTooDeep(limit: walker.maximumDepth))
        }
        if depth + 1 == frames.count {
            moveFramesToHeap()
        }
        let child = program.nodes[Int(action.index)]
        var gate = (open: true, encoding: UInt64(0))
        if child.gate >= 0 {
            gate = try program.gates[child.gate].evaluate(bytes, payload: field.payloadRange)
        }
        depth += 1
        frames[depth] = WalkFrame(
            node: action.index,
            fieldNumber: Int32(field.fieldNumber),
            gateOpen: gate.open,
            encoding: gate.encoding,
            fieldStart: field.fieldRange.lowerBound,
            prefixStart: field.keyEnd,
            payloadStart: field.payloadRange.lowerBound,
            end: field.payloadRange.upperBound,
            delta: 0,
            spliceIndex: splices.count
        )
        return true
    }

    /// Pops the innermost message; if its payload changed size, records its new length prefix (ahead of the
    /// splices inside it, keeping the list in offset order) and passes the change on to its parent.
    @inline(never)
    mutating func leave() {
        let closing = frames[depth]
        depth -= 1
        guard closing.delta != 0 else {
            return
        }
        let newLength = closing.end - closing.payloadStart + closing.delta
        let start = replacementBytes.count
        ProtoVarint.append(UInt64(newLength), to: &replacementBytes)
        let prefix = closing.prefixStart..<closing.payloadStart
        splices.insert(
            WalkEdits.Splice(original: prefix, replacement: start..<replacementBytes.count),
            at: closing.spliceIndex
        )
        frames[depth].delta += closing.delta + (replacementBytes.count - start) - prefix.count
    }

    /// Makes room for the deepest walk the walker allows, once the stack buffer is full.
    private mutating func moveFramesToHeap() {
        let heap = UnsafeMutableBufferPointer<WalkFrame>.allocate(capacity: walker.maximumDepth + 1)
        _ = heap.initialize(fromContentsOf: frames[0...depth])
        releaseHeapFrames()
        frames = heap
        framesOnHeap = true
    }

    mutating func releaseHeapFrames() {
        if framesOnHeap {
            frames.deallocate()
            framesOnHeap = false
        }
    }

    func edits() -> WalkEdits {
        WalkEdits(
            splices: splices,
            replacementBytes: replacementBytes,
            originalCount: bytes.count,
            rewrittenCount: bytes.count + frames[0].delta,
            replacedValueCount: replacedValueCount
        )
    }

    private static func utf8(of text: String, equals bytes: UnsafeRawBufferPointer) -> Bool {
        let utf8 = text.utf8
        guard utf8.count == bytes.count else {
            return false
        }
        return utf8.withContiguousStorageIfAvailable { $0.elementsEqual(bytes) } ?? utf8.elementsEqual(bytes)
    }
}
