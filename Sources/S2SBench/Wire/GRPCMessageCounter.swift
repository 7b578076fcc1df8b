// GRPCMessageCounter: counts complete gRPC length-prefixed messages in a byte stream that arrives in arbitrary
// pieces (HTTP/2 DATA frames that a proxy may have split or merged). It reads only the 5-byte prefixes and skips
// message bodies without copying them; it never decodes or keeps message contents. It also adds up the body bytes
// it has seen, for the throughput of responses whose size the caller does not know in advance.

import NIOCore

/// Counts gRPC messages (1-byte compression flag, 4-byte big-endian length, body) in a stream of DATA payloads.
struct GRPCMessageCounter {
    /// Size of the gRPC message prefix: one flag byte and a 32-bit big-endian body length.
    static let prefixLength = 5

    /// How many bytes of the current message's prefix have been seen (0 when the next byte starts a message).
    private var prefixBytesSeen = 0

    /// The body length read so far from the current prefix.
    private var bodyLength = 0

    /// Body bytes of the current message still to come; meaningful only once the prefix is complete.
    private var bodyBytesLeft = 0

    /// True while the counter is inside a message body.
    private var insideBody = false

    /// Message body bytes consumed so far (prefixes not included), of finished messages and the current one.
    private(set) var bodyBytesConsumed = 0

    /// Consumes one piece of the stream and returns how many messages it completed.
    mutating func consume(_ piece: ByteBuffer) -> Int {
        var remaining = piece
        var completed = 0
        while remaining.readableBytes > 0 {
            if self.insideBody {
                let skipped = min(self.bodyBytesLeft, remaining.readableBytes)
                remaining.moveReaderIndex(forwardBy: skipped)
                self.bodyBytesLeft -= skipped
                self.bodyBytesConsumed += skipped
                if self.bodyBytesLeft == 0 {
                    self.insideBody = false
                    completed += 1
                }
                continue
            }
            // Prefix bytes may straddle pieces, so they are read one at a time into the running length.
            let byte = remaining.readInteger(as: UInt8.self)!
            if self.prefixBytesSeen > 0 {
                self.bodyLength = (self.bodyLength << 8) | Int(byte)
            }
            self.prefixBytesSeen += 1
            if self.prefixBytesSeen == Self.prefixLength {
                self.prefixBytesSeen = 0
                if self.bodyLength == 0 {
                    completed += 1
                } else {
                    self.bodyBytesLeft = self.bodyLength
                    self.insideBody = true
                }
                self.bodyLength = 0
            }
        }
        return completed
    }

    /// Builds one gRPC message (uncompressed) whose body is `bodySize` bytes of a fixed pattern.
    static func makeMessage(bodySize: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        self.makeMessage(body: [UInt8](repeating: UInt8(ascii: "x"), count: bodySize), allocator: allocator)
    }

    /// Builds one gRPC message (uncompressed) whose body is `body`, such as a protobuf message read from a file.
    static func makeMessage(body: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var message = allocator.buffer(capacity: Self.prefixLength + body.count)
        message.writeInteger(UInt8(0))
        message.writeInteger(UInt32(body.count))
        message.writeBytes(body)
        return message
    }
}
