// ProxyLogHandler, LogOutput and LogLimits without a process: components on loggers, per-component rate limits
// and silencing, the root limit for components without their own, drop reports, reloads, and the line formats.

import Foundation
import Logging
import NIOConcurrencyHelpers
import XCTest

@testable import Host

final class ProxyLogHandlerTests: XCTestCase {
    /// A clock the test moves, and the lines written.
    private final class Harness: Sendable {
        let time = NIOLockedValueBox(1000.0)
        let lines = NIOLockedValueBox<[String]>([])
        let limits: LogLimits
        let output: LogOutput

        init(format: LogFormat = .text, logging: LoggingConfig? = nil, logConfigs: [String: LoggingConfig] = [:]) {
            let time = self.time
            let lines = self.lines
            limits = LogLimits(logging: logging, logConfigs: logConfigs, now: { time.withLockedValue { $0 } })
            output = LogOutput(format: format, limits: limits) { line in
                lines.withLockedValue { $0.append(line) }
            }
        }

        func logger(_ component: LogComponent? = nil, level: Logger.Level = .info) -> Logger {
            let logger = Logger(label: "s2s-proxy") { label in
                ProxyLogHandler(label: label, level: level, output: self.output)
            }
            return component.map { logger.component($0) } ?? logger
        }

        func advance(_ seconds: Double) {
            time.withLockedValue { $0 += seconds }
        }

        func written(containing text: String) -> [String] {
            lines.withLockedValue { $0 }.filter { $0.contains(text) }
        }
    }

