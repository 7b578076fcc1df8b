// BenchHTTP2Tuning: the HTTP/2 settings both benchmark endpoints advertise, and the inbound flow-control
// bookkeeping they need because they handle frames on the connection directly instead of through NIO's stream
// multiplexer (which would otherwise send WINDOW_UPDATE frames for them). Skipping the multiplexer saves a child
// channel per call, which keeps the benchmark tools cheap next to the proxy they measure.

import NIOHTTP2

/// HTTP/2 settings and receive windows shared by the echo server and the load generator.
enum BenchHTTP2Tuning {
    /// Receive window each stream is kept near; large enough that flow control never paces a benchmark stream.
    static let streamWindowSize = 1 << 20
    /// Receive window the whole connection is kept near.
    static let connectionWindowSize = 8 << 20
    /// Streams a peer may open at once on one connection; above any concurrency the benchmark uses.
    static let maxConcurrentStreams = 1024

    /// The SETTINGS each endpoint sends in its connection preface.
    static var initialSettings: HTTP2Settings {
        [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: Self.maxConcurrentStreams),
            HTTP2Setting(parameter: .initialWindowSize, value: Self.streamWindowSize),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 16 * 1024),
        ]
    }

    /// The HTTP/2 codec for one benchmark connection.
    ///
    /// By default it keeps NIO's defence against "rapid reset" floods: more than 200 RST_STREAM frames from the
    /// peer within 30 seconds close the connection with GOAWAY(ENHANCE_YOUR_CALM), as any swift-nio server or
    /// client would. With `toleratingResets` the limit is out of reach (1000 per millisecond; NIO keeps a
    /// timestamp per reset in the window, so a short window keeps that memory small), as with Go's HTTP/2 stack
    /// that Temporal uses.
    ///
    /// Header-block and content-length validation are off: they cost a few percent of the CPU per call, the
    /// benchmark tools only exchange header blocks they built themselves or that a proxy forwarded, and checking
    /// the proxy's protocol conformance is the job of its own tests, not of the tools that time it.
    static func codec(mode: NIOHTTP2Handler.ParserMode, toleratingResets: Bool) -> NIOHTTP2Handler {
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = Self.initialSettings
        connection.headerBlockValidation = .disabled
        connection.contentLengthValidation = .disabled
        var stream = NIOHTTP2Handler.StreamConfiguration()
        if toleratingResets {
            stream.streamResetFrameRateLimit.maximumCount = 1000
            stream.streamResetFrameRateLimit.windowLength = .milliseconds(1)
        }
        return NIOHTTP2Handler(mode: mode, connectionConfiguration: connection, streamConfiguration: stream)
    }

    /// The WINDOW_UPDATE to send after NIO reports a new inbound window, or nil while the window is still more
    /// than half open. Refilling to the target in one frame keeps WINDOW_UPDATE traffic to a few frames per
    /// megabyte received.
    static func windowUpdate(after event: NIOHTTP2WindowUpdatedEvent) -> HTTP2Frame? {
        guard let inboundWindow = event.inboundWindowSize else {
            return nil
        }
        let target = event.streamID == .rootStream ? Self.connectionWindowSize : Self.streamWindowSize
        guard inboundWindow <= target / 2 else {
            return nil
        }
        return HTTP2Frame(streamID: event.streamID, payload: .windowUpdate(windowSizeIncrement: target - inboundWindow))
    }
}
