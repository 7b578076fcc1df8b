// One entry of a plugin chain: a loaded plugin, the config object it created from the entry's options, and how
// the host treats it (which sides it runs on, what a plugin failure does, whether it is waiting for the schema).
//
// The config is created on the control thread (`init`), given the schema there too (`deliverSchema`), and from
// then on only read by the call threads: the lock around the schema state is the barrier that publishes what
// `schema_ready` wrote. `wants` answers are cached by the chain, not here. The call threads count what each hook
// did and how long it took (`PluginEntryStats`, and per message type for the entries that do one of the Go proxy's
// translations) under one lock per hook.

import Logging
import NIOConcurrencyHelpers
import NIOCore
import PluginABI
import PluginKit
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A number that tells the calling thread from the others (its pthread handle).
private func currentThreadKey() -> UInt64 {
    #if canImport(Darwin)
    return UInt64(UInt(bitPattern: pthread_self()))
    #else
    return UInt64(pthread_self())
    #endif
}

/// What a plugin failure (a hook returning S2S_ERROR, or breaking the ABI's rules) does to the call.
public enum PluginFailurePolicy: String, Sendable, Equatable, CaseIterable {
    /// The call ends with INTERNAL and the plugin's message (the default).
    case failClosed
    /// The message or metadata goes on as if the plugin had returned OK; counted and logged.
    case failOpen
}

/// Which listener's calls a chain entry runs on.
public enum PluginSides: String, Sendable, Equatable, CaseIterable {
    case inbound
    case outbound
    case both

    func includes(_ side: PluginSide) -> Bool {
        switch self {
        case .both: return true
        case .inbound: return side == .inbound
        case .outbound: return side == .outbound
        }
    }
}

/// The side of a listener, as the ABI names it.
public enum PluginSide: String, Sendable, Equatable {
    /// From the local cluster, going to the remote one.
    case outbound
    /// From the remote cluster, going to the local one.
    case inbound

    var abiValue: s2s_side_t { self == .outbound ? S2S_SIDE_OUTBOUND : S2S_SIDE_INBOUND }
}

/// One run of a hook of a chain entry, as the call's runner keeps it until it counts a batch into the entry.
struct HookRun {
    enum Kind: UInt8 {
        case callStart, message, callEnd, responseMetadata
    }

    /// The entry's step in the call's plan.
    var step: UInt16 = 0
    var kind: Kind = .callStart
    /// on_message: whether it replaced the message, whether it failed.
    var replaced = false
    var failed = false
    /// on_message of an entry that counts translations: the message's type number, else -1.
    var messageType: Int32 = -1
    var nanoseconds: UInt64 = 0

    init() {}

    init(
        step: Int, kind: Kind, elapsed: TimeAmount, replaced: Bool = false, failed: Bool = false,
        messageType: Int? = nil
    ) {
        self.step = UInt16(truncatingIfNeeded: step)
        self.kind = kind
        self.replaced = replaced
        self.failed = failed
        self.messageType = messageType.map { Int32(truncatingIfNeeded: $0) } ?? -1
        nanoseconds = UInt64(max(0, elapsed.nanoseconds))  // the monotonic clock never goes back; 0 if it did
    }
}

/// Counters the host keeps per chain entry.
public struct PluginEntryStats: Sendable, Equatable {
    public var calls: UInt64 = 0
    public var messages: UInt64 = 0
    public var replaced: UInt64 = 0
    public var rejected: UInt64 = 0
    /// Hooks that failed (S2S_ERROR or an ABI violation), whatever the policy did.
    public var failures: UInt64 = 0
    /// Failures let through because the entry fails open.
    public var failedOpen: UInt64 = 0
    /// How long each `call_start` took (one per call, so its count is `calls`).
    public var callStartDurations = DurationHistogram()
    /// How long each `on_message` took (one per message, so its count is `messages`).
    public var messageDurations = DurationHistogram()
    /// How long each `call_end` took (one per call whose `call_start` ran, when the plugin has the hook).
    public var callEndDurations = DurationHistogram()
    /// How long each `on_response_metadata` took (response headers and trailers, for plugins that want them).
    public var responseMetadataDurations = DurationHistogram()

