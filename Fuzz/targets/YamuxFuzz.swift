// libFuzzer target: the yamux frame decoder and the yamux session (Sources/Mux) on what a peer can send.
//
// Every input runs the decoder alone on the input's bytes, cut into reads, and then a session on an EmbeddedChannel,
// either fed the same bytes the same way or driven by the input read as commands (deliver bytes, deliver a
// synthesized frame of any size, let time pass, open, write to, close and reset streams, stop reading, ping, close
// the session). Nothing may crash or leak; the session may only write well-formed frames; a protocol violation —
// any bytes the decoder refuses, among others — must end the session: a go-away, the connection closed, every
// stream closed and forgotten. Built and run by scripts/fuzz.
//
// Layout: byte 0 = bit 0 the session's role (client/server), bit 1 command mode, bits 2-7 the read size in raw
// mode (1...63 bytes, 0: the whole input at once); byte 1 = the session's configuration (see `configuration`); the
// rest is the peer's bytes (raw mode) or commands (see `Command`).

import NIOCore
import NIOEmbedded

@testable import Mux

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzYamux(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard count >= 2 else { return 0 }
    let control = bytes[0]
    let commandMode = control & 2 != 0
    let readSize = control >> 2 == 0 ? max(1, count) : Int(control >> 2)
    let configuration = configuration(bytes[1])
    let payload = bytes[2...]
    let decoderFailedAfterRead = decodeAlone(
        payload, readSize: readSize, maximumPayload: configuration.receiveWindow
    )
    var run = SessionRun(role: control & 1 == 0 ? .server : .client, configuration: configuration, options: bytes[1])
    if commandMode {
        run.runCommands(payload)
    } else {
        run.runRaw(payload, readSize: readSize, decoderFailedAfterRead: decoderFailedAfterRead)
    }
    run.finish()
    return 0
}

/// Byte 1: bits 0-1 the cap on the peer's streams (1, 2, 4 or 256), bit 2 keepalive on, bit 3 a 1 MiB receive
/// window (else 256 KiB), bit 4 a 64 KiB write buffer limit, bit 5 small frames (1 KiB); bits 6-7 are for the streams
/// (`SessionRun`).
private func configuration(_ byte: UInt8) -> YamuxConfiguration {
    var configuration = YamuxConfiguration()
    configuration.maximumPeerStreams = [1, 2, 4, 256][Int(byte & 3)]
    configuration.keepaliveInterval = byte & 4 != 0 ? .seconds(30) : nil
    configuration.keepaliveTimeout = .seconds(10)
    configuration.receiveWindow = byte & 8 != 0 ? 1024 * 1024 : YamuxConfiguration.initialWindow
    configuration.streamWriteBufferLimit = byte & 16 != 0 ? 64 * 1024 : 1024 * 1024
    configuration.maximumFrameSize = byte & 32 != 0 ? 1024 : 64 * 1024
    configuration.streamOpenTimeout = .seconds(75)
    configuration.streamCloseTimeout = .seconds(120)
    return configuration
}

/// The decoder alone, as `ByteToMessageHandler` drives it. Returns the number of the read (0-based) after which it
/// threw, or nil when every frame decoded.
private func decodeAlone(_ bytes: Slice<UnsafeRawBufferPointer>, readSize: Int, maximumPayload: UInt32) -> Int? {
    var decoder = YamuxFrameDecoder(maximumPayload: maximumPayload)
    var buffer = ByteBuffer()
    var offset = bytes.startIndex
    var read = 0
    while offset < bytes.endIndex {
        let end = min(bytes.endIndex, offset + readSize)
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
        offset = end
        do {
            while true {
                let before = buffer.readableBytes
                guard let frame = try decoder.decode(buffer: &buffer) else { break }
                let consumed = before - buffer.readableBytes
                if frame.header.type == .data {
                    require(frame.payload.readableBytes == Int(frame.header.length))
                    require(frame.header.length <= maximumPayload, "a data frame over the limit came out")
                    require(consumed == frame.payload.readableBytes || consumed == 12 + frame.payload.readableBytes)
                } else {
                    require(frame.payload.readableBytes == 0 && consumed == 12)
                }
            }
        } catch {
            require(error is YamuxProtocolError, "the decoder threw \(type(of: error))")
            return read
        }
        require(buffer.readableBytes < 12 + Int(maximumPayload), "the decoder holds more than one frame")
        read += 1
    }
    return nil
}

