// Runs a plugin chain's hooks for one call: `call_start` for each entry that wants the call (metadata edits,
// rejection, per-call state), `on_message` for each message in the directions each entry wants, and `call_end`
// exactly once for every entry whose `call_start` ran.
//
// Requests pass the entries in chain order, responses in reverse order (the entry nearest the server sees a
// response first), each entry seeing the previous one's output. A message nobody changes goes on as the very
// buffer it arrived in. The outcome of each hook is checked against the ABI's rules; a hook that breaks them
// counts as a plugin failure, and the entry's failure policy decides what the call sees. Every hook is timed and
// counted in its entry's stats, whatever its outcome: in batches (`tally`), one lock per entry at the call's end,
// when 16 hook runs are waiting, and at the next run once the oldest waiting one is a second old (a busy stream's
// figures are about a second behind; an idle one's last few wait for its next run or its end). Rejections and
// failures are counted at once.
//
// Confined to the call's event loop, like the `ProxyCall` that owns it.

import NIOCore
import NIOHPACK
import PluginABI

final class PluginCallRunner {
    enum Verdict {
        case proceed
        case fail(GRPCStatus)
    }

    enum MessageVerdict {
        /// The message to forward, framed (5-byte prefix then payload).
        case forward(ByteBuffer)
        case fail(GRPCStatus)
    }

    private let plan: PluginCallPlan
    private let method: String
    private let side: PluginSide
    private let connection: String
    /// Per-call state of each step whose call_start ran (in step order).
    private var states: [UnsafeMutableRawPointer?] = []
    /// Steps whose call_start failed under failOpen: they see no more of the call (but still get call_end).
    private var skipped: Set<Int> = []
    private let scratch = PluginHookScratch()
    private var requestIndex: UInt64 = 0
    private var responseIndex: UInt64 = 0
    private var ended = false
    /// The call's capture records, when its listener side records it (`capture:`).
    private var capture: CaptureCall?
    /// The `grpc-encoding` of each direction: compressed messages in gzip or deflate are inflated for the plugins.
    var requestEncoding: String?
    var responseEncoding: String?
    /// The largest message inflated for plugins (`limits.maxMessageBytes`).
    var maxMessageBytes = Int(Int32.max)
    /// Hook runs not yet counted into their entries' stats, the first `tallyCount`, the first of them at
    /// `tallyStarted`.
    private var tally = InlineArray<16, HookRun>(repeating: HookRun())
    private var tallyCount = 0
    private var tallyStarted = NIODeadline.uptimeNanoseconds(0)

    init(plan: PluginCallPlan, method: String, side: PluginSide, connection: String) {
        self.plan = plan
        self.method = method
        self.side = side
        self.connection = connection
    }

    /// What one hook of one step did, for `s2s-proxy replay` (nil in the proxy: nothing is built for it).
    struct StepEvent {
        enum Outcome {
            case goOn
            /// on_message: the replacement, framed.
            case replaced(ByteBuffer)
            case failedOpen
            case rejected(GRPCStatus)
            case failedClosed(GRPCStatus)
        }

        let step: Int
        let hook: String
        let outcome: Outcome
        /// call_start and on_response_metadata: the metadata after the hook's edits.
        let headers: HPACKHeaders?
    }

    var stepObserver: ((StepEvent) -> Void)?

    private func observe(_ step: Int, _ hook: String, _ judgement: Judgement, headers: HPACKHeaders? = nil) {
        guard let stepObserver else { return }
        let outcome: StepEvent.Outcome
        switch judgement {
        case .goOn: outcome = .goOn
        case .replaced(let bytes): outcome = .replaced(bytes)
        case .failedOpen: outcome = .failedOpen
        case .rejected(let status): outcome = .rejected(status)
        case .end(let status): outcome = .failedClosed(status)
        }
        stepObserver(StepEvent(step: step, hook: hook, outcome: outcome, headers: headers))
    }

