// Short, human-readable descriptions of socket addresses and network errors for logs and grpc-message texts.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL

extension SocketAddress {
    /// `127.0.0.1:7233` or `[::1]:7233`, without NIO's `[IPv4]host/ip:` decoration.
    var endpointDescription: String {
        guard let ip = ipAddress, let port else { return "\(self)" }
        if case .v6 = self { return "[\(ip)]:\(port)" }
        return "\(ip):\(port)"
    }
}

enum NetworkErrorDescription {
    /// Describes `error` the way an operator wants to read it: "connection refused", "connect timed out".
    static func describe(_ error: Error) -> String {
        if let io = error as? IOError {
            return String(cString: strerror(io.errnoCode)).lowercased()
        }
        if let channelError = error as? ChannelError {
            switch channelError {
            case .connectTimeout(let amount):
                return "connect timed out after \(amount.nanoseconds / 1_000_000) ms"
            case .ioOnClosedChannel, .alreadyClosed, .eof:
                return "connection closed"
            default:
                return "\(channelError)"
            }
        }
        if let connection = error as? NIOConnectionError {
            // NIO's name-based connect: the first address's failure says most, else the name did not resolve.
            if let first = connection.connectionErrors.first {
                return describe(first.error)
            }
            return "cannot resolve \(connection.host)"
        }
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            return TLSFailureDescription.describe(error)
        }
        if error is NIOHTTP2Errors.BadClientMagic {
            return "the client did not start with the HTTP/2 connection preface (not gRPC over HTTP/2?)"
        }
        return "\(error)"
    }
}
