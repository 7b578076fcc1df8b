// The state of one HTTP/2 connection (RFC 9113 sections 5 and 6) as a value type: decoded frames and local intents
// in, actions out. No I/O and no clock: the handler that owns it writes what `.send` says, hands the rest to the
// calls, and calls `floodWindowElapsed()` on a timer.
//
// What it enforces: stream ids and states (idle, open, half-closed, closed) for each frame type; SETTINGS_MAX_
// CONCURRENT_STREAMS both ways; flow control on the connection and every stream, both ways (FLOW_CONTROL_ERROR past
// the window or past 2^31-1); SETTINGS with their acknowledgement and the effect of a new initial window on open
// streams; PING answers; GOAWAY either way; frames that arrive after this end reset a stream are ignored (RFC 9113
// 5.1, 6.4: the peer may have sent them already), also long after, for the last `recentlyResetMemory` streams; and
// flood limits on what a peer can make this end do for free (PING, SETTINGS, RST_STREAM, empty DATA frames).
//
// Flow-control policy, the proxy's: the connection window is granted back as DATA arrives (a stalled stream must
// not hold the window every other stream shares), a stream's window only when its owner says the bytes were
// forwarded (`release(stream:bytes:)`), in batches of a quarter window.
//
// Errors that concern one stream reset that stream and nothing else; only what breaks the connection as a whole
// (its framing, HPACK, the connection window) ends it.

import NIOCore

/// What the state machine asks of its handler.
public enum H2ConnectionAction: Sendable {
    /// Write this frame to the peer.
    case send(H2OutboundFrame)
    /// A stream's header block, still HPACK-encoded: a new stream's request (`isNewStream`) or, on a stream the
    /// peer already opened, its trailers.
    case headers(stream: H2StreamID, block: ByteBuffer, endStream: Bool, isNewStream: Bool)
    /// A header block for a stream that will not be served (refused, reset, after GOAWAY): it must still be decoded,
    /// since it may change the HPACK table, and then dropped.
    case decodeAndDiscard(ByteBuffer)
    /// DATA, padding removed; `flowControlledLength` is what it took from the windows (padding included), what the
    /// owner hands back with `release(stream:bytes:)` once it forwarded the payload.
    case data(stream: H2StreamID, payload: ByteBuffer, endStream: Bool, flowControlledLength: Int)
    /// The stream ended without both sides finishing it: the peer reset it (`byPeer`), or this end did for a stream
    /// error (the RST_STREAM is in a `.send` before this), or the peer's GOAWAY means it was never processed.
    case streamReset(stream: H2StreamID, code: H2ErrorCode, byPeer: Bool)
    /// Both sides finished the stream; it is gone.
    case streamClosed(stream: H2StreamID)
    /// The stream's send window grew; nil: the connection's did (every stream may try again).
    case windowOpened(stream: H2StreamID?)
    case pingAnswered(opaque: UInt64)
    /// The peer's SETTINGS took effect.
    case peerSettingsChanged
    case goAwayReceived(lastStream: H2StreamID, code: H2ErrorCode, debugData: ByteBuffer)
    /// The connection is over: close it after writing the `.send` actions before this one.
    case close(H2ProtocolViolation)
}

/// A frame the state machine wants written.
public enum H2OutboundFrame: Sendable, Equatable {
    case settings([H2Setting])
    case settingsAck
    case ping(opaque: UInt64, ack: Bool)
    case rstStream(stream: H2StreamID, code: H2ErrorCode)
    case windowUpdate(stream: H2StreamID, increment: UInt32)
    case goAway(lastStream: H2StreamID, code: H2ErrorCode, debug: String)
}

