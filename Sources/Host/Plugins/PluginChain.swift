// The plugins that run on one listener's calls, in configured order, and which of them want which method.
//
// A chain belongs to one cluster connection and one side. For every method path it asks each entry once what it
// wants (S2S_WANTS_* bits) and keeps the answer as a `PluginCallPlan`; a method that no entry wants gets no plan,
// and its calls take the plain forwarding path: no reassembly, no copies, no hooks. The cache is bounded because
// method paths come from the network. A plan also carries the message types of the method for the entries that
// count the Go proxy's translations, so that calls need not look them up.

import NIOConcurrencyHelpers
import PluginABI

typealias CallStartHook = @convention(c) (
    UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<s2s_call_info_t>?,
    UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> s2s_outcome_t
typealias OnMessageHook = @convention(c) (
    UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<s2s_message_t>?
) -> s2s_outcome_t
typealias ResponseMetadataHook = @convention(c) (
    UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<s2s_metadata_t>?
) -> s2s_outcome_t
typealias CallEndHook = @convention(c) (
    UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<s2s_call_end_t>?
) -> Void

/// The entries that want calls of one method, with what each wants.
final class PluginCallPlan: Sendable {
    /// One entry that wants the call, with what every hook needs from it at hand: reading a step takes no
    /// reference count (the plan's `entries` keeps each entry alive) and no pointer chase to the library's table.
    /// `@unchecked Sendable`: `config` is the plugin's config object, which the ABI lets every thread pass to the
    /// call hooks; everything else is immutable.
    struct Step: @unchecked Sendable {
        unowned(unsafe) let entry: PluginEntry
        let config: UnsafeMutableRawPointer
        let callStart: CallStartHook
        let onMessage: OnMessageHook?
        let callEnd: CallEndHook?
        let onResponseMetadata: ResponseMetadataHook?
        let wants: UInt32
        /// The type numbers of the method's messages, for an entry that counts translations per message type.
        let messageTypes: MessageTypeTable.MethodTypes?

        init(entry: PluginEntry, wants: UInt32, messageTypes: MessageTypeTable.MethodTypes?) {
            self.entry = entry
            config = entry.config
            // Field by field: a table built for an older minor version is shorter than ours.
            let api = entry.library.api
            callStart = api.pointee.call_start
            onMessage = api.pointee.on_message
            callEnd = api.pointee.call_end
            onResponseMetadata = entry.library.responseMetadataHook
            self.wants = wants
            self.messageTypes = messageTypes
        }

        var wantsRequestMessages: Bool { wants & S2S_WANTS_REQUEST_MESSAGES != 0 }
        var wantsResponseMessages: Bool { wants & S2S_WANTS_RESPONSE_MESSAGES != 0 }
        var wantsResponseMetadata: Bool { wants & S2S_WANTS_RESPONSE_METADATA != 0 }
        var wantsErrorTrailers: Bool { wants & S2S_WANTS_ERROR_TRAILERS != 0 }

        /// Whether on_response_metadata runs for this metadata (`failed`: trailers whose grpc-status is not 0).
        func wantsMetadata(_ kind: s2s_metadata_kind_t, failed: Bool) -> Bool {
            wantsResponseMetadata || (kind == S2S_METADATA_RESPONSE_TRAILERS && failed && wantsErrorTrailers)
        }
    }

    let steps: [Step]
    /// The steps' entries, held here so that a step may refer to its entry without counting.
    private let entries: [PluginEntry]
    let wantsRequestMessages: Bool
    let wantsResponseMessages: Bool
    let wantsResponseMetadata: Bool
    let wantsErrorTrailers: Bool

    /// The listener side's capture, when it records this method's calls.
    let capture: CaptureTap?

    init(steps: [Step], entries: [PluginEntry], capture: CaptureTap? = nil) {
        self.steps = steps
        self.entries = entries
        self.capture = capture
        // A captured call's messages are deframed both ways, whatever the steps want.
        wantsRequestMessages = capture != nil || steps.contains { $0.wantsRequestMessages }
        wantsResponseMessages = capture != nil || steps.contains { $0.wantsResponseMessages }
        wantsResponseMetadata = steps.contains { $0.wantsResponseMetadata }
        wantsErrorTrailers = steps.contains { $0.wantsErrorTrailers }
    }
}

public final class PluginChain: Sendable {
    /// Methods whose plan is remembered; beyond this, plans are computed per call (still correct, a little slower).
    static let planCacheLimit = 4096

    public let side: PluginSide
    public let connectionName: String
    public let entries: [PluginEntry]
    /// Records chosen calls of this side (`capture:`), or nil.
    let capture: CaptureTap?
    private let plans = NIOLockedValueBox<[String: PluginCallPlan?]>([:])

    public convenience init(side: PluginSide, connectionName: String, entries: [PluginEntry]) {
        self.init(side: side, connectionName: connectionName, entries: entries, capture: nil)
    }

    init(side: PluginSide, connectionName: String, entries: [PluginEntry], capture: CaptureTap?) {
        self.side = side
        self.connectionName = connectionName
        self.entries = entries.filter { $0.sides.includes(side) }
        self.capture = capture
    }

    public var isEmpty: Bool { entries.isEmpty && capture == nil }

    /// The plan for calls of `method`, or nil when no entry wants them.
    func plan(for method: String) -> PluginCallPlan? {
        if isEmpty { return nil }
        if let cached = plans.withLockedValue({ $0[method] }) { return cached }
        var complete = true
        var steps: [PluginCallPlan.Step] = []
        var wanting: [PluginEntry] = []
        for entry in entries {
            let wants = entry.wants(method: method, side: side)
            guard wants != 0 else { continue }
            let messageTypes = entry.messageTypes(ofMethod: method)
            if entry.translationKind != nil, messageTypes == nil { complete = false }
            steps.append(PluginCallPlan.Step(entry: entry, wants: wants, messageTypes: messageTypes))
            wanting.append(entry)
        }
        let capturing = capture.flatMap { $0.matches(method: method) ? $0 : nil }
        let plan = steps.isEmpty && capturing == nil
            ? nil : PluginCallPlan(steps: steps, entries: wanting, capture: capturing)
        // Before the schema arrives a translating entry has no message types; its calls are refused until then
        // (UNAVAILABLE), so such a plan serves them and is not kept.
        guard complete else { return plan }
        plans.withLockedValue { plans in
            if plans.count < Self.planCacheLimit { plans[method] = .some(plan) }
        }
        return plan
    }
}
