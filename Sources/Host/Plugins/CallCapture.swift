// Capture (extension key `capture:` of a cluster connection): chosen calls recorded as the network carried them —
// request metadata, every message each way before any plugin, the response's headers and trailers, the status —
// into a rotating JSON Lines file, for `s2s-proxy replay` and for reading (docs/PLUGINS.md, "Capturing traffic";
// docs/design/capture-replay.md).
//
// `CaptureTap` is a listener side's settings; the plugin chain makes a plan for a method it matches, so the call's
// messages are deframed, and `PluginCallRunner` hands the tap what it holds before its steps run. A call's records
// are built on its event loop and queued to the file's `CaptureWriter`, whose own thread writes them: the loop never
// waits for the disk. The queue is bounded; a call that finds it full is recorded no further (its `end` record says
// so) and counted. Nothing of this runs for a connection without `capture:`.

import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHPACK
import PluginABI

/// One capture file, written by a thread of its own; shared by every tap that names the file, across reloads.
final class CaptureWriter: @unchecked Sendable {
    /// Records waiting for the disk, at most this many bytes; beyond, calls are dropped.
    static let maxQueueBytes = 8 * 1024 * 1024

    private static let writers = NIOLockedValueBox<[String: CaptureWriter]>([:])

    /// The writer of `file`, made on first use; a later configuration's limits apply from its next record.
    static func shared(file: String, maxFileBytes: Int, maxFiles: Int, logger: Logger) -> CaptureWriter {
        writers.withLockedValue { writers in
            if let writer = writers[file] {
                writer.condition.lock()
                writer.maxFileBytes = maxFileBytes
                writer.maxFiles = maxFiles
                writer.condition.unlock()
                return writer
            }
            let writer = CaptureWriter(file: file, maxFileBytes: maxFileBytes, maxFiles: maxFiles, logger: logger)
            writers[file] = writer
            return writer
        }
    }

    /// Every writer made so far, by file name.
    static func all() -> [CaptureWriter] {
        writers.withLockedValue { $0.values.sorted { $0.file < $1.file } }
    }

    /// Records written and calls dropped so far.
    func counts() -> (written: Int, dropped: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (written, droppedCalls)
    }

    /// Waits (up to `timeout`) until every writer has written what was queued: at exit.
    static func flushAll(timeout: TimeInterval = 2) {
        let all = writers.withLockedValue { Array($0.values) }
        let deadline = Date().addingTimeInterval(timeout)
        for writer in all {
            writer.condition.lock()
            while !writer.queue.isEmpty || writer.writing, Date() < deadline {
                _ = writer.condition.wait(until: min(deadline, Date().addingTimeInterval(0.05)))
            }
            writer.condition.unlock()
        }
    }

    let file: String
    private let logger: Logger
    private let condition = NSCondition()
    private var queue: [String] = []
    private var queuedBytes = 0
    private var queuedRecords = 0
    private var writing = false
    private var maxFileBytes: Int
    private var maxFiles: Int
    /// Records written and calls dropped, for the log and tests.
    private(set) var written = 0
    private(set) var droppedCalls = 0
    private var failed = false
    /// Writer-thread state.
    private var descriptor: Int32 = -1
    private var size = 0

    private init(file: String, maxFileBytes: Int, maxFiles: Int, logger: Logger) {
        self.file = file
        self.maxFileBytes = maxFileBytes
        self.maxFiles = maxFiles
        self.logger = logger
        let thread = Thread { [self] in run() }
        thread.name = "s2s-capture"
        thread.start()
    }

