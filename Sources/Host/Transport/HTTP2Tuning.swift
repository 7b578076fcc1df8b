// HTTP/2 settings shared by the proxy's server and client connections.
//
// Windows are sized for replication batches of several MiB on links with real latency, while keeping the bytes a
// slow reader can make the proxy hold bounded: at most one stream window per stream and one connection window per
// connection are ever buffered.

import HTTP2Forwarding
import NIOCore

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
    /// An accepted connection that has not sent the client preface and its SETTINGS this long after it was accepted
    /// (a TLS handshake included) is closed: silent or half-open connections must not pile up and take every file
    /// descriptor (`limits.handshakeTimeoutSeconds`). Nil: no limit.
    public var handshakeTimeout: TimeAmount? = .seconds(10)
    /// An accepted connection without a call for this long gets GOAWAY and is closed; clients open a new one when
    /// they need it (`limits.idleTimeoutSeconds`). Nil: never.
    public var idleTimeout: TimeAmount? = .seconds(300)

    public init() {}

    /// Default tuning with the config's upstream keepalive (`upstream.keepaliveIntervalSeconds`; 0 = off) and
    /// downstream timeouts (`limits.handshakeTimeoutSeconds`, `limits.idleTimeoutSeconds`; 0 = off).
    public init(upstreamKeepaliveSeconds: Double, handshakeTimeoutSeconds: Double = 10, idleTimeoutSeconds: Double = 300) {
        upstreamKeepaliveInterval = Self.timeAmount(seconds: upstreamKeepaliveSeconds)
        handshakeTimeout = Self.timeAmount(seconds: handshakeTimeoutSeconds)
        idleTimeout = Self.timeAmount(seconds: idleTimeoutSeconds)
    }

    private static func timeAmount(seconds: Double) -> TimeAmount? {
        seconds > 0 ? .nanoseconds(Int64(seconds * 1e9)) : nil
    }

    /// PING, SETTINGS and RST_STREAM frames a peer may send per 10 s before its connection is closed as a flood.
    /// A tight limit (NIOHTTP2's default, 200 in 30 s) is far below what grpc-go sends in normal work: it answers
    /// nearly every burst of data with a BDP PING (hundreds a second under load) and resets streams it ends early. So an
    /// upstream (a configured Temporal frontend, trusted) may send up to 1 000 000, a downstream client 50 000:
    /// still a bound on a real flood, which sends millions.
    public var upstreamControlFramesPer10Seconds = 1_000_000
    public var downstreamControlFramesPer10Seconds = 50_000

    /// The engine's configuration for a connection the proxy accepts (`.server`) or makes (`.client`).
    func engineConfiguration(for role: H2FrameDecoder.Role) -> H2ConnectionHandler.Configuration {
        var configuration = H2ConnectionHandler.Configuration(role: role)
        configuration.connection.maxConcurrentStreams = maxConcurrentStreams
        configuration.connection.initialWindowSize = streamWindowBytes
        configuration.connection.connectionWindowSize = connectionWindowBytes
        configuration.connection.maxHeaderListSize = maxHeaderListBytes
        let limit = role == .server ? downstreamControlFramesPer10Seconds : upstreamControlFramesPer10Seconds
        configuration.connection.maxControlFramesPerWindow = limit
        configuration.connection.maxResetsPerWindow = limit
        configuration.connection.recentlyResetMemory = 1024
        return configuration
    }
}