public struct H2ConnectionStateMachine: Sendable {
    public struct Configuration: Sendable {
        public var role: H2FrameDecoder.Role
        /// Streams the peer may have open at once (announced as SETTINGS_MAX_CONCURRENT_STREAMS).
        public var maxConcurrentStreams: Int = 4096
        /// The peer's initial window on each stream (SETTINGS_INITIAL_WINDOW_SIZE).
        public var initialWindowSize: Int = 1 << 20
        /// The peer's window on the whole connection, opened by a WINDOW_UPDATE at the start.
        public var connectionWindowSize: Int = 8 << 20
        public var maxHeaderListSize: Int = 64 << 10
        /// Flood limits: what the peer may make this end do per `floodWindowElapsed()` period.
        public var maxControlFramesPerWindow = 50_000
        public var maxResetsPerWindow = 50_000
        public var maxEmptyDataFramesPerWindow = 10_000
        /// How many streams this end reset are remembered, so that frames the peer had in flight are ignored.
        public var recentlyResetMemory = 1024

        public init(role: H2FrameDecoder.Role) {
            self.role = role
        }
    }

    public let configuration: Configuration
    private var streams = H2StreamMap<H2StreamState>()
    /// The highest stream id the peer opened (or that this end ignored after GOAWAY).
    private(set) var lastPeerStreamID: H2StreamID = 0
    /// The next stream id this end opens (a client's: 1, 3, 5...).
    private var nextLocalStreamID: H2StreamID = 1
    private var peerStreamCount = 0
    private var localStreamCount = 0

    /// What this end may still send on the connection.
    private(set) var connectionSendWindow = 65_535
    /// What the peer may still send on the connection.
    private var connectionReceiveWindow = 65_535
    private var connectionCreditPending = 0

    /// The peer's settings, as applied.
    public private(set) var peerMaxConcurrentStreams = Int.max
    public private(set) var peerInitialWindowSize = 65_535
    public private(set) var peerMaxFrameSize = 16_384
    /// The HPACK dynamic table size the peer's decoder allows (SETTINGS_HEADER_TABLE_SIZE): this end's encoder's.
    public private(set) var peerHeaderTableSize = 4_096
    /// This end's settings the peer has acknowledged (the stream windows of new streams follow them).
    private var localInitialWindowSize = 65_535
    private var unacknowledgedSettings: [[H2Setting]] = []

    /// GOAWAY: the last stream the peer said it processed, and the last this end will.
    public private(set) var goAwayReceived: H2StreamID?
    public private(set) var goAwaySent: H2StreamID?

    private var recentlyReset = H2RecentStreams()
    /// Streams both sides finished lately with END_STREAM: a header block on one is a connection error (RFC 9113 5.1).
    private var recentlyClosed = H2RecentStreams()
    /// Streams the peer reset lately: frames it still sends on one reset that stream only (RFC 9113 5.1).
    private var recentlyResetByPeer = H2RecentStreams()

    private var controlFrames = 0
    private var resets = 0
    private var emptyDataFrames = 0
    private var closed = false

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    // MARK: Starting

    /// What this end sends first, after the client preface on a client: its SETTINGS, and the WINDOW_UPDATE that
    /// opens the connection window beyond the 65 535 bytes the protocol starts with.
    public mutating func start(into actions: inout [H2ConnectionAction]) {
        let settings = [
            H2Setting(H2Setting.enablePush, 0),
            H2Setting(H2Setting.maxConcurrentStreams, UInt32(configuration.maxConcurrentStreams)),
            H2Setting(H2Setting.initialWindowSize, UInt32(configuration.initialWindowSize)),
            H2Setting(H2Setting.maxHeaderListSize, UInt32(configuration.maxHeaderListSize)),
        ]
        unacknowledgedSettings.append(settings)
        actions.append(.send(.settings(settings)))
        let raise = configuration.connectionWindowSize - connectionReceiveWindow
        if raise > 0 {
            connectionReceiveWindow += raise
            actions.append(.send(.windowUpdate(stream: 0, increment: UInt32(raise))))
        }
    }

    // MARK: Frames from the peer

