// Name resolution for upstream addresses: every address a name resolves to, so calls can be spread over all of them.
//
// NIO's bootstraps resolve a name to the one address they connect to; round-robin over a headless Service's
// endpoints needs the whole list, so this asks getaddrinfo directly on a thread pool (it blocks).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix

/// Turns an upstream `host:port` into the addresses to connect to; `AddressResolver` in the proxy, fixed lists in tests.
protocol UpstreamAddressResolving: Sendable {
    func resolve(_ target: HostAndPort, on eventLoop: EventLoop) -> EventLoopFuture<[SocketAddress]>
}

/// Resolves host names to socket addresses off the event loops.
public struct AddressResolver: UpstreamAddressResolving {
    private let threadPool: NIOThreadPool

    public init(threadPool: NIOThreadPool) {
        self.threadPool = threadPool
    }

    /// Every TCP address `target` resolves to, in the order the system returns them, without duplicates.
    public func resolve(_ target: HostAndPort, on eventLoop: EventLoop) -> EventLoopFuture<[SocketAddress]> {
        if let literal = try? SocketAddress(ipAddress: target.host, port: target.port) {
            return eventLoop.makeSucceededFuture([literal])
        }
        return threadPool.runIfActive(eventLoop: eventLoop) {
            try AddressResolver.lookUp(target)
        }
    }

    private static func lookUp(_ target: HostAndPort) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Darwin)
        hints.ai_socktype = SOCK_STREAM
        #else
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #endif
        hints.ai_protocol = Int32(IPPROTO_TCP)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(target.host, String(target.port), &hints, &result)
        guard status == 0, let first = result else {
            let reason = status == 0 ? "no addresses" : String(cString: gai_strerror(status))
            throw AddressResolutionError(target: target, reason: reason)
        }
        defer { freeaddrinfo(first) }
        var addresses: [SocketAddress] = []
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let info = next {
            if let sockaddr = info.pointee.ai_addr {
                let address: SocketAddress?
                switch info.pointee.ai_family {
                case AF_INET:
                    address = sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                        SocketAddress($0.pointee, host: target.host)
                    }
                case AF_INET6:
                    address = sockaddr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                        SocketAddress($0.pointee, host: target.host)
                    }
                default:
                    address = nil
                }
                if let address, !addresses.contains(address) {
                    addresses.append(address)
                }
            }
            next = info.pointee.ai_next
        }
        if addresses.isEmpty {
            throw AddressResolutionError(target: target, reason: "no IPv4 or IPv6 addresses")
        }
        return addresses
    }
}

/// A name that could not be resolved.
public struct AddressResolutionError: Error, CustomStringConvertible {
    public var target: HostAndPort
    public var reason: String

    public var description: String { "cannot resolve \(target.host): \(reason)" }
}
