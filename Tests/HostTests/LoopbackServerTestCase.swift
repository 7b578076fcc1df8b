// A test case with one event loop and loopback servers that are closed after each test: the shape of the tests
// that dial real sockets (upstream pools, upstream TLS, the health probe's handshake).

import NIOCore
import NIOPosix
import XCTest

class LoopbackServerTestCase: XCTestCase {
    var group: MultiThreadedEventLoopGroup!
    /// Servers started by the test; closed in `tearDown`.
    var servers: [Channel] = []

    override func setUp() {
        super.setUp()
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    override func tearDown() {
        for server in servers { try? server.close().wait() }
        servers = []
        try? group.syncShutdownGracefully()
        super.tearDown()
    }

    /// A loopback server whose accepted connections get `configure`.
    func startServer(_ configure: @escaping @Sendable (Channel) throws -> Void) throws -> SocketAddress {
        let server = try ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try configure(channel) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        servers.append(server)
        return try XCTUnwrap(server.localAddress)
    }
}
