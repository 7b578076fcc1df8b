// Cuts the bytes of a yamux connection into frames. A data frame's payload is a slice of the read buffer, not a
// copy. A data frame longer than the decoder's limit is refused before its bytes are buffered: no peer can make the
// session hold more than that limit (the stream windows bound it far lower once the session checks them).

import NIOCore

/// Decodes yamux frames; ``YamuxProtocolError`` for a malformed header or an oversized data frame.
public struct YamuxFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = YamuxFrame

    /// The largest data payload accepted.
    public let maximumPayload: UInt32
    private var pending: YamuxFrameHeader?

    public init(maximumPayload: UInt32) {
        self.maximumPayload = maximumPayload
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> YamuxFrame? {
        if pending == nil {
            guard let header = try YamuxFrameHeader.read(from: &buffer) else { return nil }
            guard header.type == .data else {
                return YamuxFrame(header: header, payload: ByteBuffer())
            }
            guard header.length <= maximumPayload else {
                throw YamuxProtocolError(
                    "data frame of \(header.length) bytes on stream \(header.streamID) exceeds the limit of "
                        + "\(maximumPayload) (the largest receive window)")
            }
            pending = header
        }
        guard let header = pending, let payload = buffer.readSlice(length: Int(header.length)) else { return nil }
        pending = nil
        return YamuxFrame(header: header, payload: payload)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> YamuxFrame? {
        try decode(buffer: &buffer)
    }
}
