// A place for what a plugin derives from the Temporal schema.
//
// A plugin instance is shared by the proxy's event-loop threads, so it is `Sendable` and normally immutable. The
// schema arrives after the instance exists, in `schemaReady`, on the control thread; the ABI guarantees that no
// call hook runs before `schemaReady` returned successfully and that the host publishes what it wrote to the call
// threads with a full memory barrier. Under that rule a value written in `schemaReady` and only read afterwards
// needs no lock, and this box says so in one place instead of in every plugin.

/// A value written in `schemaReady` (on the control thread, before any call hook runs) and read by call hooks.
///
/// `@unchecked Sendable`: writes happen only on the host's control thread before the call threads may read, and
/// the host publishes them with a full memory barrier (see THREADS in s2s_plugin.h). Do not write it from a call
/// hook.
public final class SchemaDerived<Value: Sendable>: @unchecked Sendable {
    // Inlinable, so that a plugin's read is specialized for its `Value` in the plugin's own module: a generic
    // read costs a runtime metadata lookup on every call.
    @usableFromInline var stored: Value?

    /// An empty box, filled in `schemaReady`.
    public init() {}

    /// The value, or nil before `schemaReady` set it.
    @inlinable public var value: Value? {
        get { stored }
        set { stored = newValue }
    }
}
