// What a plugin wants of the calls of one method on one side.
//
// The host asks once per (method, side) and caches the answer, so a plugin pays nothing for the calls it does not
// want: the host forwards them without deframing or copying a byte.

/// The parts of a call a plugin wants to see. The empty set skips the call entirely.
public struct Wants: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32

    /// Wants from S2S_WANTS_* bits.
    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// `startCall` and `endCall`: the method, side and request metadata, with the power to edit the metadata
    /// or reject the call.
    public static let call = Wants(rawValue: 1)
    /// `message` for every request message (implies `.call`).
    public static let requestMessages = Wants(rawValue: 2)
    /// `message` for every response message (implies `.call`).
    public static let responseMessages = Wants(rawValue: 4)

    /// `responseMetadata` for the response's headers and trailers (implies `.call`; plugin ABI 1.1).
    public static let responseMetadata = Wants(rawValue: 8)
    /// `responseMetadata` for the trailers of calls that end with a status other than OK, and nothing else
    /// (implies `.call`; plugin ABI 1.1): for translating error details at no cost to successful calls.
    public static let errorTrailers = Wants(rawValue: 16)

    /// Every message in both directions (implies `.call`).
    public static let allMessages: Wants = [.requestMessages, .responseMessages]
    /// Nothing: the host skips the plugin for these calls.
    public static let nothing: Wants = []
}