/// Records what reaches the end of a stream's pipeline.
private final class StreamEnd: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    weak var channel: Channel?
    var receivedBytes = 0
    var inactive = false

    func handlerAdded(context: ChannelHandlerContext) { channel = context.channel }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receivedBytes += unwrapInboundIn(data).readableBytes
    }
    func channelInactive(context: ChannelHandlerContext) { inactive = true }
    func errorCaught(context: ChannelHandlerContext, error: Error) {}
}

/// What the session told its delegate.
private final class SessionWatch: YamuxSessionDelegate {
    var endings = 0
    var endError: Error?
    var lastCount = 0

    func yamuxSessionEnded(_ session: YamuxSession, error: Error?) {
        endings += 1
        endError = error
    }
    func yamuxSession(_ session: YamuxSession, streamCountChanged count: Int) {
        require(count >= 0)
        lastCount = count
    }
}

/// The commands of command mode: the low 3 bits of a command byte pick one, the next bytes are its arguments
/// (missing ones read as 0).
private enum Command: UInt8 {
    /// Deliver the next (byte + 1) bytes as one read.
    case deliver = 0
    /// Deliver one frame: type, flags (low 4 bits; bits 4-5 scale a data length by 8^n, at most 512 KiB; bit 6 adds
    /// unknown flags), stream id (one byte; bit 7 of the flags byte makes it 0x7FFF_FF00 + byte), and a 16-bit length
    /// (data: the payload's size, scaled; other types: the value, bit 7 of the type byte shifts it up 16 bits).
    case frame = 1
    /// Let (byte) seconds pass.
    case advanceTime = 2
    /// This side opens a stream.
    case openStream = 3
    /// Stream (byte) writes (byte) * 512 bytes and flushes.
    case write = 4
    /// Stream (byte) closes: byte 2 mod 3 = close, close output, reset.
    case close = 5
    /// Stream (byte) stops or resumes reading (bit 0 of byte 2: autoRead).
    case autoRead = 6
    /// Byte 0: 0-1 ping, 2 the connection stops or resumes being writable, 3 close the session (bit 2: immediately).
    case other = 7
}

private struct SessionRun {
    let channel: EmbeddedChannel
    let session: YamuxSession
    let watch = SessionWatch()
    let configuration: YamuxConfiguration
    /// The stream ends of every stream opened either way, in order.
    var ends: [StreamEnd] = []
    private let box: EndsBox
    private var output = OutputCheck()

    /// Collects the stream ends made by the inbound initializer, which runs inside the session.
    final class EndsBox: @unchecked Sendable {
        var ends: [StreamEnd] = []
        var autoRead = true
        var halfClosure = false
    }

