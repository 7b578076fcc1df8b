// Flushes, once per read batch, every connection that calls wrote to while the event loop handled that batch.
//
// A proxy writes to a connection because bytes arrived on *another* connection: many calls finishing in one read
// of an upstream connection each write to their client's connection. Flushing each of those writes on its own
// means a pass through the HTTP/2 handler and a `writev` per call; collecting the writers touched during the read
// and flushing each once when the read batch ends (`channelReadComplete`) gives one system call per connection.
// Writes that happen outside a read batch (a connect completing, a write promise granting credit) flush at once.
//
// One per event-loop thread, shared by every connection handler on that loop.

import NIOCore
import NIOPosix

// Unchecked Sendable: each instance is reached only through its own thread's thread-specific variable.
final class ReadBatchFlusher: @unchecked Sendable {
    private static let perThread = ThreadSpecificVariable<ReadBatchFlusher>()

    /// The flusher of the calling thread (an event loop's).
    static var current: ReadBatchFlusher {
        if let flusher = perThread.currentValue { return flusher }
        let flusher = ReadBatchFlusher()
        perThread.currentValue = flusher
        return flusher
    }

    private var inReadBatch = false
    private var pending: [HTTP2FrameWriter] = []
    private var deferred: [() -> Void] = []

    /// A connection handler started reading frames.
    func beginReadBatch() {
        inReadBatch = true
    }

    /// The read batch is over (or its connection closed): flush every writer used during it.
    func endReadBatch() {
        while !deferred.isEmpty {
            let work = deferred
            deferred.removeAll(keepingCapacity: true)
            for body in work { body() }
        }
        inReadBatch = false
        guard !pending.isEmpty else { return }
        let writers = pending
        pending.removeAll(keepingCapacity: true)
        for writer in writers {
            writer.flushNow()
        }
    }

    /// Runs `body` when the current read batch ends, before its writers are flushed; now when there is none.
    /// What a call would start because of one frame can so wait for the frames read with it: a stream its client
    /// opened and reset in the same read never reaches the upstream.
    func atEndOfReadBatch(_ body: @escaping () -> Void) {
        guard inReadBatch else { return body() }
        deferred.append(body)
    }

    /// Flushes `writer` at the end of the current read batch, or now when there is none.
    func flush(_ writer: HTTP2FrameWriter) {
        guard inReadBatch else {
            writer.flushNow()
            return
        }
        if writer.markFlushPending() {
            pending.append(writer)
        }
    }
}