    /// Queues records (JSON lines, each ending in a newline, of one call); false when the queue is full or the
    /// file failed.
    func enqueue(_ line: String, records: Int) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !failed, queuedBytes + line.utf8.count <= Self.maxQueueBytes else { return false }
        let wasEmpty = queue.isEmpty
        queue.append(line)
        queuedRecords += records
        queuedBytes += line.utf8.count
        if wasEmpty { condition.signal() }  // the writer waits only on an empty queue
        return true
    }

    /// A call that could not be queued: counted, and logged at the first and every 1 000th.
    func noteDroppedCall() {
        condition.lock()
        droppedCalls += 1
        let count = droppedCalls
        condition.unlock()
        if count == 1 || count % 1000 == 0 {
            logger.warning(
                "capture cannot keep up (or its file failed): calls are being left out",
                metadata: ["file": "\(file)", "dropped": "\(count)"]
            )
        }
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty { condition.wait() }
            let lines = queue
            let records = queuedRecords
            queue.removeAll(keepingCapacity: true)
            queuedBytes = 0
            queuedRecords = 0
            writing = true
            let limit = (maxFileBytes, maxFiles)
            condition.unlock()
            // One write per batch, short of a rotation.
            var ok = true
            var batch: [UInt8] = []
            batch.reserveCapacity(min(Self.maxQueueBytes, 1 << 20))
            for chunk in lines where ok {
                if size + batch.count + chunk.utf8.count > limit.0, !batch.isEmpty {
                    ok = write(batch, maxFileBytes: limit.0, maxFiles: limit.1)
                    batch.removeAll(keepingCapacity: true)
                }
                batch.append(contentsOf: chunk.utf8)
            }
            if ok, !batch.isEmpty { ok = write(batch, maxFileBytes: limit.0, maxFiles: limit.1) }
            condition.lock()
            writing = false
            written += ok ? records : 0
            if !ok { failed = true }
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Appends whole lines, rotating first when they would take the file past `maxFileBytes`.
    private func write(_ bytes: [UInt8], maxFileBytes: Int, maxFiles: Int) -> Bool {
        if descriptor >= 0, size > 0, size + bytes.count > maxFileBytes {
            close(descriptor)
            descriptor = -1
            rotate(maxFiles: maxFiles)
        }
        if descriptor < 0 {
            descriptor = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else {
                logger.error("capture stopped: cannot open its file", metadata: [
                    "file": "\(file)", "reason": "\(String(cString: strerror(errno)))",
                ])
                return false
            }
            var status = stat()
            size = fstat(descriptor, &status) == 0 ? Int(status.st_size) : 0
        }
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, bytes.count - offset) }
            if result < 0 {
                if errno == EINTR { continue }
                logger.error("capture stopped: cannot write its file", metadata: [
                    "file": "\(file)", "reason": "\(String(cString: strerror(errno)))",
                ])
                return false
            }
            offset += result
        }
        size += bytes.count
        return true
    }

    /// `file` becomes `file.1`, `file.1` becomes `file.2` ..., the oldest beyond `maxFiles` goes.
    private func rotate(maxFiles: Int) {
        guard maxFiles > 1 else {
            unlink(file)
            return
        }
        unlink("\(file).\(maxFiles - 1)")
        for index in stride(from: maxFiles - 2, through: 1, by: -1) {
            rename("\(file).\(index)", "\(file).\(index + 1)")
        }
        rename(file, "\(file).1")
    }
}

/// A counter any thread may take the next value of.
private final class ManagedAtomicCounter: @unchecked Sendable {
    private let value = NIOLockedValueBox<UInt64>(0)

    func next() -> UInt64 {
        value.withLockedValue { current in
            current += 1
            return current
        }
    }
}

/// One listener side's capture settings.
final class CaptureTap: Sendable {
    static let alwaysRedacted: Set<String> = ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"]

    let writer: CaptureWriter
    /// A call's records go to the writer in chunks of about this size (and at its end): one lock per chunk, not
    /// per record; small enough that a chunk never alone overflows a file.
    let chunkBytes: Int
    let connection: String
    let side: PluginSide
    private let methods: Set<String>
    private let namespaces: Set<String>
    private let redacted: Set<String>

    init(config: CaptureConfig, connection: String, side: PluginSide, writer: CaptureWriter) {
        self.writer = writer
        chunkBytes = min(64 * 1024, config.maxFileBytes / 4)
        self.connection = connection
        self.side = side
        methods = Set(config.methods)
        namespaces = Set(config.namespaces)
        redacted = Self.alwaysRedacted.union(config.redactHeaders.map { $0.lowercased() })
    }

    /// Whether calls of `method` are recorded (their namespace is checked when they start).
    func matches(method: String) -> Bool {
        methods.isEmpty || methods.contains(method)
    }

    /// The record of a call that starts with `headers`, or nil when its namespace is not one to record.
    func begin(method: String, headers: HPACKHeaders) -> CaptureCall? {
        if !namespaces.isEmpty {
            guard let namespace = headers.first(name: "temporal-namespace"), namespaces.contains(namespace) else {
                return nil
            }
        }
        let call = CaptureCall(tap: self)
        call.emit(
            #"{"v":1,"type":"call","id":"\#(call.id)","time":"\#(CaptureCall.timestamp())","connection":"#
                + CaptureCall.json(connection) + #","side":"\#(side.rawValue)","method":"# + CaptureCall.json(method)
                + #","metadata":"# + metadata(headers) + "}"
        )
        return call
    }