    /// The chain entry whose rejection or (closed) failure ended the call, for the proxy's log line about it.
    private(set) var endedBy: (plugin: String, entry: String)?

    var wantsRequestMessages: Bool { plan.wantsRequestMessages }
    var wantsResponseMessages: Bool { plan.wantsResponseMessages }
    /// Whether any step wants the response's headers.
    var wantsResponseHeaders: Bool { plan.wantsResponseMetadata }

    /// Whether any step wants trailers whose grpc-status is `status` ("0" or absent: OK).
    func wantsTrailers(status: String?) -> Bool {
        plan.wantsResponseMetadata || (plan.wantsErrorTrailers && status != nil && status != "0")
    }

    // MARK: Call start

    /// Runs call_start of every step; `headers` (the request HEADERS as forwarded) receives the metadata edits.
    func start(headers: inout HPACKHeaders) -> Verdict {
        capture = plan.capture?.begin(method: method, headers: headers)
        for step in plan.steps where !step.entry.isServing {
            switch step.entry.currentSchemaState {
            case .notNeeded, .ready:
                continue
            case .pending(let reason):
                return .fail(GRPCStatus(
                    .unavailable,
                    "s2s-proxy plugin \(step.entry.library.name) (\(step.entry.label)) is waiting for the Temporal schema: "
                        + step.entry.schemaWaitReason(reason) + "; retry shortly"
                ))
            case .failed(let reason):
                return .fail(GRPCStatus(.unavailable, reason))
            }
        }
        scratch.headers = headers
        // Laid out for the first step, and again only for a step after one that edited the metadata.
        var info = CallInfoBlock(method: method, side: side, connection: connection, headers: scratch.headers)
        var infoVersion = scratch.headersVersion
        defer { info.deallocate() }
        // One clock read per hook boundary: a hook's time runs from the end of the one before it (so it includes
        // the host's few instructions of bookkeeping between them) to its own end.
        var mark = NIODeadline.now()
        for (stepIndex, step) in plan.steps.enumerated() {
            let entry = step.entry
            if infoVersion != scratch.headersVersion {
                info.deallocate()
                info = CallInfoBlock(method: method, side: side, connection: connection, headers: scratch.headers)
                infoVersion = scratch.headersVersion
                mark = NIODeadline.now()
            }
            scratch.begin(.callStart)
            var state: UnsafeMutableRawPointer?
            let outcome = step.callStart(step.config, scratch.handle, info.pointer, &state)
            let now = NIODeadline.now()
            let elapsed = now - mark
            mark = now
            states.append(state)
            scratch.hook = .none
            count(HookRun(step: stepIndex, kind: .callStart, elapsed: elapsed), at: now)
            let judgement = judge(outcome, of: entry, during: "call_start")
            observe(stepIndex, "call_start", judgement, headers: stepObserver == nil ? nil : scratch.headers)
            switch judgement {
            case .goOn:
                continue
            case .replaced, .failedOpen:
                skipped.insert(stepIndex)
            case .rejected(let status), .end(let status):
                return .fail(status)
            }
        }
        headers = scratch.headers
        return .proceed
    }

    // MARK: Messages

