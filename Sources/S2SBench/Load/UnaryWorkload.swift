// UnaryWorkload: keeps a fixed number of unary calls (`bench.Echo/Unary` or the method given) in flight on one
// connection. Each call is a new
// HTTP/2 stream carrying HEADERS and one DATA frame (request message, END_STREAM); it succeeds when the trailers
// say `grpc-status: 0` after exactly one response message, and its latency runs from writing the request to
// reading the trailers. A finished call immediately starts the next one (closed loop).

import NIOCore
import NIOHPACK
import NIOHTTP2

/// Closed-loop unary calls on one connection.
struct UnaryWorkload: LoadWorkload {
    /// One call in flight.
    private struct UnaryCall {
        let startedAt: UInt64
        private var responseMessages = GRPCMessageCounter()
        private(set) var responseMessagesReceived = 0

        init(startedAt: UInt64) {
            self.startedAt = startedAt
        }

        /// Response body bytes received so far.
        var responseBytesReceived: Int { self.responseMessages.bodyBytesConsumed }

        mutating func receive(_ bytes: ByteBuffer) {
            self.responseMessagesReceived += self.responseMessages.consume(bytes)
        }
    }

    private let callsToKeepInFlight: Int
    private let requestHeaders: HPACKHeaders
    private let requestMessage: ByteBuffer
    private var calls: [HTTP2StreamID: UnaryCall] = [:]
    /// Client streams are odd and must be opened in increasing order.
    private var nextStreamID: Int32 = 1

    /// A workload keeping `callsInFlight` calls going, each opened with `requestHeaders` and sending
    /// `requestMessage` (a whole gRPC message, prefix included).
    init(callsInFlight: Int, requestHeaders: HPACKHeaders, requestMessage: ByteBuffer) {
        self.callsToKeepInFlight = callsInFlight
        self.requestHeaders = requestHeaders
        self.requestMessage = requestMessage
        self.calls.reserveCapacity(callsInFlight)
    }

    var isDrained: Bool { self.calls.isEmpty }

    var outstanding: Int { self.calls.count }

    mutating func start(_ connection: LoadConnectionWriter) {
        for _ in 0..<self.callsToKeepInFlight {
            self.startCall(connection)
        }
    }

    mutating func received(_ frame: HTTP2Frame, _ connection: LoadConnectionWriter) {
        switch frame.payload {
        case .data(let data):
            if case .byteBuffer(let bytes) = data.data {
                self.calls[frame.streamID]?.receive(bytes)
            }
        case .headers(let headers) where headers.endStream:
            guard let call = self.calls.removeValue(forKey: frame.streamID) else {
                return
            }
            let succeeded = BenchGRPCHeaders.status(in: headers.headers) == BenchGRPCHeaders.statusOK
                && call.responseMessagesReceived == 1
            if succeeded {
                connection.recorder.recordCompletion(startedAt: call.startedAt, finishedAt: LoadRecorder.now())
                connection.recorder.recordResponseBytes(call.responseBytesReceived)
            } else {
                connection.recorder.recordErrors()
            }
            self.replaceFinishedCall(connection)
        default:
            // Response headers carry nothing the benchmark checks: the verdict is in the trailers.
            break
        }
    }

    mutating func streamClosed(_ streamID: HTTP2StreamID, reason: HTTP2ErrorCode?, _ connection: LoadConnectionWriter) {
        // A call still listed here was closed without trailers: reset by the peer or failed locally.
        guard self.calls.removeValue(forKey: streamID) != nil else {
            return
        }
        connection.recorder.recordErrors()
        self.replaceFinishedCall(connection)
    }

    mutating func beginDraining(_ connection: LoadConnectionWriter) {
        // Calls in flight finish on their own; they are just not replaced.
    }

    private mutating func replaceFinishedCall(_ connection: LoadConnectionWriter) {
        if connection.keepsLoadGoing {
            self.startCall(connection)
        }
    }

    private mutating func startCall(_ connection: LoadConnectionWriter) {
        let streamID = HTTP2StreamID(self.nextStreamID)
        self.nextStreamID += 2
        self.calls[streamID] = UnaryCall(startedAt: LoadRecorder.now())
        connection.write(HTTP2Frame(streamID: streamID, payload: .headers(.init(headers: self.requestHeaders))))
        let body = HTTP2Frame.FramePayload.Data(data: .byteBuffer(self.requestMessage), endStream: true)
        connection.write(HTTP2Frame(streamID: streamID, payload: .data(body)))
    }
}
