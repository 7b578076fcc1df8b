// The frames of HTTP/2 (RFC 9113 section 6) as the forwarding engine sees them once decoded.
//
// Payloads are slices of the bytes read from the socket, never copies. What the proxy never uses is decoded only as
// far as the RFC's checks need (PRIORITY and the priority fields of HEADERS: read to refuse a stream that depends
// on itself, then dropped). A header block arrives whole: HEADERS and its CONTINUATION frames are joined by the
// decoder, so the layers above never see CONTINUATION. PUSH_PROMISE never arrives: the engine announces
// SETTINGS_ENABLE_PUSH 0 and the decoder refuses one as a protocol error.

import NIOCore

/// The frame types of RFC 9113 section 6, by their wire value.
public enum H2FrameType: UInt8, Sendable {
    case data = 0x0
    case headers = 0x1
    case priority = 0x2
    case rstStream = 0x3
    case settings = 0x4
    case pushPromise = 0x5
    case ping = 0x6
    case goAway = 0x7
    case windowUpdate = 0x8
    case continuation = 0x9
}

/// A stream identifier: 31 bits, 0 for the connection itself.
public typealias H2StreamID = UInt32

/// An HTTP/2 error code (RFC 9113 section 7). Codes this engine does not know are kept as they came.
public struct H2ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let noError = H2ErrorCode(rawValue: 0x0)
    public static let protocolError = H2ErrorCode(rawValue: 0x1)
    public static let internalError = H2ErrorCode(rawValue: 0x2)
    public static let flowControlError = H2ErrorCode(rawValue: 0x3)
    public static let settingsTimeout = H2ErrorCode(rawValue: 0x4)
    public static let streamClosed = H2ErrorCode(rawValue: 0x5)
    public static let frameSizeError = H2ErrorCode(rawValue: 0x6)
    public static let refusedStream = H2ErrorCode(rawValue: 0x7)
    public static let cancel = H2ErrorCode(rawValue: 0x8)
    public static let compressionError = H2ErrorCode(rawValue: 0x9)
    public static let connectError = H2ErrorCode(rawValue: 0xA)
    public static let enhanceYourCalm = H2ErrorCode(rawValue: 0xB)
    public static let inadequateSecurity = H2ErrorCode(rawValue: 0xC)
    public static let http11Required = H2ErrorCode(rawValue: 0xD)

    public var description: String {
        switch rawValue {
        case 0x0: return "NO_ERROR"
        case 0x1: return "PROTOCOL_ERROR"
        case 0x2: return "INTERNAL_ERROR"
        case 0x3: return "FLOW_CONTROL_ERROR"
        case 0x4: return "SETTINGS_TIMEOUT"
        case 0x5: return "STREAM_CLOSED"
        case 0x6: return "FRAME_SIZE_ERROR"
        case 0x7: return "REFUSED_STREAM"
        case 0x8: return "CANCEL"
        case 0x9: return "COMPRESSION_ERROR"
        case 0xA: return "CONNECT_ERROR"
        case 0xB: return "ENHANCE_YOUR_CALM"
        case 0xC: return "INADEQUATE_SECURITY"
        case 0xD: return "HTTP_1_1_REQUIRED"
        default: return "error code 0x\(String(rawValue, radix: 16))"
        }
    }
}

/// A SETTINGS parameter (RFC 9113 section 6.5.2) and its value. Unknown identifiers are kept; the RFC says to ignore
/// them, which is the connection's business.
public struct H2Setting: Hashable, Sendable {
    public var identifier: UInt16
    public var value: UInt32
    public init(_ identifier: UInt16, _ value: UInt32) {
        self.identifier = identifier
        self.value = value
    }

    public static let headerTableSize: UInt16 = 0x1
    public static let enablePush: UInt16 = 0x2
    public static let maxConcurrentStreams: UInt16 = 0x3
    public static let initialWindowSize: UInt16 = 0x4
    public static let maxFrameSize: UInt16 = 0x5
    public static let maxHeaderListSize: UInt16 = 0x6
}

/// One decoded frame.
public enum H2Frame: Sendable {
    /// DATA, padding removed. `flowControlledLength` is what the frame takes from the windows: the whole payload,
    /// padding and its length byte included (RFC 9113 6.1).
    case data(stream: H2StreamID, payload: ByteBuffer, endStream: Bool, flowControlledLength: Int)
    /// HEADERS with its CONTINUATION frames joined: the complete, still HPACK-encoded header block.
    case headers(stream: H2StreamID, block: ByteBuffer, endStream: Bool)
    /// PRIORITY: nothing to do but check that the stream does not depend on itself (decoded for that only).
    case priority(stream: H2StreamID)
    case rstStream(stream: H2StreamID, code: H2ErrorCode)
    case settings([H2Setting])
    case settingsAck
    case ping(opaque: UInt64, ack: Bool)
    case goAway(lastStream: H2StreamID, code: H2ErrorCode, debugData: ByteBuffer)
    case windowUpdate(stream: H2StreamID, increment: UInt32)
}

/// A violation of RFC 9113 found in the bytes a peer sent, with what the RFC says to answer.
public struct H2ProtocolViolation: Error, Hashable, Sendable, CustomStringConvertible {
    /// The error code to send.
    public var code: H2ErrorCode
    /// The stream to reset for a stream error; nil for a connection error (GOAWAY, then close).
    public var stream: H2StreamID?
    /// What was wrong, for logs and the GOAWAY's debug data.
    public var reason: String

    public init(connection code: H2ErrorCode, _ reason: String) {
        self.code = code
        self.stream = nil
        self.reason = reason
    }

    public init(stream: H2StreamID, code: H2ErrorCode, _ reason: String) {
        self.code = code
        self.stream = stream
        self.reason = reason
    }

    public var description: String {
        if let stream { return "stream \(stream): \(code): \(reason)" }
        return "\(code): \(reason)"
    }
}
