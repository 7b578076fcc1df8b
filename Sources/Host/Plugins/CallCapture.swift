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

    /// Queues one record (a JSON line without its newline); false when the queue is full or the file failed.
    func enqueue(_ line: String) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !failed, queuedBytes + line.utf8.count <= Self.maxQueueBytes else { return false }
        queue.append(line)
        queuedBytes += line.utf8.count + 1
        condition.signal()
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
            queue.removeAll(keepingCapacity: true)
            queuedBytes = 0
            writing = true
            let limit = (maxFileBytes, maxFiles)
            condition.unlock()
            var ok = true
            for line in lines where ok {
                ok = write(line + "\n", maxFileBytes: limit.0, maxFiles: limit.1)
            }
            condition.lock()
            writing = false
            written += ok ? lines.count : 0
            if !ok { failed = true }
            condition.broadcast()
            condition.unlock()
        }
    }

    private func write(_ line: String, maxFileBytes: Int, maxFiles: Int) -> Bool {
        let bytes = Array(line.utf8)
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

/// One listener side's capture settings.
final class CaptureTap: Sendable {
    static let alwaysRedacted: Set<String> = ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"]

    let writer: CaptureWriter
    let connection: String
    let side: PluginSide
    private let methods: Set<String>
    private let namespaces: Set<String>
    private let redacted: Set<String>

    init(config: CaptureConfig, connection: String, side: PluginSide, writer: CaptureWriter) {
        self.writer = writer
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
    let id = UUID().uuidString.lowercased()
    private let tap: CaptureTap
    private let started = NIODeadline.now()
    private var dropped = false

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
        // Tried even after a drop, so that a reader learns the call is incomplete; not counted twice.
        _ = tap.writer.enqueue(
            #"{"v":1,"type":"end","id":"\#(id)","status":\#(status),"durationMs":\#(offset())\#(truncated)}"#
        )
    }

    fileprivate func emit(_ line: String) {
        guard !dropped else { return }
        if !tap.writer.enqueue(line) {
            dropped = true
            tap.writer.noteDroppedCall()
        }
    }

    private func offset() -> String {
        let milliseconds = Double((NIODeadline.now() - started).nanoseconds) / 1e6
        return String(format: "%.3f", milliseconds)
    }

    static func timestamp() -> String {
        var formatter = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        formatter.timeZone = TimeZone(identifier: "UTC")!
        return Date().formatted(formatter)
    }

    /// `text` as a JSON string literal.
    static func json(_ text: String) -> String {
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