    /// Applies what the decoder produced; appends what follows from it to `actions`.
    public mutating func receive(_ output: H2FrameDecoder.Output, into actions: inout [H2ConnectionAction]) {
        guard !closed else { return }
        switch output {
        case .frame(let frame):
            receive(frame, into: &actions)
        case .streamError(let violation, let block):
            if let block { actions.append(.decodeAndDiscard(block)) }
            if let stream = violation.stream {
                if stream > lastPeerStreamID, isPeerInitiated(stream) { lastPeerStreamID = stream }
                resetStream(stream, code: violation.code, into: &actions)
            }
        }
    }

    private mutating func receive(_ frame: H2Frame, into actions: inout [H2ConnectionAction]) {
        switch frame {
        case .data(let stream, let payload, let endStream, let length):
            receiveData(stream: stream, payload: payload, endStream: endStream, length: length, into: &actions)
        case .headers(let stream, let block, let endStream):
            receiveHeaders(stream: stream, block: block, endStream: endStream, into: &actions)
        case .priority:
            break
        case .rstStream(let stream, let code):
            receiveReset(stream: stream, code: code, into: &actions)
        case .settings(let settings):
            guard countControlFrame(into: &actions) else { return }
            applyPeerSettings(settings, into: &actions)
        case .settingsAck:
            guard !unacknowledgedSettings.isEmpty else {
                return fail(H2ProtocolViolation(connection: .protocolError, "a SETTINGS acknowledgement for no SETTINGS"), into: &actions)
            }
            let acknowledged = unacknowledgedSettings.removeFirst()
            for setting in acknowledged where setting.identifier == H2Setting.initialWindowSize {
                let delta = Int(setting.value) - localInitialWindowSize
                localInitialWindowSize = Int(setting.value)
                streams.modifyAll { _, state in state.receiveWindow += delta }
            }
        case .ping(let opaque, let ack):
            if ack {
                actions.append(.pingAnswered(opaque: opaque))
            } else {
                guard countControlFrame(into: &actions) else { return }
                actions.append(.send(.ping(opaque: opaque, ack: true)))
            }
        case .goAway(let lastStream, let code, let debugData):
            receiveGoAway(lastStream: lastStream, code: code, debugData: debugData, into: &actions)
        case .windowUpdate(let stream, let increment):
            receiveWindowUpdate(stream: stream, increment: Int(increment), into: &actions)
        }
    }

    private mutating func receiveData(
        stream id: H2StreamID, payload: ByteBuffer, endStream: Bool, length: Int, into actions: inout [H2ConnectionAction]
    ) {
        // The connection window counts every DATA frame, whatever becomes of it (RFC 9113 6.9).
        guard length <= connectionReceiveWindow else {
            return fail(H2ProtocolViolation(
                connection: .flowControlError, "DATA of \(length) bytes on a connection window of \(connectionReceiveWindow)"),
                into: &actions)
        }
        connectionReceiveWindow -= length
        releaseConnection(length, into: &actions)
        if length == 0 && !endStream {
            emptyDataFrames += 1
            guard emptyDataFrames <= configuration.maxEmptyDataFramesPerWindow else {
                return fail(H2ProtocolViolation(connection: .enhanceYourCalm, "a flood of empty DATA frames"), into: &actions)
            }
        }
        guard var state = streams[id] else {
            return frameForAbsentStream(id, isData: true, into: &actions)
        }
        guard state.peerMaySend else {
            return resetStream(id, code: .streamClosed, into: &actions)
        }
        guard length <= state.receiveWindow else {
            return resetStream(id, code: .flowControlError, into: &actions)
        }
        state.receiveWindow -= length
        if let remaining = state.contentLengthRemaining {
            // More or less DATA than the content-length declared makes the request or response malformed
            // (RFC 9113 8.1.1): a stream error, so that it is not forwarded as if whole.
            let bytes = payload.readableBytes
            guard bytes <= remaining, !endStream || bytes == remaining else {
                streams[id] = state
                return resetStream(id, code: .protocolError, into: &actions)
            }
            state.contentLengthRemaining = remaining - bytes
        }
        let closedNow = endStream ? state.peerEnded() : false
        streams[id] = state
        actions.append(.data(stream: id, payload: payload, endStream: endStream, flowControlledLength: length))
        if closedNow { removeClosed(id, into: &actions) }
    }