    /// Adds another shard's figures.
    mutating func add(_ other: PluginEntryStats) {
        calls += other.calls
        messages += other.messages
        replaced += other.replaced
        rejected += other.rejected
        failures += other.failures
        failedOpen += other.failedOpen
        callStartDurations.add(other.callStartDurations)
        messageDurations.add(other.messageDurations)
        callEndDurations.add(other.callEndDurations)
        responseMetadataDurations.add(other.responseMetadataDurations)
    }

    /// Time spent inside the plugin's call hooks: call_start, on_message, on_response_metadata and call_end.
    public var hookNanoseconds: UInt64 {
        callStartDurations.sumNanoseconds &+ messageDurations.sumNanoseconds &+ callEndDurations.sumNanoseconds
            &+ responseMetadataDurations.sumNanoseconds
    }
}

public final class PluginEntry: @unchecked Sendable {
    public enum SchemaState: Sendable, Equatable {
        case notNeeded
        case pending(String)
        case ready
        case failed(String)
    }

    public let library: PluginLibrary
    /// Where the entry is configured, e.g. `clusterConnections[0].plugins[1]`, for messages.
    public let label: String
    public let sides: PluginSides
    public let policy: PluginFailurePolicy
    /// The Go proxy's translation this entry does (its `translation_*` metrics' `kind`), nil for most plugins.
    public let translationKind: TranslationKind?
    let context: PluginHostContext
    /// The plugin's config object (opaque).
    let config: UnsafeMutableRawPointer
    private let schemaState: NIOLockedValueBox<SchemaState>
    /// Whether calls may run (the schema is not needed, or the plugin has it): what every call asks, without the
    /// lock and the copy of `schemaState`. Set after `schemaState` changes; a call that sees it false reads the state.
    private let serving: Synchronization.Atomic<Bool>

    /// Everything the call threads count for the entry, behind one lock per shard so that a hook takes it once.
    private struct Counters {
        var stats = PluginEntryStats()
        /// Indexed by `MessageTypeTable` type number; empty until the schema arrives, and for entries without a
        /// translation kind.
        var translations: [TranslationCounters] = []
    }

    /// The counters, sharded by thread: each event loop counts into its own shard (two loops may share one), so
    /// the lock a hook takes is not fought over by the other loops, whose every hook of every call took the same
    /// one. Readers add the shards up.
    private let counterShards: [NIOLockedValueBox<Counters>] = (0..<8).map { _ in NIOLockedValueBox(Counters()) }

    /// The calling thread's shard (of eight).
    private var counters: NIOLockedValueBox<Counters> {
        counterShards[Int((currentThreadKey() &* 0x9E37_79B9_7F4A_7C15) >> 61)]
    }
    /// The message types of the schema, for an entry with a translation kind; set before the schema reaches the
    /// plugin, so no call runs before it is there.
    private let messageTypes = NIOLockedValueBox<MessageTypeTable?>(nil)
    private let destroyed = NIOLockedValueBox(false)

    /// Creates the plugin's config from `optionsJSON`. Control thread.
    public init(
        library: PluginLibrary, label: String, connectionName: String, sides: PluginSides, policy: PluginFailurePolicy,
        optionsJSON: String, logger: Logger, metrics: PluginMetricsRegistry
    ) throws {
        self.library = library
        self.label = label
        self.sides = sides
        self.policy = policy
        translationKind = TranslationKind(pluginName: library.name)
        let context = PluginHostContext(
            pluginName: library.name, entryLabel: label, connectionName: connectionName, logger: logger, metrics: metrics
        )
        self.context = context
        schemaState = NIOLockedValueBox(library.needsSchema ? .pending("the Temporal schema has not been loaded yet") : .notNeeded)
        serving = Atomic(!library.needsSchema)
        let api = library.api
        var options = Array(optionsJSON.utf8)
        context.readingOptions.withLockedValue { $0 = OptionReaderAnswers(json: optionsJSON) }
        defer { context.readingOptions.withLockedValue { $0 = nil } }
        let (created, message) = Self.configurationHook(context) { error, capacity in
            options.withUnsafeMutableBufferPointer { bytes in
                api.pointee.config_new(
                    library.api, PluginHostServices.api, context.handle,
                    s2s_bytes_t(data: UnsafePointer(bytes.baseAddress), len: bytes.count), error, capacity
                )
            }
        }
        guard let created else {
            throw PluginConfigError(
                label: label, plugin: library.name,
                message: message.isEmpty ? "config_new failed without saying why" : message
            )
        }
        config = created
    }

