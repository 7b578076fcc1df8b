// Tests of the health rules: what makes a check answer 503 and how it says what is missing, and the probe cache
// that keeps polling load balancers from opening a connection per request.

import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest

@testable import Host

final class HealthVerdictTests: XCTestCase {
    func testNothingMissingIsHealthyWithOK() {
        let verdict = HealthVerdict(check: .local, connection: "c1", missing: [])
        XCTAssertEqual(verdict.statusCode, 200)
        XCTAssertEqual(verdict.body, "OK\n")
    }

    func testMissingItemsGive503ListingEachOnItsOwnLine() {
        let verdict = HealthVerdict(check: .remote, connection: "c1", missing: ["a", "b"])
        XCTAssertEqual(verdict.statusCode, 503)
        XCTAssertEqual(verdict.body, "connection c1: remote cluster not ready\n- a\n- b\n")
    }

    func testOneMuxSessionIsEnough() {
        XCTAssertNil(HealthVerdict.muxSessions(up: 1, wanted: 10, address: "peer:1"))
        XCTAssertEqual(
            HealthVerdict.muxSessions(up: 0, wanted: 10, address: "peer:1"),
            "no mux session to the peer proxy (peer:1) is up (0 of 10)"
        )
    }

    func testOnlyPendingOrFailedSchemasAreMissing() {
        let lines = HealthVerdict.schema([
            ("a", .notNeeded), ("b", .ready), ("c", .pending("pulling")), ("d", .failed("no such file")),
        ])
        XCTAssertEqual(lines, [
            "the Temporal schema for c is not loaded yet: pulling",
            "the Temporal schema for d could not be loaded: no such file",
        ])
    }

    func testUnreachableNamesTheRoleAndReason() {
        XCTAssertNil(HealthVerdict.unreachable("the local Temporal", probeFailure: nil))
        XCTAssertEqual(
            HealthVerdict.unreachable("the local Temporal", probeFailure: "connection refused"),
            "the local Temporal is not reachable: connection refused"
        )
    }

    func testProbeCacheReusesAnAnswerForItsMaxAgeThenProbesAgain() throws {
        let loop = EmbeddedEventLoop()
        let cache = ProbeCache(maxAge: .seconds(1))
        var probes = 0
        func probe() -> EventLoopFuture<String?> {
            probes += 1
            return loop.makeSucceededFuture(probes == 1 ? "refused" : nil)
        }
        let start = NIODeadline.now()
        XCTAssertEqual(try cache.value(now: start, on: loop, probe: probe).wait(), "refused")
        XCTAssertEqual(try cache.value(now: start + .milliseconds(500), on: loop, probe: probe).wait(), "refused")
        XCTAssertEqual(probes, 1)
        XCTAssertEqual(try cache.value(now: .now() + .seconds(2), on: loop, probe: probe).wait(), nil)
        XCTAssertEqual(probes, 2)
    }

    func testRoutesAnswerHealthDebugAndNothingElse() throws {
        let loop = EmbeddedEventLoop()
        let routes = HealthRoutes(
            check: { loop in
                loop.makeSucceededFuture(HealthVerdict(check: .remote, connection: "c1", missing: ["no session"]))
            },
            debugReport: { loop in loop.makeSucceededFuture(ByteBuffer(string: "{}")) }
        )
        let health = try routes.answer(method: .GET, uri: "/health?verbose=1", on: loop).wait()
        XCTAssertEqual(health.status, .serviceUnavailable)
        XCTAssertEqual(String(buffer: health.body), "connection c1: remote cluster not ready\n- no session\n")
        let debug = try routes.answer(method: .GET, uri: "/debug/connections", on: loop).wait()
        XCTAssertEqual(debug.status, .ok)
        XCTAssertEqual(debug.contentType, "application/json")
        XCTAssertEqual(try routes.answer(method: .GET, uri: "/", on: loop).wait().status, .notFound)
        XCTAssertEqual(try routes.answer(method: .POST, uri: "/health", on: loop).wait().status, .methodNotAllowed)
    }
}
