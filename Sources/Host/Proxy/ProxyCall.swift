// One gRPC call forwarded from a downstream HTTP/2 stream to an upstream HTTP/2 stream, and its response back.
//
// A thin adapter between three parties: the connection handlers, which hand it the call's events from both
// connections; `CallStateMachine`, which holds the call's protocol state (its phase, each direction's bookkeeping,
// the ending rules) and says what each event calls for; and the plugin chain (`PluginCallRunner`), for calls a
// plugin wants. This class carries out what the machine decides: it writes frames and resets through the two
// connections' `HTTP2FrameWriter`s, releases stream credit, runs the plugins' hooks, and keeps the call's logs,
// metrics and replication-stream record. Both directions go through the same code, named by the side that sent.
//
// The call is generic: it never parses messages, only follows their length prefixes to enforce the size limit, and
// forwards DATA frames as they are (no copy). Flow control is end to end per stream: bytes received on one side are
// granted back to their sender's stream (WINDOW_UPDATE) only when the write to the other side has completed, so a
// slow reader on either end throttles the writer on the other, and at most one stream window per direction is held
// here. Connection windows are granted back by the connection handlers as bytes arrive, so a call whose reader
// stalls never holds up the other calls sharing either connection.
//
// Ending rules (the machine's): the upstream's final HEADERS (trailers) ends the call; a reset on one side resets
// the other (the upstream's code goes to the client, the client's reset cancels the upstream stream); an upstream
// connection that dies mid-call, an unreachable upstream and an oversized message end the call with a gRPC status
// the proxy writes itself. When the status goes out while the client is still sending, RST_STREAM(NO_ERROR) follows
// it once it is written, as HTTP/2 prescribes for a response that completes before its request.
//
// A replication stream (`StreamWorkflowReplicationMessages`) is also recorded in its listener's
// `ReplicationStreamRegistry`: its whole messages each way (counted by the boundary trackers, or the reassemblers
// when plugins want the messages), and which side ended it. Other calls pay one path compare at the start and a nil
// check per DATA frame.
//
// Confined to the event loop of the downstream connection, which is also the loop of the upstream connection used.

import Logging
import NIOCore
import NIOHPACK
import NIOHTTP2
import PluginABI

final class ProxyCall {
    private let listener: ListenerContext
    /// The connection's logger for the call's component (by its `:path`: adminService, workflowService,
    /// replicationStreams or otherServices), shared by the connection's calls of that component; a call adds its
    /// method and stream id only to the lines it writes (copying metadata for every call would cost more than the
    /// rest of the call's bookkeeping).
    private var logger: Logger
    /// The call's protocol state; this class carries out what it decides.
    private var machine: CallStateMachine

    private let downstream: DownstreamConnectionHandler
    private let downstreamStreamID: HTTP2StreamID
    private var upstream: UpstreamConnection?
    private var upstreamStreamID = HTTP2StreamID.rootStream
    /// Where the call goes: the listener's upstream, or routing mode's target server for a replication stream.
    private var destination: UpstreamConnecting

    /// Whether the client has been sent the response's headers (or a status): a call reset before that, and
    /// soon after it started, is what a rapid-reset flood is made of.
    var isAnswered: Bool { machine.isAnswered }
    /// The plugins that want this call, if any; calls no plugin wants never allocate one.
    private var plugins: PluginCallRunner?
    private var method = ""
    /// The metrics shard of the call's event loop, and when the call began, for the metrics endpoint.
    private let metricsShard: Int
    let startTime = NIODeadline.now()
    /// Set when the call is a replication stream: where its messages and its end are recorded.
    private var replicationStream: ReplicationStream?

    /// The grpc-status that metrics and the plugins' call_end take for a call that ended without one (the ABI's -1).
    private static let noStatus: Int32 = -1

    init(listener: ListenerContext, downstream: DownstreamConnectionHandler, streamID: HTTP2StreamID) {
        self.listener = listener
        self.downstream = downstream
        self.downstreamStreamID = streamID
        // Until `start` reads the call's path.
        self.logger = downstream.logger
        self.machine = CallStateMachine(maxMessageBytes: listener.maxMessageBytes)
        self.destination = listener.upstream
        metricsShard = listener.metrics.shard(for: downstream.writer.eventLoop)
        listener.activeCalls.increment()
        listener.metrics.callStarted(shard: metricsShard)
    }

