// The errors a plugin throws, and the one PluginKit throws back at it.
//
// A plugin reports a bad configuration by throwing from `init(options:host:)`, and a failure inside a call hook by
// throwing from the hook. PluginKit turns either into the C ABI's answer (config_new's error text, S2S_ERROR with a
// status message); the text is `String(describing: error)`, so any error type works, but these say what they
// are and print only their message.

/// A chain entry's options are wrong. The message is shown to the operator, prefixed with the plugin and chain
/// entry, so say what is wrong and what to do: "option 'header' must be a lowercase header name, e.g. x-team".
public struct PluginConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong and what to do.
    public let message: String

    /// An error with the message the operator will read.
    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// A call hook could not do its work (e.g. a message it must translate does not parse). The chain entry's
/// failure policy decides what happens to the call: fail closed (INTERNAL with this message) or fail open.
public struct PluginFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// What failed; the detail of the failure the host logs and, failing closed, sends with INTERNAL.
    public let message: String

    /// A failure with the message the operator will read.
    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// The host refused a metadata edit: an invalid or reserved header name (uppercase, pseudo-header, connection
/// header), an invalid value, or a host that offers no metadata edits.
public struct HeaderEditRefused: Error, Sendable, Equatable, CustomStringConvertible {
    /// The edit, as it was asked for.
    public enum Edit: Sendable, Equatable {
        case set
        case add
        case remove
    }

    /// Which edit was refused.
    public let edit: Edit
    /// The header name the edit was for.
    public let name: String

    public var description: String {
        let verb: String
        switch edit {
        case .set: verb = "set"
        case .add: verb = "add"
        case .remove: verb = "remove"
        }
        return "the host refused to \(verb) request header '\(name)' (names must be lowercase, not pseudo-headers"
            + " or connection headers; values must be valid header values)"
    }
}
