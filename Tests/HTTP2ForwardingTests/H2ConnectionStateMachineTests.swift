// The connection state machine frame by frame: each rule of RFC 9113 sections 5 and 6 it enforces, with the answer
// and the scope (one stream, or the connection) the RFC names, and the proxy's flow-control policy.

import NIOCore
import Testing

@testable import HTTP2Forwarding

/// A state machine and what it answered last.
private struct Harness {
    var machine: H2ConnectionStateMachine
    var actions: [H2ConnectionAction] = []

    init(role: H2FrameDecoder.Role = .server, configure: (inout H2ConnectionStateMachine.Configuration) -> Void = { _ in }) {
        var configuration = H2ConnectionStateMachine.Configuration(role: role)
        configure(&configuration)
        machine = H2ConnectionStateMachine(configuration: configuration)
        var ignored: [H2ConnectionAction] = []
        machine.start(into: &ignored)
        // The peer acknowledges this end's SETTINGS, as every peer does first.
        machine.receive(.frame(.settingsAck), into: &ignored)
    }

    @discardableResult
    mutating func receive(_ frame: H2Frame) -> [H2ConnectionAction] {
        actions = []
        machine.receive(.frame(frame), into: &actions)
        return actions
    }

    mutating func headers(_ stream: H2StreamID, endStream: Bool = false) -> [H2ConnectionAction] {
        receive(.headers(stream: stream, block: ByteBuffer(bytes: [0x82]), endStream: endStream))
    }

    mutating func data(_ stream: H2StreamID, _ length: Int, endStream: Bool = false) -> [H2ConnectionAction] {
        receive(.data(stream: stream, payload: ByteBuffer(repeating: 1, count: length), endStream: endStream,
                      flowControlledLength: length))
    }
}

private func sent(_ actions: [H2ConnectionAction]) -> [H2OutboundFrame] {
    actions.compactMap { if case .send(let frame) = $0 { return frame } else { return nil } }
}

private func closedConnection(_ actions: [H2ConnectionAction]) -> H2ErrorCode? {
    for action in actions { if case .close(let violation) = action { return violation.code } }
    return nil
}

private func resets(_ actions: [H2ConnectionAction]) -> [H2OutboundFrame] {
    sent(actions).filter { if case .rstStream = $0 { return true } else { return false } }
}

private func discardsABlock(_ actions: [H2ConnectionAction]) -> Bool {
    actions.contains { if case .decodeAndDiscard = $0 { return true } else { return false } }
}

