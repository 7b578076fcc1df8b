// What a walk callback is told about one target value: the value, the field it is in, and (computed only when
// asked) the path from the root message down to it.
//
// A target borrows the message buffer and the walker's frame stack, so it is valid only during the callback, like
// the host's message bytes during a hook. Nothing here allocates unless the callback asks for `value` (strings of
// more than 15 bytes) or for the path.

/// One target string met by a walk: a string field's value, a map key, or a map value.
public struct WalkTarget {
    /// Which kind of target this is.
    public enum Kind: Sendable, Hashable {
        /// The value of a `string` field (one element, for a repeated field).
        case string
        /// The key of one entry of a map field.
        case mapKey
        /// The value of one entry of a map field.
        case mapValue
    }

    /// Which kind of target this is.
    public let kind: Kind
    /// The value's bytes as they are in the message (UTF-8 unless the sender broke the rules).
    public let valueBytes: UnsafeRawBufferPointer
    /// Where ``valueBytes`` start in the walked buffer.
    public let valueOffset: Int
    let targetIndex: Int
    let fieldStart: Int
    let frames: UnsafeBufferPointer<WalkFrame>
    let message: UnsafeRawBufferPointer
    unowned(unsafe) let walker: ProtoWalker

    /// The value as a string. When the bytes are not valid UTF-8 (``isValidUTF8``), each invalid sequence reads
    /// as U+FFFD: returning this value from a rewrite then repairs the field, anything else returned as is, and
    /// `nil` leaves the bytes exactly as they came.
    public var value: String {
        String(decoding: valueBytes, as: UTF8.self)
    }

    /// Whether the value's bytes are valid UTF-8, as protobuf requires of `string` fields (Temporal 1.22 and
    /// older could store and send invalid ones).
    public var isValidUTF8: Bool {
        String(validating: valueBytes, as: UTF8.self) != nil
    }

    private var info: WalkTargetInfo {
        walker.program.targets[targetIndex]
    }

    /// The full name of the message that declares the field; for map keys and values, the message that declares
    /// the map (`temporal.api.common.v1.SearchAttributes` for `indexed_fields` keys).
    public var messageName: String {
        info.messageName
    }

    /// The field's name; for map keys and values, the map field's name.
    public var fieldName: String {
        info.fieldName
    }

    /// The field's number; for map keys and values, the map field's number.
    public var fieldNumber: Int {
        info.fieldNumber
    }

    /// Where the payload of the message that holds this value lies in the walked buffer: the declaring message for
    /// a string field, the map entry for a map key or value. Two targets are in the same message, or one's message
    /// encloses the other's value, exactly when these ranges contain the other's ``valueOffset``; plugins use it to
    /// find the context of a value (the namespace id beside a search attribute) wherever in the message it comes.
    public var enclosingMessageRange: Range<Int> {
        let innermost = frames[frames.count - 1]
        return innermost.payloadStart..<innermost.end
    }

    /// Calls `body` with where the payload of each message around this value starts in the walked buffer, innermost
    /// first (the map entry, for a map key or value), up to the walked message (0), until `body` returns false. A
    /// message's payload start names it uniquely within one walk: plugins use it to find what they noted about an
    /// enclosing message (its namespace id, say) in one lookup per level, as ``enclosingMessageRange`` gives it for
    /// the message that holds a string value.
    public func forEachEnclosingMessageStart(_ body: (Int) -> Bool) {
        for level in frames.indices.reversed() where !body(frames[level].payloadStart) {
            return
        }
    }

    /// The fields from the walked message down to this value, one element per level, with the index of the
    /// occurrence within repeated fields; messages inside `bytes` fields continue the path below that field.
    public var path: [WalkPathElement] {
        var elements: [WalkPathElement] = []
        elements.reserveCapacity(frames.count)
        for level in frames.indices.dropFirst() {
            let parent = frames[level - 1]
            elements.append(
                element(in: parent, fieldNumber: Int(frames[level].fieldNumber), at: frames[level].fieldStart)
            )
        }
        let innermost = frames[frames.count - 1]
        let leafNumber = kind == .string ? info.fieldNumber : (kind == .mapKey ? 1 : 2)
        elements.append(element(in: innermost, fieldNumber: leafNumber, at: fieldStart))
        return elements
    }

    /// The path as text: `history.events[3].workflow_execution_started_event_attributes.parent_workflow_namespace`.
    public var pathDescription: String {
        path.map { element in
            element.index > 0 ? "\(element.fieldName)[\(element.index)]" : element.fieldName
        }.joined(separator: ".")
    }

    private func element(in frame: WalkFrame, fieldNumber: Int, at fieldStart: Int) -> WalkPathElement {
        let messageName = walker.program.nodeMessageNames[Int(frame.node)]
        let fieldName = walker.schema.messages[messageName]?.field(number: fieldNumber)?.name ?? "#\(fieldNumber)"
        // The fields before this one were scanned without error on the way here, so counting cannot fail.
        var index = 0
        var position = frame.payloadStart
        while position < fieldStart,
            let field = try? ProtoWireScanner.field(in: message, at: position, end: frame.end)
        {
            if field.fieldNumber == fieldNumber {
                index += 1
            }
            position = field.fieldRange.upperBound
        }
        return WalkPathElement(messageName: messageName, fieldName: fieldName, fieldNumber: fieldNumber, index: index)
    }
}

/// One step of a ``WalkTarget/path``: a field of a message.
public struct WalkPathElement: Sendable, Hashable {
    /// The full name of the message the field belongs to.
    public let messageName: String
    /// The field's name (`#N` if the schema has no name for it).
    public let fieldName: String
    /// The field's number.
    public let fieldNumber: Int
    /// How many earlier occurrences of the same field the message has: the index within a repeated field.
    public let index: Int

    /// Describes one step; plugins' tests compare paths with these.
    public init(messageName: String, fieldName: String, fieldNumber: Int, index: Int) {
        self.messageName = messageName
        self.fieldName = fieldName
        self.fieldNumber = fieldNumber
        self.index = index
    }
}
