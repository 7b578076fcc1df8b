// The plugins that run on one listener's calls, in configured order, and which of them want which method.
//
// A chain belongs to one cluster connection and one side. For every method path it asks each entry once what it
// wants (S2S_WANTS_* bits) and keeps the answer as a `PluginCallPlan`; a method that no entry wants gets no plan,
// and its calls take the plain forwarding path: no reassembly, no copies, no hooks. The cache is bounded because
// method paths come from the network. A plan also carries the message types of the method for the entries that
// count the Go proxy's translations, so that calls need not look them up.

import NIOConcurrencyHelpers
import PluginABI

/// The entries that want calls of one method, with what each wants.
final class PluginCallPlan: Sendable {
    struct Step: Sendable {
        let entry: PluginEntry
        let wants: UInt32
        /// The type numbers of the method's messages, for an entry that counts translations per message type.
        let messageTypes: MessageTypeTable.MethodTypes?

        var wantsRequestMessages: Bool { wants & S2S_WANTS_REQUEST_MESSAGES != 0 }
        var wantsResponseMessages: Bool { wants & S2S_WANTS_RESPONSE_MESSAGES != 0 }
    }

    let steps: [Step]
    let wantsRequestMessages: Bool
    let wantsResponseMessages: Bool

    init(steps: [Step]) {
        self.steps = steps
        wantsRequestMessages = steps.contains { $0.wantsRequestMessages }
        wantsResponseMessages = steps.contains { $0.wantsResponseMessages }
    }
}

public final class PluginChain: Sendable {
    /// Methods whose plan is remembered; beyond this, plans are computed per call (still correct, a little slower).
    static let planCacheLimit = 4096

    public let side: PluginSide
    public let connectionName: String
    public let entries: [PluginEntry]
    private let plans = NIOLockedValueBox<[String: PluginCallPlan?]>([:])

    public init(side: PluginSide, connectionName: String, entries: [PluginEntry]) {
        self.side = side
        self.connectionName = connectionName
        self.entries = entries.filter { $0.sides.includes(side) }
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// The plan for calls of `method`, or nil when no entry wants them.
    func plan(for method: String) -> PluginCallPlan? {
        if entries.isEmpty { return nil }
        if let cached = plans.withLockedValue({ $0[method] }) { return cached }
        var complete = true
        let steps = entries.compactMap { entry -> PluginCallPlan.Step? in
            let wants = entry.wants(method: method, side: side)
            guard wants != 0 else { return nil }
            let messageTypes = entry.messageTypes(ofMethod: method)
            if entry.translationKind != nil, messageTypes == nil { complete = false }
            return PluginCallPlan.Step(entry: entry, wants: wants, messageTypes: messageTypes)
        }
        let plan = steps.isEmpty ? nil : PluginCallPlan(steps: steps)
        // Before the schema arrives a translating entry has no message types; its calls are refused until then
        // (UNAVAILABLE), so such a plan serves them and is not kept.
        guard complete else { return plan }
        plans.withLockedValue { plans in
            if plans.count < Self.planCacheLimit { plans[method] = .some(plan) }
        }
        return plan
    }
}
