// The upstream pool against real HTTP/2 servers on loopback addresses: a name that resolves to several addresses
// gets one connection per address and calls spread round-robin over them.

import Logging
import NIOCore
import NIOHTTP2
import NIOPosix
import XCTest

@testable import Host

/// A name that resolves to a fixed list of addresses.
private struct FixedResolver: UpstreamAddressResolving {
    let addresses: [SocketAddress]

    func resolve(_ target: HostAndPort, on eventLoop: EventLoop) -> EventLoopFuture<[SocketAddress]> {
        eventLoop.makeSucceededFuture(addresses)
    }
}

final class UpstreamConnectionPoolTests: LoopbackServerTestCase {
    /// An HTTP/2 server that accepts connections and ignores streams: enough for a pool to connect to.
    private func startServer(host: String, port: Int) throws -> SocketAddress {
        let server = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server))
                }
            }
            .bind(host: host, port: port).wait()
        servers.append(server)
        return server.localAddress!
    }

    private func makePool(addresses: [SocketAddress]) -> UpstreamConnectionPool {
        let settings = UpstreamPoolSettings(
            connectTimeout: .seconds(2), backoffInitial: .milliseconds(100), backoffMax: .seconds(1), tuning: HTTP2Tuning()
        )
        return UpstreamConnectionPool(
            target: HostAndPort(host: "several.example", port: addresses[0].port!),
            eventLoop: group.next(), settings: settings, resolver: FixedResolver(addresses: addresses),
            logger: Logger(label: "test")
        )
    }

    private func acquireAddress(_ pool: UpstreamConnectionPool) throws -> String {
        try pool.eventLoop.flatSubmit { pool.acquire() }.map { "\($0.address.ipAddress!)" }.wait()
    }

    func testCallsSpreadRoundRobinOverEveryResolvedAddress() throws {
        let first = try startServer(host: "127.0.0.2", port: 0)
        let second = try startServer(host: "127.0.0.3", port: first.port!)
        let pool = makePool(addresses: [first, second])
        defer { try? pool.eventLoop.submit { pool.close() }.wait() }

        // The first call waits for the first connection; the second address's connection comes up next to it.
        // Once both are up, calls alternate.
        let deadline = Date().addingTimeInterval(5)
        var seen: Set<String> = []
        while seen.count < 2 && Date() < deadline {
            seen.insert(try acquireAddress(pool))
            Thread.sleep(forTimeInterval: 0.01)
        }
        let picks = try (0..<6).map { _ in try acquireAddress(pool) }
        XCTAssertEqual(Set(picks), ["127.0.0.2", "127.0.0.3"])
        XCTAssertEqual(picks.filter { $0 == "127.0.0.2" }.count, 3, "\(picks)")
        for index in 1..<picks.count {
            XCTAssertNotEqual(picks[index], picks[index - 1], "not round-robin: \(picks)")
        }
    }

    func testAReadyConnectionIsHandedOutWithoutAFutureAndInTheSameRoundRobin() throws {
        let first = try startServer(host: "127.0.0.2", port: 0)
        let second = try startServer(host: "127.0.0.3", port: first.port!)
        let pool = makePool(addresses: [first, second])
        defer { try? pool.eventLoop.submit { pool.close() }.wait() }
        // Before anything connected there is nothing ready: the caller goes through `acquire`.
        XCTAssertNil(try pool.eventLoop.submit { pool.acquireReady() }.wait())
        let deadline = Date().addingTimeInterval(5)
        var seen: Set<String> = []
        while seen.count < 2 && Date() < deadline {
            seen.insert(try acquireAddress(pool))
            Thread.sleep(forTimeInterval: 0.01)
        }
        let picks = try (0..<4).map { index in
            try pool.eventLoop.submit {
                // Ready and acquired connections take turns in one rotation.
                index % 2 == 0 ? pool.acquireReady().map { "\($0.address.ipAddress!)" } : nil
            }.wait() ?? acquireAddress(pool)
        }
        for index in 1..<picks.count {
            XCTAssertNotEqual(picks[index], picks[index - 1], "not round-robin: \(picks)")
        }
        try pool.eventLoop.submit { pool.close() }.wait()
        XCTAssertNil(try pool.eventLoop.submit { pool.acquireReady() }.wait(), "a closed pool hands out nothing")
    }

    func testAnAddressThatRefusesIsSkippedWhileAnotherServes() throws {
        let serving = try startServer(host: "127.0.0.2", port: 0)
        // Nothing listens on 127.0.0.3 at that port.
        let refusing = try SocketAddress(ipAddress: "127.0.0.3", port: serving.port!)
        let pool = makePool(addresses: [refusing, serving])
        defer { try? pool.eventLoop.submit { pool.close() }.wait() }

        let picks = try (0..<4).map { _ in try acquireAddress(pool) }
        XCTAssertEqual(Set(picks), ["127.0.0.2"])
    }

    func testNoReachableAddressFailsAtOnceWithTheReason() throws {
        let probe = try startServer(host: "127.0.0.2", port: 0)
        let port = probe.port!
        try servers.removeLast().close().wait()
        let pool = makePool(addresses: [try SocketAddress(ipAddress: "127.0.0.2", port: port)])
        defer { try? pool.eventLoop.submit { pool.close() }.wait() }

        XCTAssertThrowsError(try acquireAddress(pool)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("several.example:\(port)"), message)
            XCTAssertTrue(message.contains("connection refused"), message)
        }
        // While backing off, the next call fails without waiting for a connect.
        let started = Date()
        XCTAssertThrowsError(try acquireAddress(pool))
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.05)
    }
}

import Foundation