@Suite struct H2ConnectionStreamTests {
    @Test func theFirstThingSentIsSettingsAndTheConnectionWindow() {
        var machine = H2ConnectionStateMachine(configuration: .init(role: .server))
        var actions: [H2ConnectionAction] = []
        machine.start(into: &actions)
        #expect(sent(actions) == [
            .settings([H2Setting(2, 0), H2Setting(3, 4096), H2Setting(4, 1 << 20), H2Setting(6, 64 << 10)]),
            .windowUpdate(stream: 0, increment: UInt32((8 << 20) - 65_535)),
        ])
    }

    @Test func aCallOpensCarriesDataAndClosesWhenBothSidesEnd() {
        var h = Harness()
        let opened = h.headers(1)
        guard case .headers(1, _, false, true) = opened.first else { Issue.record("\(opened)"); return }
        #expect(h.machine.lifecycle(of: 1) == .open)
        guard case .data(1, _, true, _) = h.data(1, 5, endStream: true).first else { Issue.record("\(h.actions)"); return }
        #expect(h.machine.lifecycle(of: 1) == .halfClosedRemote)
        var actions: [H2ConnectionAction] = []
        #expect(h.machine.sendHeaders(stream: 1, endStream: false, into: &actions))
        #expect(h.machine.sendData(stream: 1, length: 10, endStream: false, into: &actions))
        #expect(h.machine.sendHeaders(stream: 1, endStream: true, into: &actions))
        guard case .streamClosed(1) = actions.last else { Issue.record("\(actions)"); return }
        #expect(h.machine.openStreamCount == 0)
        #expect(!h.machine.sendHeaders(stream: 1, endStream: true, into: &actions), "nothing more on a closed stream")
    }

    @Test func aNewStreamMustHaveAHigherOddId() {
        var h = Harness()
        _ = h.headers(5)
        #expect(closedConnection(h.headers(3)) == .protocolError)
        var even = Harness()
        #expect(closedConnection(even.headers(2)) == .protocolError)
    }

    @Test func streamsBeyondMaxConcurrentStreamsAreRefusedAndTheConnectionGoesOn() {
        var h = Harness { $0.maxConcurrentStreams = 2 }
        _ = h.headers(1)
        _ = h.headers(3)
        let refused = h.headers(5)
        #expect(resets(refused) == [.rstStream(stream: 5, code: .refusedStream)])
        #expect(discardsABlock(refused), "its header block still goes through HPACK")
        #expect(closedConnection(refused) == nil)
        _ = h.data(1, 0, endStream: true)
        var actions: [H2ConnectionAction] = []
        _ = h.machine.sendHeaders(stream: 1, endStream: true, into: &actions)
        guard case .headers(7, _, _, true) = h.headers(7).first else { Issue.record("\(h.actions)"); return }
    }

    @Test func trailersWithoutEndStreamResetOnlyThatStream() {
        var h = Harness()
        _ = h.headers(1)
        _ = h.headers(3)
        let second = h.headers(1)
        #expect(resets(second) == [.rstStream(stream: 1, code: .protocolError)])
        #expect(closedConnection(second) == nil)
        #expect(h.machine.lifecycle(of: 3) == .open)
    }

    @Test func framesAfterThePeersEndStreamAreStreamClosed() {
        var h = Harness()
        _ = h.headers(1, endStream: true)
        #expect(resets(h.data(1, 3)) == [.rstStream(stream: 1, code: .streamClosed)])
        var again = Harness()
        _ = again.headers(1, endStream: true)
        let trailers = again.receive(.headers(stream: 1, block: ByteBuffer(bytes: [0x82]), endStream: true))
        #expect(resets(trailers) == [.rstStream(stream: 1, code: .streamClosed)])
        #expect(discardsABlock(trailers))
    }

    @Test func framesOnIdleStreamsAreConnectionErrors() {
        var data = Harness()
        #expect(closedConnection(data.data(9, 1)) == .protocolError)
        var update = Harness()
        #expect(closedConnection(update.receive(.windowUpdate(stream: 9, increment: 1))) == .protocolError)
        var reset = Harness()
        #expect(closedConnection(reset.receive(.rstStream(stream: 9, code: .cancel))) == .protocolError)
        var priority = Harness()
        #expect(priority.receive(.priority(stream: 9)).isEmpty, "PRIORITY is allowed on any stream and ignored")
    }

    @Test func framesOnAStreamClosedLongAgoResetOnlyThatStream() {
        var h = Harness()
        _ = h.headers(1, endStream: true)
        var actions: [H2ConnectionAction] = []
        _ = h.machine.sendHeaders(stream: 1, endStream: true, into: &actions)
        _ = h.headers(3)
        #expect(resets(h.data(1, 1)) == [.rstStream(stream: 1, code: .streamClosed)])
        #expect(closedConnection(h.actions) == nil)
        #expect(h.machine.lifecycle(of: 3) == .open)
    }

    @Test func headersAfterThePeersOwnResetAreStreamClosedOnThatStreamOnly() {
        // RFC 9113 5.1: after receiving RST_STREAM, any frame but PRIORITY is a stream error STREAM_CLOSED. It used
        // to be taken for a new stream below the last one and end the connection (PROTOCOL_ERROR).
        var h = Harness()
        _ = h.headers(1)
        _ = h.headers(3)
        _ = h.receive(.rstStream(stream: 1, code: .cancel))
        let late = h.headers(1, endStream: true)
        #expect(resets(late) == [.rstStream(stream: 1, code: .streamClosed)], "\(late)")
        #expect(closedConnection(late) == nil)
        #expect(discardsABlock(late), "its block still goes through HPACK")
        #expect(h.machine.lifecycle(of: 3) == .open)
    }

    @Test func aHeaderBlockOnAStreamBothSidesEndedIsAConnectionError() {
        // RFC 9113 5.1: frames after the peer's END_STREAM on a stream now closed are a connection error
        // STREAM_CLOSED. (Late trailers after this end reset a stream are another case: ignored, tested below.)
        var h = Harness()
        _ = h.headers(1, endStream: true)
        var actions: [H2ConnectionAction] = []
        _ = h.machine.sendHeaders(stream: 1, endStream: true, into: &actions)
        let late = h.headers(1, endStream: true)
        #expect(closedConnection(late) == .streamClosed, "\(late)")
        #expect(resets(late).isEmpty)
        #expect(discardsABlock(late))
    }

    @Test func whatThePeerSendsAfterThisEndResetAStreamIsIgnoredEvenManyResetsLater() {
        var h = Harness()
        _ = h.headers(1)
        var actions: [H2ConnectionAction] = []
        h.machine.resetStream(1, code: .noError, into: &actions)
        #expect(sent(actions) == [.rstStream(stream: 1, code: .noError)])
        // 500 more calls, each reset by this end.
        for index in 1...500 {
            let id = H2StreamID(1 + 2 * index)
            _ = h.headers(id)
            h.machine.resetStream(id, code: .cancel, into: &actions)
        }
        let late = h.data(1, 100) + h.receive(.headers(stream: 1, block: ByteBuffer(bytes: [0x82]), endStream: true))
            + h.receive(.windowUpdate(stream: 1, increment: 10)) + h.receive(.rstStream(stream: 1, code: .cancel))
        #expect(resets(late).isEmpty && closedConnection(late) == nil, "\(late)")
    }

    @Test func dataMustAddUpToADeclaredContentLength() {
        // RFC 9113 8.1.1: more or less DATA than the content-length is a malformed message, a stream error.
        var h = Harness()
        _ = h.headers(1)
        h.machine.expectContentLength(stream: 1, 10)
        #expect(resets(h.data(1, 4)).isEmpty)
        #expect(resets(h.data(1, 6, endStream: true)).isEmpty, "exactly the declared length")
        _ = h.headers(3)
        h.machine.expectContentLength(stream: 3, 10)
        #expect(resets(h.data(3, 11)) == [.rstStream(stream: 3, code: .protocolError)], "more than declared")
        _ = h.headers(5)
        h.machine.expectContentLength(stream: 5, 10)
        #expect(resets(h.data(5, 4, endStream: true)) == [.rstStream(stream: 5, code: .protocolError)], "less, then the end")
        _ = h.headers(7)
        h.machine.expectContentLength(stream: 7, 10)
        _ = h.data(7, 4)
        let early = h.receive(.headers(stream: 7, block: ByteBuffer(bytes: [0x82]), endStream: true))
        #expect(resets(early) == [.rstStream(stream: 7, code: .protocolError)], "trailers before the declared DATA")
        #expect(closedConnection(early) == nil)
        _ = h.headers(9)
        #expect(resets(h.data(9, 100, endStream: true)).isEmpty, "no content-length, no check")
    }

    @Test func aStreamErrorFromTheDecoderResetsTheStreamAndKeepsHPACKInStep() {
        var h = Harness()
        var actions: [H2ConnectionAction] = []
        let violation = H2ProtocolViolation(stream: 1, code: .protocolError, "the stream depends on itself")
        h.machine.receive(.streamError(violation, headerBlock: ByteBuffer(bytes: [0x82])), into: &actions)
        #expect(discardsABlock(actions))
        #expect(resets(actions) == [.rstStream(stream: 1, code: .protocolError)])
        let late = h.headers(1)
        #expect(discardsABlock(late) && resets(late).isEmpty && closedConnection(late) == nil, "after a reset: ignored")
    }
}

