// InboundResetCounter: counts the RST_STREAM frames a peer sends on one connection by reading HTTP/2 frame headers
// as the bytes pass by, unchanged, on their way to NIOHTTP2Handler. NIOHTTP2Handler drops resets for streams that
// are already closed without telling the pipeline, yet they are exactly what a benchmark wants to see: a proxy
// that resets every finished call costs its peers a frame per call and trips the reset limits of strict ones.

import NIOCore
import NIOHTTP2

/// Counts inbound RST_STREAM frames; sits in front of NIOHTTP2Handler.
final class InboundResetCounter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// HTTP/2 frame header size: 24-bit length, type, flags, 32-bit stream identifier.
    private static let frameHeaderLength = 9
    /// HTTP/2 frame type of RST_STREAM.
    private static let resetFrameType: UInt8 = 0x3

    /// RST_STREAM frames received so far.
    private(set) var resetsReceived = 0

    /// Header bytes of the current frame read so far (0 when the next byte starts a frame).
    private var headerBytesSeen = 0
    /// The payload length being read from the current header.
    private var payloadLength = 0
    /// Payload bytes of the current frame still to pass; starts at the length of the connection preface that
    /// precedes the first frame on a server connection.
    private var payloadBytesLeft: Int

    /// A counter for the client side of a connection (`.client`: the peer is a server and sends frames from the
    /// first byte) or the server side (`.server`: the peer's 24-byte connection preface comes first).
    init(side: NIOHTTP2Handler.ParserMode) {
        self.payloadBytesLeft = side == .server ? Self.clientPrefaceLength : 0
    }

    /// Length of "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", the client's connection preface.
    private static let clientPrefaceLength = 24

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        while bytes.readableBytes > 0 {
            if self.payloadBytesLeft > 0 {
                let skipped = min(self.payloadBytesLeft, bytes.readableBytes)
                bytes.moveReaderIndex(forwardBy: skipped)
                self.payloadBytesLeft -= skipped
                continue
            }
            let byte = bytes.readInteger(as: UInt8.self)!
            switch self.headerBytesSeen {
            case 0..<3:
                self.payloadLength = (self.payloadLength << 8) | Int(byte)
            case 3 where byte == Self.resetFrameType:
                self.resetsReceived += 1
            default:
                break
            }
            self.headerBytesSeen += 1
            if self.headerBytesSeen == Self.frameHeaderLength {
                self.payloadBytesLeft = self.payloadLength
                self.headerBytesSeen = 0
                self.payloadLength = 0
            }
        }
        context.fireChannelRead(data)
    }
}