    private mutating func receiveHeaders(
        stream id: H2StreamID, block: ByteBuffer, endStream: Bool, into actions: inout [H2ConnectionAction]
    ) {
        if var state = streams[id] {
            guard state.peerMaySend else {
                actions.append(.decodeAndDiscard(block))
                return resetStream(id, code: .streamClosed, into: &actions)
            }
            if !state.peerHeadersReceived {
                // A response's headers on a stream this end opened.
                state.peerHeadersReceived = true
                let closedNow = endStream ? state.peerEnded() : false
                streams[id] = state
                actions.append(.headers(stream: id, block: block, endStream: endStream, isNewStream: false))
                if closedNow { removeClosed(id, into: &actions) }
                return
            }
            // Trailers: the last header block of the peer's side (RFC 9113 8.1), after all the DATA a
            // content-length declared.
            guard endStream, (state.contentLengthRemaining ?? 0) == 0 else {
                actions.append(.decodeAndDiscard(block))
                return resetStream(id, code: .protocolError, into: &actions)
            }
            let closedNow = state.peerEnded()
            streams[id] = state
            actions.append(.headers(stream: id, block: block, endStream: true, isNewStream: false))
            if closedNow { removeClosed(id, into: &actions) }
            return
        }
        if configuration.role == .client, id % 2 == 1 {
            // A stream this end (a client) opened and has closed or reset: a response still on its way when this
            // end cancelled the call is ignored, not a reason to end every other call on the connection.
            actions.append(.decodeAndDiscard(block))
            return frameForAbsentStream(id, isData: false, into: &actions)
        }
        guard configuration.role == .server, isPeerInitiated(id) else {
            actions.append(.decodeAndDiscard(block))
            return fail(H2ProtocolViolation(
                connection: .protocolError,
                configuration.role == .server ? "HEADERS on even stream \(id): clients open odd streams"
                    : "HEADERS opening stream \(id): a server may not open streams (push is off)"),
                into: &actions)
        }
        guard id > lastPeerStreamID else {
            actions.append(.decodeAndDiscard(block))
            return frameForAbsentStream(id, isData: false, into: &actions)
        }
        lastPeerStreamID = id
        if goAwaySent != nil {
            // Streams opened after this end's GOAWAY are ignored (RFC 9113 6.8); the peer retries them elsewhere.
            actions.append(.decodeAndDiscard(block))
            return rememberReset(id)
        }
        guard peerStreamCount < configuration.maxConcurrentStreams else {
            actions.append(.decodeAndDiscard(block))
            return resetStream(id, code: .refusedStream, into: &actions)
        }
        var state = H2StreamState(lifecycle: .open, sendWindow: peerInitialWindowSize, receiveWindow: localInitialWindowSize)
        let closedNow = endStream ? state.peerEnded() : false
        streams[id] = state
        peerStreamCount += 1
        actions.append(.headers(stream: id, block: block, endStream: endStream, isNewStream: true))
        if closedNow { removeClosed(id, into: &actions) }
    }

    private mutating func receiveReset(stream id: H2StreamID, code: H2ErrorCode, into actions: inout [H2ConnectionAction]) {
        resets += 1
        guard resets <= configuration.maxResetsPerWindow else {
            return fail(H2ProtocolViolation(connection: .enhanceYourCalm, "a flood of RST_STREAM frames"), into: &actions)
        }
        guard streams[id] != nil else {
            if isIdle(id) {
                fail(H2ProtocolViolation(connection: .protocolError, "RST_STREAM on idle stream \(id)"), into: &actions)
            }
            return
        }
        removeStream(id)
        recentlyResetByPeer.remember(id, capacity: configuration.recentlyResetMemory)
        actions.append(.streamReset(stream: id, code: code, byPeer: true))
    }

