// The yamux session frame by frame: bytes in on an EmbeddedChannel as a peer would send them, frames out decoded
// and compared, streams' pipelines observed through a recording handler.

import NIOCore
import NIOEmbedded
import XCTest

@testable import Mux

/// Records what reaches the end of a stream's pipeline.
final class StreamRecorder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var received = ByteBuffer()
    var inactive = false
    var errors: [Error] = []
    var channel: Channel?

    func handlerAdded(context: ChannelHandlerContext) { channel = context.channel }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        received.writeBuffer(&buffer)
    }
    func channelInactive(context: ChannelHandlerContext) { inactive = true }
    func errorCaught(context: ChannelHandlerContext, error: Error) { errors.append(error) }
}

final class YamuxSessionTests: XCTestCase {
    private var channel: EmbeddedChannel!
    private var session: YamuxSession!
    private var recorders: [StreamRecorder] = []
    private var decoder = YamuxFrameDecoder(maximumPayload: 16 * 1024 * 1024)
    private var outbound = ByteBuffer()

    private func makeSession(role: YamuxRole, configure: (inout YamuxConfiguration) -> Void = { _ in }) throws {
        channel = EmbeddedChannel()
        var configuration = YamuxConfiguration()
        configuration.keepaliveInterval = nil
        configure(&configuration)
        session = YamuxSession(role: role, eventLoop: channel.eventLoop, configuration: configuration) { stream in
            let recorder = StreamRecorder()
            self.recorders.append(recorder)
            return stream.pipeline.addHandler(recorder)
        }
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(YamuxFrameDecoder(maximumPayload: configuration.receiveWindow)), session,
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    private func send(_ type: YamuxFrameType, _ flags: YamuxFlags = [], stream: UInt32, length: UInt32? = nil,
                      payload: [UInt8] = []) throws {
        var buffer = ByteBuffer()
        YamuxFrameHeader(type: type, flags: flags, streamID: stream, length: length ?? UInt32(payload.count))
            .write(to: &buffer)
        buffer.writeBytes(payload)
        try channel.writeInbound(buffer)
    }

    /// Every frame written since the last call.
    private func sentFrames() throws -> [YamuxFrame] {
        while var chunk = try channel.readOutbound(as: ByteBuffer.self) {
            outbound.writeBuffer(&chunk)
        }
        var frames: [YamuxFrame] = []
        while let frame = try decoder.decode(buffer: &outbound) {
            frames.append(frame)
        }
        return frames
    }

    private func headers() throws -> [YamuxFrameHeader] {
        try sentFrames().map(\.header)
    }

    // MARK: Frames

    func testHeaderRoundTripAndMalformedHeaders() throws {
        var buffer = ByteBuffer()
        let header = YamuxFrameHeader(type: .windowUpdate, flags: [.syn, .fin], streamID: 0x0102_0304, length: 0xA0B0_C0D0)
        header.write(to: &buffer)
        XCTAssertEqual(Array(buffer.readableBytesView), [0, 1, 0, 5, 1, 2, 3, 4, 0xA0, 0xB0, 0xC0, 0xD0])
        XCTAssertEqual(try YamuxFrameHeader.read(from: &buffer), header)

        var short = ByteBuffer(bytes: [0, 0, 0])
        XCTAssertNil(try YamuxFrameHeader.read(from: &short))
        XCTAssertEqual(short.readableBytes, 3, "nothing consumed from a partial header")

        var badVersion = ByteBuffer(bytes: [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
        XCTAssertThrowsError(try YamuxFrameHeader.read(from: &badVersion)) {
            XCTAssertTrue("\($0)".contains("version 1"), "\($0)")
        }
        var badType = ByteBuffer(bytes: [0, 9, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
        XCTAssertThrowsError(try YamuxFrameHeader.read(from: &badType)) {
            XCTAssertTrue("\($0)".contains("unknown yamux frame type 9"), "\($0)")
        }
    }

    func testTheDecoderWaitsForWholeFramesAndRefusesOversizedOnesBeforeBuffering() throws {
        var decoder = YamuxFrameDecoder(maximumPayload: 8)
        var buffer = ByteBuffer()
        YamuxFrameHeader(type: .data, streamID: 1, length: 4).write(to: &buffer)
        buffer.writeBytes([1, 2])
        XCTAssertNil(try decoder.decode(buffer: &buffer))
        buffer.writeBytes([3, 4])
        let frame = try XCTUnwrap(try decoder.decode(buffer: &buffer))
        XCTAssertEqual(Array(frame.payload.readableBytesView), [1, 2, 3, 4])

        var oversized = ByteBuffer()
        YamuxFrameHeader(type: .data, streamID: 1, length: 9).write(to: &oversized)
        XCTAssertThrowsError(try decoder.decode(buffer: &oversized)) {
            XCTAssertTrue("\($0)".contains("exceeds the limit of 8"), "\($0)")
        }
    }

    // MARK: Streams the peer opens

    func testAPeerStreamIsAcceptedAndItsDataReachesThePipeline() throws {
        try makeSession(role: .server)
        try send(.windowUpdate, .syn, stream: 1, length: 0)
        XCTAssertEqual(try headers(), [YamuxFrameHeader(type: .windowUpdate, flags: .ack, streamID: 1, length: 0)])
        try send(.data, stream: 1, payload: Array("hello".utf8))
        XCTAssertEqual(recorders.count, 1)
        XCTAssertEqual(recorders[0].received.getString(at: 0, length: 5), "hello")
        XCTAssertTrue(recorders[0].channel?.isActive ?? false)
        XCTAssertEqual(session.streamCount, 1)
    }

    func testDataWithSynOpensAndDeliversInOneFrame() throws {
        try makeSession(role: .server)
        try send(.data, .syn, stream: 3, payload: [1, 2, 3])
        XCTAssertEqual(try headers().first?.flags, .ack)
        XCTAssertEqual(recorders.first?.received.readableBytes, 3)
    }

    func testReadingGrantsWindowBackHalfAWindowAtATime() throws {
        try makeSession(role: .server)
        try send(.windowUpdate, .syn, stream: 1, length: 0)
        _ = try headers()
        let chunk = [UInt8](repeating: 7, count: 32 * 1024)
        for _ in 0..<3 {
            try send(.data, stream: 1, payload: chunk)
        }
        XCTAssertEqual(try headers(), [], "96 KiB read: less than half the 256 KiB window, nothing granted yet")
        try send(.data, stream: 1, payload: chunk)
        XCTAssertEqual(try headers(), [YamuxFrameHeader(type: .windowUpdate, streamID: 1, length: 128 * 1024)])
        XCTAssertEqual(recorders[0].received.readableBytes, 128 * 1024)
    }

    func testALargerReceiveWindowIsAnnouncedWithTheAck() throws {
        try makeSession(role: .server) { $0.receiveWindow = 1024 * 1024 }
        try send(.windowUpdate, .syn, stream: 1, length: 0)
        XCTAssertEqual(try headers(), [
            YamuxFrameHeader(type: .windowUpdate, flags: .ack, streamID: 1, length: 1024 * 1024 - 256 * 1024),
        ])
    }

    func testDataBeyondTheGrantedWindowEndsTheSession() throws {
        try makeSession(role: .server)
        try send(.windowUpdate, .syn, stream: 1, length: 0)
        // A pipeline that does not read: no window comes back.
        try recorders[0].channel!.setOption(ChannelOptions.autoRead, value: false).wait()
        _ = try headers()
        let chunk = [UInt8](repeating: 1, count: 64 * 1024)
        for _ in 0..<4 {
            try send(.data, stream: 1, payload: chunk)
        }
        XCTAssertTrue(channel.isActive)
        try send(.data, stream: 1, payload: [1])
        XCTAssertEqual(try headers(), [YamuxFrameHeader(type: .goAway, streamID: 0, length: 1)])
        XCTAssertFalse(channel.isActive)
        XCTAssertTrue(recorders[0].inactive)
    }

    func testProtocolViolationsEndTheSessionWithAProtocolErrorGoAway() throws {
        let violations: [(String, (YamuxSessionTests) throws -> Void)] = [
            ("even id from a client", { try $0.send(.windowUpdate, .syn, stream: 2, length: 0) }),
            ("duplicate SYN", {
                try $0.send(.windowUpdate, .syn, stream: 1, length: 0)
                try $0.send(.windowUpdate, .syn, stream: 1, length: 0)
            }),
            ("data on stream 0", { try $0.send(.data, stream: 0, payload: [1]) }),
            ("ping on a stream", { try $0.send(.ping, .syn, stream: 5, length: 1) }),
            ("garbage", { try $0.channel.writeInbound(ByteBuffer(bytes: Array("GET / HTTP/1.1\r\n".utf8))) }),
        ]
        for (name, violate) in violations {
            try makeSession(role: .server)
            outbound.clear()
            XCTAssertNoThrow(try? violate(self), name)
            let sent = try headers()
            XCTAssertEqual(sent.last, YamuxFrameHeader(type: .goAway, streamID: 0, length: 1), name)
            XCTAssertFalse(channel.isActive, name)
        }
    }

    func testFramesForForgottenStreamsAreIgnored() throws {
        try makeSession(role: .server)
        try send(.data, stream: 41, payload: [1, 2])
        try send(.windowUpdate, .fin, stream: 41, length: 0)
        XCTAssertEqual(try headers(), [])
        XCTAssertTrue(channel.isActive)
    }

    func testStreamsBeyondTheBacklogAreRefusedWithRst() throws {
        try makeSession(role: .server) { $0.maximumPeerStreams = 1 }
        try send(.windowUpdate, .syn, stream: 1, length: 0)
        try send(.windowUpdate, .syn, stream: 3, length: 0)
        XCTAssertEqual(try headers(), [
            YamuxFrameHeader(type: .windowUpdate, flags: .ack, streamID: 1, length: 0),
            YamuxFrameHeader(type: .windowUpdate, flags: .rst, streamID: 3, length: 0),
        ])
        XCTAssertEqual(session.streamCount, 1)
    }

    // MARK: Closing

    func testThePeersFinClosesTheStreamAfterItsDataAndThisSideAnswersFin() throws {
        try makeSession(role: .server)
        try send(.data, .syn, stream: 1, payload: [9])
        _ = try headers()
        try send(.data, .fin, stream: 1, payload: [8])
        XCTAssertEqual(Array(recorders[0].received.readableBytesView), [9, 8])
        XCTAssertTrue(recorders[0].inactive)
        XCTAssertEqual(try headers(), [YamuxFrameHeader(type: .windowUpdate, flags: .fin, streamID: 1, length: 0)])
        XCTAssertEqual(session.streamCount, 0)
    }

    func testTheDelegateHearsEveryChangeOfTheStreamCount() throws {
        final class CountRecorder: YamuxSessionDelegate {
            var counts: [Int] = []
            func yamuxSessionEnded(_ session: YamuxSession, error: Error?) {}
            func yamuxSession(_ session: YamuxSession, streamCountChanged count: Int) { counts.append(count) }
        }
        let recorder = CountRecorder()
        try makeSession(role: .server)
        session.delegate = recorder
        try send(.windowUpdate, .syn, stream: 1, length: 0)
        try send(.windowUpdate, .syn, stream: 3, length: 0)
        _ = session.openStream { _ in self.channel.eventLoop.makeSucceededFuture(()) }
        try send(.windowUpdate, .rst, stream: 1, length: 0)
        XCTAssertEqual(recorder.counts, [1, 2, 3, 2])
        XCTAssertEqual(session.streamCount, 2)
    }

    func testClosingAStreamSendsItsDataThenFinAndTheStreamIsForgottenAtThePeersFin() throws {
        try makeSession(role: .server)
        try send(.windowUpdate, .syn, stream: 1, length: 0)
        _ = try headers()
        let stream = try XCTUnwrap(recorders[0].channel)
        stream.write(ByteBuffer(string: "bye"), promise: nil)
        try stream.close().wait()
        let sent = try sentFrames()
        XCTAssertEqual(sent.map(\.header), [
            YamuxFrameHeader(type: .data, streamID: 1, length: 3),
            YamuxFrameHeader(type: .windowUpdate, flags: .fin, streamID: 1, length: 0),
        ])
        XCTAssertEqual(sent[0].payload, ByteBuffer(string: "bye"))
        XCTAssertEqual(session.streamCount, 1, "half-closed: the peer may still send")
        try send(.windowUpdate, .fin, stream: 1, length: 0)
        XCTAssertEqual(session.streamCount, 0)
    }

    func testAStreamClosedByThisSideIsResetIfThePeerNeverCloses() throws {
        try makeSession(role: .server) { $0.streamCloseTimeout = .seconds(5) }
        try send(.windowUpdate, .syn, stream: 1, length: 0)
        try recorders[0].channel!.close().wait()
        _ = try headers()
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        XCTAssertEqual(try headers(), [YamuxFrameHeader(type: .windowUpdate, flags: .rst, streamID: 1, length: 0)])
        XCTAssertEqual(session.streamCount, 0)
    }

    func testThePeersRstFailsPendingWritesAndClosesTheStream() throws {
        try makeSession(role: .server)
        try send(.windowUpdate, .syn, stream: 1, length: 0)
        let stream = try XCTUnwrap(recorders[0].channel)
        // More than the peer's window: the rest waits.
        let write = stream.writeAndFlush(ByteBuffer(repeating: 1, count: 300 * 1024))
        try send(.windowUpdate, .rst, stream: 1, length: 0)
        XCTAssertThrowsError(try write.wait())
        XCTAssertTrue(recorders[0].inactive)
        XCTAssertEqual(session.streamCount, 0)
    }

    // MARK: Writing

    func testWritesRespectThePeersWindowAndTheFrameSize() throws {
        try makeSession(role: .server)
        try send(.windowUpdate, .syn, stream: 1, length: 0)
        _ = try headers()
        let stream = try XCTUnwrap(recorders[0].channel)
        let write = stream.writeAndFlush(ByteBuffer(repeating: 2, count: 300 * 1024))
        XCTAssertEqual(try headers().map(\.length), [65536, 65536, 65536, 65536], "256 KiB window in 64 KiB frames")
        try send(.windowUpdate, stream: 1, length: 20 * 1024)
        XCTAssertEqual(try headers().map(\.length), [20 * 1024])
        try send(.windowUpdate, stream: 1, length: 1024 * 1024)
        XCTAssertEqual(try headers().map(\.length), [24 * 1024])
        XCTAssertNoThrow(try write.wait())
    }

    func testAStreamIsNotWritableWhileTooMuchWaitsForWindow() throws {
        try makeSession(role: .server) { $0.streamWriteBufferLimit = 300 * 1024 }
        try send(.windowUpdate, .syn, stream: 1, length: 0)
        let stream = try XCTUnwrap(recorders[0].channel)
        stream.writeAndFlush(ByteBuffer(repeating: 2, count: 256 * 1024 + 400 * 1024), promise: nil)
        XCTAssertFalse(stream.isWritable)
        try send(.windowUpdate, stream: 1, length: 300 * 1024)
        XCTAssertTrue(stream.isWritable, "100 KiB left waiting: below half the limit")
    }

    // MARK: Streams this side opens

    func testOpenedStreamsUseThisSidesParityAndAreResetIfNeverAccepted() throws {
        try makeSession(role: .client) { $0.streamOpenTimeout = .seconds(10) }
        let first = session.openStream { _ in self.channel.eventLoop.makeSucceededVoidFuture() }
        let second = session.openStream { _ in self.channel.eventLoop.makeSucceededVoidFuture() }
        XCTAssertNoThrow(try first.wait())
        XCTAssertNoThrow(try second.wait())
        XCTAssertEqual(try headers(), [
            YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: 1, length: 0),
            YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: 3, length: 0),
        ])
        try send(.windowUpdate, .ack, stream: 1, length: 0)
        channel.embeddedEventLoop.advanceTime(by: .seconds(11))
        XCTAssertEqual(try headers(), [YamuxFrameHeader(type: .windowUpdate, flags: .rst, streamID: 3, length: 0)])
        XCTAssertEqual(session.streamCount, 1)
        XCTAssertFalse(try second.wait().isActive)
    }

    func testAServerOpensEvenIdsAndDataFlowsBeforeTheAck() throws {
        try makeSession(role: .server)
        let stream = try session.openStream { _ in self.channel.eventLoop.makeSucceededVoidFuture() }.wait()
        try stream.writeAndFlush(ByteBuffer(string: "early")).wait()
        XCTAssertEqual(try headers(), [
            YamuxFrameHeader(type: .windowUpdate, flags: .syn, streamID: 2, length: 0),
            YamuxFrameHeader(type: .data, streamID: 2, length: 5),
        ])
    }

    func testGoAwayStopsNewStreams() throws {
        try makeSession(role: .client)
        try send(.goAway, stream: 0, length: 0)
        XCTAssertThrowsError(try session.openStream { _ in self.channel.eventLoop.makeSucceededVoidFuture() }.wait()) {
            XCTAssertEqual($0 as? YamuxSessionError, YamuxSessionError.goAway)
        }
        XCTAssertTrue(channel.isActive, "streams already open go on")
    }

    // MARK: Pings

    func testPingsAreAnsweredAndMeasured() throws {
        try makeSession(role: .server)
        try send(.ping, .syn, stream: 0, length: 0xBEEF)
        XCTAssertEqual(try headers(), [YamuxFrameHeader(type: .ping, flags: .ack, streamID: 0, length: 0xBEEF)])
        let rtt = session.ping()
        let ping = try XCTUnwrap(try headers().first)
        XCTAssertEqual(ping.flags, .syn)
        try send(.ping, .ack, stream: 0, length: ping.length)
        XCTAssertNoThrow(try rtt.wait())
    }

    func testAPeerThatPingsWithoutReadingTheAnswersIsStopped() throws {
        try makeSession(role: .server)
        // While the connection is writable, pings are answered however many come.
        for id in 0..<500 {
            try send(.ping, .syn, stream: 0, length: UInt32(id))
        }
        XCTAssertEqual(try headers().filter { $0.type == .ping }.count, 500)
        // The peer stops reading: a keepalive's worth of answers still queue, a flood ends the session.
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        for id in 0..<YamuxSession.maxPingAnswersWhileBlocked {
            try send(.ping, .syn, stream: 0, length: UInt32(id))
        }
        XCTAssertTrue(channel.isActive)
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        for id in 0..<YamuxSession.maxPingAnswersWhileBlocked {
            try send(.ping, .syn, stream: 0, length: UInt32(id))
        }
        XCTAssertTrue(channel.isActive, "the count starts again once the peer read")
        try send(.ping, .syn, stream: 0, length: 1)
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(try headers().last, YamuxFrameHeader(type: .goAway, streamID: 0, length: YamuxGoAwayCode.protocolError.rawValue))
    }

    func testAnUnansweredKeepaliveEndsTheSession() throws {
        try makeSession(role: .client) {
            $0.keepaliveInterval = .seconds(30)
            $0.keepaliveTimeout = .seconds(10)
        }
        try send(.windowUpdate, .syn, stream: 2, length: 0)
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        XCTAssertEqual(try headers().last?.type, .ping)
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(11))
        XCTAssertFalse(channel.isActive)
        XCTAssertTrue(recorders[0].inactive)
    }
}
