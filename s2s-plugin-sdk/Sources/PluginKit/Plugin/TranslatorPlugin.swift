// The protocol a Swift translator plugin implements.
//
// One instance per chain entry (the C ABI's "config"): created from the entry's options when the host loads its
// configuration, shared by every call through that entry, released when the host destroys the entry. PluginKit
// exports the C entry point from a type conforming to this protocol (`PluginExport`), so a plugin contains only
// its logic. See docs/PLUGINS.md for a walk-through, and Sources/PluginABI/include/s2s_plugin.h for the contract
// underneath.
//
// Threads: `init`, `schemaReady` and deinitialisation run on the host's control thread. `wants` may run on any
// thread, concurrently. The hooks of one call run one at a time on that call's thread, but different calls run
// concurrently on different threads: the instance must be safe to share (`Sendable`), which in practice means
// `let` properties set in `init`, plus `SchemaDerived` for what `schemaReady` computes. Hooks must not block: they
// run on the proxy's event loops.

/// A translator plugin: sees the calls it wants, may edit their request metadata, rewrite their messages or
/// reject them.
public protocol TranslatorPlugin: AnyObject, Sendable {
    /// What the plugin keeps per call between `startCall`, `message` and `endCall`, e.g. the namespace a request
    /// named, to translate its response. `Void` (the default) keeps nothing and costs no allocation. It never
    /// leaves the call's thread, so it need not be `Sendable`.
    associatedtype CallState = Void

    /// The plugin's name, e.g. "namespace-rename": letters, digits, '-' and '_'. The host names the plugin by it
    /// in logs, metrics and errors.
    static var name: String { get }
    /// The plugin's version, e.g. "1.2.0".
    static var version: String { get }
    /// One line saying what the plugin does, shown by `s2s-proxy plugin inspect`. Default: none.
    static var description: String { get }
    /// Whether the plugin needs the Temporal schema (`schemaReady`) before it can serve calls. Default: false.
    static var needsSchema: Bool { get }

    /// Creates the plugin for one chain entry from its options. Validate everything here: a mistake found now
    /// stops the proxy at start-up with your message; one found on a call fails calls in production.
    ///
    /// After `init` returns, PluginKit fails the entry if the options hold a key the plugin never asked for (see
    /// ``PluginOptions``).
    ///
    /// - Throws: ``PluginConfigError`` (or any error) saying what is wrong and what to do.
    init(options: PluginOptions, host: PluginHost) throws

    /// Receives the Temporal schema, a serialized `google.protobuf.FileDescriptorSet`, once, if `needsSchema`.
    /// The bytes are valid during the call only: index what you need (into a ``SchemaDerived``). Default: nothing.
    ///
    /// - Throws: if the schema lacks what the options refer to; the host then answers this entry's calls
    ///   UNAVAILABLE with your message.
    func schemaReady(_ fileDescriptorSet: UnsafeRawBufferPointer) throws

    /// What the plugin wants of calls of `method` (":path") through `side`. Asked once per method and side and
    /// cached, so it must depend on nothing but its arguments and the options.
    func wants(method: String, side: CallSide) -> Wants

    /// A wanted call begins, before anything is sent upstream: read or edit its request metadata, reject it, or
    /// let it proceed with the state its messages will need. Default (stateless plugins): proceed.
    ///
    /// - Throws: when the plugin cannot decide (the failure policy applies); a refused header edit throws
    ///   ``HeaderEditRefused`` and may simply be propagated with `try`.
    func startCall(_ call: borrowing CallStart) throws -> CallDecision<CallState>

    /// One message of a call that proceeded, in a direction the plugin wants. Requests reach plugins in chain
    /// order, responses in reverse chain order, each seeing the previous plugin's output. Default: unchanged.
    ///
    /// - Throws: when the message cannot be handled (e.g. it does not parse); the failure policy applies.
    func message(_ message: borrowing MessageView, state: inout CallState) throws -> MessageDecision

    /// The response's headers, then its trailers (or only trailers, for a Trailers-Only response), for calls whose
    /// `wants` has `.responseMetadata` (with `.errorTrailers` only: the trailers of calls that failed); in the order responses travel (the plugin nearest the server first). Edit
    /// them through `metadata`, or end the call with another status. Default: `.proceed`.
    func responseMetadata(_ metadata: borrowing ResponseMetadata, state: inout CallState) throws -> MetadataDecision

    /// A call that proceeded is over, however it ended; its state is handed back for the last time. Not called for
    /// calls that `startCall` rejected or failed. Default: nothing.
    func endCall(_ end: CallEnd, state: consuming CallState)
}

extension TranslatorPlugin {
    public static var description: String { "" }

    public static var needsSchema: Bool { false }

    public func schemaReady(_ fileDescriptorSet: UnsafeRawBufferPointer) throws {}

    public func message(_ message: borrowing MessageView, state: inout CallState) throws -> MessageDecision {
        .unchanged
    }

    public func responseMetadata(_ metadata: borrowing ResponseMetadata, state: inout CallState) throws
        -> MetadataDecision
    {
        .proceed
    }

    public func endCall(_ end: CallEnd, state: consuming CallState) {}
}

extension TranslatorPlugin where CallState == Void {
    public func startCall(_ call: borrowing CallStart) throws -> CallDecision<Void> {
        .proceed
    }
}