    private mutating func receiveWindowUpdate(stream id: H2StreamID, increment: Int, into actions: inout [H2ConnectionAction]) {
        if id == 0 {
            connectionSendWindow += increment
            guard connectionSendWindow <= Int(Int32.max) else {
                return fail(H2ProtocolViolation(connection: .flowControlError, "the connection window passed 2^31-1"), into: &actions)
            }
            actions.append(.windowOpened(stream: nil))
            return
        }
        guard var state = streams[id] else {
            if isIdle(id) {
                fail(H2ProtocolViolation(connection: .protocolError, "WINDOW_UPDATE on idle stream \(id)"), into: &actions)
            }
            return
        }
        state.sendWindow += increment
        guard state.sendWindow <= Int(Int32.max) else {
            return resetStream(id, code: .flowControlError, into: &actions)
        }
        streams[id] = state
        actions.append(.windowOpened(stream: id))
    }

    private mutating func applyPeerSettings(_ settings: [H2Setting], into actions: inout [H2ConnectionAction]) {
        for setting in settings {
            switch setting.identifier {
            case H2Setting.maxConcurrentStreams:
                peerMaxConcurrentStreams = Int(setting.value)
            case H2Setting.initialWindowSize:
                let delta = Int(setting.value) - peerInitialWindowSize
                peerInitialWindowSize = Int(setting.value)
                var overflowed: H2StreamID?
                streams.modifyAll { id, state in
                    state.sendWindow += delta
                    if state.sendWindow > Int(Int32.max), overflowed == nil { overflowed = id }
                }
                if let overflowed {
                    return fail(H2ProtocolViolation(
                        connection: .flowControlError, "SETTINGS_INITIAL_WINDOW_SIZE pushed stream \(overflowed)'s window past 2^31-1"),
                        into: &actions)
                }
            case H2Setting.maxFrameSize:
                peerMaxFrameSize = Int(setting.value)
            case H2Setting.headerTableSize:
                peerHeaderTableSize = Int(setting.value)
            default:
                break  // unknown settings are ignored (RFC 9113 6.5.2)
            }
        }
        actions.append(.send(.settingsAck))
        actions.append(.peerSettingsChanged)
        actions.append(.windowOpened(stream: nil))
    }

    private mutating func receiveGoAway(
        lastStream: H2StreamID, code: H2ErrorCode, debugData: ByteBuffer, into actions: inout [H2ConnectionAction]
    ) {
        goAwayReceived = min(goAwayReceived ?? lastStream, lastStream)
        actions.append(.goAwayReceived(lastStream: lastStream, code: code, debugData: debugData))
        // Streams this end opened above the last one the peer processed were never seen: their calls may retry.
        for id in streams.streamIDs.sorted() where !isPeerInitiated(id) && id > lastStream {
            removeStream(id)
            actions.append(.streamReset(stream: id, code: .refusedStream, byPeer: true))
        }
    }

    /// A DATA or HEADERS frame for a stream that is not open: ignored if this end reset it, else the RFC's answer
    /// for an idle stream (connection error) or a closed one (RFC 9113 5.1): STREAM_CLOSED on that stream only for
    /// DATA, and for anything after the peer's own RST_STREAM; a connection error STREAM_CLOSED for a header block
    /// after the peer had ended the stream with END_STREAM and this end had too, since a client never sends one
    /// there (late trailers are the first case: this end reset the stream). HEADERS on an older stream this end no
    /// longer remembers are a new stream out of order (a connection error, RFC 9113 5.1.1).
    private mutating func frameForAbsentStream(_ id: H2StreamID, isData: Bool, into actions: inout [H2ConnectionAction]) {
        if recentlyReset.contains(id) { return }
        if isIdle(id) {
            return fail(H2ProtocolViolation(
                connection: .protocolError, "\(isData ? "DATA" : "HEADERS") on stream \(id), which was never opened"),
                into: &actions)
        }
        if !isData && isPeerInitiated(id) && !recentlyResetByPeer.contains(id) {
            guard recentlyClosed.contains(id) else {
                return fail(H2ProtocolViolation(
                    connection: .protocolError, "HEADERS opening stream \(id), below the last stream \(lastPeerStreamID)"),
                    into: &actions)
            }
            return fail(H2ProtocolViolation(
                connection: .streamClosed, "HEADERS on stream \(id) after both sides ended it"), into: &actions)
        }
        resetStream(id, code: .streamClosed, into: &actions)
    }

