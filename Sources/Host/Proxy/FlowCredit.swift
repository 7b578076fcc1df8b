// Inbound HTTP/2 flow-control credit that the proxy hands back to a peer once forwarded bytes have left.
//
// The proxy runs NIO's HTTP/2 handler without a stream multiplexer, so it, not NIO, decides when a peer may send
// more: bytes received on a stream are granted back (WINDOW_UPDATE) only after the proxy wrote them to the other
// side's socket. A slow reader on one side therefore closes the window of the writer on the other side, and no
// more than one window per stream (and one per connection) is ever held in the proxy.

/// Bytes consumed but not yet granted back, batched so that a WINDOW_UPDATE goes out only per `threshold` bytes.
struct FlowCredit {
    private(set) var pending = 0
    let threshold: Int

    init(window: Int) {
        // A quarter of the window keeps the sender busy while the update travels, with few WINDOW_UPDATE frames.
        threshold = max(1, window / 4)
    }

    /// Records `bytes` as forwarded; returns the increment to announce now, if the batch is full.
    mutating func release(_ bytes: Int) -> Int? {
        pending += bytes
        guard pending >= threshold else { return nil }
        defer { pending = 0 }
        return pending
    }
}

extension HTTP2FlowControlledLength {
    /// The number of bytes a DATA frame takes from the flow-control windows: payload, padding and the pad-length byte.
    static func of(_ data: HTTP2Frame.FramePayload.Data) -> Int {
        data.data.readableBytes + (data.paddingBytes.map { $0 + 1 } ?? 0)
    }
}

/// Namespace for flow-control arithmetic.
enum HTTP2FlowControlledLength {}

import NIOHTTP2
