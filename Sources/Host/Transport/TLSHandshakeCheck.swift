// A TLS handshake made only to see whether it succeeds: the health probe of a TLS upstream.
//
// Owns `TLSHandshakeCheck`, the handler right behind the TLS client handler on a probe connection. It completes its
// future when the handshake completes, fails it with the reason when the handshake fails, the peer closes first or
// the time runs out, and logs nothing: the health answer carries the reason, and a load balancer polling a broken
// upstream should not fill the log with one warning per poll.

import NIOCore
import NIOSSL
import NIOTLS

/// Why a handshake check did not complete.
struct TLSHandshakeCheckError: Error, CustomStringConvertible {
    let description: String
}

final class TLSHandshakeCheck: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let promise: EventLoopPromise<Void>
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    /// Completes `promise` with the handshake's outcome, failing it after `timeout` without one.
    init(promise: EventLoopPromise<Void>, timeout: TimeAmount) {
        self.promise = promise
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let promise = self.promise
        let timeout = self.timeout
        timer = context.eventLoop.scheduleTask(in: timeout) {
            promise.fail(TLSHandshakeCheckError(
                description: "no answer to the TLS handshake within \(timeout.nanoseconds / 1_000_000) ms"
            ))
        }
        // The promise may be failed by the timer while the connection is still open: close it then.
        let channel = context.channel
        promise.futureResult.whenFailure { _ in channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(.failure(TLSHandshakeCheckError(description: "the connection closed before the TLS handshake finished")))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            finish(.success(()))
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        finish(.failure(TLSHandshakeCheckError(description: TLSFailureDescription.describe(error))))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(TLSHandshakeCheckError(
            description: "the peer closed the connection before the TLS handshake finished"
        )))
        context.fireChannelInactive()
    }

    /// The first outcome wins; later ones (the close that follows a failure) change nothing.
    private func finish(_ result: Result<Void, Error>) {
        timer?.cancel()
        timer = nil
        promise.completeWith(result)
    }
}