    // MARK: What this end does

    /// The peer's header block on `id` declared a content-length of `length` bytes: its DATA must add up to that
    /// (RFC 9113 8.1.1). Called by the owner of the decoded block, before the stream's DATA arrives.
    public mutating func expectContentLength(stream id: H2StreamID, _ length: Int) {
        streams.modify(id) { $0.contentLengthRemaining = length }
    }

    /// Whether this end (a client) may open another stream now: the peer's limit, and no GOAWAY either way.
    public var canOpenStream: Bool {
        !closed && goAwayReceived == nil && goAwaySent == nil && localStreamCount < peerMaxConcurrentStreams
    }

    /// Opens a stream for this end's request headers (a client); nil when `canOpenStream` is false.
    public mutating func openStream(endStream: Bool) -> H2StreamID? {
        guard configuration.role == .client, canOpenStream, nextLocalStreamID < UInt32(Int32.max) else { return nil }
        let id = nextLocalStreamID
        nextLocalStreamID += 2
        var state = H2StreamState(lifecycle: .open, sendWindow: peerInitialWindowSize, receiveWindow: localInitialWindowSize)
        state.peerHeadersReceived = false
        if endStream { _ = state.localEnded() }
        streams[id] = state
        localStreamCount += 1
        return id
    }

    /// This end sends headers on an open stream (a response, or trailers); false if it may not send there.
    public mutating func sendHeaders(stream id: H2StreamID, endStream: Bool, into actions: inout [H2ConnectionAction]) -> Bool {
        guard var state = streams[id], state.localMaySend else { return false }
        if endStream {
            let closedNow = state.localEnded()
            streams[id] = state
            if closedNow { removeClosed(id, into: &actions) }
        }
        return true
    }

    /// How many DATA bytes this end may send on the stream now (windows of the stream and the connection).
    public func sendableBytes(stream id: H2StreamID) -> Int {
        guard let state = streams[id], state.localMaySend else { return 0 }
        return max(0, min(state.sendWindow, connectionSendWindow))
    }

    /// Records `length` bytes of DATA this end sends (at most `sendableBytes`); false if the stream may not take
    /// them.
    public mutating func sendData(stream id: H2StreamID, length: Int, endStream: Bool, into actions: inout [H2ConnectionAction]) -> Bool {
        guard var state = streams[id], state.localMaySend, length <= min(state.sendWindow, connectionSendWindow) else {
            return false
        }
        state.sendWindow -= length
        connectionSendWindow -= length
        let closedNow = endStream ? state.localEnded() : false
        streams[id] = state
        if closedNow { removeClosed(id, into: &actions) }
        return true
    }

    /// The owner forwarded `bytes` the peer sent on the stream: the peer may send that much more, announced in
    /// batches of a quarter of the initial window.
    public mutating func release(stream id: H2StreamID, bytes: Int, into actions: inout [H2ConnectionAction]) {
        guard var state = streams[id], state.peerMaySend else { return }
        state.pendingCredit += bytes
        if state.pendingCredit >= max(1, localInitialWindowSize / 4) {
            let increment = min(state.pendingCredit, Int(Int32.max) - state.receiveWindow)
            state.pendingCredit = 0
            if increment > 0 {
                state.receiveWindow += increment
                actions.append(.send(.windowUpdate(stream: id, increment: UInt32(increment))))
            }
        }
        streams[id] = state
    }

    /// This end resets the stream (a call it ended early); frames the peer still sends for it are ignored.
    public mutating func resetStream(_ id: H2StreamID, code: H2ErrorCode, into actions: inout [H2ConnectionAction]) {
        actions.append(.send(.rstStream(stream: id, code: code)))
        rememberReset(id)
        if streams[id] != nil {
            removeStream(id)
            actions.append(.streamReset(stream: id, code: code, byPeer: false))
        }
    }

