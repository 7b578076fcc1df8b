// The engine on a channel, driven frame by frame: a peer written by hand (frames from `rawFrame`, header blocks from
// NIOHPACK's encoder) on one side of an EmbeddedChannel, a recording owner on the other, and what the engine writes
// read back with the engine's own decoder.

import NIOCore
import NIOEmbedded
import NIOHPACK
import Testing

@testable import HTTP2Forwarding

/// Records what the engine hands its owner.
final class RecordingOwner: H2ConnectionDelegate {
    enum Event: Equatable {
        case headers(H2StreamID, [String: String], endStream: Bool, isNew: Bool)
        case data(H2StreamID, [UInt8], endStream: Bool, length: Int)
        case reset(H2StreamID, H2ErrorCode, byPeer: Bool)
        case closed(H2StreamID)
        case goAway(H2StreamID, H2ErrorCode)
        case settings
        case pong(UInt64)
        case connectionError(H2ErrorCode)
    }

    var events: [Event] = []
    var onHeaders: ((H2StreamID) -> Void)?

    func h2Headers(_ headers: HPACKHeaders, stream: H2StreamID, endStream: Bool, isNewStream: Bool) {
        var fields: [String: String] = [:]
        for (name, value, _) in headers { fields[name] = value }
        events.append(.headers(stream, fields, endStream: endStream, isNew: isNewStream))
        onHeaders?(stream)
    }
    func h2Data(_ payload: ByteBuffer, stream: H2StreamID, endStream: Bool, flowControlledLength: Int) {
        events.append(.data(stream, Array(payload.readableBytesView), endStream: endStream, length: flowControlledLength))
    }
    func h2StreamReset(_ stream: H2StreamID, code: H2ErrorCode, byPeer: Bool) { events.append(.reset(stream, code, byPeer: byPeer)) }
    func h2StreamClosed(_ stream: H2StreamID) { events.append(.closed(stream)) }
    func h2GoAway(lastStream: H2StreamID, code: H2ErrorCode, debugData: ByteBuffer) { events.append(.goAway(lastStream, code)) }
    func h2PeerSettingsChanged() { events.append(.settings) }
    func h2PingAnswered(opaque: UInt64) { events.append(.pong(opaque)) }
    func h2ConnectionError(_ violation: H2ProtocolViolation) { events.append(.connectionError(violation.code)) }
}

/// Set by a future's callback; an EmbeddedChannel runs everything on the test's thread.
final class Flag: @unchecked Sendable {
    var value = false
}

/// A hand-driven peer of an engine on an EmbeddedChannel.
struct EnginePeer {
    let channel = EmbeddedChannel()
    let engine: H2ConnectionHandler
    let owner = RecordingOwner()
    var encoder = HPACKEncoder(allocator: ByteBufferAllocator())
    var hpack = HPACKDecoder(allocator: ByteBufferAllocator(), maxDynamicTableSize: 4096, maxHeaderListSize: 1 << 20)
    var decoder: H2FrameDecoder

    init(role: H2FrameDecoder.Role, configure: (inout H2ConnectionHandler.Configuration) -> Void = { _ in }) throws {
        var configuration = H2ConnectionHandler.Configuration(role: role)
        configuration.connection.initialWindowSize = 65_535
        configure(&configuration)
        engine = H2ConnectionHandler(configuration: configuration)
        engine.delegate = owner
        decoder = H2FrameDecoder(role: role == .server ? .client : .server)
        try channel.pipeline.syncOperations.addHandler(engine)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        if role == .server {
            send(H2FrameDecoder.clientPreface)
        }
        send(emptySettings)
    }

    func send(_ bytes: [UInt8]) {
        try! channel.writeInbound(ByteBuffer(bytes: bytes))
        channel.pipeline.fireChannelReadComplete()
    }

    mutating func block(_ fields: [(String, String)]) -> [UInt8] {
        var buffer = ByteBuffer()
        try! encoder.encode(headers: HPACKHeaders(fields), to: &buffer)
        return Array(buffer.readableBytesView)
    }

