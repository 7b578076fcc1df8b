import NIOCore
import XCTest

@testable import Host

final class GRPCMessageBoundaryTrackerTests: XCTestCase {
    private func message(length: Int, compressed: Bool = false) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(compressed ? 1 : 0))
        buffer.writeInteger(UInt32(length))
        buffer.writeRepeatingByte(0xAB, count: length)
        return buffer
    }

    func testMessagesWithinLimitInOneChunkAreCounted() {
        var tracker = GRPCMessageBoundaryTracker(maxMessageBytes: 100)
        var chunk = message(length: 10)
        var second = message(length: 0)
        chunk.writeBuffer(&second)
        var third = message(length: 100)
        chunk.writeBuffer(&third)
        XCTAssertEqual(tracker.consume(chunk), .withinLimit)
        XCTAssertEqual(tracker.completedMessages, 3)
        XCTAssertTrue(tracker.isAtMessageBoundary)
    }

    func testPrefixSplitAtEveryByteIsFollowed() {
        let whole = message(length: 300)
        var tracker = GRPCMessageBoundaryTracker(maxMessageBytes: 1000)
        for offset in 0..<whole.readableBytes {
            let byte = whole.getSlice(at: offset, length: 1)!
            XCTAssertEqual(tracker.consume(byte), .withinLimit)
            XCTAssertEqual(tracker.isAtMessageBoundary, offset == whole.readableBytes - 1)
        }
        XCTAssertEqual(tracker.completedMessages, 1)
    }

    func testOversizedMessageIsReportedAsSoonAsItsPrefixIsComplete() {
        var tracker = GRPCMessageBoundaryTracker(maxMessageBytes: 1024)
        var prefixOnly = ByteBuffer()
        prefixOnly.writeInteger(UInt8(0))
        prefixOnly.writeInteger(UInt32(1025))
        XCTAssertEqual(tracker.consume(prefixOnly.getSlice(at: 0, length: 3)!), .withinLimit)
        XCTAssertEqual(tracker.consume(prefixOnly.getSlice(at: 3, length: 2)!), .messageTooLarge(length: 1025))
    }

    func testLimitAppliesToEveryMessageNotOnlyTheFirst() {
        var tracker = GRPCMessageBoundaryTracker(maxMessageBytes: 64)
        XCTAssertEqual(tracker.consume(message(length: 64)), .withinLimit)
        XCTAssertEqual(tracker.consume(message(length: 65, compressed: true)), .messageTooLarge(length: 65))
    }

    func testLengthsAboveTwoGigabytesAreNotMisreadAsNegative() {
        var tracker = GRPCMessageBoundaryTracker(maxMessageBytes: 128 << 20)
        var prefix = ByteBuffer()
        prefix.writeInteger(UInt8(0))
        prefix.writeInteger(UInt32.max)
        XCTAssertEqual(tracker.consume(prefix), .messageTooLarge(length: Int(UInt32.max)))
    }
}
