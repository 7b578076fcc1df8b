// The frame codec byte by byte: every frame type written by the encoder and read back, and each rule of RFC 9113
// that a frame's own bytes can break answered with the error code, and the scope (stream or connection), the RFC
// names. Frames are written by hand where the encoder would never produce them.

import TestSupport
import NIOCore
import Testing

@testable import HTTP2Forwarding

/// A frame as raw bytes, any field allowed.
func rawFrame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, payload: [UInt8] = []) -> [UInt8] {
    let length = payload.count
    return [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags,
            UInt8(stream >> 24 & 0xFF), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)]
        + payload
}

func u32(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
}

let emptySettings = rawFrame(type: 4)

/// A client-role decoder that has already read the server's SETTINGS.
func clientDecoder() -> H2FrameDecoder {
    var decoder = H2FrameDecoder(role: .client)
    decoder.append(ByteBuffer(bytes: emptySettings))
    _ = try? decoder.nextFrame()
    return decoder
}

/// Everything `bytes` decode to, or the connection error.
func decodeAll(_ bytes: [UInt8], decoder: H2FrameDecoder = clientDecoder()) -> (outputs: [H2FrameDecoder.Output], error: H2ProtocolViolation?) {
    var decoder = decoder
    decoder.append(ByteBuffer(bytes: bytes))
    var outputs: [H2FrameDecoder.Output] = []
    do {
        while let output = try decoder.nextFrame() {
            outputs.append(output)
        }
    } catch {
        return (outputs, error)
    }
    return (outputs, nil)
}

func connectionError(_ bytes: [UInt8], decoder: H2FrameDecoder = clientDecoder()) -> H2ProtocolViolation? {
    let error = decodeAll(bytes, decoder: decoder).error
    #expect(error?.stream == nil)
    return error
}

func streamError(_ bytes: [UInt8]) -> H2ProtocolViolation? {
    let (outputs, error) = decodeAll(bytes)
    #expect(error == nil)
    guard outputs.count == 1, case .streamError(let violation, _) = outputs[0] else { return nil }
    return violation
}

func onlyFrame(_ bytes: [UInt8]) -> H2Frame? {
    let (outputs, error) = decodeAll(bytes)
    #expect(error == nil, "\(String(describing: error))")
    guard outputs.count == 1, case .frame(let frame) = outputs[0] else { return nil }
    return frame
}

@Suite struct H2FrameRoundTripTests {
    @Test func everyFrameTheEncoderWritesDecodesToWhatWasWritten() throws {
        var buffer = ByteBuffer()
        H2FrameEncoder.writeSettings([H2Setting(H2Setting.maxConcurrentStreams, 4096), H2Setting(0x99, 7)], into: &buffer)
        H2FrameEncoder.writeSettingsAck(into: &buffer)
        H2FrameEncoder.writePing(opaque: 0x0102_0304_0506_0708, ack: true, into: &buffer)
        H2FrameEncoder.writeWindowUpdate(stream: 3, increment: 1 << 20, into: &buffer)
        H2FrameEncoder.writeRSTStream(stream: 5, code: .cancel, into: &buffer)
        H2FrameEncoder.writeGoAway(lastStream: 7, code: .enhanceYourCalm, debugData: "calm", into: &buffer)
        H2FrameEncoder.writeDataHeader(length: 3, stream: 9, endStream: true, into: &buffer)
        buffer.writeBytes([1, 2, 3])
        H2FrameEncoder.writeHeaders(block: ByteBuffer(bytes: [0x82, 0x86]), stream: 11, endStream: false, maxFrameSize: 16_384, into: &buffer)

        var decoder = H2FrameDecoder(role: .client)
        decoder.append(buffer)
        var frames: [H2Frame] = []
        while let output = try decoder.nextFrame() {
            guard case .frame(let frame) = output else { Issue.record("unexpected \(output)"); return }
            frames.append(frame)
        }
        #expect(frames.count == 8)
        guard frames.count == 8 else { return }
        guard case .settings(let settings) = frames[0] else { Issue.record("\(frames[0])"); return }
        #expect(settings == [H2Setting(3, 4096), H2Setting(0x99, 7)])
        guard case .settingsAck = frames[1] else { Issue.record("\(frames[1])"); return }
        guard case .ping(0x0102_0304_0506_0708, true) = frames[2] else { Issue.record("\(frames[2])"); return }
        guard case .windowUpdate(3, 1 << 20) = frames[3] else { Issue.record("\(frames[3])"); return }
        guard case .rstStream(5, .cancel) = frames[4] else { Issue.record("\(frames[4])"); return }
        guard case .goAway(7, .enhanceYourCalm, let debug) = frames[5] else { Issue.record("\(frames[5])"); return }
        #expect(String(buffer: debug) == "calm")
        guard case .data(9, let payload, true, 3) = frames[6] else { Issue.record("\(frames[6])"); return }
        #expect(Array(payload.readableBytesView) == [1, 2, 3])
        guard case .headers(11, let block, false) = frames[7] else { Issue.record("\(frames[7])"); return }
        #expect(Array(block.readableBytesView) == [0x82, 0x86])
        #expect(decoder.bufferedBytes == 0)
    }