@Suite struct H2ConnectionFlowControlTests {
    @Test func theConnectionWindowIsGrantedBackAsDataArrivesAStreamsOnlyWhenReleased() {
        var h = Harness { $0.initialWindowSize = 65_536; $0.connectionWindowSize = 400_000 }
        _ = h.headers(1)
        #expect(sent(h.data(1, 60_000)).isEmpty, "below a quarter of the connection window")
        #expect(sent(h.data(1, 5_000)).isEmpty)
        _ = h.headers(3)
        let arrived = h.data(3, 60_000)
        #expect(sent(arrived) == [.windowUpdate(stream: 0, increment: 125_000)])
        var actions: [H2ConnectionAction] = []
        h.machine.release(stream: 1, bytes: 10_000, into: &actions)
        #expect(actions.isEmpty, "below a quarter of the stream window")
        h.machine.release(stream: 1, bytes: 10_000, into: &actions)
        #expect(sent(actions) == [.windowUpdate(stream: 1, increment: 20_000)])
    }

    @Test func moreDataThanAStreamsWindowResetsThatStreamMoreThanTheConnectionsEndsIt() {
        var h = Harness { $0.initialWindowSize = 1000 }
        _ = h.headers(1)
        _ = h.headers(3)
        #expect(resets(h.data(1, 1001)) == [.rstStream(stream: 1, code: .flowControlError)])
        #expect(h.machine.lifecycle(of: 3) == .open)
        var small = Harness { $0.initialWindowSize = 1 << 20; $0.connectionWindowSize = 65_535 }
        _ = small.headers(1)
        #expect(closedConnection(small.data(1, 65_536)) == .flowControlError)
    }