    /// Runs on_message of every step that wants `direction` over `framed` (one whole message with its prefix).
    func message(_ framed: ByteBuffer, direction: s2s_direction_t) -> MessageVerdict {
        let isRequest = direction == S2S_DIRECTION_REQUEST
        let index: UInt64
        if isRequest {
            index = requestIndex
            requestIndex += 1
        } else {
            index = responseIndex
            responseIndex += 1
        }
        capture?.message(framed, direction: direction, index: index, encoding: isRequest ? requestEncoding : responseEncoding)
        if plan.steps.isEmpty { return .forward(framed) }  // captured only
        var current = framed
        // A compressed message is inflated for the plugins; if none replaces it, the compressed original goes on.
        var compressedOriginal: ByteBuffer?
        if framed.getInteger(at: framed.readerIndex, as: UInt8.self) == 1,
           GRPCMessageInflater.canInflate(isRequest ? requestEncoding : responseEncoding) {
            var payload = framed
            payload.moveReaderIndex(forwardBy: 5)
            do {
                let inflated = try GRPCMessageInflater.inflate(payload, limit: maxMessageBytes)
                var plain = ByteBufferAllocator().buffer(capacity: 5 + inflated.readableBytes)
                plain.writeGRPCPrefix(length: inflated.readableBytes)
                plain.writeImmutableBuffer(inflated)
                current = plain
                compressedOriginal = framed
            } catch .tooLarge(let limit) {
                return .fail(GRPCStatus(.resourceExhausted, "a compressed \(isRequest ? "request" : "response") message inflates to more than the proxy's limit of \(limit) bytes (limits.maxMessageBytes)"))
            } catch {
                guard case .corrupt(let reason) = error else { return .fail(GRPCStatus(.internal, "\(error)")) }
                return .fail(GRPCStatus(.internal, "s2s-proxy could not inflate a compressed \(isRequest ? "request" : "response") message: \(reason)"))
            }
        }
        var anyReplaced = false
        let stepCount = plan.steps.count
        var mark = NIODeadline.now()  // one clock read per hook boundary, as in start
        for position in 0..<stepCount {
            // Requests pass the chain in order, responses in reverse; no index array is built per message.
            let stepIndex = isRequest ? position : stepCount - 1 - position
            guard stepIndex < states.count, !skipped.contains(stepIndex) else { continue }
            let step = plan.steps[stepIndex]
            guard isRequest ? step.wantsRequestMessages : step.wantsResponseMessages,
                  let onMessage = step.onMessage
            else { continue }
            let entry = step.entry
            let flag: UInt8 = current.getInteger(at: current.readerIndex) ?? 0
            scratch.begin(.message)
            scratch.replacementCompressedFlag = flag
            let outcome = current.withUnsafeReadableBytes { raw -> s2s_outcome_t in
                let payload = UnsafeRawBufferPointer(rebasing: raw.dropFirst(5))
                var message = s2s_message_t(
                    struct_size: UInt32(MemoryLayout<s2s_message_t>.size),
                    direction: direction,
                    index: index,
                    payload: s2s_bytes_t(data: payload.baseAddress?.assumingMemoryBound(to: UInt8.self), len: payload.count),
                    compressed: flag == 0 ? 0 : 1
                )
                return onMessage(step.config, states[stepIndex], scratch.handle, &message)
            }
            let now = NIODeadline.now()
            let elapsed = now - mark
            mark = now
            scratch.hook = .none
            let judgement = judge(outcome, of: entry, during: "on_message")
            count(HookRun(
                step: stepIndex, kind: .message, elapsed: elapsed, replaced: judgement.isReplacement,
                failed: judgement.isFailure,
                messageType: isRequest ? step.messageTypes?.request : step.messageTypes?.response
            ), at: now)
            observe(stepIndex, "on_message", judgement)
            switch judgement {
            case .goOn, .failedOpen:
                break
            case .replaced(let replacement):
                current = replacement
                anyReplaced = true
            case .rejected(let status), .end(let status):
                return .fail(status)
            }
        }
        if !anyReplaced, let compressedOriginal { return .forward(compressedOriginal) }
        return .forward(current)
    }

    // MARK: Response metadata

    /// The response's headers or trailers as the server sent them, for the capture (before any plugin).
    func observeResponseMetadata(_ headers: HPACKHeaders, kind: s2s_metadata_kind_t) {
        capture?.metadata(headers, kind: kind)
    }

