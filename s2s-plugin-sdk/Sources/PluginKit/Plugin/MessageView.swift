// One gRPC message as `message` sees it: a borrowed view of the host's bytes.
//
// The payload is the host's memory, valid only while the hook runs, and is never copied on the way in. The view is
// non-copyable so it cannot be kept; a plugin that needs the bytes later copies them (`copyPayload()`).

/// One message of a call, without its 5-byte gRPC prefix.
public struct MessageView: ~Copyable {
    /// Which way the message travels.
    public let direction: MessageDirection
    /// The message's 0-based position among the call's messages in its direction.
    public let index: Int
    /// The serialized protobuf message; host memory, valid during the hook only. Do not keep the pointer.
    public let payload: UnsafeRawBufferPointer
    /// Whether the payload is compressed with the call's `grpc-encoding` (see the request metadata). A plugin
    /// that cannot decompress it should leave it `.unchanged` or reject the call, not parse it.
    public let isCompressed: Bool

    @usableFromInline
    init(direction: MessageDirection, index: Int, payload: UnsafeRawBufferPointer, isCompressed: Bool) {
        self.direction = direction
        self.index = index
        self.payload = payload
        self.isCompressed = isCompressed
    }

    /// A copy of the payload that the plugin owns.
    public func copyPayload() -> [UInt8] {
        Array(payload)
    }
}
