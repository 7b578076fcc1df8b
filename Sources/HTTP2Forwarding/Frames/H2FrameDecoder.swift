// Cuts the bytes a peer sends into HTTP/2 frames and checks every rule of RFC 9113 that a frame's own bytes can
// break: sizes, stream ids per type, padding, flags, SETTINGS values, the connection preface, header blocks that
// must stay contiguous. Rules that need the state of a stream (is it open? may the peer open it?) belong to the
// connection state machine, not here.
//
// A value type with no I/O: `append` the bytes of each read, then take frames with `nextFrame()` until it returns
// nil. Payloads are slices of what was read. A connection error is thrown (answer with GOAWAY and close); a rule
// broken on one stream only comes back as `.streamError` (reset that stream and go on). Nothing is buffered beyond
// one frame of at most `maxFrameSize` bytes and one header block of at most `maxHeaderBlockBytes`.

import NIOCore

public struct H2FrameDecoder: Sendable {
    /// Which end of the connection this decoder reads for: a server first reads the client's 24-byte preface.
    public enum Role: Sendable {
        case server
        case client
    }

    /// What `nextFrame` found: a frame, or a frame that broke a rule of its stream only.
    public enum Output: Sendable {
        case frame(H2Frame)
        /// Reset `violation.stream` with `violation.code`. A HEADERS frame's block comes along: it must still go
        /// through the connection's HPACK decoder, whose table it may change, before the stream is reset.
        case streamError(H2ProtocolViolation, headerBlock: ByteBuffer?)
    }

    /// The client connection preface (RFC 9113 3.4).
    public static let clientPreface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    static let frameHeaderLength = 9

    /// The largest frame payload accepted: the SETTINGS_MAX_FRAME_SIZE this end announced (16 384 until then).
    public var maxFrameSize: Int = 16_384
    /// The largest header block accepted, HEADERS and CONTINUATION fragments together, still compressed.
    public var maxHeaderBlockBytes: Int
    /// The most CONTINUATION frames one header block may take: a flood of empty ones is refused.
    public var maxContinuationFrames: Int

    private let role: Role
    /// The unread bytes of the latest read. Frames are slices of it: read buffers are never copied whole.
    private var input: ByteBuffer?
    /// The start of a frame (or of the preface) that the previous read cut off: the only bytes ever copied, at
    /// most one frame, completed from the next read before anything else is decoded.
    private var carry: ByteBuffer?
    private var awaitingPreface: Bool
    private var awaitingSettings = true
    /// A header block whose END_HEADERS has not arrived yet.
    private var pendingBlock: PendingBlock?

    private struct PendingBlock: Sendable {
        var stream: H2StreamID
        var endStream: Bool
        var block: ByteBuffer
        var continuations: Int
        /// The HEADERS frame broke a rule of its stream (it depends on itself): reset once the block is whole.
        var violation: H2ProtocolViolation?
    }

    public init(role: Role, maxHeaderBlockBytes: Int = 64 << 10, maxContinuationFrames: Int = 64) {
        self.role = role
        self.awaitingPreface = role == .server
        self.maxHeaderBlockBytes = maxHeaderBlockBytes
        self.maxContinuationFrames = maxContinuationFrames
    }

    /// Bytes held that do not yet make a whole frame.
    public var bufferedBytes: Int { (input?.readableBytes ?? 0) + (carry?.readableBytes ?? 0) }

    /// Adds the bytes of one read.
    public mutating func append(_ bytes: ByteBuffer) {
        guard bytes.readableBytes > 0 else { return }
        if var held = input, held.readableBytes > 0 {
            // Appended before the last read was decoded to its end: join the two in a buffer of their own (never
            // in the read buffer, which frames already handed out still share).
            var joined = ByteBufferAllocator().buffer(capacity: held.readableBytes + bytes.readableBytes)
            joined.writeBuffer(&held)
            var incoming = bytes
            joined.writeBuffer(&incoming)
            input = joined
        } else {
            input = bytes
        }
    }