    /// Runs on_response_metadata of every step that wants it over the response's headers or trailers, in the order
    /// responses travel (the step nearest the server first); `headers` receives the edits. A rejection or a closed
    /// failure is the status the client gets instead.
    func responseMetadata(_ headers: inout HPACKHeaders, kind: s2s_metadata_kind_t) -> Verdict {
        let status = kind == S2S_METADATA_RESPONSE_TRAILERS ? headers.first(name: "grpc-status") : nil
        let failed = status != nil && status != "0"
        scratch.headers = headers
        var mark = NIODeadline.now()  // one clock read per hook boundary, as in start
        let stepCount = plan.steps.count
        for position in 0..<stepCount {
            let stepIndex = stepCount - 1 - position
            guard stepIndex < states.count, !skipped.contains(stepIndex) else { continue }
            let step = plan.steps[stepIndex]
            guard step.wantsMetadata(kind, failed: failed), let hook = step.onResponseMetadata else { continue }
            let block = MetadataBlock(kind: kind, headers: scratch.headers)
            scratch.begin(.responseMetadata)
            let outcome = hook(step.config, states[stepIndex], scratch.handle, block.pointer)
            block.deallocate()
            let now = NIODeadline.now()
            let elapsed = now - mark
            mark = now
            scratch.hook = .none
            let judgement = judge(outcome, of: step.entry, during: "on_response_metadata")
            count(HookRun(step: stepIndex, kind: .responseMetadata, elapsed: elapsed, failed: judgement.isFailure), at: now)
            observe(stepIndex, "on_response_metadata", judgement, headers: stepObserver == nil ? nil : scratch.headers)
            switch judgement {
            case .goOn, .failedOpen, .replaced:
                continue
            case .rejected(let status), .end(let status):
                return .fail(status)
            }
        }
        headers = scratch.headers
        return .proceed
    }

    // MARK: Call end

    /// Runs call_end for every step whose call_start ran; `grpcStatus` is the status the client got, -1 if none.
    func end(grpcStatus: Int32) {
        guard !ended else { return }
        ended = true
        capture?.end(status: grpcStatus)
        capture = nil
        var end = s2s_call_end_t(struct_size: UInt32(MemoryLayout<s2s_call_end_t>.size), grpc_status: grpcStatus)
        var mark = NIODeadline.now()  // one clock read per hook boundary, as in start
        for (stepIndex, state) in states.enumerated() {
            let step = plan.steps[stepIndex]
            guard let callEnd = step.callEnd else { continue }
            scratch.begin(.callEnd)
            callEnd(step.config, state, scratch.handle, &end)
            let now = NIODeadline.now()
            let elapsed = now - mark
            mark = now
            scratch.hook = .none
            count(HookRun(step: stepIndex, kind: .callEnd, elapsed: elapsed), at: now)
        }
        states = []
        countTally()
    }

    deinit {
        countTally()  // a runner dropped without end (which the proxy never does) still counts what ran
    }

    // MARK: Hook statistics

    private func count(_ run: HookRun, at now: NIODeadline) {
        if tallyCount == 0 { tallyStarted = now }
        tally[tallyCount] = run
        tallyCount += 1
        if tallyCount == tally.count || now - tallyStarted > .seconds(1) {
            countTally()
        }
    }

    /// Counts the waiting hook runs into their entries' stats: one lock per entry that has any.
    private func countTally() {
        guard tallyCount > 0 else { return }
        let waiting = tallyCount
        tallyCount = 0
        for (index, step) in plan.steps.enumerated() {
            let stepIndex = UInt16(truncatingIfNeeded: index)
            var any = false
            for i in 0..<waiting where tally[i].step == stepIndex {
                any = true
                break
            }
            guard any else { continue }
            step.entry.count { record in
                for i in 0..<waiting where tally[i].step == stepIndex {
                    record(tally[i])
                }
            }
        }
    }

    // MARK: Outcomes