    @Test func windowUpdatesPastTheMaximumAreFlowControlErrorsOfTheirScope() {
        var h = Harness()
        _ = h.headers(1)
        _ = h.headers(3)
        #expect(resets(h.receive(.windowUpdate(stream: 1, increment: 0x7FFF_FFFF))) == [.rstStream(stream: 1, code: .flowControlError)])
        #expect(h.machine.lifecycle(of: 3) == .open)
        #expect(closedConnection(h.receive(.windowUpdate(stream: 0, increment: 0x7FFF_FFFF))) == .flowControlError)
    }

    @Test func theSendWindowsBoundWhatThisEndSends() {
        var h = Harness(role: .client)
        let id = h.machine.openStream(endStream: false)!
        #expect(h.machine.sendableBytes(stream: id) == 65_535)
        var actions: [H2ConnectionAction] = []
        #expect(h.machine.sendData(stream: id, length: 65_535, endStream: false, into: &actions))
        #expect(!h.machine.sendData(stream: id, length: 1, endStream: false, into: &actions))
        guard case .windowOpened(id) = h.receive(.windowUpdate(stream: id, increment: 100)).first else { Issue.record("\(h.actions)"); return }
        #expect(h.machine.sendableBytes(stream: id) == 0, "the connection window is still empty")
        _ = h.receive(.windowUpdate(stream: 0, increment: 50))
        #expect(h.machine.sendableBytes(stream: id) == 50)
    }

    @Test func aNewInitialWindowMovesOpenStreamsWindowsEvenBelowZero() {
        var h = Harness(role: .client)
        let id = h.machine.openStream(endStream: false)!
        var actions: [H2ConnectionAction] = []
        _ = h.machine.sendData(stream: id, length: 60_000, endStream: false, into: &actions)
        let changed = h.receive(.settings([H2Setting(H2Setting.initialWindowSize, 16_384)]))
        #expect(sent(changed) == [.settingsAck])
        #expect(h.machine.sendableBytes(stream: id) == 0)
        _ = h.receive(.windowUpdate(stream: id, increment: 43_616 + 10))
        _ = h.receive(.windowUpdate(stream: 0, increment: 100))
        #expect(h.machine.sendableBytes(stream: id) == 10)
        _ = h.receive(.windowUpdate(stream: id, increment: 100_000))
        let overflow = h.receive(.settings([H2Setting(H2Setting.initialWindowSize, 0x7FFF_FFFF)]))
        #expect(closedConnection(overflow) == .flowControlError)
    }
}

@Suite struct H2ConnectionControlTests {
    @Test func pingsAreAnsweredAndAFloodEndsTheConnection() {
        var h = Harness { $0.maxControlFramesPerWindow = 10 }
        #expect(sent(h.receive(.ping(opaque: 7, ack: false))) == [.ping(opaque: 7, ack: true)])
        for _ in 0..<9 { _ = h.receive(.ping(opaque: 1, ack: false)) }
        h.machine.floodWindowElapsed()
        for _ in 0..<10 { _ = h.receive(.ping(opaque: 1, ack: false)) }
        #expect(closedConnection(h.receive(.ping(opaque: 1, ack: false))) == .enhanceYourCalm)
    }

