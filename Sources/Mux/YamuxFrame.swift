// The yamux wire format (hashicorp/yamux, the multiplexer the Go s2s-proxy runs over its mux connections): a 12-byte
// big-endian header — version, type, flags, stream id, length — followed, for data frames only, by `length` bytes.
// For the other types the length field is a value: the window increase (window update), an opaque number echoed
// back (ping), an error code (go-away).

import NIOCore

/// The frame types of yamux version 0.
public enum YamuxFrameType: UInt8, Sendable, CustomStringConvertible {
    /// Stream bytes; `length` of them follow the header.
    case data = 0
    /// Grants the peer `length` more bytes of send window on a stream; no payload.
    case windowUpdate = 1
    /// Keepalive or round-trip probe on stream 0; `length` is an opaque value the answer echoes.
    case ping = 2
    /// Ends the session on stream 0; `length` is a ``YamuxGoAwayCode``.
    case goAway = 3

    public var description: String {
        switch self {
        case .data: "data"
        case .windowUpdate: "window update"
        case .ping: "ping"
        case .goAway: "go-away"
        }
    }
}

/// The flags of a frame: stream lifecycle on data and window-update frames, request/answer on pings.
public struct YamuxFlags: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Opens a stream (on a ping: a request).
    public static let syn = YamuxFlags(rawValue: 0x1)
    /// Accepts a stream (on a ping: the answer).
    public static let ack = YamuxFlags(rawValue: 0x2)
    /// The sender will send no more data on the stream.
    public static let fin = YamuxFlags(rawValue: 0x4)
    /// The stream is aborted (or refused).
    public static let rst = YamuxFlags(rawValue: 0x8)

    public var description: String {
        var names: [String] = []
        if contains(.syn) { names.append("SYN") }
        if contains(.ack) { names.append("ACK") }
        if contains(.fin) { names.append("FIN") }
        if contains(.rst) { names.append("RST") }
        let unknown = rawValue & ~0xF
        if unknown != 0 { names.append("0x\(String(unknown, radix: 16))") }
        return names.isEmpty ? "-" : names.joined(separator: "|")
    }
}

/// The error codes of a go-away frame.
public enum YamuxGoAwayCode: UInt32, Sendable {
    case normal = 0
    case protocolError = 1
    case internalError = 2
}

/// One frame header.
public struct YamuxFrameHeader: Sendable, Hashable, CustomStringConvertible {
    /// The only version yamux has.
    public static let version: UInt8 = 0
    /// Bytes on the wire.
    public static let size = 12

    public var type: YamuxFrameType
    public var flags: YamuxFlags
    public var streamID: UInt32
    /// The payload length (data), window increase (window update), opaque value (ping) or error code (go-away).
    public var length: UInt32

    public init(type: YamuxFrameType, flags: YamuxFlags = [], streamID: UInt32, length: UInt32) {
        self.type = type
        self.flags = flags
        self.streamID = streamID
        self.length = length
    }

    public var description: String {
        "\(type) stream \(streamID) flags \(flags) length \(length)"
    }

    /// Appends the 12 header bytes to `buffer`.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeMultipleIntegers(Self.version, type.rawValue, flags.rawValue, streamID, length)
    }

    /// Reads a header from the front of `buffer` if 12 bytes are there; nil (and nothing consumed) otherwise.
    ///
    /// - Throws: ``YamuxProtocolError`` for a version other than 0 or an unknown type; the bytes are consumed.
    public static func read(from buffer: inout ByteBuffer) throws(YamuxProtocolError) -> YamuxFrameHeader? {
        guard let (version, type, flags, streamID, length) = buffer.readMultipleIntegers(
            as: (UInt8, UInt8, UInt16, UInt32, UInt32).self
        ) else {
            return nil
        }
        guard version == Self.version else {
            throw YamuxProtocolError("unsupported yamux version \(version) (only 0 exists); is the peer speaking yamux?")
        }
        guard let frameType = YamuxFrameType(rawValue: type) else {
            throw YamuxProtocolError("unknown yamux frame type \(type) on stream \(streamID)")
        }
        return YamuxFrameHeader(type: frameType, flags: YamuxFlags(rawValue: flags), streamID: streamID, length: length)
    }
}

/// A frame as the decoder hands it on: the header, and for data frames the payload.
public struct YamuxFrame: Sendable {
    public var header: YamuxFrameHeader
    /// The payload of a data frame (empty for other types).
    public var payload: ByteBuffer

    public init(header: YamuxFrameHeader, payload: ByteBuffer) {
        self.header = header
        self.payload = payload
    }
}

/// The peer broke the yamux protocol; the session ends with a protocol-error go-away.
public struct YamuxProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
