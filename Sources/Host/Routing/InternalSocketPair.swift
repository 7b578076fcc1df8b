// A connected pair of Unix stream sockets, each end a NIO channel on the loop its owner needs: how routing mode puts
// its own HTTP/2 endpoints behind the listeners' forwarding code without a port (docs/design/routing.md).

import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum InternalSocketPair {
    struct Failure: Error, CustomStringConvertible {
        let errno: Int32
        var description: String { "cannot create an internal socket pair: \(String(cString: strerror(errno)))" }
    }

    /// Two connected channels: the first on `firstLoop` set up by `first`, the second on `secondLoop` by `second`.
    static func make(
        _ firstLoop: EventLoop, _ first: @escaping @Sendable (Channel) throws -> Void,
        _ secondLoop: EventLoop, _ second: @escaping @Sendable (Channel) throws -> Void
    ) -> EventLoopFuture<(Channel, Channel)> {
        var descriptors: [Int32] = [-1, -1]
        #if canImport(Glibc)
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        #else
        let type = SOCK_STREAM
        #endif
        guard socketpair(AF_UNIX, type, 0, &descriptors) == 0 else {
            return firstLoop.makeFailedFuture(Failure(errno: errno))
        }
        // Replication batches are large: big socket buffers and reads mean few system calls per batch.
        for descriptor in descriptors {
            var size: CInt = 4 << 20
            _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<CInt>.size))
            _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<CInt>.size))
        }
        let reads = AdaptiveRecvByteBufferAllocator(minimum: 64 << 10, initial: 256 << 10, maximum: 1 << 20)
        let firstChannel = ClientBootstrap(group: firstLoop)
            .channelOption(ChannelOptions.recvAllocator, value: reads)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try first(channel) } }
            .withConnectedSocket(descriptors[0])
        let secondChannel = ClientBootstrap(group: secondLoop)
            .channelOption(ChannelOptions.recvAllocator, value: reads)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try second(channel) } }
            .withConnectedSocket(descriptors[1])
        // If one end fails to start, the other is closed rather than left open with nobody at the far end.
        let both = firstChannel.and(secondChannel)
        both.whenFailure { _ in
            firstChannel.whenSuccess { $0.close(promise: nil) }
            secondChannel.whenSuccess { $0.close(promise: nil) }
        }
        return both
    }
}