    func testEveryTextLineCarriesItsComponentAsATag() {
        let harness = Harness()
        var logger = harness.logger(.tcpServer)
        logger[metadataKey: "peer"] = "127.0.0.1:5"
        logger.info("connection opened")
        harness.logger().info("no component")
        let lines = harness.lines.withLockedValue { $0 }
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines[0].contains(" info s2s-proxy[tcpServer]: peer=127.0.0.1:5 ["), lines[0])
        XCTAssertTrue(lines[0].hasSuffix("] connection opened\n"), lines[0])
        XCTAssertTrue(lines[1].contains(" info s2s-proxy: ["), lines[1])
    }

    func testJSONLinesHaveAComponentFieldAndTheMetadata() throws {
        let harness = Harness(format: .json)
        harness.logger(.startup).info("started", metadata: ["version": "dev"])
        let line = try XCTUnwrap(harness.lines.withLockedValue { $0 }.first)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        XCTAssertEqual(object["component"], "init")
        XCTAssertEqual(object["version"], "dev")
        XCTAssertEqual(object["message"], "started")
        XCTAssertEqual(object["logger"], "s2s-proxy")
    }

    func testTheComponentReadsBackAndIsNotPlainMetadata() {
        let harness = Harness()
        let logger = harness.logger(.muxManager)
        XCTAssertEqual(logger[metadataKey: LogComponent.metadataKey], .string("muxManager"))
        logger.info("x")
        XCTAssertEqual(harness.written(containing: "component=").count, 0)
    }

    func testAConfiguredComponentIsLimitedToItsRateWhileAnotherStillLogs() {
        let harness = Harness(logConfigs: ["tcpServer": LoggingConfig(throttleMaxRPS: 2)])
        let listener = harness.logger(.tcpServer)
        let health = harness.logger(.healthCheck)
        for _ in 0..<10 { listener.info("connection opened") }
        for _ in 0..<10 { health.info("probe") }
        XCTAssertEqual(harness.written(containing: "connection opened").count, 2)
        XCTAssertEqual(harness.written(containing: "probe").count, 10)
        harness.advance(1)
        listener.info("connection opened")
        let notice = "8 log lines of tcpServer dropped by logConfigs.tcpServer.throttleMaxRPS (2/s)"
        XCTAssertEqual(harness.written(containing: notice).count, 1)
        XCTAssertEqual(harness.written(containing: "connection opened").count, 3)
    }

    func testUnconfiguredComponentsShareTheRootLimit() {
        let harness = Harness(logging: LoggingConfig(throttleMaxRPS: 3))
        for _ in 0..<5 { harness.logger(.tcpServer).info("a") }
        for _ in 0..<5 { harness.logger(.healthCheck).info("b") }
        harness.logger().info("c")
        XCTAssertEqual(harness.lines.withLockedValue { $0 }.count, 3)
        XCTAssertEqual(harness.limits.dropTotals(), [
            .init(component: .healthCheck, rateLimited: 5, silenced: 0),
            .init(component: .tcpServer, rateLimited: 2, silenced: 0),
            .init(component: nil, rateLimited: 1, silenced: 0),
        ])
    }

    func testWithoutAnyLimitNothingIsDropped() {
        let harness = Harness()
        for _ in 0..<100 { harness.logger(.workflowService).info("call failed in proxy") }
        XCTAssertEqual(harness.lines.withLockedValue { $0 }.count, 100)
    }

    func testGoDefaultsApplyToAdminServiceAndReplicationStreams() {
        let harness = Harness()
        for _ in 0..<10 { harness.logger(.adminService).info("admin") }
        for _ in 0..<10 { harness.logger(.replicationStreams).info("stream") }
        XCTAssertEqual(harness.written(containing: "admin").count, 3)
        // 0.05 lines per second: one now, the next 20 seconds later.
        XCTAssertEqual(harness.written(containing: "stream").count, 1)
        harness.advance(10)
        harness.logger(.replicationStreams).info("stream")
        XCTAssertEqual(harness.written(containing: "stream").count, 1)
        harness.advance(10)
        harness.logger(.replicationStreams).info("stream")
        XCTAssertEqual(harness.written(containing: "stream").count, 2)
        let notice = "10 log lines of replicationStreams dropped by the default limit"
        XCTAssertEqual(harness.written(containing: notice).count, 1)
    }

    func testErrorsPassTheRateLimitButNotDisabled() {
        let harness = Harness(
            logging: LoggingConfig(throttleMaxRPS: 1),
            logConfigs: ["interceptor": LoggingConfig(disabled: true)]
        )
        for _ in 0..<5 { harness.logger(.tcpServer).error("refused") }
        XCTAssertEqual(harness.written(containing: "refused").count, 5)
        harness.logger(.interceptor).error("plugin failed")
        harness.logger(.interceptor).info("plugin says hi")
        XCTAssertEqual(harness.written(containing: "plugin").count, 0)
        XCTAssertEqual(harness.limits.dropTotals(), [.init(component: .interceptor, rateLimited: 0, silenced: 2)])
    }

    func testDisabledComponentsAreNotReportedAsDropped() {
        let harness = Harness(logConfigs: ["tcpServer": LoggingConfig(disabled: true)])
        for _ in 0..<5 { harness.logger(.tcpServer).info("connection opened") }
        harness.output.reportDrops(label: "s2s-proxy")
        XCTAssertEqual(harness.lines.withLockedValue { $0 }, [])
    }

    func testThePeriodicReportNamesDropsNoLaterLineReported() {
        let harness = Harness(logConfigs: ["tcpServer": LoggingConfig(throttleMaxRPS: 1)])
        for _ in 0..<4 { harness.logger(.tcpServer).info("connection opened") }
        harness.output.reportDrops(label: "s2s-proxy")
        XCTAssertEqual(harness.written(containing: "3 log lines of tcpServer dropped").count, 1)
        // Reported once: neither the next report nor the next passing line repeats it.
        harness.output.reportDrops(label: "s2s-proxy")
        harness.advance(1)
        harness.logger(.tcpServer).info("connection opened")
        XCTAssertEqual(harness.written(containing: "dropped").count, 1)
    }

    func testApplyChangesTheLimitsOfLoggersMadeBefore() {
        let harness = Harness(logConfigs: ["tcpServer": LoggingConfig(throttleMaxRPS: 1)])
        let listener = harness.logger(.tcpServer)
        for _ in 0..<3 { listener.info("before") }
        XCTAssertEqual(harness.written(containing: "before").count, 1)
        harness.limits.apply(logging: nil, logConfigs: ["tcpServer": LoggingConfig(disabled: true)])
        listener.info("silenced")
        harness.limits.apply(logging: nil, logConfigs: [:])
        for _ in 0..<3 { listener.info("after") }
        XCTAssertEqual(harness.written(containing: "silenced").count, 0)
        XCTAssertEqual(harness.written(containing: "after").count, 3)
    }

    func testAnUnknownComponentNameStaysMetadataUnderTheRootLimit() {
        let harness = Harness(logging: LoggingConfig(throttleMaxRPS: 1))
        var logger = harness.logger()
        logger[metadataKey: LogComponent.metadataKey] = "mystery"
        logger.info("one")
        logger.info("two")
        XCTAssertEqual(harness.written(containing: "component=mystery").count, 1)
    }

    func testCallsAreSortedIntoComponentsByTheirPath() {
        let admin = "/temporal.server.api.adminservice.v1.AdminService/"
        XCTAssertEqual(LogComponent.ofCall(path: admin + "StreamWorkflowReplicationMessages"), .replicationStreams)
        XCTAssertEqual(LogComponent.ofCall(path: admin + "DescribeCluster"), .adminService)
        let workflow = "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"
        XCTAssertEqual(LogComponent.ofCall(path: workflow), .workflowService)
        let operatorCall = "/temporal.api.operatorservice.v1.OperatorService/ListClusters"
        XCTAssertEqual(LogComponent.ofCall(path: operatorCall), .otherServices)
        XCTAssertEqual(LogComponent.ofCall(path: ""), .otherServices)
    }

    func testComponentNamesRoundTrip() {
        for component in LogComponent.allCases {
            XCTAssertEqual(LogComponent(name: component.name), component)
        }
        XCTAssertEqual(LogComponent.startup.name, "init")
        XCTAssertNil(LogComponent(name: "replicationStream"))
    }
}
