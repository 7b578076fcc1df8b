// The settings of a yamux session. The defaults are hashicorp/yamux's, which the Go s2s-proxy runs with (its
// client side shortens the stream close timeout to 30 s), so that a session with it behaves the same from both ends.

import NIOCore

/// Which end of the connection a session is: the dialer (client) opens odd stream ids, the acceptor even ones.
public enum YamuxRole: Sendable, Hashable {
    case client
    case server
}

/// How a yamux session runs.
public struct YamuxConfiguration: Sendable {
    /// The receive window every stream starts with, fixed by the protocol: 256 KiB.
    public static let initialWindow: UInt32 = 256 * 1024

    /// The receive window granted to the peer per stream; more than ``initialWindow`` is announced with the frame
    /// that opens or accepts the stream. Bounds what one stream can make this side buffer.
    public var receiveWindow: UInt32 = YamuxConfiguration.initialWindow
    /// The most streams the peer may have open on the session at once; a SYN beyond it is refused with RST
    /// (hashicorp/yamux's accept backlog is 256).
    public var maximumPeerStreams: Int = 256
    /// The largest data frame this side sends; larger writes are cut into frames of this size, so that one stream's
    /// big message does not hold the connection for long.
    public var maximumFrameSize: UInt32 = 64 * 1024
    /// A stream stops being writable while this many bytes wait for the peer's window; writable again below half.
    public var streamWriteBufferLimit: Int = 1024 * 1024
    /// How often to ping the peer; nil: never. A ping unanswered within ``keepaliveTimeout`` ends the session.
    public var keepaliveInterval: TimeAmount? = .seconds(30)
    /// How long a ping may go unanswered.
    public var keepaliveTimeout: TimeAmount = .seconds(10)
    /// How long a stream this side opened may wait for the peer's ACK before it is reset.
    public var streamOpenTimeout: TimeAmount = .seconds(75)
    /// How long a stream this side closed may wait for the peer to close its half before it is reset.
    public var streamCloseTimeout: TimeAmount = .minutes(5)

    public init() {}
}
