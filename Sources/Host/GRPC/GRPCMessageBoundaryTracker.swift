// Follows the gRPC length-prefixed message framing across HTTP/2 DATA frames without copying or buffering bytes.
//
// Pass-through forwarding needs to know only where messages start and how long they claim to be (to enforce the
// message size limit before a single byte of an oversized message is forwarded). Each gRPC message is a 5-byte
// prefix (1 byte compressed flag, 4 bytes big-endian length) followed by that many bytes; prefixes may be split
// across DATA frames at any byte.

import NIOCore

/// Incremental parser of gRPC message prefixes over a byte stream delivered in arbitrary chunks.
public struct GRPCMessageBoundaryTracker: Sendable {
    /// What feeding a chunk revealed.
    public enum Outcome: Equatable, Sendable {
        /// Every message that started in the chunk is within the limit.
        case withinLimit
        /// A message declares `length` bytes, more than the limit.
        case messageTooLarge(length: Int)
    }

    private enum State: Sendable {
        /// Collecting the 5-byte prefix; `collected` bytes of it are known so far.
        case prefix(collected: Int, length: UInt32)
        /// Skipping the body of the current message.
        case body(remaining: Int)
    }

    private var state: State = .prefix(collected: 0, length: 0)
    private let maxMessageBytes: Int

    /// Number of complete messages seen so far.
    public private(set) var completedMessages: Int = 0

    /// - Parameter maxMessageBytes: the largest message length accepted.
    public init(maxMessageBytes: Int) {
        self.maxMessageBytes = maxMessageBytes
    }

    /// True when the bytes seen so far end exactly at a message boundary.
    public var isAtMessageBoundary: Bool {
        if case .prefix(collected: 0, _) = state { return true }
        return false
    }

    /// Feeds the next chunk of the stream; the buffer is only read, never consumed or copied.
    public mutating func consume(_ buffer: ByteBuffer) -> Outcome {
        var index = buffer.readerIndex
        let end = buffer.writerIndex
        while index < end {
            switch state {
            case .body(let remaining):
                let step = min(remaining, end - index)
                index += step
                if step == remaining {
                    completedMessages += 1
                    state = .prefix(collected: 0, length: 0)
                } else {
                    state = .body(remaining: remaining - step)
                }
            case .prefix(let collected, var length):
                // Byte 0 is the compression flag; bytes 1...4 are the length, big-endian.
                let byte = buffer.getInteger(at: index, as: UInt8.self)!
                index += 1
                if collected > 0 {
                    length = (length << 8) | UInt32(byte)
                }
                if collected + 1 < 5 {
                    state = .prefix(collected: collected + 1, length: length)
                    continue
                }
                let messageLength = Int(length)
                if messageLength > maxMessageBytes {
                    return .messageTooLarge(length: messageLength)
                }
                if messageLength == 0 {
                    completedMessages += 1
                    state = .prefix(collected: 0, length: 0)
                } else {
                    state = .body(remaining: messageLength)
                }
            }
        }
        return .withinLimit
    }
}
