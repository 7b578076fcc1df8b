// One stream's protocol state as the connection tracks it (RFC 9113 5.1): which ends are still open, and the two
// flow-control windows. Idle and closed streams have no entry: an idle stream is one above the last id used, a closed
// one is below it and absent (or among the recently reset, whose late frames are ignored).

/// The states of RFC 9113 5.1 in which a stream exists.
public enum H2StreamLifecycle: Sendable, Equatable {
    /// Both ends may send.
    case open
    /// This end sent END_STREAM; the peer may still send.
    case halfClosedLocal
    /// The peer sent END_STREAM; this end may still send.
    case halfClosedRemote
}

struct H2StreamState: Sendable {
    var lifecycle: H2StreamLifecycle
    /// What this end may still send on the stream (the peer's grants), in bytes. May go negative when the peer
    /// lowers SETTINGS_INITIAL_WINDOW_SIZE (RFC 9113 6.9.2).
    var sendWindow: Int
    /// What the peer may still send on the stream before this end grants more, in bytes.
    var receiveWindow: Int
    /// Bytes the stream's owner forwarded that have not been granted back to the peer yet (batched).
    var pendingCredit = 0
    /// The peer sent its first header block (a request opens the stream with it; a response's comes later). Only a
    /// header block after that must end the stream: it is trailers.
    var peerHeadersReceived = true
    /// DATA bytes the peer still owes when its header block declared a content-length (RFC 9113 8.1.1); nil when it
    /// declared none.
    var contentLengthRemaining: Int?

    var peerMaySend: Bool { lifecycle != .halfClosedRemote }
    var localMaySend: Bool { lifecycle != .halfClosedLocal }

    /// The peer ended its side; true when the stream is now closed.
    mutating func peerEnded() -> Bool {
        switch lifecycle {
        case .open:
            lifecycle = .halfClosedRemote
            return false
        case .halfClosedLocal, .halfClosedRemote:
            return true
        }
    }

    /// This end ended its side; true when the stream is now closed.
    mutating func localEnded() -> Bool {
        switch lifecycle {
        case .open:
            lifecycle = .halfClosedLocal
            return false
        case .halfClosedRemote, .halfClosedLocal:
            return true
        }
    }
}
