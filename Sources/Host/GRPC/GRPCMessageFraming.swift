// The 5-byte prefix before every gRPC message on the wire (the compressed flag, then the message's length as a
// big-endian UInt32), written in one place for every message the proxy frames itself.

import NIOCore

extension ByteBuffer {
    /// Writes the prefix of a message of `length` bytes; `flag` 1 says it is compressed.
    @inline(__always)
    mutating func writeGRPCPrefix(length: Int, flag: UInt8 = 0) {
        writeInteger(flag)
        writeInteger(UInt32(length))
    }

    /// `message` framed as one uncompressed gRPC message.
    static func grpcMessage(_ message: [UInt8]) -> ByteBuffer {
        var framed = ByteBufferAllocator().buffer(capacity: 5 + message.count)
        framed.writeGRPCPrefix(length: message.count)
        framed.writeBytes(message)
        return framed
    }
}