    /// Metadata as a JSON array of [name, value] pairs: pseudo-headers included (they say what the call was),
    /// secrets redacted, "-bin" values as on the wire (base64).
    func metadata(_ headers: HPACKHeaders) -> String {
        var parts: [String] = []
        parts.reserveCapacity(headers.count)
        for (name, value, _) in headers {
            let shown = redacted.contains(name) ? "<redacted>" : value
            parts.append("[" + CaptureCall.json(name) + "," + CaptureCall.json(shown) + "]")
        }
        return "[" + parts.joined(separator: ",") + "]"
    }
}

/// The records of one call; confined to the call's event loop.
final class CaptureCall {
    /// A process-unique id: this process's random prefix and a counter (cheaper than a UUID per call).
    let id = CaptureCall.nextID()
    private let tap: CaptureTap
    private let started = NIODeadline.now()
    private var dropped = false
    /// Records not yet handed to the writer.
    private var pending = ""
    private var pendingRecords = 0

    fileprivate init(tap: CaptureTap) {
        self.tap = tap
    }

    /// One whole message (`framed`: the 5-byte prefix, then the payload) as it arrived, before any plugin.
    func message(_ framed: ByteBuffer, direction: s2s_direction_t, index: UInt64, encoding: String?) {
        guard !dropped else { return }
        let compressed = framed.getInteger(at: framed.readerIndex, as: UInt8.self) == 1
        let payload = framed.getBytes(at: framed.readerIndex + 5, length: max(0, framed.readableBytes - 5)) ?? []
        let name = direction == S2S_DIRECTION_REQUEST ? "request" : "response"
        emit(
            #"{"v":1,"type":"message","id":"\#(id)","direction":"\#(name)","index":\#(index),"offsetMs":\#(offset()),"#
                + #""compressed":\#(compressed),"encoding":"# + Self.json(compressed ? encoding ?? "identity" : "identity")
                + #","payload":""# + Data(payload).base64EncodedString() + #""}"#
        )
    }

    /// The response's headers or trailers as the server sent them, before any plugin.
    func metadata(_ headers: HPACKHeaders, kind: s2s_metadata_kind_t) {
        guard !dropped else { return }
        let name = kind == S2S_METADATA_RESPONSE_HEADERS ? "headers" : "trailers"
        emit(
            #"{"v":1,"type":"metadata","id":"\#(id)","kind":"\#(name)","offsetMs":\#(offset()),"metadata":"#
                + tap.metadata(headers) + "}"
        )
    }

    /// The end: the status the client received (-1: reset or cut off). The last record of the call.
    func end(status: Int32) {
        let truncated = dropped ? #","truncated":"queue full""# : ""
        let end = #"{"v":1,"type":"end","id":"\#(id)","status":\#(status),"durationMs":\#(offset())\#(truncated)}"#
        if dropped {
            // Tried even after a drop, so that a reader learns the call is incomplete; not counted twice.
            _ = tap.writer.enqueue(end + "\n", records: 1)
        } else {
            emit(end)
            hand()
        }
    }

    fileprivate func emit(_ line: String) {
        guard !dropped else { return }
        pending += line
        pending += "\n"
        pendingRecords += 1
        if pending.utf8.count >= tap.chunkBytes { hand() }
    }

    /// Hands the pending records to the writer.
    private func hand() {
        guard !pending.isEmpty, !dropped else { return }
        if !tap.writer.enqueue(pending, records: pendingRecords) {
            dropped = true
            tap.writer.noteDroppedCall()
        }
        pending = ""
        pendingRecords = 0
    }

    private static let idPrefix = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    private static let counter = ManagedAtomicCounter()

    private static func nextID() -> String {
        "\(idPrefix)-\(counter.next())"
    }

    /// Milliseconds since the call started, with three decimals.
    private func offset() -> String {
        let micros = max(0, (NIODeadline.now() - started).nanoseconds / 1000)
        let fraction = micros % 1000
        return "\(micros / 1000)." + (fraction < 10 ? "00" : fraction < 100 ? "0" : "") + "\(fraction)"
    }

    /// Now in UTC, as 2026-12-07T22:41:03.512Z.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = Int(now.tv_nsec / 1_000_000)
        let milliText = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):"
            + "\(two(parts.tm_min)):\(two(parts.tm_sec)).\(milliText)Z"
    }

    /// `text` as a JSON string literal.
    static func json(_ text: String) -> String {
        // Most header names, values and method paths need no escape.
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            return "\"" + text + "\""
        }
        var result = "\""
        result.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    result += String(format: "\\u%04x", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}