    private enum Judgement {
        /// S2S_OK.
        case goOn
        /// S2S_REPLACED with bytes (on_message); in call_start a breach of the ABI, treated as a failure.
        case replaced(ByteBuffer)
        /// The plugin failed and its entry fails open.
        case failedOpen
        /// The plugin rejected the call with this status.
        case rejected(GRPCStatus)
        /// The plugin failed and its entry fails closed: the call ends with this status.
        case end(GRPCStatus)

        var isReplacement: Bool {
            if case .replaced = self { return true }
            return false
        }

        /// Whether the plugin failed (S2S_ERROR or a breach of the ABI), whatever its policy made of it.
        var isFailure: Bool {
            switch self {
            case .failedOpen, .end: return true
            case .goOn, .replaced, .rejected: return false
            }
        }
    }

    /// What a hook's outcome means for the call, by the ABI's rules and the entry's failure policy.
    private func judge(_ outcome: s2s_outcome_t, of entry: PluginEntry, during hook: String) -> Judgement {
        let detail: String
        switch outcome {
        case S2S_OK:
            return .goOn
        case S2S_REPLACED where hook == "on_message":
            if let replacement = scratch.replacement { return .replaced(replacement) }
            detail = "returned S2S_REPLACED without calling set_message"
        case S2S_REJECTED:
            if let status = rejection(by: entry) { return .rejected(status) }
            detail = "returned S2S_REJECTED without a valid status (set_status with a code 1-16)"
        case S2S_ERROR:
            detail = scratch.statusMessage ?? "returned S2S_ERROR without a message (call set_status before returning it)"
        default:
            detail = "returned outcome \(outcome.rawValue), which \(hook) may not return"
        }
        return failure(of: entry, during: hook, detail: detail).map { .end($0) } ?? .failedOpen
    }

    /// The status a plugin rejected the call with, or nil if it gave none that a client may receive.
    private func rejection(by entry: PluginEntry) -> GRPCStatus? {
        guard scratch.statusCode != 0, let code = GRPCStatusCode(rawValue: Int(scratch.statusCode)) else { return nil }
        entry.updateStats { $0.rejected += 1 }
        endedBy = (entry.library.name, entry.label)
        entry.context.logger.debug("plugin rejected the call", metadata: [
            "method": "\(method)", "status": "\(code)", "reason": "\(scratch.statusMessage ?? "")",
        ])
        return GRPCStatus(code, scratch.statusMessage ?? "")
    }

    /// Applies the entry's failure policy: the status to end the call with (fail closed), or nil to go on.
    private func failure(of entry: PluginEntry, during hook: String, detail: String) -> GRPCStatus? {
        entry.updateStats {
            $0.failures += 1
            if entry.policy == .failOpen { $0.failedOpen += 1 }
        }
        let metadata: Logger.Metadata = ["entry": "\(entry.label)", "hook": "\(hook)", "method": "\(method)", "reason": "\(detail)"]
        switch entry.policy {
        case .failClosed:
            endedBy = (entry.library.name, entry.label)
            entry.context.logger.warning("plugin failed; the call is ended (onError: failClosed)", metadata: metadata)
            return GRPCStatus(.internal, "s2s-proxy plugin \(entry.library.name) failed in \(hook): \(detail)")
        case .failOpen:
            entry.context.logger.warning("plugin failed; going on without it (onError: failOpen)", metadata: metadata)
            return nil
        }
    }
}

/// A C struct the hooks read (`Head`: the `s2s_call_info_t` of call_start, the `s2s_metadata_t` of
/// on_response_metadata) and everything it points at, in one allocation the runner owns from its layout to
/// `deallocate()`: the struct, the list of metadata entries (all but the pseudo-headers), then the bytes of the
/// struct's own strings and of each entry (binary values decoded).
private struct HeaderBlock<Head> {
    private let block: UnsafeMutableRawPointer

    var pointer: UnsafePointer<Head> { UnsafePointer(block.assumingMemoryBound(to: Head.self)) }

