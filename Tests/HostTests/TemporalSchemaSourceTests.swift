// The per-connection schema source: a file is ready at once or failed for good; reflection stays pending with the
// reason while nothing answers, retries with back-off, becomes ready when a server appears, and stops retrying
// when stopped. Reflection runs over real loopback sockets against `ReflectionStubServer`.

import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

@testable import Host

/// Keeps the messages logged at warning and above.
private struct CapturingLogHandler: LogHandler {
    let messages: NIOLockedValueBox<[String]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        messages.withLockedValue { $0.append("\(event.level): \(event.message) \(event.metadata ?? [:])") }
    }
}

final class TemporalSchemaSourceTests: XCTestCase {
    typealias Support = SchemaTestSupport

    private var group: MultiThreadedEventLoopGroup!
    private let logged = NIOLockedValueBox<[String]>([])
    private var logger: Logger {
        let messages = logged
        return Logger(label: "test") { _ in CapturingLogHandler(messages: messages) }
    }

    private let fastRetries = TemporalSchemaSource.Settings(
        connectTimeout: .seconds(1), pullTimeout: .seconds(5), backoffInitial: .milliseconds(20), backoffMax: .milliseconds(50)
    )

    override func setUp() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    override func tearDown() {
        try? group.syncShutdownGracefully()
    }

    /// A loopback port that nothing listens on (bound and released).
    private func unusedPort() throws -> Int {
        let channel = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        let port = channel.localAddress!.port!
        try channel.close().wait()
        return port
    }

    private func waitUntil(_ what: String, timeout: TimeInterval = 10, _ condition: () -> Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            if Date() > deadline {
                XCTFail("timed out waiting until \(what); log: \(logged.withLockedValue { $0 })")
                return
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    private func warnings() -> [String] {
        logged.withLockedValue { $0.filter { $0.hasPrefix("warning") } }
    }

    // MARK: File origin

    func testFileOriginIsReadyOnStartAndCallsBackAtOnce() throws {
        let source = TemporalSchemaSource(origin: .file(Support.devServerFixturePath), settings: fastRetries, logger: logger)
        let calls = NIOLockedValueBox(0)
        source.whenReady { _ in calls.withLockedValue { $0 += 1 } }
        XCTAssertEqual(calls.withLockedValue { $0 }, 0, "not before start")
        source.start(group: group)
        XCTAssertEqual(calls.withLockedValue { $0 }, 1)
        guard case .ready(let schema) = source.currentState else { return XCTFail("\(source.currentState)") }
        XCTAssertEqual(schema.services.count, 3)
        source.whenReady { _ in calls.withLockedValue { $0 += 1 } }
        XCTAssertEqual(calls.withLockedValue { $0 }, 2, "registered when ready: called at once")
        source.start(group: group)
        XCTAssertEqual(calls.withLockedValue { $0 }, 2, "a second start does nothing")
        XCTAssertTrue(logged.withLockedValue { $0 }.contains { $0.hasPrefix("info: Temporal schema ready") })
    }

    func testUnusableFileOriginFailsWithoutRetrying() throws {
        let source = TemporalSchemaSource(origin: .file("/nonexistent/temporal.binpb"), settings: fastRetries, logger: logger)
        source.start(group: group)
        XCTAssertEqual(source.currentState, .failed(.fileUnreadable(path: "/nonexistent/temporal.binpb", reason: "no such file")))
    }

    // MARK: Reflection origin

    func testReflectionStaysPendingWithTheReasonRetriesAndBecomesReadyWhenTheServerAppears() throws {
        let port = try unusedPort()
        let source = TemporalSchemaSource(
            origin: .reflection(HostAndPort(host: "127.0.0.1", port: port)), settings: fastRetries, logger: logger
        )
        defer { source.stop() }
        let ready = NIOLockedValueBox<TemporalSchema?>(nil)
        source.whenReady { schema in ready.withLockedValue { $0 = schema } }
        source.start(group: group)
        waitUntil("two failed pulls") { warnings().count >= 2 }
        guard case .pending(let reason) = source.currentState else { return XCTFail("\(source.currentState)") }
        XCTAssertTrue(reason.hasPrefix("the Temporal schema is not available yet: cannot pull the Temporal schema from 127.0.0.1:\(port): connection refused"), reason)
        XCTAssertTrue(warnings()[0].contains("retryInSeconds"), warnings()[0])

        let server = try ReflectionStubServer(
            group: group, descriptorSetBytes: try TemporalSchema.load(file: Support.devServerFixturePath).descriptorSetBytes
        )
        XCTAssertEqual(try server.start(port: port), port)
        defer { try? server.stop() }
        waitUntil("the schema is ready") { ready.withLockedValue { $0 } != nil }
        let schema = try XCTUnwrap(ready.withLockedValue { $0 })
        XCTAssertEqual(schema.serviceNames.count, 3)
        XCTAssertEqual(schema.source, "reflection from 127.0.0.1:\(port)")
        XCTAssertEqual(source.currentState, .ready(schema))
    }

    func testStopEndsTheRetries() throws {
        let source = TemporalSchemaSource(
            origin: .reflection(HostAndPort(host: "127.0.0.1", port: try unusedPort())), settings: fastRetries, logger: logger
        )
        source.whenReady { _ in XCTFail("never ready") }
        source.start(group: group)
        waitUntil("a failed pull") { warnings().count >= 1 }
        source.stop()
        Thread.sleep(forTimeInterval: 0.1)
        let count = warnings().count
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(warnings().count, count, "no pulls after stop")
    }

    // MARK: Settings and origin from the config

    func testBackoffGrowsBy1Point6UpToTheMaximum() {
        let settings = TemporalSchemaSource.Settings(upstream: UpstreamConfig(
            connectTimeoutSeconds: 2, reconnectBackoffInitialSeconds: 1, reconnectBackoffMaxSeconds: 3
        ))
        XCTAssertEqual(settings.connectTimeout, .seconds(2))
        XCTAssertEqual((1...5).map { settings.delay(afterFailures: $0).nanoseconds / 1_000_000 }, [1000, 1600, 2560, 3000, 3000])
    }

    func testOriginFollowsTheConnectionConfig() {
        var connection = ClusterConnectionConfig(
            local: ClusterDefinition(tcpClient: EndpointConfig(address: "temporal:7233"))
        )
        XCTAssertEqual(TemporalSchemaSource.Origin(connection: connection), .reflection(HostAndPort(host: "temporal", port: 7233)))
        connection.schema = SchemaConfig(reflectionAddress: "10.0.0.1:7233")
        XCTAssertEqual(TemporalSchemaSource.Origin(connection: connection), .reflection(HostAndPort(host: "10.0.0.1", port: 7233)))
        connection.schema = SchemaConfig(file: "/etc/s2s/temporal.binpb")
        XCTAssertEqual(TemporalSchemaSource.Origin(connection: connection), .file("/etc/s2s/temporal.binpb"))
        XCTAssertNil(TemporalSchemaSource.Origin(connection: ClusterConnectionConfig()), "no local.tcpClient to ask")
    }
}