    // MARK: Downstream events

    func start(_ request: HTTP2Frame.FramePayload.Headers) {
        let headers = request.headers
        // One pass over the fields for the four the call needs (the engine checked the block: names are lowercase,
        // and each pseudo-header is there once).
        var path = "", httpMethod = "", contentType = ""
        var encoding: String?
        for (name, value, _) in headers {
            switch name {
            case ":path": path = value
            case ":method": httpMethod = value
            case "content-type" where contentType.isEmpty: contentType = value
            case "grpc-encoding" where encoding == nil: encoding = value
            default: break
            }
        }
        method = path
        logger = downstream.callLogger(for: LogComponent.ofCall(path: method))
        machine.start(endStream: request.endStream)
        guard httpMethod == "POST", contentType.hasPrefix("application/grpc") else {
            rejectNonGRPC(contentType: contentType)
            return
        }
        var forwarded = request
        var runsPlugins = true
        if let routing = listener.replicationUpstream {
            if method == ReplicationStreamRegistry.method {
                destination = routing
            } else if method == RoutingReplicas.method {
                // Another routing replica's stream: routing's own, never a plugin's.
                destination = routing
                runsPlugins = false
            }
        }
        if runsPlugins, let chain = listener.plugins, let plan = chain.plan(for: method) {
            let runner = PluginCallRunner(plan: plan, method: method, side: chain.side, connection: chain.connectionName)
            runner.requestEncoding = encoding
            runner.maxMessageBytes = listener.maxMessageBytes
            plugins = runner
            if case .fail(let status) = runner.start(headers: &forwarded.headers) {
                failCall(status, cause: .client)
                return
            }
            if runner.wantsRequestMessages {
                machine.reassembleMessages(from: .client)
            }
            if runner.wantsResponseMessages {
                machine.reassembleMessages(from: .upstream)
            }
        }
        if method == ReplicationStreamRegistry.method {
            // After the plugins' start, as the Go proxy records a stream only once its metadata was accepted.
            replicationStream = listener.replicationStreams.open(headers: headers)
        }
        guard let loop = downstream.writer.eventLoop else {
            if let ending = machine.clientGone() { finish(ending) }
            return
        }
        // Opened once the frames read with these headers have been handled: a client that opens and resets streams
        // in one go (a rapid-reset flood) costs the upstream nothing, and a real call loses no time, since the
        // headers would be flushed at the end of the read anyway.
        downstream.writer.atEndOfReadBatch {
            guard self.machine.isConnecting else { return }
            self.openUpstreamStream(forwarded, on: loop, attemptsLeft: Self.upstreamAttempts)
        }
    }

    /// How many connections a call tries before failing when each it is handed turns out full or draining (others'
    /// calls can take the room of a connection between the pool choosing it and the call opening its stream).
    private static let upstreamAttempts = 8

    /// Asks the upstream for a connection and opens the call's stream on it.
    private func openUpstreamStream(_ forwarded: HTTP2Frame.FramePayload.Headers, on loop: EventLoop, attemptsLeft: Int) {
        // Most calls find a connection ready: they take it at once, without a future and its callback.
        if let ready = destination.readyConnection(on: loop) {
            return openUpstreamStream(forwarded, on: loop, attemptsLeft: attemptsLeft, connection: .success(ready))
        }
        destination.connection(on: loop).whenComplete { result in
            self.openUpstreamStream(forwarded, on: loop, attemptsLeft: attemptsLeft, connection: result)
        }
    }

