// PluginKitTesting's PluginTestHost, as a plugin author uses it: the test plugins driven through their C tables
// with options, metadata, messages both ways, rejections, failures, metrics and logs recorded, and a plugin's refusal
// of its options reported with its own message.

import PluginKit
import PluginKitTesting
import XCTest

final class PluginTestHostTests: XCTestCase {
    func testMetadataEditsRejectionsFailuresMetricsAndLogs() throws {
        let host = try PluginTestHost(MetadataPlugin.self, options: #"{"deny": ["/test.Svc/Denied"], "header": "x-s"}"#)
        XCTAssertEqual(host.logs, [PluginLogLine(level: "info", message: "configured with 1 denied methods")])
        XCTAssertEqual(host.wants(method: "/test.Svc/Nothing"), .nothing)
        XCTAssertEqual(host.wants(method: "/test.Svc/Inbound", side: .outbound), .nothing)

        let call = host.startCall(method: "/test.Svc/Ok", headers: [("x-team", "ops"), ("x-remove", "gone")])
        XCTAssertEqual(call.outcome, .proceeded)
        XCTAssertEqual(call.header("x-s"), "stamped")
        XCTAssertEqual(call.header("x-team"), "ops")
        XCTAssertNil(call.header("x-remove"))
        XCTAssertEqual(call.headers.first { $0.name == "x-trace-bin" }?.value, [0, 1, 2])
        XCTAssertEqual(call.request(Array("any".utf8)), .notWanted, "the plugin wants no messages")
        call.end(status: 0)

        XCTAssertEqual(
            host.startCall(method: "/test.Svc/Denied").outcome, .rejected(.permissionDenied, "/test.Svc/Denied is denied")
        )
        XCTAssertEqual(
            host.startCall(method: "/test.Svc/Ok", headers: [("x-fail", "1")]).outcome, .failed("x-fail was present")
        )
        XCTAssertEqual(host.startCall(method: "/test.Svc/Nothing").outcome, .notWanted)
        XCTAssertEqual(host.counter("calls_total"), 3)
        XCTAssertEqual(host.histogram("latency_seconds"), [0.25, 0.25, 0.25])
        XCTAssertNil(host.counter("latency_seconds"), "a histogram is not a counter")
    }

    func testMessagesBothWaysWithPerCallState() throws {
        let host = try PluginTestHost(MessagePlugin.self)
        let call = host.startCall(method: "/test.Svc/M")
        XCTAssertEqual(call.request(Array("a".utf8)), .replaced(Array("a+1/0".utf8)))
        XCTAssertEqual(call.request(Array("keep".utf8)), .unchanged)
        XCTAssertEqual(call.response(Array("b".utf8)), .replaced(Array("b+2/1".utf8)))
        XCTAssertEqual(call.response(Array("reject".utf8)), .rejected(.invalidArgument, "rejected message 1"))
        XCTAssertEqual(call.request(Array("fail".utf8)), .failed("cannot handle message 2"))
        MessagePlugin.events.removeAll()
        call.end(status: 3)
        XCTAssertEqual(
            MessagePlugin.events.all, ["end /test.Svc/M requests=3 responses=2 status=3 code=invalidArgument", "state released"]
        )
        XCTAssertEqual(call.request(Array("late".utf8)), .notWanted, "nothing runs after the end")
    }

    func testOptionsThePluginRefusesAreReportedWithItsMessage() {
        XCTAssertThrowsError(try PluginTestHost(MetadataPlugin.self, options: #"{"failInit": true}"#)) { error in
            XCTAssertEqual(
                error as? PluginTestError, PluginTestError(message: "failInit was set, so this entry fails: remove failInit")
            )
        }
    }
}
