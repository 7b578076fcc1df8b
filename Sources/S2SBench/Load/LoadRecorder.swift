// LoadRecorder: the outcome counters of one load connection. It lives on that connection's event loop, so
// recording is plain arithmetic without locks; the runner collects a LoadTally from each connection at the end of
// the measured window and merges them.

import NIOCore

/// What one connection (or, merged, the whole run) completed during the measured window.
struct LoadTally: Sendable {
    /// Calls (unary) or echoed messages (stream) completed successfully while recording.
    var completed: UInt64 = 0
    /// Response message body bytes received while recording: of completed calls (unary), or as they arrived
    /// (stream).
    var responseBytes: UInt64 = 0
    /// Their latencies.
    var latency = LatencyHistogram()
    /// How long recording lasted on this connection, in nanoseconds (summed when merged).
    var recordedNanoseconds: UInt64 = 0
    /// Connections merged into this tally.
    var connections = 0

    /// Adds another connection's tally to this one.
    mutating func merge(_ other: LoadTally) {
        self.completed += other.completed
        self.responseBytes += other.responseBytes
        self.latency.merge(other.latency)
        self.recordedNanoseconds += other.recordedNanoseconds
        self.connections += other.connections
    }
}

/// Counts completions and latencies while the measured window is open, and errors for the whole run.
final class LoadRecorder {
    private var tally = LoadTally()
    private var recordingStartedAt: UInt64?

    /// Failed calls or streams (non-zero `grpc-status`, reset streams, lost connections), warm-up and drain
    /// included: an error is worth reporting whenever it happens.
    private(set) var errors: UInt64 = 0

    /// The monotonic clock latencies are measured with, in nanoseconds.
    static func now() -> UInt64 {
        NIODeadline.now().uptimeNanoseconds
    }

    /// Opens the measured window: completions from now on count.
    func beginRecording() {
        self.tally = LoadTally()
        self.recordingStartedAt = Self.now()
    }

    /// Closes the measured window and returns what it recorded.
    func endRecording() -> LoadTally {
        var result = self.tally
        if let startedAt = self.recordingStartedAt {
            result.recordedNanoseconds = Self.now() - startedAt
            result.connections = 1
        }
        self.recordingStartedAt = nil
        return result
    }

    /// Records a successful call or message that started at `startedAt`, finishing at `finishedAt`.
    func recordCompletion(startedAt: UInt64, finishedAt: UInt64) {
        guard self.recordingStartedAt != nil else {
            return
        }
        self.tally.completed += 1
        self.tally.latency.record(nanoseconds: finishedAt &- startedAt)
    }

    /// Records `count` bytes of response message bodies.
    func recordResponseBytes(_ count: Int) {
        guard self.recordingStartedAt != nil else {
            return
        }
        self.tally.responseBytes += UInt64(count)
    }

    /// Records `count` failed calls or messages.
    func recordErrors(_ count: Int = 1) {
        self.errors += UInt64(count)
    }
}
