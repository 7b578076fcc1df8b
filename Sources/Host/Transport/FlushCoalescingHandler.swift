// Coalesces the flushes of one connection that happen within one event-loop tick into a single socket write.
//
// A proxy writes to a connection from many calls whose bytes arrive on *other* connections: each call's HTTP/2
// stream flushes on its own, and NIO turns each flush into a `writev`. Sitting next to the socket, this handler
// defers a flush to the end of the current tick (after the event loop has handled all ready I/O), so every call
// that finished in that tick shares one system call.

import NIOCore

final class FlushCoalescingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var flushScheduled = false

    func flush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            context.flush()
        }
    }
}
