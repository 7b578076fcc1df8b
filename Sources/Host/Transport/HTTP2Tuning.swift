// HTTP/2 settings shared by the proxy's server and client connections.
//
// Windows are sized for replication batches of several MiB on links with real latency, while keeping the bytes a
// slow reader can make the proxy hold bounded: at most one stream window per stream and one connection window per
// connection are ever buffered.

import NIOCore
import NIOHTTP2

/// HTTP/2 connection and stream parameters of the proxy.
public struct HTTP2Tuning: Sendable {
    /// Per-stream receive window advertised to peers, in bytes.
    public var streamWindowBytes: Int = 1 << 20
    /// Connection-level receive window, in bytes.
    public var connectionWindowBytes: Int = 8 << 20
    /// Concurrent streams a downstream client may open on one connection. Temporal workers keep many long polls open.
    public var maxConcurrentStreams: Int = 4096
    /// Largest header block accepted.
    public var maxHeaderListBytes: Int = 64 << 10
    /// An upstream connection with calls in flight that is silent for this long gets a PING; if the next interval
    /// passes without its answer, the connection is closed (a peer or middlebox that vanished without closing) and
    /// the pool reconnects. Nil: no pings (`upstream.keepaliveIntervalSeconds: 0`).
    public var upstreamKeepaliveInterval: TimeAmount? = .seconds(300)

    public init() {}

    /// Default tuning with the upstream keepalive of the config (`upstream.keepaliveIntervalSeconds`; 0 = off).
    public init(upstreamKeepaliveSeconds: Double) {
        upstreamKeepaliveInterval = upstreamKeepaliveSeconds > 0 ? .nanoseconds(Int64(upstreamKeepaliveSeconds * 1e9)) : nil
    }

    /// SETTINGS the proxy announces on every connection it accepts or makes.
    var initialSettings: HTTP2Settings {
        [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: maxHeaderListBytes),
            HTTP2Setting(parameter: .initialWindowSize, value: streamWindowBytes),
        ]
    }
}