    @Test func aHeaderBlockLargerThanAFrameIsSplitIntoContinuationsAndJoinedAgain() throws {
        let block = ByteBuffer(bytes: (0..<40_000).map { UInt8($0 % 251) })
        var buffer = ByteBuffer()
        H2FrameEncoder.writeHeaders(block: block, stream: 1, endStream: true, maxFrameSize: 16_384, into: &buffer)
        // HEADERS 16 384, CONTINUATION 16 384, CONTINUATION 7 232 (END_HEADERS on the last only).
        #expect(buffer.readableBytes == 40_000 + 3 * 9)
        #expect(buffer.getInteger(at: 4, as: UInt8.self) == 0x1)
        #expect(buffer.getInteger(at: 9 + 16_384 + 3, as: UInt8.self) == 0x9)
        var decoder = clientDecoder()
        decoder.append(buffer)
        guard case .frame(.headers(1, let joined, true)) = try decoder.nextFrame() else {
            Issue.record("no joined header block")
            return
        }
        #expect(joined == block)
    }

    @Test func paddingIsRemovedAndCountsTowardFlowControl() {
        // DATA, PADDED: pad length 4, "abc", 4 bytes of padding.
        let frame = onlyFrame(rawFrame(type: 0, flags: 0x8, stream: 1, payload: [4] + Array("abc".utf8) + [0, 0, 0, 0]))
        guard case .data(1, let payload, false, 8) = frame else { Issue.record("\(String(describing: frame))"); return }
        #expect(String(buffer: payload) == "abc")
        // HEADERS, PADDED and PRIORITY: pad length 2, dependency 0 weight 16, block [0x82], padding.
        let headers = onlyFrame(rawFrame(type: 1, flags: 0x4 | 0x8 | 0x20, stream: 3, payload: [2] + u32(0) + [16, 0x82, 0, 0]))
        guard case .headers(3, let block, false) = headers else { Issue.record("\(String(describing: headers))"); return }
        #expect(Array(block.readableBytesView) == [0x82])
    }

    @Test func framesOfUnknownTypesAreSkipped() {
        let (outputs, error) = decodeAll(rawFrame(type: 0xEE, flags: 0xFF, stream: 3, payload: [1, 2]) + rawFrame(type: 6, payload: Array(repeating: 0, count: 8)))
        #expect(error == nil)
        #expect(outputs.count == 1)
    }

    @Test func theReservedBitOfAStreamIdIsIgnored() {
        let frame = onlyFrame(rawFrame(type: 3, stream: 0x8000_0005, payload: u32(8)))
        guard case .rstStream(5, .cancel) = frame else { Issue.record("\(String(describing: frame))"); return }
    }

    @Test func anyWayOfSplittingTheBytesGivesTheSameFrames() throws {
        var bytes = H2FrameDecoder.clientPreface + emptySettings
        bytes += rawFrame(type: 1, flags: 0x1, stream: 1, payload: [0x82, 0x84])
        bytes += rawFrame(type: 9, flags: 0x4, stream: 1, payload: [0x86])
        bytes += rawFrame(type: 0, flags: 0x8, stream: 1, payload: [1, 9, 9, 0])
        bytes += rawFrame(type: 6, payload: Array(repeating: 5, count: 8))
        func frames(cuts: [Int]) throws -> [String] {
            var decoder = H2FrameDecoder(role: .server)
            var result: [String] = []
            var start = 0
            for end in cuts.sorted() + [bytes.count] where end >= start {
                decoder.append(ByteBuffer(bytes: bytes[start..<end]))
                start = end
                while let output = try decoder.nextFrame() {
                    result.append("\(output)")
                }
            }
            return result
        }
        let expected = try frames(cuts: [])
        #expect(expected.count == 4)
        var random = SeededGenerator(seed: 0x4832_4652)
        for _ in 0..<400 {
            let cuts = (0..<Int(random.next() % 8)).map { _ in Int(random.next() % UInt64(bytes.count + 1)) }
            #expect(try frames(cuts: cuts) == expected, "cuts \(cuts)")
        }
    }

