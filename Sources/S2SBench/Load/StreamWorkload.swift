// StreamWorkload: opens a fixed set of bidirectional streams (`bench.Echo/Stream` or the method given) on one
// connection and keeps a fixed window of messages in flight on each: every answer (an echo, or the echo server's
// response file) is timed against the send time of the request it answers (answers come in order, so the oldest
// outstanding send matches) and immediately replaced by a new request. Draining half-closes
// each stream and waits for its trailers.

import NIOCore
import NIOHPACK
import NIOHTTP2

/// Ping-pong echo streams on one connection.
struct StreamWorkload: LoadWorkload {
    /// Send times of a stream's outstanding messages, oldest first, in a ring that never grows past the window.
    private struct SendTimes {
        private var ring: [UInt64]
        private var oldest = 0
        private(set) var count = 0

        init(capacity: Int) {
            self.ring = [UInt64](repeating: 0, count: capacity)
        }

        mutating func append(_ time: UInt64) {
            self.ring[(self.oldest + self.count) % self.ring.count] = time
            self.count += 1
        }

        mutating func removeOldest() -> UInt64? {
            guard self.count > 0 else {
                return nil
            }
            let time = self.ring[self.oldest]
            self.oldest = (self.oldest + 1) % self.ring.count
            self.count -= 1
            return time
        }
    }

    /// One open echo stream.
    private struct EchoStream {
        var sendTimes: SendTimes
        var echoedMessages = GRPCMessageCounter()
        /// The client has sent END_STREAM.
        var halfClosed = false
        /// Trailers arrived or the stream was reset.
        var closed = false
    }

    private let streamCount: Int
    private let messagesInFlightPerStream: Int
    private let requestHeaders: HPACKHeaders
    private let message: ByteBuffer
    /// Streams by index; stream `i` has HTTP/2 stream ID `2i + 1` because they are all opened at start, in order.
    private var streams: [EchoStream] = []
    private var openStreams = 0

    /// A workload of `streamCount` streams opened with `requestHeaders`, each keeping `messagesInFlightPerStream`
    /// copies of `message` (a whole gRPC message, prefix included) in flight.
    init(streamCount: Int, messagesInFlightPerStream: Int, requestHeaders: HPACKHeaders, message: ByteBuffer) {
        self.streamCount = streamCount
        self.messagesInFlightPerStream = messagesInFlightPerStream
        self.requestHeaders = requestHeaders
        self.message = message
    }

    var isDrained: Bool { self.openStreams == 0 }

    var outstanding: Int {
        self.streams.reduce(0) { $0 + ($1.closed ? 0 : $1.sendTimes.count) }
    }

    mutating func start(_ connection: LoadConnectionWriter) {
        let now = LoadRecorder.now()
        for index in 0..<self.streamCount {
            let streamID = Self.streamID(ofIndex: index)
            connection.write(HTTP2Frame(streamID: streamID, payload: .headers(.init(headers: self.requestHeaders))))
            var stream = EchoStream(sendTimes: SendTimes(capacity: self.messagesInFlightPerStream))
            for _ in 0..<self.messagesInFlightPerStream {
                self.send(on: streamID, connection)
                stream.sendTimes.append(now)
            }
            self.streams.append(stream)
        }
        self.openStreams = self.streamCount
    }

    mutating func received(_ frame: HTTP2Frame, _ connection: LoadConnectionWriter) {
        guard let index = self.index(of: frame.streamID), !self.streams[index].closed else {
            return
        }
        switch frame.payload {
        case .data(let data):
            guard case .byteBuffer(let bytes) = data.data else {
                return
            }
            let bytesBefore = self.streams[index].echoedMessages.bodyBytesConsumed
            let echoed = self.streams[index].echoedMessages.consume(bytes)
            connection.recorder.recordResponseBytes(self.streams[index].echoedMessages.bodyBytesConsumed - bytesBefore)
            guard echoed > 0 else {
                return
            }
            let now = LoadRecorder.now()
            for _ in 0..<echoed {
                guard let sentAt = self.streams[index].sendTimes.removeOldest() else {
                    // More echoes than messages sent: the peer is not echoing faithfully.
                    connection.recorder.recordErrors()
                    continue
                }
                connection.recorder.recordCompletion(startedAt: sentAt, finishedAt: now)
                if connection.keepsLoadGoing && !self.streams[index].halfClosed {
                    self.send(on: frame.streamID, connection)
                    self.streams[index].sendTimes.append(now)
                }
            }
        case .headers(let headers) where headers.endStream:
            // Trailers are only expected after the client half-closed, and only with status OK.
            let succeeded = BenchGRPCHeaders.status(in: headers.headers) == BenchGRPCHeaders.statusOK
                && self.streams[index].halfClosed
            if !succeeded {
                connection.recorder.recordErrors()
            }
            self.close(index)
        default:
            break
        }
    }

    mutating func streamClosed(_ streamID: HTTP2StreamID, reason: HTTP2ErrorCode?, _ connection: LoadConnectionWriter) {
        guard let index = self.index(of: streamID), !self.streams[index].closed else {
            return
        }
        // Closed without trailers: reset by the peer or failed locally.
        connection.recorder.recordErrors()
        self.close(index)
    }

    mutating func beginDraining(_ connection: LoadConnectionWriter) {
        for index in self.streams.indices where !self.streams[index].closed && !self.streams[index].halfClosed {
            self.streams[index].halfClosed = true
            let endOfRequests = HTTP2Frame.FramePayload.Data(data: .byteBuffer(ByteBuffer()), endStream: true)
            connection.write(HTTP2Frame(streamID: Self.streamID(ofIndex: index), payload: .data(endOfRequests)))
        }
    }

    private func send(on streamID: HTTP2StreamID, _ connection: LoadConnectionWriter) {
        connection.write(HTTP2Frame(streamID: streamID, payload: .data(.init(data: .byteBuffer(self.message)))))
    }

    private mutating func close(_ index: Int) {
        self.streams[index].closed = true
        self.openStreams -= 1
    }

    private static func streamID(ofIndex index: Int) -> HTTP2StreamID {
        HTTP2StreamID(Int32(2 * index + 1))
    }

    private func index(of streamID: HTTP2StreamID) -> Int? {
        let index = (Int(streamID) - 1) / 2
        return self.streams.indices.contains(index) ? index : nil
    }
}
