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
        let program = walker.program
        let maximumDepth = walker.maximumDepth
        return try withUnsafeTemporaryAllocation(of: WalkFrame.self, capacity: maximumDepth + 1) {
            (frames) throws(ProtoWireError) -> WalkEdits in
            var splices: [WalkEdits.Splice] = []
            var replacedValueCount = 0
            frames.initializeElement(
                at: 0,
                to: WalkFrame(
                    node: root, fieldNumber: 0, gateOpen: true, encoding: 0, fieldStart: -1, prefixStart: 0,
                    payloadStart: 0, end: bytes.count, delta: 0, spliceIndex: 0
                )
            )
            var depth = 0
            var position = 0
            var end = bytes.count
            var node = program.nodes[Int(root)]
            while true {
                if position >= end {
                    guard depth > 0 else {
                        break
                    }
                    let closing = frames[depth]
                    depth -= 1
                    if closing.delta != 0 {
                        let newLength = closing.end - closing.payloadStart + closing.delta
                        let oldPrefixLength = closing.payloadStart - closing.prefixStart
                        let newPrefixLength = ProtoVarint.encodedLength(of: UInt64(newLength))
                        splices.insert(
                            WalkEdits.Splice(
                                range: closing.prefixStart..<closing.payloadStart,
                                replacement: .length(newLength)
                            ),
                            at: closing.spliceIndex
                        )
                        frames[depth].delta += closing.delta + newPrefixLength - oldPrefixLength
                    }
                    end = frames[depth].end
                    node = program.nodes[Int(frames[depth].node)]
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
                    let payload = field.payloadRange
                    let value = UnsafeRawBufferPointer(rebasing: bytes[payload])
                    let target = WalkTarget(
                        kind: program.targets[Int(action.index)].kind,
                        valueBytes: value,
                        valueOffset: payload.lowerBound,
                        info: program.targets[Int(action.index)],
                        fieldStart: field.fieldRange.lowerBound,
                        frames: UnsafeBufferPointer(rebasing: frames[0...depth]),
                        message: bytes,
                        walker: walker
                    )
                    guard let replacement = callback(target), !replacement.utf8.elementsEqual(value) else {
                        continue
                    }
                    let newCount = replacement.utf8.count
                    let newSize = ProtoVarint.encodedLength(of: UInt64(newCount)) + newCount
                    splices.append(
                        WalkEdits.Splice(range: field.keyEnd..<payload.upperBound, replacement: .string(replacement))
                    )
                    frames[depth].delta += newSize - (payload.upperBound - field.keyEnd)
                    replacedValueCount += 1
                case .descend, .descendGated:
                    if action.kind == .descendGated, !frames[depth].gateOpen {
                        if program.gates[node.gate].otherEncodings == .fail {
                            throw ProtoWireError(
                                offset: field.fieldRange.lowerBound,
                                kind: .embeddedEncodingNotWalked(encoding: frames[depth].encoding)
                            )
                        }
                        continue
                    }
                    guard depth < maximumDepth else {
                        throw ProtoWireError(offset: field.fieldRange.lowerBound, kind: .nestingTooDeep(limit: maximumDepth))
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
                    position = field.payloadRange.lowerBound
                    end = field.payloadRange.upperBound
                    node = child
                }
            }
            return WalkEdits(
                splices: splices,
                originalCount: bytes.count,
                rewrittenCount: bytes.count + frames[0].delta,
                replacedValueCount: replacedValueCount
            )
        }
    }
}
