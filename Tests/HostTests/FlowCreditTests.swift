import NIOCore
import NIOHTTP2
import XCTest

@testable import Host

final class FlowCreditTests: XCTestCase {
    func testCreditIsGrantedInBatchesOfAQuarterWindow() {
        var credit = FlowCredit(window: 1 << 20)
        XCTAssertNil(credit.release(100_000))
        XCTAssertNil(credit.release(100_000))
        XCTAssertEqual(credit.release(100_000), 300_000)
        XCTAssertEqual(credit.pending, 0)
        XCTAssertNil(credit.release(1))
    }

    func testEveryReleasedByteIsEventuallyGrantedOnce() {
        var credit = FlowCredit(window: 65_535)
        var granted = 0
        for _ in 0..<1000 {
            granted += credit.release(777) ?? 0
        }
        XCTAssertEqual(granted + credit.pending, 777_000)
        XCTAssertLessThan(credit.pending, credit.threshold)
    }

    func testFlowControlledLengthCountsPaddingAndItsLengthByte() {
        var payload = ByteBuffer()
        payload.writeRepeatingByte(1, count: 10)
        let plain = HTTP2Frame.FramePayload.Data(data: .byteBuffer(payload))
        XCTAssertEqual(HTTP2FlowControlledLength.of(plain), 10)
        let padded = HTTP2Frame.FramePayload.Data(data: .byteBuffer(payload), paddingBytes: 5)
        XCTAssertEqual(HTTP2FlowControlledLength.of(padded), 16)
    }
}