    /// The next complete frame, nil when more bytes are needed. Frames of unknown types are skipped, as RFC 9113 4.1
    /// says. Throws a connection error, after which the decoder must not be used again.
    public mutating func nextFrame() throws(H2ProtocolViolation) -> Output? {
        while true {
            if carry != nil {
                guard var whole = try completeCarry() else { return nil }
                // `whole` holds exactly one frame (or the preface) now.
                switch try decodeOne(&whole) {
                case .incomplete:
                    preconditionFailure("a completed frame did not decode")
                case .skipped:
                    continue
                case .output(let output):
                    return output
                }
            }
            guard var buffer = input else { return nil }
            switch try decodeOne(&buffer) {
            case .incomplete:
                // Keep the cut-off start in a small buffer of its own; the read buffer is let go.
                var start = ByteBufferAllocator().buffer(capacity: max(64, carryCapacity(of: buffer)))
                start.writeBuffer(&buffer)
                carry = start
                input = nil
                return nil
            case .skipped:
                input = buffer.readableBytes > 0 ? buffer : nil
            case .output(let output):
                input = buffer.readableBytes > 0 ? buffer : nil
                return output
            }
        }
    }

    /// The size a cut-off frame will have once whole, when its header is there.
    private func carryCapacity(of buffer: ByteBuffer) -> Int {
        guard !awaitingPreface, buffer.readableBytes >= Self.frameHeaderLength else { return 0 }
        return Self.frameHeaderLength + frameLength(buffer)
    }

    private func frameLength(_ buffer: ByteBuffer) -> Int {
        let start = buffer.readerIndex
        return Int(buffer.getInteger(at: start, as: UInt8.self)!) << 16 | Int(buffer.getInteger(at: start + 1, as: UInt16.self)!)
    }

    /// Moves bytes from `input` into `carry` until it holds a whole frame (returned, and `carry` emptied), or
    /// `input` runs out (nil).
    private mutating func completeCarry() throws(H2ProtocolViolation) -> ByteBuffer? {
        guard var whole = carry else { return nil }
        while true {
            let needed: Int
            if awaitingPreface {
                needed = Self.clientPreface.count - whole.readableBytes
            } else if whole.readableBytes < Self.frameHeaderLength {
                needed = Self.frameHeaderLength - whole.readableBytes
            } else {
                let length = frameLength(whole)
                guard length <= maxFrameSize else { throw frameTooLarge(length) }
                needed = Self.frameHeaderLength + length - whole.readableBytes
            }
            if needed == 0 {
                carry = nil
                return whole
            }
            guard var rest = input, rest.readableBytes > 0 else {
                carry = whole
                return nil
            }
            var piece = rest.readSlice(length: min(needed, rest.readableBytes))!
            whole.writeBuffer(&piece)
            input = rest.readableBytes > 0 ? rest : nil
        }
    }

    private enum Step {
        case incomplete
        case skipped
        case output(Output)
    }

    /// Decodes the preface or one frame from the start of `buffer`, consuming it; `.incomplete` (consuming
    /// nothing) when `buffer` does not hold all of it.
    private mutating func decodeOne(_ buffer: inout ByteBuffer) throws(H2ProtocolViolation) -> Step {
        if awaitingPreface {
            guard try consumePreface(&buffer) else { return .incomplete }
            return .skipped
        }
        guard buffer.readableBytes >= Self.frameHeaderLength else { return .incomplete }
        let start = buffer.readerIndex
        let length = frameLength(buffer)
        let type = buffer.getInteger(at: start + 3, as: UInt8.self)!
        let flags = buffer.getInteger(at: start + 4, as: UInt8.self)!
        let stream = buffer.getInteger(at: start + 5, as: UInt32.self)! & 0x7FFF_FFFF
        guard length <= maxFrameSize else { throw frameTooLarge(length) }
        guard buffer.readableBytes >= Self.frameHeaderLength + length else { return .incomplete }
        buffer.moveReaderIndex(forwardBy: Self.frameHeaderLength)
        let payload = buffer.readSlice(length: length)!
        guard let output = try decode(type: type, flags: flags, stream: stream, payload: payload) else { return .skipped }
        return .output(output)
    }

