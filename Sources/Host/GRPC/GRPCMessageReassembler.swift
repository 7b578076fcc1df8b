// Cuts a gRPC request or response byte stream, delivered in arbitrary DATA frames, into whole messages.
//
// Used only for calls that a plugin wants to see. A message that lies inside one DATA frame comes out as a slice
// of that frame's buffer (no copy); only a message split across frames is gathered into a buffer of its own,
// sized once from its prefix. Each message comes out framed: the 5-byte prefix (compressed flag, big-endian
// length) followed by the payload. The size limit is checked on the prefix, before any of the body is held.

import NIOCore

struct GRPCMessageReassembler {
    /// Bytes of a message whose end has not arrived yet, prefix included.
    private var pending: ByteBuffer?
    private let maxMessageBytes: Int

    init(maxMessageBytes: Int) {
        self.maxMessageBytes = maxMessageBytes
    }

    /// True when no partial message is held.
    var isAtMessageBoundary: Bool { pending == nil }

    /// Feeds the next chunk; appends each message it completes to `messages`.
    /// - Returns: the declared length of a message over the limit (the stream cannot go on), or nil.
    mutating func consume(_ chunk: ByteBuffer, into messages: inout [ByteBuffer]) -> Int? {
        var input = chunk
        if var partial = pending {
            pending = nil
            if partial.readableBytes < 5 {
                // Complete the prefix first, so that the body can be gathered into a buffer of the right size.
                let needed = 5 - partial.readableBytes
                var head = input.readSlice(length: min(needed, input.readableBytes))!
                partial.writeBuffer(&head)
                if partial.readableBytes < 5 {
                    pending = partial
                    return nil
                }
                let length = Int(partial.getInteger(at: partial.readerIndex + 1, as: UInt32.self)!)
                if length > maxMessageBytes { return length }
                var sized = ByteBufferAllocator().buffer(capacity: 5 + length)
                sized.writeBuffer(&partial)
                partial = sized
            }
            let length = Int(partial.getInteger(at: partial.readerIndex + 1, as: UInt32.self)!)
            let missing = 5 + length - partial.readableBytes
            var body = input.readSlice(length: min(missing, input.readableBytes))!
            partial.writeBuffer(&body)
            if partial.readableBytes < 5 + length {
                pending = partial
                return nil
            }
            messages.append(partial)
        }
        while input.readableBytes > 0 {
            guard input.readableBytes >= 5 else {
                var partial = ByteBufferAllocator().buffer(capacity: 5)
                partial.writeBuffer(&input)
                pending = partial
                return nil
            }
            let length = Int(input.getInteger(at: input.readerIndex + 1, as: UInt32.self)!)
            if length > maxMessageBytes { return length }
            guard input.readableBytes >= 5 + length else {
                var partial = ByteBufferAllocator().buffer(capacity: 5 + length)
                partial.writeBuffer(&input)
                pending = partial
                return nil
            }
            messages.append(input.readSlice(length: 5 + length)!)
        }
        return nil
    }
}
