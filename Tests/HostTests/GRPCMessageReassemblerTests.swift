// Tests of `GRPCMessageReassembler`: whole messages come out of any split of the byte stream, slices of the
// arriving buffer when a message lies inside one chunk, and the size limit is enforced on the prefix.

import TestSupport
@testable import Host
import NIOCore
import XCTest

final class GRPCMessageReassemblerTests: XCTestCase {
    private func framed(_ payload: [UInt8], compressed: Bool = false) -> [UInt8] {
        let length = UInt32(payload.count)
        return [compressed ? 1 : 0, UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF)] + payload
    }

    func testEverySplitOfAStreamYieldsTheSameMessages() {
        var generator = SeededGenerator(seed: 0x5EED_0001)
        let payloads: [[UInt8]] = [[], [1], Array(repeating: 7, count: 4), (0..<300).map { UInt8($0 & 0xFF) }, [], Array(repeating: 9, count: 70_000)]
        let stream = payloads.flatMap { framed($0) }
        for _ in 0..<300 {
            var reassembler = GRPCMessageReassembler(maxMessageBytes: 100_000)
            var messages: [ByteBuffer] = []
            var offset = 0
            while offset < stream.count {
                let size = Int.random(in: 1...max(1, min(stream.count - offset, Bool.random(using: &generator) ? 7 : 20_000)), using: &generator)
                XCTAssertNil(reassembler.consume(ByteBuffer(bytes: stream[offset..<offset + size]), into: &messages))
                offset += size
            }
            XCTAssertTrue(reassembler.isAtMessageBoundary)
            XCTAssertEqual(messages.map { Array($0.readableBytesView) }, payloads.map { framed($0) })
        }
    }

    func testAMessageInsideOneChunkIsASliceOfIt() {
        var reassembler = GRPCMessageReassembler(maxMessageBytes: 1_000)
        let chunk = ByteBuffer(bytes: framed([1, 2, 3]) + framed([4]))
        var messages: [ByteBuffer] = []
        XCTAssertNil(reassembler.consume(chunk, into: &messages))
        XCTAssertEqual(messages.count, 2)
        for message in messages {
            XCTAssertTrue(message.storageIsShared(with: chunk))
        }
    }

    func testAPartialMessageIsHeldUntilItsEnd() {
        var reassembler = GRPCMessageReassembler(maxMessageBytes: 1_000)
        let bytes = framed(Array(repeating: 5, count: 100))
        var messages: [ByteBuffer] = []
        XCTAssertNil(reassembler.consume(ByteBuffer(bytes: bytes[0..<3]), into: &messages))
        XCTAssertNil(reassembler.consume(ByteBuffer(bytes: bytes[3..<50]), into: &messages))
        XCTAssertFalse(reassembler.isAtMessageBoundary)
        XCTAssertEqual(messages.count, 0)
        XCTAssertNil(reassembler.consume(ByteBuffer(bytes: bytes[50...]), into: &messages))
        XCTAssertEqual(messages.map { Array($0.readableBytesView) }, [bytes])
        XCTAssertTrue(reassembler.isAtMessageBoundary)
    }

    func testTheLimitIsCheckedOnThePrefix() {
        var reassembler = GRPCMessageReassembler(maxMessageBytes: 10)
        var messages: [ByteBuffer] = []
        XCTAssertNil(reassembler.consume(ByteBuffer(bytes: framed(Array(repeating: 1, count: 10))), into: &messages))
        // Only the prefix of an 11-byte message has arrived, split in two.
        XCTAssertNil(reassembler.consume(ByteBuffer(bytes: [0, 0, 0]), into: &messages))
        XCTAssertEqual(reassembler.consume(ByteBuffer(bytes: [0, 11]), into: &messages), 11)
        var fresh = GRPCMessageReassembler(maxMessageBytes: 10)
        XCTAssertEqual(fresh.consume(ByteBuffer(bytes: [0, 0xFF, 0xFF, 0xFF, 0xFF]), into: &messages), Int(UInt32.max))
    }
}
