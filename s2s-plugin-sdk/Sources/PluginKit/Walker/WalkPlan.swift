// How a plugin walks one message: visit its targets, or rewrite them, given the message's bytes.
//
// Both entry points take the host's borrowed buffer (`UnsafeRawBufferPointer`, valid during the hook) or an
// array. Reading never copies the message. A rewrite that changes nothing returns the original (the same array
// storage, or `nil` for a borrowed buffer: "forward unchanged"); one that changes something builds the new message
// in a single allocation of exactly the right size, or hands out ``WalkEdits`` to write it where the caller wants.

/// The walk of one message type under one compiled rule set; cheap to copy and to keep per call.
public struct WalkPlan: Sendable {
    /// The compiled rules this plan belongs to.
    public let walker: ProtoWalker
    /// The full name of the message type walked.
    public let messageName: String
    let root: Int32

    /// Whether a message of this type can contain a target at all; when false every walk returns at once.
    public var canMatch: Bool {
        root >= 0
    }

    /// Calls `visitor` for every target of the message in `bytes`, in wire order.
    ///
    /// - Throws: ``ProtoWireError`` with the offset of the first malformed field on the walked path (or a
    ///   nesting-depth or embedded-encoding refusal); targets met before it have been visited.
    public func visit(_ bytes: UnsafeRawBufferPointer, _ visitor: (WalkTarget) -> Void) throws(ProtoWireError) {
        guard canMatch else {
            return
        }
        _ = try WalkEngine.run(walker, root: root, bytes: bytes) { target in
            visitor(target)
            return nil
        }
    }

    /// Calls `visitor` for every target of the message in `bytes`, in wire order.
    public func visit(_ bytes: [UInt8], _ visitor: (WalkTarget) -> Void) throws(ProtoWireError) {
        try bytes.withUnsafeBufferPointer { (buffer) throws(ProtoWireError) in
            try visit(UnsafeRawBufferPointer(buffer), visitor)
        }
    }

    /// Walks the message in `bytes`, asking `rewrite` for each target's new value (`nil`: unchanged), and returns
    /// the changes without applying them.
    public func edits(
        _ bytes: UnsafeRawBufferPointer,
        _ rewrite: (WalkTarget) -> String?
    ) throws(ProtoWireError) -> WalkEdits {
        guard canMatch else {
            return WalkEdits(
                splices: [],
                replacementBytes: [],
                originalCount: bytes.count,
                rewrittenCount: bytes.count,
                replacedValueCount: 0
            )
        }
        return try WalkEngine.run(walker, root: root, bytes: bytes, callback: rewrite)
    }

    /// The message in `bytes` with every target `rewrite` gives a new value for replaced, or `nil` when nothing
    /// changed (forward the original).
    public func rewrite(
        _ bytes: UnsafeRawBufferPointer,
        _ rewrite: (WalkTarget) -> String?
    ) throws(ProtoWireError) -> [UInt8]? {
        let edits = try edits(bytes, rewrite)
        return edits.isEmpty ? nil : edits.applied(to: bytes)
    }

    /// The message in `bytes` with every target `rewrite` gives a new value for replaced; `bytes` itself (same
    /// storage, no copy) when nothing changed.
    public func rewrite(_ bytes: [UInt8], _ rewrite: (WalkTarget) -> String?) throws(ProtoWireError) -> [UInt8] {
        try bytes.withUnsafeBufferPointer { (buffer) throws(ProtoWireError) in
            let raw = UnsafeRawBufferPointer(buffer)
            let edits = try edits(raw, rewrite)
            return edits.isEmpty ? bytes : edits.applied(to: raw)
        }
    }
}