    /// Opens the call's stream on the connection the upstream gave (or fails the call with why it gave none).
    private func openUpstreamStream(
        _ forwarded: HTTP2Frame.FramePayload.Headers, on loop: EventLoop, attemptsLeft: Int,
        connection result: Result<UpstreamConnection, Error>
    ) {
        guard self.machine.isConnecting else { return }
        switch result {
        case .success(let connection):
            let id: HTTP2StreamID
            switch connection.openStream(for: self, headers: forwarded) {
            case .opened(let opened):
                id = opened
            case .full where attemptsLeft > 1, .unavailable where attemptsLeft > 1:
                return self.openUpstreamStream(forwarded, on: loop, attemptsLeft: attemptsLeft - 1)
            case .full:
                self.failCall(
                    GRPCStatus(.unavailable, "upstream \(self.destination.target) has no connection with room for another call (SETTINGS_MAX_CONCURRENT_STREAMS); retry the call"),
                    cause: .upstream
                )
                return
            case .unavailable:
                self.failCall(
                    GRPCStatus(.unavailable, "upstream \(self.destination.target) is draining; retry the call"),
                    cause: .upstream
                )
                return
            }
            self.upstream = connection
            self.upstreamStreamID = id
            // Frames the client sent meanwhile go out in order, flushed together.
            for frame in self.machine.upstreamOpened() {
                switch frame {
                case .data(let data):
                    self.forwardData(data, from: .client)
                case .headers(let trailers):
                    self.forwardRequestTrailers(trailers)
                default:
                    break
                }
            }
            connection.writer.flush()
        case .failure(let error):
            let message = (error as? UpstreamUnavailableError)?.description
                ?? "upstream \(self.destination.target) is unavailable: \(NetworkErrorDescription.describe(error))"
            self.failCall(GRPCStatus(.unavailable, message), cause: .upstream)
        }
    }

    func downstreamHeaders(_ trailers: HTTP2Frame.FramePayload.Headers) {
        if forwardRequestTrailers(trailers) {
            upstream?.writer.flush()
        }
    }

    func downstreamData(_ data: HTTP2Frame.FramePayload.Data) {
        if forwardData(data, from: .client) {
            upstream?.writer.flush()
        }
    }

    func downstreamReset(_ code: HTTP2ErrorCode) {
        guard let ending = machine.clientGone() else { return }
        logger.debug("call reset by client", metadata: callMetadata(["code": "\(code)"]))
        finish(ending)
    }

    func downstreamClosed(reason: HTTP2ErrorCode?) {
        guard let ending = machine.clientGone() else { return }
        logger.debug("call cancelled by client", metadata: callMetadata(["reason": "\(reason.map { "\($0)" } ?? "connection closed")"]))
        finish(ending)
    }

    // MARK: Upstream events

    func upstreamHeaders(_ headers: HTTP2Frame.FramePayload.Headers) {
        switch machine.responseHeaders(headers.headers, endStream: headers.endStream) {
        case .drop:
            return
        case .forwardHeaders:
            plugins?.responseEncoding = headers.headers.first(name: "grpc-encoding")
            plugins?.observeResponseMetadata(headers.headers, kind: S2S_METADATA_RESPONSE_HEADERS)
            var forwarded = headers.headers
            var failure: GRPCStatus?
            if let plugins, plugins.wantsResponseHeaders,
               case .fail(let status) = plugins.responseMetadata(&forwarded, kind: S2S_METADATA_RESPONSE_HEADERS) {
                // The headers go out all the same (the machine counts them as sent); the status ends the call.
                failure = status
            }
            let block = HTTP2Frame.FramePayload.Headers(headers: forwarded)
            downstream.writer.write(.headers(block), streamID: downstreamStreamID, promise: nil)
            if let failure {
                failCall(failure, cause: .upstream)
            } else {
                downstream.writer.flush()
            }
        case .forwardStatus(let ending):
            plugins?.observeResponseMetadata(headers.headers, kind: S2S_METADATA_RESPONSE_TRAILERS)
            var forwarded = headers.headers
            if let plugins, plugins.wantsTrailers(status: forwarded.first(name: "grpc-status")),
               case .fail(let status) = plugins.responseMetadata(&forwarded, kind: S2S_METADATA_RESPONSE_TRAILERS) {
                // A plugin rejected the call or failed closed: the client gets its status instead of the server's.
                forwarded = status.trailers(trailersOnly: headers.headers.contains(name: ":status"))
                logger.info("call failed in proxy", metadata: callMetadata([
                    "status": "\(status.code)", "reason": "\(status.message)",
                    "plugin": "\(plugins.endedBy?.plugin ?? "")", "entry": "\(plugins.endedBy?.entry ?? "")",
                ]))
            }
            let written = writeResponseEnd(forwarded, stopsRequest: ending.stopsRequest)
            end(ending, responseEndWritten: written)
        }
    }

    func upstreamData(_ data: HTTP2Frame.FramePayload.Data) {
        if forwardData(data, from: .upstream) {
            downstream.writer.flush()
        }
    }

    func upstreamReset(_ code: HTTP2ErrorCode) {
        guard let ending = machine.upstreamReset(code) else { return }
        logger.debug("upstream reset the stream", metadata: callMetadata(["code": "\(code)"]))
        end(ending)
    }

