// The protocol state of one forwarded gRPC call, as a value type: events in, what to do out, no I/O.
//
// `ProxyCall` owns one and carries out its answers (writes, resets, credit, plugins, logs, metrics). The machine
// owns the call's phase (connecting to the upstream, open, finished), the request frames held while connecting, and
// one `CallDirection` per direction with the same rules both ways: what the sender ended, what was forwarded, the
// message framing and its size limit. It decides how the call ends: which side ended it, what the client gets last
// (the upstream's last frame, the proxy's own status, or a reset), whether a client still sending is stopped after
// that (RST_STREAM(NO_ERROR)), and whether the upstream stream is cancelled (not when it completed both ways).
//
// Once finished, every event is ignored: the end is decided exactly once, by the event that reached it.

import NIOCore
import NIOHPACK
import NIOHTTP2

/// One direction of a forwarded call: the requests (client to upstream) or the responses (upstream to client).
struct CallDirection {
    /// The sender ended this direction: END_STREAM, or request trailers.
    fileprivate(set) var senderEnded = false
    /// The receiver was sent this direction's HEADERS (responses: the upstream's headers or the proxy's status).
    fileprivate(set) var headersForwarded = false
    /// The receiver was sent END_STREAM.
    fileprivate(set) var endForwarded = false
    private let maxMessageBytes: Int
    private var boundaries: GRPCMessageBoundaryTracker
    /// Present when a plugin wants this direction's messages: whole ones are cut out of the DATA frames.
    private var reassembler: GRPCMessageReassembler?

    init(maxMessageBytes: Int) {
        self.maxMessageBytes = maxMessageBytes
        boundaries = GRPCMessageBoundaryTracker(maxMessageBytes: maxMessageBytes)
    }

    /// From now on DATA is cut into whole messages for the plugins instead of passing as it came.
    mutating func reassembleMessages() {
        reassembler = GRPCMessageReassembler(maxMessageBytes: maxMessageBytes)
    }

    /// What a DATA frame of this direction calls for.
    enum DataVerdict: Equatable {
        /// Forward the frame as it is; `completedMessages` whole messages ended in it.
        case forward(completedMessages: Int)
        /// The frame's whole messages were cut out: run them through the plugins and forward what they make.
        case translate
        /// END_STREAM already went this way: nothing more may follow it.
        case drop
        /// The frame breaks the call's rules: the call must end.
        case broken(CallStateMachine.DataFailure)
    }

    /// Follows the messages in a DATA frame (appending whole ones to `messages` when reassembling); checks their
    /// declared lengths before any of their bytes are forwarded.
    mutating func receivedData(_ data: HTTP2Frame.FramePayload.Data, messages: inout [ByteBuffer]) -> DataVerdict {
        guard !endForwarded else { return .drop }
        guard case .byteBuffer(let buffer) = data.data else { return .broken(.unreadable) }
        if reassembler != nil {
            if let length = reassembler?.consume(buffer, into: &messages) {
                return .broken(.tooLarge(length: length))
            }
            if data.endStream, reassembler?.isAtMessageBoundary == false {
                return .broken(.endsInsideMessage)
            }
            return .translate
        }
        let completedBefore = boundaries.completedMessages
        if case .messageTooLarge(let length) = boundaries.consume(buffer) {
            return .broken(.tooLarge(length: length))
        }
        return .forward(completedMessages: boundaries.completedMessages - completedBefore)
    }

    /// Whether the stream credit of bytes forwarded this way goes back to the sender: the write succeeded and the
    /// sender has not ended (its stream's receive side is closed then, and takes no WINDOW_UPDATE).
    func mayReleaseCredit(writeSucceeded: Bool) -> Bool {
        writeSucceeded && !senderEnded
    }
}

/// A forwarded call's phase and both directions, with the rules by which it ends.
struct CallStateMachine {
    enum Phase: Equatable {
        /// The upstream stream is being opened; request frames are held. `requestEndedWithHeaders`: the request's
        /// HEADERS carried END_STREAM, so opening the stream forwards the whole request.
        case connecting(requestEndedWithHeaders: Bool)
        /// Both streams are open: frames are forwarded.
        case open
        /// The end was decided; events are ignored.
        case finished
    }

    /// A DATA frame that breaks the call's rules.
    enum DataFailure: Equatable {
        /// A message declares `length` bytes, more than `limits.maxMessageBytes`.
        case tooLarge(length: Int)
        /// The stream ended in the middle of a message a plugin was to see.
        case endsInsideMessage
        /// The payload is not in memory (a file region; the engine never hands one over).
        case unreadable

        /// The status the call ends with.
        var statusCode: GRPCStatusCode {
            switch self {
            case .tooLarge: .resourceExhausted
            case .endsInsideMessage, .unreadable: .internal
            }
        }
    }