    init(role: YamuxRole, configuration: YamuxConfiguration, options: UInt8) {
        self.configuration = configuration
        channel = EmbeddedChannel()
        let box = EndsBox()
        box.autoRead = options & 64 == 0
        box.halfClosure = options & 128 != 0
        self.box = box
        session = YamuxSession(role: role, eventLoop: channel.eventLoop, configuration: configuration) { stream in
            let end = StreamEnd()
            box.ends.append(end)
            do {
                try stream.syncOptions?.setOption(ChannelOptions.autoRead, value: box.autoRead)
                try stream.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: box.halfClosure)
                try stream.pipeline.syncOperations.addHandler(end)
            } catch {
                return stream.eventLoop.makeFailedFuture(error)
            }
            return stream.eventLoop.makeSucceededVoidFuture()
        }
        session.delegate = watch
        output.maximumFrame = configuration.maximumFrameSize
        do {
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(YamuxFrameDecoder(maximumPayload: configuration.receiveWindow)), session,
            ])
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        } catch {
            fatalError("the session cannot be set up: \(error)")
        }
    }

    private mutating func deliver(_ buffer: ByteBuffer) {
        _ = try? channel.writeInbound(buffer)
        afterStep()
    }

    /// After every step: what the session wrote is well-formed; an ended session left nothing open.
    private mutating func afterStep() {
        ends = box.ends
        while let chunk = try? channel.readOutbound(as: ByteBuffer.self) {
            output.check(chunk)
        }
        require(watch.endings <= 1, "the delegate heard of the end more than once")
        if watch.endings == 1 {
            require(session.streamCount == 0, "an ended session still has streams")
            require(!session.canOpenStreams)
            for end in ends {
                require(end.channel?.isActive != true, "a stream is active after its session ended")
            }
            if watch.endError is YamuxProtocolError {
                require(!channel.isActive, "a protocol violation left the connection open")
                require(output.sentGoAway, "a protocol violation ended the session without a go-away")
            }
        }
        require(session.streamCount <= configuration.maximumPeerStreams + openedHere)
    }

    private var openedHere = 0

    mutating func runRaw(_ bytes: Slice<UnsafeRawBufferPointer>, readSize: Int, decoderFailedAfterRead: Int?) {
        var offset = bytes.startIndex
        var read = 0
        while offset < bytes.endIndex {
            let end = min(bytes.endIndex, offset + readSize)
            deliver(ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes[offset..<end])))
            offset = end
            if let failed = decoderFailedAfterRead, read >= failed {
                require(watch.endings == 1, "bytes the decoder refuses did not end the session")
                require(!channel.isActive, "bytes the decoder refuses left the connection open")
            }
            read += 1
        }
    }

    mutating func runCommands(_ bytes: Slice<UnsafeRawBufferPointer>) {
        var reader = ArgumentReader(bytes: bytes)
        var steps = 0
        while let byte = reader.next(), steps < 256 {
            steps += 1
            switch Command(rawValue: byte & 7)! {
            case .deliver:
                let length = Int(reader.byte()) + 1
                deliver(ByteBuffer(bytes: reader.take(length)))
            case .frame:
                deliver(synthesizedFrame(&reader))
            case .advanceTime:
                channel.embeddedEventLoop.advanceTime(by: .seconds(Int64(reader.byte())))
                afterStep()
            case .openStream:
                let box = self.box
                let future = session.openStream { stream in
                    let end = StreamEnd()
                    box.ends.append(end)
                    return stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(end) }
                }
                channel.embeddedEventLoop.run()
                if (try? future.wait()) != nil { openedHere += 1 }
                afterStep()
            case .write:
                let stream = reader.byte()
                let size = Int(reader.byte()) * 512
                if let channel = self.stream(stream) {
                    channel.writeAndFlush(ByteBuffer(repeating: 0x5A, count: size), promise: nil)
                }
                afterStep()
            case .close:
                let stream = reader.byte()
                let how = reader.byte() % 3
                if let channel = self.stream(stream) {
                    switch how {
                    case 0: channel.close(promise: nil)
                    case 1: channel.close(mode: .output, promise: nil)
                    default: channel.triggerUserOutboundEvent(YamuxResetStream(), promise: nil)
                    }
                }
                channel.embeddedEventLoop.run()
                afterStep()
            case .autoRead:
                let stream = reader.byte()
                let on = reader.byte() & 1 != 0
                if let channel = self.stream(stream) {
                    _ = channel.setOption(ChannelOptions.autoRead, value: on)
                    if !on { channel.read() }
                }
                afterStep()
            case .other:
                let what = reader.byte()
                switch what & 3 {
                case 0, 1:
                    _ = session.ping()
                case 2:
                    channel.isWritable.toggle()
                    channel.pipeline.fireChannelWritabilityChanged()
                default:
                    session.close(code: .normal, immediately: what & 4 != 0)
                }
                channel.embeddedEventLoop.run()
                afterStep()
            }
        }
    }

    private func stream(_ index: UInt8) -> Channel? {
        guard !ends.isEmpty else { return nil }
        return ends[Int(index) % ends.count].channel
    }

    private func synthesizedFrame(_ reader: inout ArgumentReader) -> ByteBuffer {
        let typeByte = reader.byte()
        let flagsByte = reader.byte()
        let streamByte = reader.byte()
        let length = UInt32(reader.byte()) << 8 | UInt32(reader.byte())
        let type = YamuxFrameType(rawValue: typeByte & 3)!
        var flags = YamuxFlags(rawValue: UInt16(flagsByte & 0xF))
        if flagsByte & 0x40 != 0 { flags.insert(YamuxFlags(rawValue: 0x30)) }
        let streamID = flagsByte & 0x80 != 0 ? 0x7FFF_FF00 + UInt32(streamByte) : UInt32(streamByte)
        var buffer = ByteBuffer()
        if type == .data {
            // Up to 65535 * 512 bytes could be asked for; two frames of 512 KiB overrun the largest window.
            let size = min(Int(length) << (3 * Int(flagsByte >> 4 & 3)), 512 * 1024)
            YamuxFrameHeader(type: type, flags: flags, streamID: streamID, length: UInt32(size)).write(to: &buffer)
            buffer.writeRepeatingByte(0xA5, count: size)
        } else {
            let value = typeByte & 0x80 != 0 ? length << 16 | length : length
            YamuxFrameHeader(type: type, flags: flags, streamID: streamID, length: value).write(to: &buffer)
        }
        return buffer
    }

    /// Closes everything, runs what is left on the loop: nothing may stay alive after the input.
    mutating func finish() {
        _ = try? channel.finish(acceptAlreadyClosed: true)
        afterStep()
        require(watch.endings == 1, "the session did not end when its connection closed")
        require(session.streamCount == 0)
        for end in ends {
            require(end.channel?.isActive != true, "a stream outlived its connection")
        }
        try? channel.embeddedEventLoop.syncShutdownGracefully()
    }
}