    func upstreamClosed(reason: HTTP2ErrorCode?) {
        if let reason {
            if let ending = machine.upstreamReset(reason) { end(ending) }
        } else if let ending = machine.upstreamClosed() {
            end(ending, statusMessage: "upstream \(destination.target) closed the stream before the call ended")
        }
    }

    // MARK: Forwarding, both directions

    /// Forwards DATA that `sender` sent to the other side as the machine says: as it came, or through the plugins.
    /// Returns true when it wrote to the other side and left the flush to the caller (held request frames are
    /// flushed together); a frame that ends or fails the call is flushed by its ending.
    @discardableResult
    private func forwardData(_ data: HTTP2Frame.FramePayload.Data, from sender: CallSide) -> Bool {
        var messages: [ByteBuffer] = []
        let written: EventLoopFuture<Void>?
        var wrote = false
        switch machine.receivedData(data, from: sender, messages: &messages) {
        case .held, .drop:
            return false
        case .fail(let failure, let ending):
            end(ending, statusMessage: statusMessage(for: failure, from: sender))
            return false
        case .forward(let completedMessages):
            countMessages(completedMessages, from: sender)
            guard let (writer, streamID) = receiver(of: sender), let loop = writer.eventLoop else { return false }
            // A request's last DATA returns no credit (its sender is done) and ends nothing: nothing waits for its
            // write, so it needs no promise (a unary call's request is one such frame).
            let promise = data.endStream && sender == .client ? nil : loop.makePromise(of: Void.self)
            writer.write(.data(data), streamID: streamID, promise: promise)
            written = promise?.futureResult
            wrote = true
        case .translate:
            switch translate(messages, from: sender) {
            case .fail(let status):
                if let ending = machine.fail(status.code, cause: sender) {
                    end(ending, statusMessage: status.message)
                }
                return false
            case .forward(let translated):
                countMessages(translated.count, from: sender)
                guard let (writer, streamID) = receiver(of: sender) else { return false }
                // As above: a request's last DATA needs no completion.
                (wrote, written) = write(
                    translated, endStream: data.endStream, to: writer, streamID: streamID,
                    completion: !(data.endStream && sender == .client)
                )
            }
        }
        releaseCredit(HTTP2FlowControlledLength.of(data), from: sender, once: written)
        if let ending = machine.forwardedData(from: sender, endStream: data.endStream) {
            end(ending, responseEndWritten: written)
            return false
        }
        return wrote
    }

    /// Forwards the client's trailers (with END_STREAM) if the machine says so; true when they were written.
    @discardableResult
    private func forwardRequestTrailers(_ trailers: HTTP2Frame.FramePayload.Headers) -> Bool {
        guard machine.requestTrailers(trailers) == .forward, let upstream else { return false }
        let block = HTTP2Frame.FramePayload.Headers(headers: trailers.headers, endStream: true)
        upstream.writer.write(.headers(block), streamID: upstreamStreamID, promise: nil)
        return true
    }

    /// Where what `sender` sends goes: the other side's writer and stream.
    private func receiver(of sender: CallSide) -> (HTTP2FrameWriter, HTTP2StreamID)? {
        switch sender {
        case .client: upstream.map { ($0.writer, upstreamStreamID) }
        case .upstream: (downstream.writer, downstreamStreamID)
        }
    }

    /// Hands the stream credit of `bytes` that `sender` sent back to it once `written` (their forwarding) completes,
    /// at once when nothing was written (a part of a message held until the rest arrives: the limit bounds it).
    private func releaseCredit(_ bytes: Int, from sender: CallSide, once written: EventLoopFuture<Void>?) {
        guard let written else {
            return releaseCredit(bytes, from: sender, writeSucceeded: true)
        }
        written.whenComplete { result in
            if case .success = result {
                self.releaseCredit(bytes, from: sender, writeSucceeded: true)
            } else {
                self.releaseCredit(bytes, from: sender, writeSucceeded: false)
            }
        }
    }

    private func releaseCredit(_ bytes: Int, from sender: CallSide, writeSucceeded: Bool) {
        guard machine.mayReleaseCredit(from: sender, writeSucceeded: writeSucceeded) else { return }
        switch sender {
        case .client:
            downstream.writer.releaseStreamCredit(bytes, streamID: downstreamStreamID, streamOpen: true)
        case .upstream:
            upstream?.writer.releaseStreamCredit(bytes, streamID: upstreamStreamID, streamOpen: true)
        }
    }