    @Test func framesCutByReadsCopyOnlyTheCutFrameAndPinNoMoreThanTheirRead() throws {
        // 300 DATA frames of 1 000 bytes arriving in reads of 4 096 bytes: nearly every read ends inside a frame. A
        // payload is a slice of its read, or of a buffer holding just the frame that straddled two reads; never of a
        // buffer that grows with the stream (which a slice would pin, and every frame after it with it).
        var bytes: [UInt8] = emptySettings
        for index in 0..<300 { bytes += rawFrame(type: 0, stream: 1, payload: Array(repeating: UInt8(index & 0xFF), count: 1000)) }
        var decoder = H2FrameDecoder(role: .client)
        var payloads: [ByteBuffer] = []
        var start = 0
        while start < bytes.count {
            let end = min(start + 4096, bytes.count)
            var read = ByteBufferAllocator().buffer(capacity: 4096)
            read.writeBytes(bytes[start..<end])
            decoder.append(read)
            start = end
            while let output = try decoder.nextFrame() {
                if case .frame(.data(_, let payload, _, _)) = output { payloads.append(payload) }
            }
            #expect(decoder.bufferedBytes < 1009)
        }
        #expect(payloads.count == 300)
        for (index, payload) in payloads.enumerated() {
            #expect(payload.readableBytesView.allSatisfy { $0 == UInt8(index & 0xFF) })
            #expect(payload.storageCapacity <= 4096, "payload \(index) shares a buffer of \(payload.storageCapacity) bytes")
        }
    }
}

@Suite struct H2FrameRuleTests {
    @Test func aServerRefusesAConnectionThatDoesNotStartWithThePreface() {
        var decoder = H2FrameDecoder(role: .server)
        decoder.append(ByteBuffer(string: "GET / HTTP/1.1\r\n"))
        #expect(throws: H2ProtocolViolation.self) { try decoder.nextFrame() }
        // Half a preface is not an error yet.
        var waiting = H2FrameDecoder(role: .server)
        waiting.append(ByteBuffer(bytes: H2FrameDecoder.clientPreface.prefix(10)))
        #expect((try? waiting.nextFrame()) == nil)
    }

    @Test func thePeersFirstFrameMustBeSettings() {
        #expect(connectionError(rawFrame(type: 6, payload: Array(repeating: 0, count: 8)), decoder: H2FrameDecoder(role: .client))?.code == .protocolError)
        #expect(connectionError(rawFrame(type: 4, flags: 1), decoder: H2FrameDecoder(role: .client))?.code == .protocolError)
    }

    @Test func aFrameLargerThanTheMaxFrameSizeIsAFrameSizeError() {
        let header = [UInt8(0), 0x40, 0x01, 0, 0, 0, 0, 0, 1]  // 16 385 bytes announced
        #expect(connectionError(header)?.code == .frameSizeError)
    }

    @Test func framesThatNeedAStreamAreRefusedOnStreamZero() {
        for type: UInt8 in [0, 1, 2, 3] {
            let payload: [UInt8] = type == 2 ? [0, 0, 0, 1, 16] : type == 3 ? u32(0) : [0x82]
            #expect(connectionError(rawFrame(type: type, flags: 0x4, payload: payload))?.code == .protocolError, "type \(type)")
        }
    }

    @Test func connectionFramesAreRefusedOnAStream() {
        #expect(connectionError(rawFrame(type: 4, stream: 1))?.code == .protocolError)
        #expect(connectionError(rawFrame(type: 6, stream: 1, payload: Array(repeating: 0, count: 8)))?.code == .protocolError)
        #expect(connectionError(rawFrame(type: 7, stream: 1, payload: Array(repeating: 0, count: 8)))?.code == .protocolError)
    }

    @Test func fixedSizeFramesOfAnotherSizeAreFrameSizeErrors() {
        #expect(connectionError(rawFrame(type: 3, stream: 1, payload: [0, 0, 0]))?.code == .frameSizeError)
        #expect(connectionError(rawFrame(type: 6, payload: Array(repeating: 0, count: 7)))?.code == .frameSizeError)
        #expect(connectionError(rawFrame(type: 7, payload: Array(repeating: 0, count: 7)))?.code == .frameSizeError)
        #expect(connectionError(rawFrame(type: 8, stream: 1, payload: [0, 0, 1]))?.code == .frameSizeError)
        #expect(connectionError(rawFrame(type: 4, flags: 1, payload: [0, 0, 0, 0, 0, 0]))?.code == .frameSizeError)
        #expect(connectionError(rawFrame(type: 4, payload: [0, 3, 0, 0, 0]))?.code == .frameSizeError)
        // PRIORITY of another size is a stream error (RFC 9113 6.3).
        let priority = streamError(rawFrame(type: 2, stream: 3, payload: [0, 0, 0, 1]))
        #expect(priority == H2ProtocolViolation(stream: 3, code: .frameSizeError, "a PRIORITY frame of 4 bytes"))
    }

