// Writes HTTP/2 frames (RFC 9113 section 6) into a buffer the caller owns and reuses: one buffer per connection
// collects a whole write batch, so a batch of frames costs one allocation at most and one system call.
//
// DATA payloads are never copied here: `writeDataHeader` writes the 9-byte header, and the caller writes the payload
// buffer after it as its own write (the socket gathers both). Header blocks larger than the peer's frame size are
// split into HEADERS and CONTINUATION frames, as RFC 9113 4.3 requires them to be contiguous.

import NIOCore

public enum H2FrameEncoder {
    /// The 9-byte frame header.
    @inlinable
    public static func writeFrameHeader(
        length: Int, type: H2FrameType, flags: UInt8, stream: H2StreamID, into buffer: inout ByteBuffer
    ) {
        // One write of nine bytes (five integer writes cost five times the buffer's checks).
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 9) { bytes in
            storeFrameHeader(length: length, type: type, flags: flags, stream: stream, at: bytes.baseAddress!)
            return 9
        }
    }

    /// Overwrites the nine bytes at `index` (already written, e.g. reserved before a header block encoded in
    /// place) with a frame header.
    @inlinable
    public static func setFrameHeader(
        length: Int, type: H2FrameType, flags: UInt8, stream: H2StreamID, at index: Int, in buffer: inout ByteBuffer
    ) {
        let offset = index - buffer.readerIndex
        buffer.withUnsafeMutableReadableBytes { bytes in
            storeFrameHeader(length: length, type: type, flags: flags, stream: stream, at: bytes.baseAddress! + offset)
        }
    }

    @inlinable
    static func storeFrameHeader(
        length: Int, type: H2FrameType, flags: UInt8, stream: H2StreamID, at base: UnsafeMutableRawPointer
    ) {
        let stream = stream & 0x7FFF_FFFF
        base.storeBytes(of: UInt8(truncatingIfNeeded: length >> 16), as: UInt8.self)
        base.storeBytes(of: UInt8(truncatingIfNeeded: length >> 8), toByteOffset: 1, as: UInt8.self)
        base.storeBytes(of: UInt8(truncatingIfNeeded: length), toByteOffset: 2, as: UInt8.self)
        base.storeBytes(of: type.rawValue, toByteOffset: 3, as: UInt8.self)
        base.storeBytes(of: flags, toByteOffset: 4, as: UInt8.self)
        base.storeBytes(of: stream.bigEndian, toByteOffset: 5, as: UInt32.self)
    }

    /// The header of a DATA frame whose `length`-byte payload the caller writes next. `length` must not exceed the
    /// peer's SETTINGS_MAX_FRAME_SIZE.
    @inlinable
    public static func writeDataHeader(length: Int, stream: H2StreamID, endStream: Bool, into buffer: inout ByteBuffer) {
        writeFrameHeader(length: length, type: .data, flags: endStream ? 0x1 : 0, stream: stream, into: &buffer)
    }

    /// A header block as HEADERS, followed by CONTINUATION frames when it is larger than `maxFrameSize`.
    public static func writeHeaders(
        block: ByteBuffer, stream: H2StreamID, endStream: Bool, maxFrameSize: Int, into buffer: inout ByteBuffer
    ) {
        var rest = block
        let first = min(rest.readableBytes, maxFrameSize)
        var flags: UInt8 = endStream ? 0x1 : 0
        if first == rest.readableBytes { flags |= 0x4 }
        writeFrameHeader(length: first, type: .headers, flags: flags, stream: stream, into: &buffer)
        var slice = rest.readSlice(length: first)!
        buffer.writeBuffer(&slice)
        while rest.readableBytes > 0 {
            let next = min(rest.readableBytes, maxFrameSize)
            let last = next == rest.readableBytes
            writeFrameHeader(length: next, type: .continuation, flags: last ? 0x4 : 0, stream: stream, into: &buffer)
            var piece = rest.readSlice(length: next)!
            buffer.writeBuffer(&piece)
        }
    }

    public static func writeRSTStream(stream: H2StreamID, code: H2ErrorCode, into buffer: inout ByteBuffer) {
        writeFrameHeader(length: 4, type: .rstStream, flags: 0, stream: stream, into: &buffer)
        buffer.writeInteger(code.rawValue)
    }

    public static func writeSettings(_ settings: [H2Setting], into buffer: inout ByteBuffer) {
        writeFrameHeader(length: settings.count * 6, type: .settings, flags: 0, stream: 0, into: &buffer)
        for setting in settings {
            buffer.writeInteger(setting.identifier)
            buffer.writeInteger(setting.value)
        }
    }

    public static func writeSettingsAck(into buffer: inout ByteBuffer) {
        writeFrameHeader(length: 0, type: .settings, flags: 0x1, stream: 0, into: &buffer)
    }

    public static func writePing(opaque: UInt64, ack: Bool, into buffer: inout ByteBuffer) {
        writeFrameHeader(length: 8, type: .ping, flags: ack ? 0x1 : 0, stream: 0, into: &buffer)
        buffer.writeInteger(opaque)
    }

    public static func writeGoAway(lastStream: H2StreamID, code: H2ErrorCode, debugData: String, into buffer: inout ByteBuffer) {
        let debug = Array(debugData.utf8.prefix(512))
        writeFrameHeader(length: 8 + debug.count, type: .goAway, flags: 0, stream: 0, into: &buffer)
        buffer.writeInteger(lastStream & 0x7FFF_FFFF)
        buffer.writeInteger(code.rawValue)
        buffer.writeBytes(debug)
    }

    public static func writeWindowUpdate(stream: H2StreamID, increment: UInt32, into buffer: inout ByteBuffer) {
        writeFrameHeader(length: 4, type: .windowUpdate, flags: 0, stream: stream, into: &buffer)
        buffer.writeInteger(increment & 0x7FFF_FFFF)
    }
}