    mutating func headers(_ stream: UInt32, _ fields: [(String, String)], endStream: Bool = false) {
        let payload = block(fields)
        send(rawFrame(type: 1, flags: 0x4 | (endStream ? 1 : 0), stream: stream, payload: payload))
    }

    mutating func request(_ stream: UInt32, extra: [(String, String)] = [], endStream: Bool = false) {
        headers(stream, [(":method", "POST"), (":scheme", "http"), (":path", "/svc/Method"),
                         ("content-type", "application/grpc")] + extra, endStream: endStream)
    }

    func data(_ stream: UInt32, _ bytes: [UInt8], endStream: Bool = false) {
        send(rawFrame(type: 0, flags: endStream ? 1 : 0, stream: stream, payload: bytes))
    }

    /// Frames the engine wrote, decoded (header blocks through HPACK, as "fields").
    enum Written: Equatable {
        case headers(H2StreamID, [String: String], endStream: Bool)
        case data(H2StreamID, Int, endStream: Bool)
        case reset(H2StreamID, H2ErrorCode)
        case windowUpdate(H2StreamID, UInt32)
        case settings, settingsAck
        case ping(UInt64, ack: Bool)
        case goAway(H2StreamID, H2ErrorCode)
    }

    mutating func written() -> [Written] {
        while let buffer = try! channel.readOutbound(as: ByteBuffer.self) {
            decoder.append(buffer)
        }
        var frames: [Written] = []
        while let output = try! decoder.nextFrame() {
            guard case .frame(let frame) = output else { Issue.record("the engine wrote \(output)"); continue }
            switch frame {
            case .headers(let stream, var block, let endStream):
                var fields: [String: String] = [:]
                for (name, value, _) in try! hpack.decodeHeaders(from: &block) { fields[name] = value }
                frames.append(.headers(stream, fields, endStream: endStream))
            case .data(let stream, let payload, let endStream, _):
                frames.append(.data(stream, payload.readableBytes, endStream: endStream))
            case .rstStream(let stream, let code): frames.append(.reset(stream, code))
            case .windowUpdate(let stream, let increment): frames.append(.windowUpdate(stream, increment))
            case .settings: frames.append(.settings)
            case .settingsAck: frames.append(.settingsAck)
            case .ping(let opaque, let ack): frames.append(.ping(opaque, ack: ack))
            case .goAway(let last, let code, _): frames.append(.goAway(last, code))
            case .priority: break
            }
        }
        return frames
    }
}

