// The rewrite of an upstream's first SETTINGS frame (`PeerStreamLimit.Rewriter`), byte by byte: an absent
// SETTINGS_MAX_CONCURRENT_STREAMS becomes an explicit "unlimited", anything else passes exactly as it came, however
// the bytes are split across reads.

import NIOCore
import XCTest

@testable import Host

final class PeerStreamLimitTests: XCTestCase {
    private func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags]
            + [UInt8(stream >> 24), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)]
            + payload
    }

    private func setting(_ identifier: UInt16, _ value: UInt32) -> [UInt8] {
        [UInt8(identifier >> 8), UInt8(identifier & 0xFF),
         UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    /// Feeds `input` in pieces cut at `cuts` and returns everything the rewriter passed on.
    private func run(_ input: [UInt8], cuts: [Int] = []) -> (output: [UInt8], rewriter: PeerStreamLimit.Rewriter) {
        var rewriter = PeerStreamLimit.Rewriter()
        var output: [UInt8] = []
        var start = 0
        for end in cuts.sorted() + [input.count] where end >= start {
            if let passed = rewriter.feed(ByteBuffer(bytes: input[start..<end])) {
                output += passed.readableBytesView
            }
            start = end
        }
        return (output, rewriter)
    }

    /// grpcio's server preface: header table, window, frame size and a private setting; no stream limit.
    private var grpcPreface: [UInt8] {
        frame(type: 4, payload: setting(4, 4_194_304) + setting(5, 4_194_304) + setting(6, 16_384) + setting(0xFE03, 1))
    }
    private let windowUpdate: [UInt8] = [0, 0, 4, 8, 0, 0, 0, 0, 0, 0, 0x3F, 0, 1]

    func testAPrefaceWithoutAStreamLimitGetsUnlimitedAppended() {
        let (output, rewriter) = run(grpcPreface + windowUpdate)
        let expected = frame(type: 4, payload: Array(grpcPreface[9...]) + setting(3, 0x7FFF_FFFF)) + windowUpdate
        XCTAssertEqual(output, expected)
        XCTAssertTrue(rewriter.addedUnlimited)
        XCTAssertTrue(rewriter.isDone)
    }

    func testAnEmptyPrefaceGetsUnlimited() {
        XCTAssertEqual(run(frame(type: 4, payload: [])).output, frame(type: 4, payload: setting(3, 0x7FFF_FFFF)))
    }

    func testAPrefaceThatSetsALimitPassesUntouched() {
        for limit: UInt32 in [0, 10, 100, 0xFFFF_FFFF] {
            let input = frame(type: 4, payload: setting(4, 65_535) + setting(3, limit)) + windowUpdate
            let (output, rewriter) = run(input)
            XCTAssertEqual(output, input, "limit \(limit)")
            XCTAssertFalse(rewriter.addedUnlimited)
        }
    }

    func testWhatIsNotAWellFormedSettingsPrefacePassesUntouchedForHTTP2ToRefuse() {
        let cases: [(String, [UInt8])] = [
            ("a DATA frame", frame(type: 0, stream: 1, payload: [1, 2, 3])),
            ("a SETTINGS ack", frame(type: 4, flags: 1, payload: [])),
            ("SETTINGS on a stream", frame(type: 4, stream: 3, payload: setting(4, 1))),
            ("a length that is no multiple of 6", frame(type: 4, payload: [0, 4, 0, 0])),
            ("HTTP/1.1", Array("HTTP/1.1 400 Bad Request\r\n\r\n".utf8)),
        ]
        for (name, input) in cases {
            let (output, rewriter) = run(input)
            XCTAssertEqual(output, input, name)
            XCTAssertTrue(rewriter.isDone, name)
        }
    }

    func testAnOversizedPrefaceIsNotBufferedButPassedOnAtOnce() {
        // 9 bytes of header announcing 1 MiB: nothing to wait for, the HTTP/2 handler refuses it.
        let header = [UInt8(0x10), 0, 0, 4, 0, 0, 0, 0, 0]
        let (output, rewriter) = run(header)
        XCTAssertEqual(output, header)
        XCTAssertTrue(rewriter.isDone)
    }

    func testNothingPassesUntilThePrefaceIsWholeThenEverythingPassesAsItCame() {
        var rewriter = PeerStreamLimit.Rewriter()
        let input = grpcPreface
        for byte in input.dropLast() {
            XCTAssertNil(rewriter.feed(ByteBuffer(bytes: [byte])))
        }
        XCTAssertEqual(rewriter.feed(ByteBuffer(bytes: [input.last!])).map { Array($0.readableBytesView) },
                       frame(type: 4, payload: Array(input[9...]) + setting(3, 0x7FFF_FFFF)))
        XCTAssertEqual(rewriter.feed(ByteBuffer(bytes: windowUpdate)).map { Array($0.readableBytesView) }, windowUpdate)
    }

    func testAnySplitOfTheBytesGivesTheSameOutput() {
        var generator = SplitMix64(seed: 0x5332_5350)
        let input = grpcPreface + windowUpdate + frame(type: 6, payload: Array(repeating: 7, count: 8))
        let expected = run(input).output
        for _ in 0..<500 {
            let cuts = (0..<Int(generator.next() % 6)).map { _ in Int(generator.next() % UInt64(input.count + 1)) }
            XCTAssertEqual(run(input, cuts: cuts).output, expected, "cuts \(cuts)")
        }
    }
}

/// A small seeded generator, so a failing split can be replayed.
private struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