    private func frameTooLarge(_ length: Int) -> H2ProtocolViolation {
        H2ProtocolViolation(connection: .frameSizeError, "a frame of \(length) bytes exceeds SETTINGS_MAX_FRAME_SIZE (\(maxFrameSize))")
    }

    /// Consumes the client preface from `buffer`; false (consuming nothing) while it is not all there yet.
    private mutating func consumePreface(_ buffer: inout ByteBuffer) throws(H2ProtocolViolation) -> Bool {
        let available = min(buffer.readableBytes, Self.clientPreface.count)
        let view = buffer.readableBytesView.prefix(available)
        guard view.elementsEqual(Self.clientPreface.prefix(available)) else {
            throw H2ProtocolViolation(connection: .protocolError, "the connection does not start with the HTTP/2 client preface")
        }
        guard available == Self.clientPreface.count else { return false }
        buffer.moveReaderIndex(forwardBy: Self.clientPreface.count)
        awaitingPreface = false
        return true
    }

    private mutating func decode(
        type rawType: UInt8, flags: UInt8, stream: H2StreamID, payload: ByteBuffer
    ) throws(H2ProtocolViolation) -> Output? {
        let type = H2FrameType(rawValue: rawType)
        if let pending = pendingBlock, type != .continuation || stream != pending.stream {
            throw H2ProtocolViolation(
                connection: .protocolError,
                "a header block on stream \(pending.stream) was interrupted by a frame of type \(rawType) on stream \(stream)")
        }
        if awaitingSettings {
            guard type == .settings, flags & Flags.ack == 0 else {
                throw H2ProtocolViolation(connection: .protocolError, "the peer's first frame is not SETTINGS")
            }
            awaitingSettings = false
        }
        guard let type else { return nil }
        switch type {
        case .data: return try decodeData(flags: flags, stream: stream, payload: payload)
        case .headers: return try decodeHeaders(flags: flags, stream: stream, payload: payload)
        case .priority: return try decodePriority(stream: stream, payload: payload)
        case .rstStream:
            try requireStream(stream, type)
            try requireLength(payload, 4, type)
            return .frame(.rstStream(stream: stream, code: H2ErrorCode(rawValue: payload.getInteger(at: payload.readerIndex)!)))
        case .settings: return try decodeSettings(flags: flags, stream: stream, payload: payload)
        case .pushPromise:
            throw H2ProtocolViolation(connection: .protocolError, "PUSH_PROMISE, though this end disabled push")
        case .ping:
            try requireConnection(stream, type)
            try requireLength(payload, 8, type)
            return .frame(.ping(opaque: payload.getInteger(at: payload.readerIndex)!, ack: flags & Flags.ack != 0))
        case .goAway:
            try requireConnection(stream, type)
            guard payload.readableBytes >= 8 else {
                throw H2ProtocolViolation(connection: .frameSizeError, "a GOAWAY frame of \(payload.readableBytes) bytes")
            }
            var rest = payload
            let last = rest.readInteger(as: UInt32.self)! & 0x7FFF_FFFF
            let code = H2ErrorCode(rawValue: rest.readInteger(as: UInt32.self)!)
            return .frame(.goAway(lastStream: last, code: code, debugData: rest))
        case .windowUpdate:
            try requireLength(payload, 4, type)
            let increment = payload.getInteger(at: payload.readerIndex, as: UInt32.self)! & 0x7FFF_FFFF
            if increment == 0 {
                guard stream != 0 else {
                    throw H2ProtocolViolation(connection: .protocolError, "a WINDOW_UPDATE of 0 for the connection")
                }
                return .streamError(H2ProtocolViolation(stream: stream, code: .protocolError, "a WINDOW_UPDATE of 0"), headerBlock: nil)
            }
            return .frame(.windowUpdate(stream: stream, increment: increment))
        case .continuation:
            return try decodeContinuation(flags: flags, stream: stream, payload: payload)
        }
    }