    @Test func floodsOfResetsAndEmptyDataFramesEndTheConnection() {
        var resetting = Harness { $0.maxResetsPerWindow = 5 }
        for index in 0..<5 {
            _ = resetting.headers(H2StreamID(1 + 2 * index))
            _ = resetting.receive(.rstStream(stream: H2StreamID(1 + 2 * index), code: .cancel))
        }
        _ = resetting.headers(11)
        #expect(closedConnection(resetting.receive(.rstStream(stream: 11, code: .cancel))) == .enhanceYourCalm)
        var empty = Harness { $0.maxEmptyDataFramesPerWindow = 3 }
        _ = empty.headers(1)
        for _ in 0..<3 { _ = empty.data(1, 0) }
        #expect(closedConnection(empty.data(1, 0)) == .enhanceYourCalm)
    }

    @Test func anAcknowledgementOfNoSettingsIsAProtocolError() {
        var h = Harness()
        #expect(closedConnection(h.receive(.settingsAck)) == .protocolError)
    }

    @Test func afterThisEndsGoAwayNewStreamsAreIgnoredAndOpenOnesFinish() {
        var h = Harness()
        _ = h.headers(1)
        var actions: [H2ConnectionAction] = []
        h.machine.goAway(code: .noError, debug: "draining", into: &actions)
        #expect(sent(actions) == [.goAway(lastStream: 1, code: .noError, debug: "draining")])
        let late = h.headers(3)
        #expect(discardsABlock(late) && resets(late).isEmpty && closedConnection(late) == nil)
        #expect(h.data(3, 10).isEmpty, "DATA of an ignored stream only counts toward the connection window")
        guard case .data(1, _, true, _) = h.data(1, 1, endStream: true).first else { Issue.record("\(h.actions)"); return }
        actions = []
        h.machine.goAway(code: .noError, debug: "again", into: &actions)
        #expect(actions.isEmpty, "one GOAWAY per connection")
    }

    @Test func thePeersGoAwayRefusesTheStreamsItNeverSaw() {
        var h = Harness(role: .client)
        let first = h.machine.openStream(endStream: false)!
        let second = h.machine.openStream(endStream: false)!
        let answer = h.receive(.goAway(lastStream: first, code: .noError, debugData: ByteBuffer()))
        let refused = answer.compactMap { action -> H2StreamID? in
            if case .streamReset(let id, .refusedStream, true) = action { return id }
            return nil
        }
        #expect(refused == [second])
        #expect(h.machine.lifecycle(of: first) == .open)
        #expect(!h.machine.canOpenStream)
        #expect(h.machine.openStream(endStream: false) == nil)
    }

    @Test func aClientOpensNoMoreStreamsThanThePeerAllows() {
        var h = Harness(role: .client)
        _ = h.receive(.settings([H2Setting(H2Setting.maxConcurrentStreams, 2)]))
        #expect(h.machine.openStream(endStream: false) == 1)
        #expect(h.machine.openStream(endStream: false) == 3)
        #expect(h.machine.openStream(endStream: false) == nil)
        _ = h.receive(.rstStream(stream: 1, code: .cancel))
        #expect(h.machine.openStream(endStream: false) == 5)
    }

    @Test func aServerMayNotOpenStreamsToAClient() {
        var h = Harness(role: .client)
        #expect(closedConnection(h.headers(2)) == .protocolError)
    }

    @Test func aResponseStillOnItsWayWhenAClientCancelledItsCallIsIgnored() {
        // A client cancels a call (RST_STREAM) while the server's answer to it is in flight: the answer's HEADERS,
        // DATA and trailers arrive for a stream the client no longer has, and must not end the connection.
        var h = Harness(role: .client)
        let cancelled = h.machine.openStream(endStream: true)!
        let other = h.machine.openStream(endStream: true)!
        var actions: [H2ConnectionAction] = []
        h.machine.resetStream(cancelled, code: .cancel, into: &actions)
        let late = h.headers(cancelled) + h.data(cancelled, 10)
            + h.receive(.headers(stream: cancelled, block: ByteBuffer(bytes: [0x82]), endStream: true))
        #expect(resets(late).isEmpty && closedConnection(late) == nil, "\(late)")
        #expect(discardsABlock(late), "the late blocks are still decoded, to keep HPACK in step")
        #expect(h.machine.lifecycle(of: other) == .halfClosedLocal)
        // HEADERS on a stream of this end's that it never opened is still a connection error.
        #expect(closedConnection(h.headers(other + 2)) == .protocolError)
    }
}