    /// The plugin's config is released; no hook may run afterwards. Control thread.
    public func destroy() {
        let already = destroyed.withLockedValue { value -> Bool in
            defer { value = true }
            return value
        }
        guard !already else { return }
        library.api.pointee.config_destroy?(config)
    }

    public var stats: PluginEntryStats {
        var total = PluginEntryStats()
        for shard in counterShards {
            total.add(shard.withLockedValue { $0.stats })
        }
        return total
    }

    func updateStats(_ update: (inout PluginEntryStats) -> Void) {
        counters.withLockedValue { update(&$0.stats) }
    }

    /// Counts hook runs of this entry under one lock: `runs` passes each to the function it is given.
    func count(_ runs: ((HookRun) -> Void) -> Void) {
        counters.withLockedValue { counters in
            runs { run in
                switch run.kind {
                case .callStart:
                    counters.stats.calls += 1
                    counters.stats.callStartDurations.record(nanoseconds: run.nanoseconds)
                case .callEnd:
                    counters.stats.callEndDurations.record(nanoseconds: run.nanoseconds)
                case .responseMetadata:
                    counters.stats.responseMetadataDurations.record(nanoseconds: run.nanoseconds)
                case .message:
                    counters.stats.messages += 1
                    if run.replaced { counters.stats.replaced += 1 }
                    counters.stats.messageDurations.record(nanoseconds: run.nanoseconds)
                    let type = Int(run.messageType)
                    guard counters.translations.indices.contains(type) else { return }
                    if run.replaced { counters.translations[type].succeeded += 1 }
                    if run.failed { counters.translations[type].failed += 1 }
                    counters.translations[type].latency.record(nanoseconds: run.nanoseconds)
                }
            }
        }
    }

    /// The type numbers of the request and response messages of `method`, nil for an entry without a translation
    /// kind or before the schema arrived (when its calls are refused). `PluginChain` keeps them in its plans.
    func messageTypes(ofMethod method: String) -> MessageTypeTable.MethodTypes? {
        guard translationKind != nil else { return nil }
        return messageTypes.withLockedValue { $0 }?.types(ofMethod: method)
    }

    /// The translation figures per message type seen, nil for an entry without a translation kind.
    public var translationSnapshot: TranslationSnapshot? {
        guard let translationKind, let table = messageTypes.withLockedValue({ $0 }) else { return nil }
        // A copy element by element, so that the array the call threads write stays uniquely referenced and their
        // next write does not copy it.
        var translations = Array(repeating: TranslationCounters(), count: table.names.count)
        for shard in counterShards {
            shard.withLockedValue { counters in
                for (index, counter) in counters.translations.enumerated() where index < translations.count {
                    translations[index].add(counter)
                }
            }
        }
        let seen = zip(table.names, translations).filter { $0.1.latency.count > 0 }
        return TranslationSnapshot(kind: translationKind, seen: seen.map { (messageType: $0.0, counters: $0.1) })
    }

    public var currentSchemaState: SchemaState { schemaState.withLockedValue { $0 } }

    /// Whether the entry's calls may run now (`currentSchemaState` is `.notNeeded` or `.ready`).
    var isServing: Bool { serving.load(ordering: .acquiring) }

    private let schemaSource = NIOLockedValueBox<TemporalSchemaSource?>(nil)

    /// The source this entry's schema comes from; its state explains a wait to callers.
    func attach(schemaSource source: TemporalSchemaSource) {
        schemaSource.withLockedValue { $0 = source }
    }

    /// Why a call must wait for the schema, in words for the caller's UNAVAILABLE status.
    func schemaWaitReason(_ fallback: String) -> String {
        guard let source = schemaSource.withLockedValue({ $0 }) else { return fallback }
        switch source.currentState {
        case .pending(let reason): return reason
        case .failed(let error): return "\(error)"
        case .ready: return "the schema has arrived and is being handed to the plugin"
        }
    }

    /// Records that the schema will never come (e.g. no source is configured); calls stay UNAVAILABLE with `reason`.
    func schemaFailed(_ reason: String) {
        schemaState.withLockedValue { $0 = .failed(reason) }
        serving.store(false, ordering: .releasing)
    }

    /// Records why the schema is not there yet (shown to callers in UNAVAILABLE messages).
    public func schemaPending(_ reason: String) {
        schemaState.withLockedValue { state in
            if case .pending = state { state = .pending(reason) }
        }
    }