    private enum Flags {
        static let endStream: UInt8 = 0x1
        static let ack: UInt8 = 0x1
        static let endHeaders: UInt8 = 0x4
        static let padded: UInt8 = 0x8
        static let priority: UInt8 = 0x20
    }

    private func decodeData(flags: UInt8, stream: H2StreamID, payload: ByteBuffer) throws(H2ProtocolViolation) -> Output {
        try requireStream(stream, .data)
        let flowControlled = payload.readableBytes
        var body = payload
        if flags & Flags.padded != 0 {
            body = try removePadding(payload, type: .data)
        }
        return .frame(.data(stream: stream, payload: body, endStream: flags & Flags.endStream != 0,
                            flowControlledLength: flowControlled))
    }

    private mutating func decodeHeaders(
        flags: UInt8, stream: H2StreamID, payload: ByteBuffer
    ) throws(H2ProtocolViolation) -> Output? {
        try requireStream(stream, .headers)
        var fragment = payload
        let padded = flags & Flags.padded != 0
        let prioritized = flags & Flags.priority != 0
        guard fragment.readableBytes >= (padded ? 1 : 0) + (prioritized ? 5 : 0) else {
            throw H2ProtocolViolation(connection: .frameSizeError, "a HEADERS frame too short for its padding and priority fields")
        }
        let padLength = padded ? Int(fragment.readInteger(as: UInt8.self)!) : 0
        var violation: H2ProtocolViolation?
        if prioritized {
            let dependency = fragment.readInteger(as: UInt32.self)! & 0x7FFF_FFFF
            fragment.moveReaderIndex(forwardBy: 1)
            if dependency == stream {
                violation = H2ProtocolViolation(stream: stream, code: .protocolError, "the stream depends on itself")
            }
        }
        guard padLength <= fragment.readableBytes else {
            throw H2ProtocolViolation(connection: .protocolError, "a padded HEADERS frame whose padding is longer than its payload")
        }
        fragment = fragment.getSlice(at: fragment.readerIndex, length: fragment.readableBytes - padLength)!
        let endStream = flags & Flags.endStream != 0
        guard flags & Flags.endHeaders != 0 else {
            guard fragment.readableBytes <= maxHeaderBlockBytes else { throw headerBlockTooLarge(stream) }
            pendingBlock = PendingBlock(stream: stream, endStream: endStream, block: fragment, continuations: 0, violation: violation)
            return nil
        }
        return completeBlock(stream: stream, block: fragment, endStream: endStream, violation: violation)
    }

    private mutating func decodeContinuation(
        flags: UInt8, stream: H2StreamID, payload: ByteBuffer
    ) throws(H2ProtocolViolation) -> Output? {
        guard var pending = pendingBlock else {
            throw H2ProtocolViolation(connection: .protocolError, "CONTINUATION on stream \(stream) without a header block to continue")
        }
        pending.continuations += 1
        guard pending.continuations <= maxContinuationFrames else {
            throw H2ProtocolViolation(
                connection: .enhanceYourCalm, "a header block in more than \(maxContinuationFrames) CONTINUATION frames")
        }
        guard pending.block.readableBytes + payload.readableBytes <= maxHeaderBlockBytes else {
            throw headerBlockTooLarge(stream)
        }
        var fragment = payload
        pending.block.writeBuffer(&fragment)
        guard flags & Flags.endHeaders != 0 else {
            pendingBlock = pending
            return nil
        }
        pendingBlock = nil
        return completeBlock(stream: stream, block: pending.block, endStream: pending.endStream, violation: pending.violation)
    }

    private func completeBlock(
        stream: H2StreamID, block: ByteBuffer, endStream: Bool, violation: H2ProtocolViolation?
    ) -> Output {
        if let violation {
            return .streamError(violation, headerBlock: block)
        }
        return .frame(.headers(stream: stream, block: block, endStream: endStream))
    }

    private func headerBlockTooLarge(_ stream: H2StreamID) -> H2ProtocolViolation {
        H2ProtocolViolation(
            connection: .enhanceYourCalm, "a header block on stream \(stream) larger than \(maxHeaderBlockBytes) bytes")
    }