    /// How the call ends; decided once, by the event that ends it.
    struct Ending: Equatable {
        /// What the client is sent last.
        enum ToClient: Equatable {
            /// Nothing: the client is gone.
            case nothing
            /// The upstream's last frame (trailers, or DATA with END_STREAM), which the ending event forwards.
            case responseEnd
            /// The proxy's own status as the response's last HEADERS; `trailersOnly` when no response headers went
            /// before it (gRPC's Trailers-Only response, which also carries `:status` and `content-type`).
            case status(GRPCStatusCode, trailersOnly: Bool)
            /// RST_STREAM with the upstream's code.
            case reset(HTTP2ErrorCode)
        }

        /// The side whose event ended the call (replication streams record it).
        var side: CallSide
        var toClient: ToClient
        /// The client is still sending: RST_STREAM(NO_ERROR) follows the response's last frame once that frame is
        /// written (RFC 9113 8.1), so that the client reports the status rather than a cancellation.
        var stopsRequest: Bool
        /// The upstream stream is open and did not complete both ways: RST_STREAM(CANCEL) it. A stream that
        /// completed is left alone (a reset would only count against the upstream's reset-flood limits).
        var cancelsUpstream: Bool
    }

    /// What a request's or response's DATA frame calls for.
    enum DataAction: Equatable {
        /// A request frame that arrived while connecting: the machine holds it until `upstreamOpened`.
        case held
        /// Nothing to do: the call is not open, or END_STREAM already went that way.
        case drop
        /// Write the frame as it is to the other side, then tell `forwardedData`; `completedMessages` whole
        /// messages ended in it.
        case forward(completedMessages: Int)
        /// Run the messages cut out of the frame through the plugins; then `forwardedData` with what they made,
        /// or `fail` with their status.
        case translate
        /// The frame broke a rule (`DataFailure`): the call ends with the proxy's status.
        case fail(DataFailure, Ending)
    }

    /// What the client's trailers call for.
    enum RequestTrailersAction: Equatable {
        case held
        case drop
        /// Forward them with END_STREAM: the request is complete.
        case forward
    }

    /// What a HEADERS block from the upstream calls for.
    enum ResponseHeadersAction: Equatable {
        case drop
        /// The response's headers: forward them.
        case forwardHeaders
        /// The call's status (trailers, or a Trailers-Only response): forward it with END_STREAM, then end the call.
        case forwardStatus(Ending)
    }

    private(set) var phase = Phase.connecting(requestEndedWithHeaders: false)
    private(set) var request: CallDirection
    private(set) var response: CallDirection
    /// Request frames that arrived while connecting, in order (at most one stream window of them).
    private var heldRequestFrames: [HTTP2Frame.FramePayload] = []
    /// The grpc-status the client got (from the upstream's trailers, or the proxy's own); nil while there is none.
    private(set) var finalStatus: Int32?
    /// The proxy wrote the call's status itself.
    private(set) var failedInProxy = false

    init(maxMessageBytes: Int) {
        request = CallDirection(maxMessageBytes: maxMessageBytes)
        response = CallDirection(maxMessageBytes: maxMessageBytes)
    }

    var isConnecting: Bool {
        if case .connecting = phase { return true }
        return false
    }

    /// The client has been sent the response's headers or a status: a call it resets before that, soon after it
    /// started, is what a rapid-reset flood is made of.
    var isAnswered: Bool { response.headersForwarded }

    // MARK: Events

    /// The client's HEADERS opened the call.
    mutating func start(endStream: Bool) {
        guard isConnecting else { return }
        request.senderEnded = endStream
        phase = .connecting(requestEndedWithHeaders: endStream)
    }

    /// A plugin wants the messages `sender` sends: they are cut out whole (`DataAction.translate`).
    mutating func reassembleMessages(from sender: CallSide) {
        switch sender {
        case .client: request.reassembleMessages()
        case .upstream: response.reassembleMessages()
        }
    }

    /// The upstream stream opened with the request's HEADERS. Returns the request frames held meanwhile, in the
    /// order they came, for the adapter to hand back (`receivedData`, `requestTrailers`): now they are forwarded.
    mutating func upstreamOpened() -> [HTTP2Frame.FramePayload] {
        guard case .connecting(let requestEndedWithHeaders) = phase else { return [] }
        phase = .open
        request.headersForwarded = true
        request.endForwarded = requestEndedWithHeaders
        let held = heldRequestFrames
        heldRequestFrames = []
        return held
    }

    /// DATA from `sender`. Whole messages are appended to `messages` when that direction is reassembled.
    mutating func receivedData(
        _ data: HTTP2Frame.FramePayload.Data, from sender: CallSide, messages: inout [ByteBuffer]
    ) -> DataAction {
        let verdict: CallDirection.DataVerdict
        switch (sender, phase) {
        case (_, .finished), (.upstream, .connecting):
            // Dropped; the connection window got the bytes back as they arrived.
            return .drop
        case (.client, .connecting):
            if data.endStream { request.senderEnded = true }
            heldRequestFrames.append(.data(data))
            return .held
        case (.client, .open):
            if data.endStream { request.senderEnded = true }
            verdict = request.receivedData(data, messages: &messages)
        case (.upstream, .open):
            if data.endStream { response.senderEnded = true }
            verdict = response.receivedData(data, messages: &messages)
        }
        switch verdict {
        case .forward(let completedMessages):
            return .forward(completedMessages: completedMessages)
        case .translate:
            return .translate
        case .drop:
            return .drop
        case .broken(let failure):
            return .fail(failure, endWithStatus(failure.statusCode, cause: sender))
        }
    }