    /// Hands the schema to the plugin and, for an entry with a translation kind, numbers its message types for the
    /// translation metrics. Control thread; once.
    public func deliverSchema(_ schema: TemporalSchema) {
        if translationKind != nil, case .pending = currentSchemaState {
            let table = MessageTypeTable(schema: schema)
            for shard in counterShards {
                shard.withLockedValue { $0.translations = Array(repeating: TranslationCounters(), count: table.names.count) }
            }
            messageTypes.withLockedValue { $0 = table }
        }
        deliverSchema(schema.descriptorSetBytes)
    }

    /// Hands the schema (a serialized FileDescriptorSet) to the plugin. Control thread; once.
    public func deliverSchema(_ fileDescriptorSet: [UInt8]) {
        guard library.needsSchema, let schemaReady = library.api.pointee.schema_ready else { return }
        guard case .pending = currentSchemaState else { return }
        let (outcome, message) = Self.configurationHook(context) { error, capacity in
            fileDescriptorSet.withUnsafeBufferPointer { bytes in
                schemaReady(config, s2s_bytes_t(data: bytes.baseAddress, len: bytes.count), error, capacity)
            }
        }
        if outcome == S2S_OK {
            schemaState.withLockedValue { $0 = .ready }
            serving.store(true, ordering: .releasing)
            context.logger.info("plugin has the Temporal schema", metadata: ["entry": "\(label)"])
        } else {
            let reason = "plugin \(library.name) (\(label)) rejected the Temporal schema: " + (message.isEmpty ? "no reason given" : message)
            schemaState.withLockedValue { $0 = .failed(reason) }
            serving.store(false, ordering: .releasing)
            context.logger.error("\(reason)")
        }
    }

    /// Runs a configuration hook (config_new, schema_ready): with metric definitions allowed, and an error buffer
    /// of the size the ABI promises. Returns the hook's result and the message it wrote ("" if none).
    private static func configurationHook<Result>(
        _ context: PluginHostContext, _ hook: (UnsafeMutablePointer<CChar>, Int) -> Result
    ) -> (Result, String) {
        var error = [CChar](repeating: 0, count: 4096)
        context.definingAllowed.withLockedValue { $0 = true }
        defer { context.definingAllowed.withLockedValue { $0 = false } }
        let result = error.withUnsafeMutableBufferPointer { buffer in hook(buffer.baseAddress!, buffer.count - 1) }
        return (result, String(cString: error))
    }

    /// What the plugin wants of `method` on `side` (S2S_WANTS_* bits), for `plugin inspect`.
    public func wantsForInspection(method: String, side: PluginSide) -> UInt32 {
        wants(method: method, side: side)
    }

    /// Asks the plugin which parts of calls of `method` on `side` it wants (S2S_WANTS_* bits).
    func wants(method: String, side: PluginSide) -> UInt32 {
        guard sides.includes(side) else { return 0 }
        var bytes = Array(method.utf8)
        let bits = bytes.withUnsafeMutableBufferPointer { buffer in
            library.api.pointee.wants(config, s2s_bytes_t(data: UnsafePointer(buffer.baseAddress), len: buffer.count), side.abiValue)
        }
        if bits & (S2S_WANTS_REQUEST_MESSAGES | S2S_WANTS_RESPONSE_MESSAGES) != 0, library.api.pointee.on_message == nil {
            context.logger.warning("plugin wants messages but has no on_message hook; messages are not given to it",
                                   metadata: ["method": "\(method)"])
            return bits & S2S_WANTS_CALL | S2S_WANTS_CALL
        }
        var wanted = bits
        let metadataBits = S2S_WANTS_RESPONSE_METADATA | S2S_WANTS_ERROR_TRAILERS
        if wanted & metadataBits != 0, library.responseMetadataHook == nil {
            context.logger.warning(
                "plugin wants response metadata but has no on_response_metadata hook; it is not given any",
                metadata: ["method": "\(method)"]
            )
            wanted &= ~metadataBits
        }
        return wanted == 0 ? 0 : wanted | S2S_WANTS_CALL
    }
}

/// A plugin refused the options of its chain entry.
public struct PluginConfigError: Error, CustomStringConvertible, Sendable {
    public let label: String
    public let plugin: String
    public let message: String

    public var description: String {
        "\(label): plugin \(plugin) refused its options: \(message)"
    }
}