    @Test func paddingAsLongAsThePayloadIsAProtocolError() {
        #expect(connectionError(rawFrame(type: 0, flags: 0x8, stream: 1, payload: [3, 1, 2]))?.code == .protocolError)
        #expect(connectionError(rawFrame(type: 0, flags: 0x8, stream: 1, payload: []))?.code == .protocolError)
        #expect(connectionError(rawFrame(type: 1, flags: 0x4 | 0x8, stream: 1, payload: [5, 0x82, 0, 0]))?.code == .protocolError)
        // With PRIORITY, the five priority bytes are not room for padding.
        #expect(connectionError(rawFrame(type: 1, flags: 0x4 | 0x8 | 0x20, stream: 1, payload: [2] + u32(0) + [16, 0x82]))?.code == .protocolError)
    }

    @Test func aStreamThatDependsOnItselfIsAStreamErrorAndItsBlockStillComesAlong() {
        #expect(streamError(rawFrame(type: 2, stream: 3, payload: u32(3) + [16]))?.code == .protocolError)
        let (outputs, error) = decodeAll(rawFrame(type: 1, flags: 0x4 | 0x20, stream: 5, payload: u32(5) + [16, 0x82]))
        #expect(error == nil)
        guard case .streamError(let violation, let block) = outputs.first else { Issue.record("\(outputs)"); return }
        #expect(violation.stream == 5 && violation.code == .protocolError)
        #expect(block.map { Array($0.readableBytesView) } == [0x82], "HPACK must still see the block")
    }

    @Test func aWindowUpdateOfZeroIsAProtocolErrorOfItsScope() {
        #expect(streamError(rawFrame(type: 8, stream: 1, payload: u32(0)))?.code == .protocolError)
        #expect(connectionError(rawFrame(type: 8, payload: u32(0)))?.code == .protocolError)
    }

    @Test func settingsValuesOutsideTheirRangesAreRefused() {
        func settings(_ id: UInt16, _ value: UInt32) -> [UInt8] {
            rawFrame(type: 4, payload: [UInt8(id >> 8), UInt8(id & 0xFF)] + u32(value))
        }
        #expect(connectionError(settings(2, 2))?.code == .protocolError)
        #expect(connectionError(settings(2, 1))?.code == .protocolError, "a server may not enable push")
        #expect(connectionError(settings(4, 0x8000_0000))?.code == .flowControlError)
        #expect(connectionError(settings(5, 16_383))?.code == .protocolError)
        #expect(connectionError(settings(5, 16_777_216))?.code == .protocolError)
        #expect(onlyFrame(settings(5, 16_777_215)) != nil)
        #expect(onlyFrame(settings(4, 0x7FFF_FFFF)) != nil)
        #expect(onlyFrame(settings(0x4242, 0xFFFF_FFFF)) != nil, "unknown settings pass for the connection to ignore")
        // A client may say it accepts pushes; the server ignores that.
        var server = H2FrameDecoder(role: .server)
        server.append(ByteBuffer(bytes: H2FrameDecoder.clientPreface + settings(2, 1)))
        #expect((try? server.nextFrame()) != nil)
    }

    @Test func pushPromiseIsRefusedSinceThisEndDisablesPush() {
        #expect(connectionError(rawFrame(type: 5, flags: 0x4, stream: 1, payload: u32(2) + [0x82]))?.code == .protocolError)
    }

    @Test func aHeaderBlockMustNotBeInterrupted() {
        let start = rawFrame(type: 1, stream: 1, payload: [0x82])
        #expect(connectionError(start + rawFrame(type: 0, stream: 1, payload: [1]))?.code == .protocolError)
        #expect(connectionError(start + rawFrame(type: 9, flags: 0x4, stream: 3, payload: [0x84]))?.code == .protocolError)
        #expect(connectionError(start + rawFrame(type: 0xEE, stream: 1))?.code == .protocolError, "not even by an unknown frame")
        #expect(connectionError(rawFrame(type: 9, flags: 0x4, stream: 1, payload: [0x84]))?.code == .protocolError, "nothing to continue")
    }

    @Test func aFloodOfContinuationFramesOrAnOversizedBlockIsRefused() {
        var flood = rawFrame(type: 1, stream: 1, payload: [0x82])
        for _ in 0..<65 {
            flood += rawFrame(type: 9, stream: 1)
        }
        #expect(connectionError(flood)?.code == .enhanceYourCalm)
        var large = rawFrame(type: 1, stream: 1, payload: Array(repeating: 0, count: 16_384))
        for _ in 0..<4 {
            large += rawFrame(type: 9, stream: 1, payload: Array(repeating: 0, count: 16_384))
        }
        #expect(connectionError(large)?.code == .enhanceYourCalm)
    }
}