    /// The DATA `receivedData` let through went to the other side (as it came, or as the plugins made it). The
    /// response's END_STREAM ends the call.
    mutating func forwardedData(from sender: CallSide, endStream: Bool) -> Ending? {
        guard phase == .open, endStream else { return nil }
        switch sender {
        case .client:
            request.endForwarded = true
            return nil
        case .upstream:
            response.endForwarded = true
            return endByResponse()
        }
    }

    /// The client's trailers (rare in gRPC, legal in HTTP/2): they end the request side.
    mutating func requestTrailers(_ trailers: HTTP2Frame.FramePayload.Headers) -> RequestTrailersAction {
        switch phase {
        case .finished:
            return .drop
        case .connecting:
            request.senderEnded = true
            heldRequestFrames.append(.headers(trailers))
            return .held
        case .open:
            request.senderEnded = true
            guard !request.endForwarded else { return .drop }
            request.endForwarded = true
            return .forward
        }
    }

    /// A HEADERS block from the upstream: the response's headers first, then its status. A second block is the
    /// status even without END_STREAM, and goes out with it.
    mutating func responseHeaders(_ headers: HPACKHeaders, endStream: Bool) -> ResponseHeadersAction {
        guard phase == .open else { return .drop }
        if endStream { response.senderEnded = true }
        if !response.headersForwarded && !endStream {
            response.headersForwarded = true
            return .forwardHeaders
        }
        response.headersForwarded = true
        response.endForwarded = true
        finalStatus = headers.first(name: "grpc-status").flatMap { Int32($0) } ?? Int32(GRPCStatusCode.unknown.rawValue)
        return .forwardStatus(endByResponse())
    }

    /// The client reset the stream, or its stream or connection closed.
    mutating func clientGone() -> Ending? {
        guard phase != .finished else { return nil }
        return finish(side: .client, toClient: .nothing)
    }

    /// The upstream reset the stream (or this end reset it for the upstream's stream error): the client's stream is
    /// reset with the same code.
    mutating func upstreamReset(_ code: HTTP2ErrorCode) -> Ending? {
        guard phase == .open else { return nil }
        response.senderEnded = true
        return finish(side: .upstream, toClient: .reset(code))
    }

    /// The upstream stream closed before the call ended (its connection died): the call ends with UNAVAILABLE.
    mutating func upstreamClosed() -> Ending? {
        guard phase == .open else { return nil }
        return endWithStatus(.unavailable, cause: .upstream)
    }

    /// The proxy ends the call with its own status `code` (unreachable upstream, a plugin's verdict, a request that
    /// is not gRPC); `cause` is the side whose event or bytes led to it.
    mutating func fail(_ code: GRPCStatusCode, cause: CallSide) -> Ending? {
        guard phase != .finished else { return nil }
        return endWithStatus(code, cause: cause)
    }

    /// Whether the stream credit of bytes `sender` sent goes back to it once their write completed: the write
    /// succeeded, the sender has not ended, and the call is still open.
    func mayReleaseCredit(from sender: CallSide, writeSucceeded: Bool) -> Bool {
        guard phase == .open else { return false }
        switch sender {
        case .client: return request.mayReleaseCredit(writeSucceeded: writeSucceeded)
        case .upstream: return response.mayReleaseCredit(writeSucceeded: writeSucceeded)
        }
    }

    // MARK: Ending

    /// The upstream's last frame goes to the client. The call ended on the client's side when its request had ended
    /// first, else on the upstream's.
    private mutating func endByResponse() -> Ending {
        finish(side: request.senderEnded ? .client : .upstream, toClient: .responseEnd)
    }

    private mutating func endWithStatus(_ code: GRPCStatusCode, cause: CallSide) -> Ending {
        failedInProxy = true
        finalStatus = Int32(code.rawValue)
        let trailersOnly = !response.headersForwarded
        response.headersForwarded = true
        response.endForwarded = true
        return finish(side: cause, toClient: .status(code, trailersOnly: trailersOnly))
    }

    private mutating func finish(side: CallSide, toClient: Ending.ToClient) -> Ending {
        let writesResponseEnd: Bool
        switch toClient {
        case .responseEnd, .status: writesResponseEnd = true
        case .nothing, .reset: writesResponseEnd = false
        }
        let ending = Ending(
            side: side,
            toClient: toClient,
            stopsRequest: writesResponseEnd && !request.senderEnded,
            cancelsUpstream: phase == .open && !(request.endForwarded && response.senderEnded)
        )
        phase = .finished
        heldRequestFrames = []
        return ending
    }
}
