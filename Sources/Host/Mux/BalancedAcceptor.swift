// A listening socket whose accepted connections go to the event loop a chooser picks, per connection.
//
// NIO's ServerBootstrap spreads accepted connections round-robin over its group and takes no custom group, but a
// mux connection needs more: a call can only use a yamux session on its own loop (MuxSessionPool), so the outbound
// listener of a mux connection hands local Temporal's connections to loops that have a session, and the mux server
// hands new sessions to the loop with the fewest. So this accepts on a thread of its own, with the socket API, and
// gives each accepted socket to `ClientBootstrap.withConnectedSocket` on the chosen loop.

import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

final class BalancedAcceptor: Sendable {
    private let chooseLoop: @Sendable () -> EventLoop
    private let initializer: @Sendable (Channel) -> EventLoopFuture<Void>
    private let logger: Logger
    private let acceptFailures: AcceptFailureReporter
    private let state = NIOLockedValueBox(State())

    private struct State {
        var descriptor: CInt = -1
        var stopped = false
    }

    init(
        logger: Logger, chooseLoop: @escaping @Sendable () -> EventLoop,
        initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) {
        self.logger = logger
        self.acceptFailures = AcceptFailureReporter(logger: logger)
        self.chooseLoop = chooseLoop
        self.initializer = initializer
    }

    /// Binds and listens on `host:port` ("" = every IPv4 address) and starts accepting; the bound address.
    func start(host: String, port: Int, backlog: CInt = 1024) throws -> SocketAddress {
        let address = try SocketAddress.makeAddressResolvingHost(host.isEmpty ? "0.0.0.0" : host, port: port)
        let family = address.protocol == .inet6 ? AF_INET6 : AF_INET
        let descriptor = socket(family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var one: CInt = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        let bound = address.withSockAddr { pointer, length in bind(descriptor, pointer, socklen_t(length)) }
        guard bound == 0, listen(descriptor, backlog) == 0 else {
            let code = errno
            close(descriptor)
            throw IOError(errnoCode: code, reason: "bind")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        let local = named == 0 ? try? SocketAddress(storage) : nil
        state.withLockedValue { $0.descriptor = descriptor }
        let thread = Thread { self.acceptLoop(descriptor) }
        thread.name = "s2s-accept"
        thread.start()
        return local ?? address
    }

    /// Stops accepting and closes the socket; connections already accepted are not touched.
    func stop() {
        let descriptor = state.withLockedValue { state -> CInt in
            state.stopped = true
            defer { state.descriptor = -1 }
            return state.descriptor
        }
        if descriptor >= 0 {
            shutdown(descriptor, CInt(SHUT_RDWR))
            close(descriptor)
        }
    }

    private func acceptLoop(_ descriptor: CInt) {
        while true {
            let accepted = accept(descriptor, nil, nil)
            if accepted < 0 {
                if state.withLockedValue({ $0.stopped }) { return }
                let code = errno
                if code == EINTR || code == ECONNABORTED { continue }
                acceptFailures.acceptFailed(errno: code)
                if code == EBADF || code == EINVAL { return }
                // Out of descriptors or memory: back off a little rather than spin.
                usleep(100_000)
                continue
            }
            _ = fcntl(accepted, F_SETFD, FD_CLOEXEC)
            var one: CInt = 1
            setsockopt(accepted, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
            let loop = chooseLoop()
            let initializer = self.initializer
            ClientBootstrap(group: loop)
                .channelInitializer { initializer($0) }
                .withConnectedSocket(accepted)
                .whenFailure { error in
                    self.logger.warning("cannot take an accepted connection", metadata: ["error": "\(error)"])
                }
        }
    }
}

extension SocketAddress {
    fileprivate init(_ storage: sockaddr_storage) throws {
        var storage = storage
        switch CInt(storage.ss_family) {
        case AF_INET:
            self = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: "") }
            }
        case AF_INET6:
            self = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: "") }
            }
        default:
            throw ChannelError.operationUnsupported
        }
    }
}