    private func countMessages(_ count: Int, from sender: CallSide) {
        switch sender {
        case .client: replicationStream?.forwarded(requests: count)
        case .upstream: replicationStream?.forwarded(responses: count)
        }
    }

    // MARK: Calls a plugin wants the messages of

    private enum Translation {
        case forward([ByteBuffer])
        case fail(GRPCStatus)
    }

    /// Runs whole messages `sender` sent through the plugins, in order; a message a plugin made too large fails the
    /// call like an oversized one from a peer.
    private func translate(_ messages: [ByteBuffer], from sender: CallSide) -> Translation {
        let name = Self.messageName(from: sender)
        guard let plugins else {
            return .fail(GRPCStatus(.internal, "s2s-proxy could not read the \(name) bytes"))
        }
        let direction = sender == .client ? S2S_DIRECTION_REQUEST : S2S_DIRECTION_RESPONSE
        var output: [ByteBuffer] = []
        output.reserveCapacity(messages.count)
        for message in messages {
            switch plugins.message(message, direction: direction) {
            case .forward(let translated):
                if translated.readableBytes - 5 > listener.maxMessageBytes {
                    return .fail(GRPCStatus(
                        .resourceExhausted,
                        "a plugin made a \(name) message of \(translated.readableBytes - 5) bytes, over the proxy's limit of \(listener.maxMessageBytes) bytes (limits.maxMessageBytes)"
                    ))
                }
                output.append(translated)
            case .fail(let status):
                return .fail(status)
            }
        }
        return .forward(output)
    }

