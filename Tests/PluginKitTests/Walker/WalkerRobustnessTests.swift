// Random and damaged input through the walker with the real schema: whatever the bytes, a walk either throws a
// ProtoWireError or succeeds, never traps; a successful identity rewrite is byte-identical, and a successful
// rename yields a message whose walk sees the renamed values in the same places. Random trees also put random
// bytes where the schema expects strings, so values need not be UTF-8.

import TestSupport
import PluginKit
import XCTest

final class WalkerRobustnessTests: XCTestCase {
    private struct Subject {
        /// The fixture under Tests/Fixtures/walker/messages holding a message of the plan's type.
        let fixture: String
        let plan: WalkPlan
    }

    private func subjects() throws -> [Subject] {
        let schema = try TemporalFixtures.schema.get()
        let namespaces = try schema.walker(rules: .temporalNamespaces())
        let strictNamespaces = try schema.walker(rules: .temporalNamespaces(historyBlobs: .fail))
        let searchAttributes = try schema.walker(rules: .temporalSearchAttributes())
        var result: [Subject] = []
        for (fixture, messageType) in TemporalFixtures.messageTypes.sorted(by: { $0.key < $1.key }) {
            result.append(Subject(fixture: fixture, plan: try namespaces.plan(message: messageType)))
            result.append(Subject(fixture: fixture, plan: try strictNamespaces.plan(message: messageType)))
            result.append(Subject(fixture: fixture, plan: try searchAttributes.plan(message: messageType)))
        }
        return result
    }

    /// Walks `message` every way and checks the properties above; returns whether the walk succeeded.
    @discardableResult
    private func check(_ message: [UInt8], with plan: WalkPlan, _ label: @autoclosure () -> String) -> Bool {
        var originals: [String] = []
        do {
            try plan.visit(message) { originals.append($0.value) }
        } catch {
            XCTAssertThrowsError(
                try plan.rewrite(message) { _ in "" },
                "rewrite must fail where visit fails: \(label())"
            )
            return false
        }
        do {
            // Returning the value unchanged is the identity; for invalid UTF-8, `value` is the repaired text.
            XCTAssertEqual(try plan.rewrite(message) { $0.isValidUTF8 ? $0.value : nil }, message, label())
            let renamed = try plan.rewrite(message) { "#" + $0.value }
            var seen: [String] = []
            try plan.visit(renamed) { seen.append($0.value) }
            XCTAssertEqual(seen, originals.map { "#" + $0 }, label())
        } catch {
            XCTFail("walk failed on a message it had walked before: \(error), \(label())")
        }
        return true
    }

    func testRandomBytesNeverTrap() throws {
        var generator = SeededGenerator(seed: 0xBAD_B17E5)
        let subjects = try subjects()
        var succeeded = 0
        for round in 0..<3_000 {
            let message = (0..<Int.random(in: 0...200, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
            let subject = subjects[round % subjects.count]
            if check(message, with: subject.plan, "random round \(round), \(subject.fixture)") {
                succeeded += 1
            }
        }
        XCTAssertGreaterThan(succeeded, 0)
    }

    func testRandomWellFormedTreesWalkAndRoundTrip() throws {
        var generator = SeededGenerator(seed: 20_261_129)
        let subjects = try subjects()
        for round in 0..<2_000 {
            let message = randomTree(depth: 0, using: &generator)
            let subject = subjects[round % subjects.count]
            check(message, with: subject.plan, "tree round \(round), \(subject.fixture)")
        }
    }

    func testDamagedRealMessagesNeverTrap() throws {
        var generator = SeededGenerator(seed: 0xD00D)
        let subjects = try subjects()
        var outcomes = (succeeded: 0, failed: 0)
        for round in 0..<4_000 {
            let subject = subjects[round % subjects.count]
            var message = try TemporalFixtures.message(subject.fixture)
            switch Int.random(in: 0...3, using: &generator) {
            case 0:  // flip bytes
                for _ in 0..<Int.random(in: 1...3, using: &generator) {
                    message[Int.random(in: 0..<message.count, using: &generator)] ^= UInt8.random(
                        in: 1...255,
                        using: &generator
                    )
                }
            case 1:  // truncate
                message.removeLast(Int.random(in: 1...message.count, using: &generator))
            case 2:  // insert
                message.insert(
                    UInt8.random(in: 0...255, using: &generator),
                    at: Int.random(in: 0...message.count, using: &generator)
                )
            default:  // delete a range
                let start = Int.random(in: 0..<message.count, using: &generator)
                message.removeSubrange(start..<min(message.count, start + Int.random(in: 1...8, using: &generator)))
            }
            if check(message, with: subject.plan, "damage round \(round), \(subject.fixture)") {
                outcomes.succeeded += 1
            } else {
                outcomes.failed += 1
            }
        }
        XCTAssertGreaterThan(outcomes.succeeded, 0)
        XCTAssertGreaterThan(outcomes.failed, 0)
    }

    func testRenamingAndRenamingBackRestoresRealMessages() throws {
        for subject in try subjects() {
            let original = try TemporalFixtures.message(subject.fixture)
            var values: [String] = []
            let renamed = try subject.plan.rewrite(original) { target in
                values.append(target.value)
                return String(repeating: "r", count: 130 + values.count)  // every prefix grows to two bytes
            }
            var next = 0
            let restored = try subject.plan.rewrite(renamed) { _ in
                defer { next += 1 }
                return values[next]
            }
            XCTAssertEqual(restored, original, subject.fixture)
            XCTAssertEqual(next, values.count, subject.fixture)
        }
    }

    /// A random message: field numbers small enough to hit real fields of Temporal messages, strings, varints,
    /// fixed values and nested messages, all well-formed.
    private func randomTree(depth: Int, using generator: inout SeededGenerator) -> [UInt8] {
        var output: [UInt8] = []
        for _ in 0..<Int.random(in: 0...6, using: &generator) {
            let number = Int.random(in: 1...12, using: &generator)
            switch Int.random(in: 0...(depth < 5 ? 4 : 2), using: &generator) {
            case 0:
                output += varintField(number, UInt64.random(in: 0...3, using: &generator))
            case 1:
                output += [UInt8(number << 3 | 5)] + (0..<4).map { _ in UInt8.random(in: 0...255, using: &generator) }
            case 2:
                output += stringField(
                    number,
                    ["walker-ns", "", "x", String(repeating: "y", count: 140)].randomElement(using: &generator)!
                )
            default:
                output += lengthDelimited(number, randomTree(depth: depth + 1, using: &generator))
            }
        }
        return output
    }
}