@Suite struct H2ConnectionHandlerTests {
    @Test func aServerGreetsReadsACallAndAnswersIt() throws {
        var peer = try EnginePeer(role: .server)
        #expect(peer.written() == [.settings, .windowUpdate(0, UInt32((8 << 20) - 65_535)), .settingsAck])
        #expect(peer.owner.events == [.settings])
        peer.request(1)
        peer.data(1, [0, 0, 0, 0, 2, 8, 1], endStream: true)
        #expect(peer.owner.events.dropFirst() == [
            .headers(1, [":method": "POST", ":scheme": "http", ":path": "/svc/Method", "content-type": "application/grpc"],
                     endStream: false, isNew: true),
            .data(1, [0, 0, 0, 0, 2, 8, 1], endStream: true, length: 7),
        ])
        peer.engine.sendHeaders(HPACKHeaders([(":status", "200")]), stream: 1, endStream: false, promise: nil)
        peer.engine.sendData(ByteBuffer(bytes: [0, 0, 0, 0, 0]), stream: 1, endStream: false, promise: nil)
        peer.engine.sendHeaders(HPACKHeaders([("grpc-status", "0")]), stream: 1, endStream: true, promise: nil)
        peer.engine.flush()
        #expect(peer.written() == [
            .headers(1, [":status": "200"], endStream: false), .data(1, 5, endStream: false),
            .headers(1, ["grpc-status": "0"], endStream: true),
        ])
        #expect(!peer.owner.events.contains(.closed(1)), "the owner closed the stream with its own write")
        #expect(peer.engine.openStreamCount == 0)
    }

    @Test func dataBeyondThePeersWindowWaitsInOrderAndItsPromiseCompletesWhenWritten() throws {
        var peer = try EnginePeer(role: .server)
        _ = peer.written()
        peer.request(1)
        peer.engine.sendHeaders(HPACKHeaders([(":status", "200")]), stream: 1, endStream: false, promise: nil)
        let first = peer.channel.eventLoop.makePromise(of: Void.self)
        let second = peer.channel.eventLoop.makePromise(of: Void.self)
        // 65 535 bytes of window: the first 50 000 go, 15 535 of the next 30 000, the rest waits, and so do trailers.
        let firstDone = Flag(), secondDone = Flag()
        first.futureResult.whenSuccess { firstDone.value = true }
        second.futureResult.whenSuccess { secondDone.value = true }
        peer.engine.sendData(ByteBuffer(repeating: 1, count: 50_000), stream: 1, endStream: false, promise: first)
        peer.engine.sendData(ByteBuffer(repeating: 2, count: 30_000), stream: 1, endStream: false, promise: second)
        peer.engine.sendHeaders(HPACKHeaders([("grpc-status", "0")]), stream: 1, endStream: true, promise: nil)
        peer.engine.flush()
        let sent = peer.written()
        #expect(sent.first == .headers(1, [":status": "200"], endStream: false))
        let bytes = sent.reduce(0) { if case .data(_, let n, _) = $1 { return $0 + n } else { return $0 } }
        #expect(bytes == 65_535)
        #expect(sent.allSatisfy { if case .data(_, let n, _) = $0 { return n <= 16_384 } else { return true } })
        #expect(firstDone.value && !secondDone.value)
        #expect(!sent.contains { if case .headers(_, _, true) = $0 { return true } else { return false } })
        peer.send(rawFrame(type: 8, stream: 1, payload: u32(20_000)))
        #expect(peer.written().isEmpty, "the connection window is still closed")
        peer.send(rawFrame(type: 8, stream: 0, payload: u32(100_000)))
        #expect(peer.written() == [.data(1, 14_465, endStream: false), .headers(1, ["grpc-status": "0"], endStream: true)])
        #expect(secondDone.value)
    }

    @Test func aMalformedRequestResetsItsStreamOnlyAndTheOwnerNeverSeesIt() throws {
        let cases: [[(String, String)]] = [
            [(":method", "POST"), (":path", "/a")],  // no :scheme
            [(":method", "POST"), (":scheme", "http"), (":path", "/a"), ("connection", "close")],
            [(":method", "POST"), (":scheme", "http"), (":path", "/a"), ("te", "gzip")],
            [(":method", "POST"), ("x", "1"), (":scheme", "http"), (":path", "/a")],  // pseudo after regular
            [(":method", "POST"), (":scheme", "http"), (":path", "/a"), (":status", "200")],
            [(":method", "POST"), (":scheme", "http"), (":path", "/a"), (":path", "/b")],
            [(":method", "POST"), (":scheme", "http"), (":path", "")],
            [(":method", "POST"), (":scheme", "http"), (":path", "/a"), ("x", " padded")],
        ]
        for fields in cases {
            var peer = try EnginePeer(role: .server)
            _ = peer.written()
            peer.headers(1, fields)
            #expect(peer.written() == [.reset(1, .protocolError)], "\(fields)")
            #expect(peer.owner.events == [.settings], "\(fields)")
            peer.request(3, endStream: true)
            #expect(peer.owner.events.count == 2, "the next stream is served")
        }
    }

    @Test func uppercaseNamesAndControlCharactersAreMalformed() throws {
        // Literal fields without indexing, written by hand: HPACK encoders lowercase names themselves.
        func literal(_ name: String, _ value: String) -> [UInt8] {
            [0x00, UInt8(name.utf8.count)] + Array(name.utf8) + [UInt8(value.utf8.count)] + Array(value.utf8)
        }
        let base = [0x83, 0x86] + literal(":path", "/a")  // :method POST, :scheme http
        for extra in [literal("Content-Type", "x"), literal("x", "a\nb"), literal("x", "a\rb"), literal("x", "b\t"),
                      literal("x y", "1"), literal("x", "a\u{0}b"), literal(":Path", "/b")] {
            var peer = try EnginePeer(role: .server)
            _ = peer.written()
            peer.send(rawFrame(type: 1, flags: 0x5, stream: 1, payload: base + extra))
            #expect(peer.written() == [.reset(1, .protocolError)], "\(extra)")
            #expect(peer.owner.events == [.settings])
            #expect(peer.engine.malformedBlocks == 1)
        }
    }

    @Test func fieldsThatAreUnusualButWellFormedPass() throws {
        // Whitespace inside a value, bytes above ASCII, every token character in a name, an empty value.
        var peer = try EnginePeer(role: .server)
        _ = peer.written()
        peer.headers(1, [(":method", "POST"), (":scheme", "http"), (":path", "/a"), ("x", "a \t b"),
                         ("grpc-message", "caf\u{E9} \u{1F600}"), ("!#$%&'*+-.^_`|~09az", "1"), ("empty", "")],
                     endStream: true)
        #expect(peer.written() == [])
        #expect(peer.owner.events.count == 2, "\(peer.owner.events)")
        #expect(peer.engine.malformedBlocks == 0)
    }

    @Test func aContentLengthMustBeANumberAndMatchItsData() throws {
        let cases: [(fields: [(String, String)], endStream: Bool)] = [
            ([("content-length", "abc")], false),
            ([("content-length", "-1")], false),
            ([("content-length", "5"), ("content-length", "6")], false),
            ([("content-length", "5")], true),  // no DATA can follow a block that ends the stream
        ]
        for (fields, endStream) in cases {
            var peer = try EnginePeer(role: .server)
            _ = peer.written()
            peer.request(1, extra: fields, endStream: endStream)
            #expect(peer.written() == [.reset(1, .protocolError)], "\(fields)")
            #expect(peer.owner.events == [.settings], "\(fields)")
        }
        // A matching length passes; a longer body is reset before its excess reaches the owner.
        var peer = try EnginePeer(role: .server)
        _ = peer.written()
        peer.request(1, extra: [("content-length", "5")])
        peer.data(1, [0, 0, 0, 0, 0], endStream: true)
        peer.request(3, extra: [("content-length", "5")])
        peer.data(3, [0, 0, 0, 0, 0, 0])
        #expect(peer.written() == [.reset(3, .protocolError)])
        #expect(peer.owner.events.filter { if case .data = $0 { return true } else { return false } }.count == 1)
    }

    @Test func trailersWithPseudoHeadersAreMalformed() throws {
        var peer = try EnginePeer(role: .server)
        _ = peer.written()
        peer.request(1)
        peer.headers(1, [(":path", "/x")], endStream: true)
        #expect(peer.written() == [.reset(1, .protocolError)])
        #expect(peer.owner.events.last == .reset(1, .protocolError, byPeer: false))
    }

    @Test func whatAClientStillSendsAfterTheEngineResetItsStreamIsIgnoredAndOtherCallsGoOn() throws {
        var peer = try EnginePeer(role: .server)
        _ = peer.written()
        peer.request(1)
        peer.request(3)
        peer.engine.resetStream(1, code: .cancel)
        peer.engine.flush()
        #expect(peer.written() == [.reset(1, .cancel)])
        peer.data(1, [1, 2, 3])
        peer.headers(1, [("grpc-status", "0")], endStream: true)
        peer.data(3, [9], endStream: true)
        #expect(peer.written().isEmpty, "nothing answered for stream 1: no GOAWAY, no reset")
        #expect(peer.owner.events.last == .data(3, [9], endStream: true, length: 1))
        // A reset of a stream that is already gone sends nothing.
        peer.engine.resetStream(1, code: .cancel)
        peer.engine.flush()
        #expect(peer.written().isEmpty)
    }

    @Test func largeHeaderBlocksGoOutWithContinuationAndLargeDataIsSplitAtTheFrameSize() throws {
        var peer = try EnginePeer(role: .server)
        _ = peer.written()
        peer.request(1)
        peer.send(rawFrame(type: 8, stream: 1, payload: u32(1 << 20)))
        peer.send(rawFrame(type: 8, stream: 0, payload: u32(1 << 20)))
        let long = String(repeating: "v", count: 40_000)
        peer.engine.sendHeaders(HPACKHeaders([(":status", "200"), ("x-long", long)]), stream: 1, endStream: false, promise: nil)
        peer.engine.sendData(ByteBuffer(repeating: 7, count: 100_000), stream: 1, endStream: true, promise: nil)
        peer.engine.flush()
        let sent = peer.written()
        #expect(sent.first == .headers(1, [":status": "200", "x-long": long], endStream: false))
        #expect(sent.dropFirst().map { if case .data(_, let n, let end) = $0 { return "\(n)\(end ? "!" : "")" } else { return "?" } }
            == ["16384", "16384", "16384", "16384", "16384", "16384", "1696!"])
    }

    @Test func dataOfOneStreamInOneBatchGoesOutAsOneFrameUpToTheFrameSize() throws {
        var peer = try EnginePeer(role: .server)
        _ = peer.written()
        peer.request(1)
        peer.request(3)
        peer.send(rawFrame(type: 8, stream: 0, payload: u32(1 << 20)))
        _ = peer.written()
        let engine = peer.engine
        var completed: [Int] = []
        func write(_ count: Int, stream: H2StreamID, endStream: Bool = false, tag: Int) {
            let promise = peer.channel.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenSuccess { completed.append(tag) }
            engine.sendData(ByteBuffer(repeating: UInt8(tag), count: count), stream: stream, endStream: endStream, promise: promise)
        }
        engine.sendHeaders(HPACKHeaders([(":status", "200")]), stream: 1, endStream: false, promise: nil)
        // Three messages of stream 1 in one batch: one frame. Then stream 3 (its own frame), then stream 1 again
        // (a new frame: another frame came between), ending its stream.
        write(1029, stream: 1, tag: 1)
        write(1029, stream: 1, tag: 2)
        write(1029, stream: 1, tag: 3)
        write(100, stream: 3, tag: 4)
        write(1029, stream: 1, endStream: true, tag: 5)
        // Up to the peer's frame size (16 384): sixteen 1029-byte messages of stream 3 make 15 in one frame, then 1.
        for tag in 6..<22 { write(1029, stream: 3, tag: tag) }
        #expect(completed.isEmpty)
        engine.flush()
        let sent = peer.written()
        #expect(sent.first == .headers(1, [":status": "200"], endStream: false))
        #expect(sent.dropFirst().map { if case .data(let id, let n, let end) = $0 { return "\(id):\(n)\(end ? "!" : "")" } else { return "?" } }
            == ["1:3087", "3:100", "1:1029!", "3:15435", "3:1029"])
        #expect(completed == Array(1..<22).reversed() || Set(completed) == Set(1..<22))
        #expect(completed.count == 21)
    }

    @Test func anUndecodableHeaderBlockEndsTheConnectionWithCompressionError() throws {
        var peer = try EnginePeer(role: .server)
        _ = peer.written()
        peer.send(rawFrame(type: 1, flags: 0x5, stream: 1, payload: [0xFF, 0xFF, 0xFF, 0xFF]))
        #expect(peer.written() == [.goAway(1, .compressionError)])
        #expect(peer.owner.events.last == .connectionError(.compressionError))
        #expect(!peer.channel.isActive)
    }

    @Test func theOwnerCanAnswerFromInsideTheEventThatOpenedTheStream() throws {
        var peer = try EnginePeer(role: .server)
        _ = peer.written()
        let engine = peer.engine
        peer.owner.onHeaders = { stream in
            engine.sendHeaders(HPACKHeaders([(":status", "200"), ("grpc-status", "12")]), stream: stream, endStream: true, promise: nil)
            engine.resetStream(stream, code: .noError)
        }
        peer.request(1)
        peer.request(3, endStream: true)
        #expect(peer.written() == [
            .headers(1, [":status": "200", "grpc-status": "12"], endStream: true), .reset(1, .noError),
            .headers(3, [":status": "200", "grpc-status": "12"], endStream: true),
        ])
    }

    @Test func aClientOpensStreamsReadsResponsesAndTrailersAndHonoursTheLimit() throws {
        var peer = try EnginePeer(role: .client)
        #expect(peer.written() == [.settings, .windowUpdate(0, UInt32((8 << 20) - 65_535)), .settingsAck])
        peer.send(rawFrame(type: 4, payload: [0, 3, 0, 0, 0, 1]))  // MAX_CONCURRENT_STREAMS 1
        let id = peer.engine.openStream(
            headers: HPACKHeaders([(":method", "POST"), (":scheme", "http"), (":path", "/a")]), endStream: false)
        #expect(id == 1)
        #expect(!peer.engine.canOpenStream)
        #expect(peer.engine.openStream(headers: HPACKHeaders(), endStream: true) == nil)
        peer.engine.sendData(ByteBuffer(bytes: [0, 0, 0, 0, 0]), stream: 1, endStream: true, promise: nil)
        peer.engine.flush()
        #expect(peer.written() == [.settingsAck, .headers(1, [":method": "POST", ":scheme": "http", ":path": "/a"], endStream: false),
                                   .data(1, 5, endStream: true)])
        peer.headers(2 - 1, [(":status", "200")])
        peer.data(1, [0, 0, 0, 0, 0])
        peer.headers(1, [("grpc-status", "0")], endStream: true)
        #expect(peer.owner.events.suffix(4) == [
            .headers(1, [":status": "200"], endStream: false, isNew: false), .data(1, [0, 0, 0, 0, 0], endStream: false, length: 5),
            .headers(1, ["grpc-status": "0"], endStream: true, isNew: false), .closed(1),
        ])
        #expect(peer.engine.canOpenStream)
    }

    @Test func aResponseWithoutStatusIsMalformed() throws {
        var peer = try EnginePeer(role: .client)
        _ = peer.written()
        _ = peer.engine.openStream(headers: HPACKHeaders([(":method", "POST"), (":scheme", "http"), (":path", "/a")]), endStream: true)
        peer.engine.flush()
        _ = peer.written()
        peer.headers(1, [("grpc-status", "0")], endStream: true)
        #expect(peer.written() == [.reset(1, .protocolError)])
        #expect(peer.owner.events.last == .reset(1, .protocolError, byPeer: false))
    }

    @Test func queuedWritesFailWhenTheirStreamIsReset() throws {
        var peer = try EnginePeer(role: .server)
        _ = peer.written()
        peer.request(1)
        peer.engine.sendHeaders(HPACKHeaders([(":status", "200")]), stream: 1, endStream: false, promise: nil)
        let waiting = peer.channel.eventLoop.makePromise(of: Void.self)
        peer.engine.sendData(ByteBuffer(repeating: 0, count: 70_000), stream: 1, endStream: false, promise: waiting)
        peer.engine.flush()
        _ = peer.written()
        peer.send(rawFrame(type: 3, stream: 1, payload: u32(8)))
        #expect(throws: H2StreamNotWritable.self) { try waiting.futureResult.wait() }
        #expect(peer.owner.events.last == .reset(1, .cancel, byPeer: true))
    }
}