    /// Writes re-framed messages as DATA frames. Returns whether anything was written (nothing for a part of a
    /// message, held until the rest arrives) and, if `completion`, the last write's completion.
    private func write(
        _ messages: [ByteBuffer], endStream: Bool, to writer: HTTP2FrameWriter, streamID: HTTP2StreamID,
        completion: Bool
    ) -> (wrote: Bool, written: EventLoopFuture<Void>?) {
        guard !messages.isEmpty || endStream, let loop = writer.eventLoop else { return (false, nil) }
        let promise = completion ? loop.makePromise(of: Void.self) : nil
        if messages.isEmpty {
            writer.write(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)), streamID: streamID, promise: promise)
        } else {
            for (index, message) in messages.enumerated() {
                let last = index == messages.count - 1
                writer.write(.data(.init(data: .byteBuffer(message), endStream: last && endStream)), streamID: streamID,
                             promise: last ? promise : nil)
            }
        }
        return (true, promise?.futureResult)
    }

    // MARK: Ending

    /// Ends the call with a status written by the proxy itself; `cause` is the side whose event or bytes led to it.
    private func failCall(_ status: GRPCStatus, cause: CallSide) {
        guard let ending = machine.fail(status.code, cause: cause) else { return }
        end(ending, statusMessage: status.message)
    }

    private func rejectNonGRPC(contentType: String) {
        guard let ending = machine.fail(.internal, cause: .client) else { return }
        logger.info("rejected non-gRPC request", metadata: callMetadata(["content-type": "\(contentType)"]))
        method = CallMetrics.nonGRPCMethod
        var headers = HPACKHeaders()
        headers.add(name: ":status", value: "415")
        headers.add(name: "grpc-status", value: String(GRPCStatusCode.internal.rawValue))
        headers.add(name: "grpc-message", value: GRPCStatus.percentEncode("s2s-proxy forwards gRPC only (content-type application/grpc)"))
        let written = writeResponseEnd(headers, stopsRequest: ending.stopsRequest)
        stopRequestAndFlush(ending, after: written)
        finish(ending)
    }

    /// Carries out the end the machine decided: what the client gets last (`statusMessage` is the text of the
    /// proxy's own status; `responseEndWritten` the write of the upstream's last frame, which the ending event
    /// forwarded), RST_STREAM(NO_ERROR) after it for a client still sending, then `finish`.
    private func end(
        _ ending: CallStateMachine.Ending, statusMessage: String = "", responseEndWritten: EventLoopFuture<Void>? = nil
    ) {
        var written = responseEndWritten
        switch ending.toClient {
        case .nothing:
            return finish(ending)
        case .responseEnd:
            logger.debug("call finished", metadata: callMetadata([:]))
        case .status(let code, let trailersOnly):
            var metadata: Logger.Metadata = ["status": "\(code)", "reason": "\(statusMessage)"]
            if let endedBy = plugins?.endedBy {  // a plugin's rejection or closed failure: say which entry
                metadata["plugin"] = "\(endedBy.plugin)"
                metadata["entry"] = "\(endedBy.entry)"
            }
            logger.info("call failed in proxy", metadata: callMetadata(metadata))
            written = writeResponseEnd(
                GRPCStatus(code, statusMessage).trailers(trailersOnly: trailersOnly), stopsRequest: ending.stopsRequest
            )
        case .reset(let code):
            downstream.writer.write(.rstStream(code), streamID: downstreamStreamID, promise: nil)
        }
        stopRequestAndFlush(ending, after: written)
        finish(ending)
    }

    /// Writes the response's last HEADERS. Returns its write's completion when a client still sending is to be
    /// stopped once it is out.
    private func writeResponseEnd(_ headers: HPACKHeaders, stopsRequest: Bool) -> EventLoopFuture<Void>? {
        let written = stopsRequest ? downstream.writer.eventLoop?.makePromise(of: Void.self) : nil
        downstream.writer.write(.headers(.init(headers: headers, endStream: true)), streamID: downstreamStreamID,
                                promise: written)
        return written?.futureResult
    }

    /// Sends RST_STREAM(NO_ERROR) to a client still sending (`ending.stopsRequest`), once the response's last frame
    /// (`written`) is out, and flushes what the ending wrote to the client. Written at once, the reset would overtake
    /// the response's DATA and trailers while they wait in the HTTP/2 handler (for flow-control window, or for the
    /// flush), and gRPC clients would report the reset instead of the status and lose the last messages. If the
    /// client ends its request meanwhile, the reset finds the stream closed and is dropped (its write fails; nothing
    /// else happens).
    private func stopRequestAndFlush(_ ending: CallStateMachine.Ending, after written: EventLoopFuture<Void>?) {
        let writer = downstream.writer
        if ending.stopsRequest {
            let streamID = downstreamStreamID
            if let written {
                written.whenSuccess {
                    writer.write(.rstStream(.noError), streamID: streamID, promise: nil)
                    writer.flush()
                }
            } else {
                writer.write(.rstStream(.noError), streamID: streamID, promise: nil)
            }
        }
        writer.flush()
    }

    /// Marks the call over: metrics, the replication-stream record (ended by `ending.side`), the plugins' call_end;
    /// stops both connections from routing frames to it, and cancels the upstream stream if the machine says so.
    private func finish(_ ending: CallStateMachine.Ending) {
        listener.activeCalls.decrement()
        let now = NIODeadline.now()
        let status = machine.finalStatus ?? Self.noStatus
        listener.metrics.callEnded(
            shard: metricsShard, method: method, status: status, failedInProxy: machine.failedInProxy,
            seconds: Double((now - startTime).nanoseconds) / 1e9
        )
        if let replicationStream {
            listener.replicationStreams.close(replicationStream, endedBy: ending.side, now: now)
        }
        downstream.forget(downstreamStreamID)
        plugins?.end(grpcStatus: status)
        if let upstream {
            if ending.cancelsUpstream {
                upstream.writer.write(.rstStream(.cancel), streamID: upstreamStreamID, promise: nil)
                upstream.writer.flush()
            }
            upstream.forget(upstreamStreamID)
        }
    }

    // MARK: Text

    private static func messageName(from sender: CallSide) -> String {
        sender == .client ? "request" : "response"
    }

    private func statusMessage(for failure: CallStateMachine.DataFailure, from sender: CallSide) -> String {
        let name = Self.messageName(from: sender)
        switch failure {
        case .tooLarge(let length):
            return "\(name) message of \(length) bytes exceeds the proxy's limit of \(listener.maxMessageBytes) bytes (limits.maxMessageBytes)"
        case .endsInsideMessage:
            return "the \(name) stream ended in the middle of a message"
        case .unreadable:
            return "s2s-proxy could not read the \(name) bytes"
        }
    }

    private func callMetadata(_ extra: Logger.Metadata) -> Logger.Metadata {
        extra.merging(["method": "\(method)", "stream": "\(Int(downstreamStreamID))"]) { first, _ in first }
    }
}