/// Reads the frames the session writes: they must always be well-formed yamux, data frames no larger than the
/// configured frame size. Payloads are stepped over, not copied.
private struct OutputCheck {
    var maximumFrame: UInt32 = 0
    var sentGoAway = false
    private var header = ByteBuffer()
    private var payloadLeft = 0

    mutating func check(_ chunk: ByteBuffer) {
        var chunk = chunk
        while chunk.readableBytes > 0 {
            if payloadLeft > 0 {
                let step = min(payloadLeft, chunk.readableBytes)
                chunk.moveReaderIndex(forwardBy: step)
                payloadLeft -= step
                continue
            }
            var part = chunk.readSlice(length: min(YamuxFrameHeader.size - header.readableBytes, chunk.readableBytes))!
            header.writeBuffer(&part)
            guard header.readableBytes == YamuxFrameHeader.size else { continue }
            let frame: YamuxFrameHeader
            do {
                frame = try YamuxFrameHeader.read(from: &header)!
            } catch {
                fatalError("the session wrote a malformed frame: \(error)")
            }
            header.clear()
            switch frame.type {
            case .goAway:
                require(frame.streamID == 0 && frame.length <= 2, "go-away \(frame)")
                sentGoAway = true
            case .ping:
                require(frame.streamID == 0, "ping \(frame)")
            case .data:
                require(frame.streamID != 0 && frame.length > 0 && frame.length <= maximumFrame, "data \(frame)")
                payloadLeft = Int(frame.length)
            case .windowUpdate:
                require(frame.streamID != 0, "window update \(frame)")
            }
        }
    }
}

/// Reads command bytes; past the end every argument reads as 0.
private struct ArgumentReader {
    let bytes: Slice<UnsafeRawBufferPointer>
    var offset: Int

    init(bytes: Slice<UnsafeRawBufferPointer>) {
        self.bytes = bytes
        offset = bytes.startIndex
    }

    mutating func next() -> UInt8? {
        guard offset < bytes.endIndex else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func byte() -> UInt8 { next() ?? 0 }

    mutating func take(_ count: Int) -> UnsafeRawBufferPointer {
        let end = min(bytes.endIndex, offset + count)
        defer { offset = end }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<end])
    }
}

/// `precondition` that says what failed in an optimized build too.
private func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = "", file: StaticString = #file,
    line: UInt = #line
) {
    if !condition() { fatalError("fuzz check failed: \(message())", file: file, line: line) }
}
