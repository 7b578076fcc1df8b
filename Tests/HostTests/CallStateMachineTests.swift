// Drives `CallStateMachine` event by event, with no channels: each test states one rule of how a forwarded call
// moves its frames and how it ends, and checks exactly what the machine tells its adapter to do.

import NIOCore
import NIOHPACK
import NIOHTTP2
import XCTest

@testable import Host

final class CallStateMachineTests: XCTestCase {
    private typealias Ending = CallStateMachine.Ending

    private static let limit = 100

    /// A gRPC message: the 5-byte prefix declaring `length`, then `length` bytes.
    private func message(length: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(length))
        buffer.writeRepeatingByte(0xAB, count: length)
        return buffer
    }

    private func data(_ buffer: ByteBuffer, endStream: Bool = false) -> HTTP2Frame.FramePayload.Data {
        .init(data: .byteBuffer(buffer), endStream: endStream)
    }

    /// A machine whose upstream stream is open for a request without END_STREAM on its HEADERS.
    private func openCall() -> CallStateMachine {
        var machine = CallStateMachine(maxMessageBytes: Self.limit)
        machine.start(endStream: false)
        XCTAssertTrue(machine.upstreamOpened().isEmpty)
        return machine
    }

    /// Hands `sender`'s DATA to the machine as the adapter does: received, then, when it says forward, forwarded.
    private func pass(
        _ frame: HTTP2Frame.FramePayload.Data, from sender: CallSide, through machine: inout CallStateMachine
    ) -> (CallStateMachine.DataAction, Ending?) {
        var messages: [ByteBuffer] = []
        let action = machine.receivedData(frame, from: sender, messages: &messages)
        guard case .forward = action else { return (action, nil) }
        return (action, machine.forwardedData(from: sender, endStream: frame.endStream))
    }

    /// A held frame as a line: its kind and its size (DATA) or field names (trailers).
    private func describe(_ frame: HTTP2Frame.FramePayload) -> String {
        switch frame {
        case .data(let data): "data \(data.data.readableBytes)"
        case .headers(let block): "trailers " + block.headers.map(\.name).joined(separator: ",")
        default: "other"
        }
    }

    private let responseHeaders: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]

    func testUnaryCallCompletesWithoutResettingTheUpstream() {
        var machine = openCall()
        let (request, requestEnding) = pass(data(message(length: 3), endStream: true), from: .client, through: &machine)
        XCTAssertEqual(request, .forward(completedMessages: 1))
        XCTAssertNil(requestEnding, "the request's end does not end the call")
        XCTAssertEqual(machine.responseHeaders(responseHeaders, endStream: false), .forwardHeaders)
        XCTAssertTrue(machine.isAnswered)
        let (response, responseEnding) = pass(data(message(length: 5)), from: .upstream, through: &machine)
        XCTAssertEqual(response, .forward(completedMessages: 1))
        XCTAssertNil(responseEnding)

        XCTAssertEqual(
            machine.responseHeaders(["grpc-status": "0"], endStream: true),
            .forwardStatus(Ending(side: .client, toClient: .responseEnd, stopsRequest: false, cancelsUpstream: false))
        )
        XCTAssertEqual(machine.phase, .finished)
        XCTAssertEqual(machine.finalStatus, 0)
        XCTAssertFalse(machine.failedInProxy)
    }

    func testAResponseThatEndsWithDataEndsTheCallByTheSideThatEndedFirst() {
        var machine = openCall()
        _ = pass(data(message(length: 1), endStream: true), from: .client, through: &machine)
        _ = machine.responseHeaders(responseHeaders, endStream: false)
        let (_, ending) = pass(data(message(length: 1), endStream: true), from: .upstream, through: &machine)
        XCTAssertEqual(ending, Ending(side: .client, toClient: .responseEnd, stopsRequest: false, cancelsUpstream: false))
        XCTAssertNil(machine.finalStatus, "no trailers, no status")
    }

    func testClientResetCancelsTheUpstreamStream() {
        var machine = openCall()
        _ = pass(data(message(length: 1)), from: .client, through: &machine)
        XCTAssertEqual(
            machine.clientGone(),
            Ending(side: .client, toClient: .nothing, stopsRequest: false, cancelsUpstream: true)
        )
    }

    func testClientResetWhileConnectingHasNoUpstreamStreamToCancel() {
        var machine = CallStateMachine(maxMessageBytes: Self.limit)
        machine.start(endStream: false)
        XCTAssertEqual(
            machine.clientGone(),
            Ending(side: .client, toClient: .nothing, stopsRequest: false, cancelsUpstream: false)
        )
        XCTAssertTrue(machine.upstreamOpened().isEmpty, "a call that ended while connecting never opens")
        XCTAssertEqual(machine.phase, .finished)
    }

    func testUpstreamResetResetsTheClientWithTheSameCode() {
        var machine = openCall()
        _ = machine.responseHeaders(responseHeaders, endStream: false)
        XCTAssertEqual(
            machine.upstreamReset(.refusedStream),
            Ending(side: .upstream, toClient: .reset(.refusedStream), stopsRequest: false, cancelsUpstream: true)
        )
        XCTAssertNil(machine.finalStatus)
    }

    func testUpstreamResetAfterTheWholeRequestIsNotAnsweredWithACancel() {
        var machine = openCall()
        _ = pass(data(message(length: 1), endStream: true), from: .client, through: &machine)
        XCTAssertEqual(
            machine.upstreamReset(.internalError),
            Ending(side: .upstream, toClient: .reset(.internalError), stopsRequest: false, cancelsUpstream: false)
        )
    }

    func testOversizedRequestEndsWithResourceExhaustedAndCancelsTheUpstream() {
        var machine = openCall()
        var messages: [ByteBuffer] = []
        let action = machine.receivedData(data(message(length: Self.limit + 1)), from: .client, messages: &messages)
        XCTAssertEqual(
            action,
            .fail(
                .tooLarge(length: Self.limit + 1),
                Ending(side: .client, toClient: .status(.resourceExhausted, trailersOnly: true), stopsRequest: true,
                       cancelsUpstream: true)
            )
        )
        XCTAssertEqual(machine.finalStatus, Int32(GRPCStatusCode.resourceExhausted.rawValue))
        XCTAssertTrue(machine.failedInProxy)
        XCTAssertTrue(machine.isAnswered)
    }

    func testOversizedResponseEndsWithResourceExhaustedAfterTheResponseHeaders() {
        var machine = openCall()
        _ = pass(data(message(length: 1), endStream: true), from: .client, through: &machine)
        _ = machine.responseHeaders(responseHeaders, endStream: false)
        var messages: [ByteBuffer] = []
        let action = machine.receivedData(data(message(length: Self.limit + 1)), from: .upstream, messages: &messages)
        XCTAssertEqual(
            action,
            .fail(
                .tooLarge(length: Self.limit + 1),
                Ending(side: .upstream, toClient: .status(.resourceExhausted, trailersOnly: false), stopsRequest: false,
                       cancelsUpstream: true)
            )
        )
    }

    func testAMessageOfExactlyTheLimitPasses() {
        var machine = openCall()
        let (action, _) = pass(data(message(length: Self.limit)), from: .client, through: &machine)
        XCTAssertEqual(action, .forward(completedMessages: 1))
    }

    func testUpstreamClosingMidCallEndsItWithUnavailable() {
        var machine = openCall()
        _ = machine.responseHeaders(responseHeaders, endStream: false)
        XCTAssertEqual(
            machine.upstreamClosed(),
            Ending(side: .upstream, toClient: .status(.unavailable, trailersOnly: false), stopsRequest: true,
                   cancelsUpstream: true)
        )
        XCTAssertEqual(machine.finalStatus, Int32(GRPCStatusCode.unavailable.rawValue))
        XCTAssertTrue(machine.failedInProxy)
    }

    func testStatusWhileTheClientStillSendsStopsItsRequestAfterTheStatus() {
        var machine = openCall()
        _ = pass(data(message(length: 1)), from: .client, through: &machine)
        _ = machine.responseHeaders(responseHeaders, endStream: false)
        XCTAssertEqual(
            machine.responseHeaders(["grpc-status": "7"], endStream: true),
            .forwardStatus(Ending(side: .upstream, toClient: .responseEnd, stopsRequest: true, cancelsUpstream: true))
        )
        XCTAssertEqual(machine.finalStatus, 7)
    }

    func testTheProxysStatusWhileTheClientStillSendsStopsItsRequestToo() {
        var machine = CallStateMachine(maxMessageBytes: Self.limit)
        machine.start(endStream: false)
        XCTAssertEqual(
            machine.fail(.unavailable, cause: .upstream),
            Ending(side: .upstream, toClient: .status(.unavailable, trailersOnly: true), stopsRequest: true,
                   cancelsUpstream: false)
        )
    }

    func testTheProxysStatusAfterTheWholeRequestDoesNotStopIt() {
        var machine = CallStateMachine(maxMessageBytes: Self.limit)
        machine.start(endStream: true)
        XCTAssertEqual(
            machine.fail(.unavailable, cause: .upstream),
            Ending(side: .upstream, toClient: .status(.unavailable, trailersOnly: true), stopsRequest: false,
                   cancelsUpstream: false)
        )
    }

    func testRequestFramesWhileConnectingAreHeldAndComeBackInOrderOnceOpen() {
        var machine = CallStateMachine(maxMessageBytes: Self.limit)
        machine.start(endStream: false)
        var messages: [ByteBuffer] = []
        let first = data(message(length: 1))
        let second = data(message(length: 2))
        let trailers = HTTP2Frame.FramePayload.Headers(headers: ["x-end": "1"])
        XCTAssertEqual(machine.receivedData(first, from: .client, messages: &messages), .held)
        XCTAssertEqual(machine.receivedData(second, from: .client, messages: &messages), .held)
        XCTAssertEqual(machine.requestTrailers(trailers), .held)
        XCTAssertFalse(machine.mayReleaseCredit(from: .client, writeSucceeded: true), "nothing is forwarded yet")

        let held = machine.upstreamOpened()
        XCTAssertEqual(held.map(describe), ["data 6", "data 7", "trailers x-end"])
        XCTAssertEqual(machine.phase, .open)
        XCTAssertEqual(pass(first, from: .client, through: &machine).0, .forward(completedMessages: 1))
        XCTAssertEqual(pass(second, from: .client, through: &machine).0, .forward(completedMessages: 1))
        XCTAssertEqual(machine.requestTrailers(trailers), .forward)
        XCTAssertTrue(machine.upstreamOpened().isEmpty, "held frames come back once")
    }

    func testHeadersWithEndStreamForwardTheWholeRequestWhenTheUpstreamOpens() {
        var machine = CallStateMachine(maxMessageBytes: Self.limit)
        machine.start(endStream: true)
        _ = machine.upstreamOpened()
        XCTAssertTrue(machine.request.endForwarded)
        _ = machine.responseHeaders(responseHeaders, endStream: false)
        XCTAssertEqual(
            machine.responseHeaders(["grpc-status": "0"], endStream: true),
            .forwardStatus(Ending(side: .client, toClient: .responseEnd, stopsRequest: false, cancelsUpstream: false))
        )
    }

    func testFramesAfterTheCallFinishedAreDropped() {
        var machine = openCall()
        _ = machine.responseHeaders(responseHeaders, endStream: false)
        XCTAssertNotNil(machine.clientGone())
        var messages: [ByteBuffer] = []
        XCTAssertEqual(machine.receivedData(data(message(length: 1)), from: .client, messages: &messages), .drop)
        XCTAssertEqual(machine.receivedData(data(message(length: 1)), from: .upstream, messages: &messages), .drop)
        XCTAssertEqual(machine.requestTrailers(.init(headers: [:])), .drop)
        XCTAssertEqual(machine.responseHeaders(["grpc-status": "0"], endStream: true), .drop)
        XCTAssertNil(machine.forwardedData(from: .upstream, endStream: true))
        XCTAssertNil(machine.clientGone(), "the end is decided once")
        XCTAssertNil(machine.upstreamReset(.cancel))
        XCTAssertNil(machine.upstreamClosed())
        XCTAssertNil(machine.fail(.internal, cause: .client))
        XCTAssertNil(machine.finalStatus, "a late status does not count")
        XCTAssertFalse(machine.failedInProxy)
    }

    func testClientTrailersEndTheRequestSide() {
        var machine = openCall()
        _ = pass(data(message(length: 1)), from: .client, through: &machine)
        XCTAssertEqual(machine.requestTrailers(.init(headers: ["x-end": "1"])), .forward)
        XCTAssertTrue(machine.request.senderEnded)
        XCTAssertTrue(machine.request.endForwarded)
        var messages: [ByteBuffer] = []
        XCTAssertEqual(
            machine.receivedData(data(message(length: 1)), from: .client, messages: &messages), .drop,
            "nothing goes upstream after the request's end"
        )
        XCTAssertEqual(machine.requestTrailers(.init(headers: ["x-end": "2"])), .drop)
        _ = machine.responseHeaders(responseHeaders, endStream: false)
        XCTAssertEqual(
            machine.responseHeaders(["grpc-status": "0"], endStream: true),
            .forwardStatus(Ending(side: .client, toClient: .responseEnd, stopsRequest: false, cancelsUpstream: false))
        )
    }

    func testASecondResponseHeaderBlockIsTheStatusEvenWithoutEndStream() {
        var machine = openCall()
        _ = pass(data(message(length: 1), endStream: true), from: .client, through: &machine)
        _ = machine.responseHeaders(responseHeaders, endStream: false)
        // The upstream's stream is not complete, so it is cancelled.
        XCTAssertEqual(
            machine.responseHeaders(["grpc-status": "0"], endStream: false),
            .forwardStatus(Ending(side: .client, toClient: .responseEnd, stopsRequest: false, cancelsUpstream: true))
        )
    }

    func testTrailersOnlyResponseEndsTheCallAndAnswersIt() {
        var machine = openCall()
        XCTAssertFalse(machine.isAnswered)
        XCTAssertEqual(
            machine.responseHeaders([":status": "200", "grpc-status": "5"], endStream: true),
            .forwardStatus(Ending(side: .upstream, toClient: .responseEnd, stopsRequest: true, cancelsUpstream: true))
        )
        XCTAssertTrue(machine.isAnswered)
        XCTAssertEqual(machine.finalStatus, 5)
    }

    func testCreditGoesBackOnlyForSuccessfulWritesWhileTheSenderSendsAndTheCallIsOpen() {
        var machine = openCall()
        XCTAssertTrue(machine.mayReleaseCredit(from: .client, writeSucceeded: true))
        XCTAssertFalse(machine.mayReleaseCredit(from: .client, writeSucceeded: false))
        XCTAssertTrue(machine.mayReleaseCredit(from: .upstream, writeSucceeded: true))
        _ = pass(data(message(length: 1), endStream: true), from: .client, through: &machine)
        XCTAssertFalse(machine.mayReleaseCredit(from: .client, writeSucceeded: true), "the client ended its stream")
        XCTAssertTrue(machine.mayReleaseCredit(from: .upstream, writeSucceeded: true))
        _ = machine.clientGone()
        XCTAssertFalse(machine.mayReleaseCredit(from: .upstream, writeSucceeded: true), "the call is over")
    }

    func testReassembledDirectionCutsWholeMessagesAndEndsOnlyOnceForwarded() {
        var machine = openCall()
        machine.reassembleMessages(from: .upstream)
        _ = pass(data(message(length: 1), endStream: true), from: .client, through: &machine)
        _ = machine.responseHeaders(responseHeaders, endStream: false)
        var messages: [ByteBuffer] = []
        var frame = message(length: 2)
        var part = message(length: 3)
        frame.writeBuffer(&part)
        XCTAssertEqual(machine.receivedData(data(frame, endStream: true), from: .upstream, messages: &messages), .translate)
        XCTAssertEqual(messages.map(\.readableBytes), [7, 8])
        XCTAssertEqual(machine.phase, .open, "the plugins may still fail the call")
        XCTAssertEqual(
            machine.forwardedData(from: .upstream, endStream: true),
            Ending(side: .client, toClient: .responseEnd, stopsRequest: false, cancelsUpstream: false)
        )
    }

    func testPluginVerdictFailsAReassembledCallWithItsStatus() {
        var machine = openCall()
        machine.reassembleMessages(from: .client)
        var messages: [ByteBuffer] = []
        XCTAssertEqual(machine.receivedData(data(message(length: 1)), from: .client, messages: &messages), .translate)
        XCTAssertEqual(
            machine.fail(.permissionDenied, cause: .client),
            Ending(side: .client, toClient: .status(.permissionDenied, trailersOnly: true), stopsRequest: true,
                   cancelsUpstream: true)
        )
        XCTAssertEqual(machine.finalStatus, Int32(GRPCStatusCode.permissionDenied.rawValue))
    }

    func testAReassembledStreamThatEndsInsideAMessageFailsWithInternal() {
        var machine = openCall()
        machine.reassembleMessages(from: .client)
        var messages: [ByteBuffer] = []
        let cut = message(length: 10).getSlice(at: 0, length: 8)!
        XCTAssertEqual(
            machine.receivedData(data(cut, endStream: true), from: .client, messages: &messages),
            .fail(
                .endsInsideMessage,
                Ending(side: .client, toClient: .status(.internal, trailersOnly: true), stopsRequest: false,
                       cancelsUpstream: true)
            )
        )
    }
}