    /// GOAWAY: the peer opens no more streams; the ones it opened so far may finish. Once per connection.
    public mutating func goAway(code: H2ErrorCode, debug: String, into actions: inout [H2ConnectionAction]) {
        guard goAwaySent == nil else { return }
        goAwaySent = lastPeerStreamID
        actions.append(.send(.goAway(lastStream: lastPeerStreamID, code: code, debug: debug)))
    }

    /// Starts a new period for the flood limits.
    public mutating func floodWindowElapsed() {
        controlFrames = 0
        resets = 0
        emptyDataFrames = 0
    }

    /// Streams open now (for tests and the debug view).
    public var openStreamCount: Int { streams.count }

    /// The stream's state, nil if it is not open.
    public func lifecycle(of id: H2StreamID) -> H2StreamLifecycle? { streams[id]?.lifecycle }

    // MARK: Internals

    private func isPeerInitiated(_ id: H2StreamID) -> Bool {
        // A server's peer opens odd streams; a client's peer (a server) opens none, since push is off.
        configuration.role == .server ? id % 2 == 1 : id % 2 == 0
    }

    private func isIdle(_ id: H2StreamID) -> Bool {
        if isPeerInitiated(id) { return id > lastPeerStreamID }
        return id >= nextLocalStreamID
    }

    private mutating func countControlFrame(into actions: inout [H2ConnectionAction]) -> Bool {
        controlFrames += 1
        guard controlFrames <= configuration.maxControlFramesPerWindow else {
            fail(H2ProtocolViolation(connection: .enhanceYourCalm, "a flood of PING or SETTINGS frames"), into: &actions)
            return false
        }
        return true
    }

    private mutating func releaseConnection(_ bytes: Int, into actions: inout [H2ConnectionAction]) {
        connectionCreditPending += bytes
        guard connectionCreditPending >= max(1, configuration.connectionWindowSize / 4) else { return }
        connectionReceiveWindow += connectionCreditPending
        actions.append(.send(.windowUpdate(stream: 0, increment: UInt32(connectionCreditPending))))
        connectionCreditPending = 0
    }

    private mutating func removeClosed(_ id: H2StreamID, into actions: inout [H2ConnectionAction]) {
        recentlyClosed.remember(id, capacity: configuration.recentlyResetMemory)
        removeStream(id)
        actions.append(.streamClosed(stream: id))
    }

    private mutating func removeStream(_ id: H2StreamID) {
        guard streams.removeValue(forKey: id) != nil else { return }
        if isPeerInitiated(id) { peerStreamCount -= 1 } else { localStreamCount -= 1 }
    }

    private mutating func rememberReset(_ id: H2StreamID) {
        recentlyReset.remember(id, capacity: configuration.recentlyResetMemory)
    }

    /// Ends the connection for a connection error found outside the state machine (the decoder's, HPACK's):
    /// GOAWAY with the reason, then `.close`.
    public mutating func fail(_ violation: H2ProtocolViolation, into actions: inout [H2ConnectionAction]) {
        guard !closed else { return }
        closed = true
        let last = goAwaySent.map { min($0, lastPeerStreamID) } ?? lastPeerStreamID
        actions.append(.send(.goAway(lastStream: last, code: violation.code, debug: violation.reason)))
        actions.append(.close(violation))
    }
}

/// The last few stream ids of some kind, oldest forgotten first.
struct H2RecentStreams: Sendable {
    private var ids: [H2StreamID] = []
    private var next = 0

    mutating func remember(_ id: H2StreamID, capacity: Int) {
        if ids.count < capacity {
            ids.append(id)
        } else if capacity > 0 {
            ids[next] = id
            next = (next + 1) % capacity
        }
    }

    func contains(_ id: H2StreamID) -> Bool { ids.contains(id) }
}