    private func decodePriority(stream: H2StreamID, payload: ByteBuffer) throws(H2ProtocolViolation) -> Output {
        try requireStream(stream, .priority)
        guard payload.readableBytes == 5 else {
            return .streamError(
                H2ProtocolViolation(stream: stream, code: .frameSizeError, "a PRIORITY frame of \(payload.readableBytes) bytes"),
                headerBlock: nil)
        }
        let dependency = payload.getInteger(at: payload.readerIndex, as: UInt32.self)! & 0x7FFF_FFFF
        if dependency == stream {
            return .streamError(H2ProtocolViolation(stream: stream, code: .protocolError, "the stream depends on itself"),
                                headerBlock: nil)
        }
        return .frame(.priority(stream: stream))
    }

    private func decodeSettings(flags: UInt8, stream: H2StreamID, payload: ByteBuffer) throws(H2ProtocolViolation) -> Output {
        try requireConnection(stream, .settings)
        if flags & Flags.ack != 0 {
            guard payload.readableBytes == 0 else {
                throw H2ProtocolViolation(connection: .frameSizeError, "a SETTINGS acknowledgement with a payload")
            }
            return .frame(.settingsAck)
        }
        guard payload.readableBytes % 6 == 0 else {
            throw H2ProtocolViolation(connection: .frameSizeError, "a SETTINGS frame of \(payload.readableBytes) bytes")
        }
        var rest = payload
        var settings: [H2Setting] = []
        settings.reserveCapacity(payload.readableBytes / 6)
        while rest.readableBytes > 0 {
            let setting = H2Setting(rest.readInteger(as: UInt16.self)!, rest.readInteger(as: UInt32.self)!)
            switch setting.identifier {
            case H2Setting.enablePush:
                guard setting.value <= 1 else {
                    throw H2ProtocolViolation(connection: .protocolError, "SETTINGS_ENABLE_PUSH of \(setting.value)")
                }
                if role == .client && setting.value == 1 {
                    throw H2ProtocolViolation(connection: .protocolError, "a server set SETTINGS_ENABLE_PUSH to 1")
                }
            case H2Setting.initialWindowSize:
                guard setting.value <= 0x7FFF_FFFF else {
                    throw H2ProtocolViolation(connection: .flowControlError, "SETTINGS_INITIAL_WINDOW_SIZE of \(setting.value)")
                }
            case H2Setting.maxFrameSize:
                guard (16_384...16_777_215).contains(setting.value) else {
                    throw H2ProtocolViolation(connection: .protocolError, "SETTINGS_MAX_FRAME_SIZE of \(setting.value)")
                }
            default:
                break
            }
            settings.append(setting)
        }
        return .frame(.settings(settings))
    }

    private func removePadding(_ payload: ByteBuffer, type: H2FrameType) throws(H2ProtocolViolation) -> ByteBuffer {
        var rest = payload
        guard let padLength = rest.readInteger(as: UInt8.self), Int(padLength) <= rest.readableBytes else {
            throw H2ProtocolViolation(connection: .protocolError, "a padded \(type) frame whose padding is longer than its payload")
        }
        return rest.readSlice(length: rest.readableBytes - Int(padLength))!
    }

    private func requireStream(_ stream: H2StreamID, _ type: H2FrameType) throws(H2ProtocolViolation) {
        guard stream != 0 else {
            throw H2ProtocolViolation(connection: .protocolError, "a \(type) frame on stream 0")
        }
    }

    private func requireConnection(_ stream: H2StreamID, _ type: H2FrameType) throws(H2ProtocolViolation) {
        guard stream == 0 else {
            throw H2ProtocolViolation(connection: .protocolError, "a \(type) frame on stream \(stream)")
        }
    }

    private func requireLength(_ payload: ByteBuffer, _ length: Int, _ type: H2FrameType) throws(H2ProtocolViolation) {
        guard payload.readableBytes == length else {
            throw H2ProtocolViolation(connection: .frameSizeError, "a \(type) frame of \(payload.readableBytes) bytes")
        }
    }
}