    /// `head` makes the struct from the bytes of `first` and `second` (as laid out in the block) and the entries.
    init(
        strings first: String = "", _ second: String = "", headers: HPACKHeaders,
        head: (_ first: s2s_bytes_t, _ second: s2s_bytes_t, _ entries: UnsafePointer<s2s_header_t>?, _ count: Int)
            -> Head
    ) {
        // One pass over the metadata, into room for all of it: a decoded binary value is shorter than its base64,
        // and pseudo-headers take room they do not use.
        var byteCount = first.utf8.count + second.utf8.count
        for (name, value, _) in headers {
            byteCount += name.utf8.count + value.utf8.count
        }
        let entryCapacity = headers.count
        let entriesOffset = (MemoryLayout<Head>.stride + MemoryLayout<s2s_header_t>.alignment - 1)
            & ~(MemoryLayout<s2s_header_t>.alignment - 1)
        let bytesOffset = entriesOffset + entryCapacity * MemoryLayout<s2s_header_t>.stride
        block = .allocate(
            byteCount: bytesOffset + byteCount,
            alignment: max(MemoryLayout<Head>.alignment, MemoryLayout<s2s_header_t>.alignment)
        )
        let entries = (block + entriesOffset).bindMemory(to: s2s_header_t.self, capacity: entryCapacity)
        let base = (block + bytesOffset).bindMemory(to: UInt8.self, capacity: byteCount)
        var offset = 0
        func append(_ text: some Collection<UInt8>) -> s2s_bytes_t {
            let start = offset
            let copied = text.withContiguousStorageIfAvailable { source in
                if let from = source.baseAddress { (base + offset).initialize(from: from, count: source.count) }
                return source.count
            }
            if let copied {
                offset += copied
            } else {
                for byte in text {
                    (base + offset).initialize(to: byte)
                    offset += 1
                }
            }
            return s2s_bytes_t(data: UnsafePointer(base + start), len: offset - start)
        }
        let firstBytes = append(first.utf8)
        let secondBytes = append(second.utf8)
        var entryCount = 0
        for (name, value, _) in headers where name.utf8.first != UInt8(ascii: ":") {
            let nameBytes = append(name.utf8)
            let valueBytes = PluginHeaderRules.isBinary(name)
                ? append(PluginHeaderRules.pluginValue(name: name, value: value))
                : append(value.utf8)
            (entries + entryCount).initialize(to: s2s_header_t(name: nameBytes, value: valueBytes))
            entryCount += 1
        }
        block.bindMemory(to: Head.self, capacity: 1).initialize(
            to: head(firstBytes, secondBytes, entryCount == 0 ? nil : UnsafePointer(entries), entryCount))
    }

    func deallocate() {
        block.deallocate()
    }
}

/// The `s2s_call_info_t` of call_start: the method and the connection's name, then the request metadata.
private typealias CallInfoBlock = HeaderBlock<s2s_call_info_t>

extension HeaderBlock where Head == s2s_call_info_t {
    init(method: String, side: PluginSide, connection: String, headers: HPACKHeaders) {
        self.init(strings: method, connection, headers: headers) { method, connection, entries, count in
            s2s_call_info_t(
                struct_size: UInt32(MemoryLayout<s2s_call_info_t>.size), method: method, side: side.abiValue,
                connection: connection, headers: entries, header_count: count)
        }
    }
}

/// The `s2s_metadata_t` of on_response_metadata: the response's headers or trailers.
private typealias MetadataBlock = HeaderBlock<s2s_metadata_t>

extension HeaderBlock where Head == s2s_metadata_t {
    init(kind: s2s_metadata_kind_t, headers: HPACKHeaders) {
        self.init(headers: headers) { _, _, entries, count in
            s2s_metadata_t(
                struct_size: UInt32(MemoryLayout<s2s_metadata_t>.size), kind: kind, headers: entries,
                header_count: count)
        }
    }
}

import Logging
