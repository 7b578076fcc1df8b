// Tests of `GRPCMessageArrays` (routing mode's receivers gather batches straight into arrays): whole messages come out
// of any split of the byte stream, without their prefixes, a compressed one is reported, and the size limit is
// enforced on the prefix before any of the body is held.

import TestSupport
@testable import Host
import NIOCore
import XCTest

final class GRPCMessageArraysTests: XCTestCase {
    private func framed(_ payload: [UInt8], compressed: Bool = false) -> [UInt8] {
        let length = UInt32(payload.count)
        return [compressed ? 1 : 0, UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF),
                UInt8(length & 0xFF)] + payload
    }

    func testEverySplitOfAStreamYieldsTheSameMessages() {
        var generator = SeededGenerator(seed: 0x5EED_0A77)
        let payloads: [[UInt8]] = [[], [1], Array(repeating: 7, count: 4), (0..<300).map { UInt8($0 & 0xFF) }, [],
                                   (0..<70_000).map { UInt8(truncatingIfNeeded: $0 * 7) }]
        let stream = payloads.flatMap { framed($0) }
        for _ in 0..<300 {
            var arrays = GRPCMessageArrays(maxMessageBytes: 100_000)
            var messages: [[UInt8]] = []
            var offset = 0
            while offset < stream.count {
                let most = min(stream.count - offset, Bool.random(using: &generator) ? 7 : 20_000)
                let size = Int.random(in: 1...max(1, most), using: &generator)
                XCTAssertNil(arrays.consume(ByteBuffer(bytes: stream[offset..<offset + size]), into: &messages))
                offset += size
            }
            XCTAssertEqual(messages, payloads)
            XCTAssertFalse(arrays.sawCompressed)
        }
    }

    func testACompressedMessageIsReported() {
        var arrays = GRPCMessageArrays(maxMessageBytes: 100)
        var messages: [[UInt8]] = []
        XCTAssertNil(arrays.consume(ByteBuffer(bytes: framed([1, 2]) + framed([3], compressed: true)), into: &messages))
        XCTAssertEqual(messages.count, 2)
        XCTAssertTrue(arrays.sawCompressed)
    }

    func testAMessageOverTheLimitIsRefusedFromItsPrefix() {
        var arrays = GRPCMessageArrays(maxMessageBytes: 10)
        var messages: [[UInt8]] = []
        // Only the prefix has arrived: the declared length is enough.
        XCTAssertEqual(arrays.consume(ByteBuffer(bytes: Array(framed(Array(repeating: 0, count: 11)).prefix(5))),
                                      into: &messages), 11)
        XCTAssertEqual(messages, [])
    }
}
