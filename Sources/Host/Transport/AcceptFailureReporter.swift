// Says why a listener cannot accept, at most once per interval, with what to do about it.
//
// The usual reason is the process's file-descriptor limit: every connection, upstream connection and listener takes
// one, so a burst of clients (or of idle connections, until `limits.handshakeTimeoutSeconds` closes them) can reach
// it. Accepting then fails until some descriptors are freed, and connections wait in the listen backlog: calls
// hang, and without this nothing in the log says why. Failures come in a tight loop, so they are counted and
// reported once per interval, not once each.

import Logging
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

final class AcceptFailureReporter: Sendable {
    private let logger: Logger
    private let interval: TimeAmount
    private let state = NIOLockedValueBox(State())

    private struct State {
        var lastReport: NIODeadline?
        var unreported = 0
    }

    init(logger: Logger, interval: TimeAmount = .seconds(10)) {
        self.logger = logger
        self.interval = interval
    }

    /// An accept failed with `errno`; logs it unless a report went out within the interval (then counts it).
    func acceptFailed(errno code: CInt) {
        let now = NIODeadline.now()
        let failures: Int? = state.withLockedValue { state in
            state.unreported += 1
            if let last = state.lastReport, now - last < interval { return nil }
            state.lastReport = now
            defer { state.unreported = 0 }
            return state.unreported
        }
        guard let failures else { return }
        var metadata: Logger.Metadata = ["failedAccepts": "\(failures)"]
        if code == EMFILE || code == ENFILE {
            var limit = rlimit()
            if getrlimit(CInt(RLIMIT_NOFILE.rawValue), &limit) == 0 {
                metadata["descriptorLimit"] = "\(limit.rlim_cur)"
            }
            logger.error(
                "cannot accept connections: \(code == EMFILE ? "the process" : "the system") has no file descriptors left; new connections wait in the listen backlog until some close (raise the limit: ulimit -n, or LimitNOFILE= in the systemd unit)",
                metadata: metadata
            )
        } else {
            logger.warning("accept failed: \(String(cString: strerror(code)))", metadata: metadata)
        }
    }
}

/// On a NIO server channel: reports accept failures (after `AcceptBackoffHandler`, which pauses accepting for a
/// second after one, so the loop does not spin on a socket it cannot accept from).
final class AcceptFailureLogger: ChannelInboundHandler, Sendable {
    typealias InboundIn = Channel

    private let reporter: AcceptFailureReporter

    init(reporter: AcceptFailureReporter) {
        self.reporter = reporter
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let error = error as? IOError {
            reporter.acceptFailed(errno: error.errnoCode)
        }
        context.fireErrorCaught(error)
    }
}
