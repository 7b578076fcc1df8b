// What a plugin's call hooks answer, and what it is told when a call ends.
//
// A hook answers with a decision value; a hook that cannot do its work throws instead (see `PluginFailure`), and
// the chain entry's failure policy decides the call's fate. Rejecting is a decision, not an error: the caller gets
// exactly the status the plugin chose.

/// What `startCall` decided.
public enum CallDecision<State> {
    /// Go on with the call, keeping `state` for its messages and its end.
    case proceed(with: State)
    /// End the call with this status; the upstream is never contacted.
    case rejected(StatusCode, String)
}

extension CallDecision where State == Void {
    /// Go on with the call (for plugins that keep no per-call state).
    public static var proceed: CallDecision { .proceed(with: ()) }
}

/// What `message` decided about one message.
public enum MessageDecision: Sendable, Equatable {
    /// Forward the message as it came; the host forwards the original bytes without a copy.
    case unchanged
    /// Forward these bytes instead (a whole protobuf message, without the 5-byte gRPC prefix); the host copies
    /// them when the hook returns.
    case replaced([UInt8])
    /// End the call with this status; the upstream call, if open, is cancelled.
    case rejected(StatusCode, String)
}

/// How a call ended.
public struct CallEnd: Sendable, Equatable {
    /// The gRPC status the client received (0 is OK), or nil if the call was reset or cut off.
    public let grpcStatus: Int?

    /// An end with the status the client received (nil: reset or cut off).
    public init(grpcStatus: Int?) {
        self.grpcStatus = grpcStatus
    }

    /// Whether the client received OK.
    public var succeeded: Bool { grpcStatus == 0 }

    /// The error status the client received, or nil for OK, a reset, or a code outside the gRPC range.
    public var errorCode: StatusCode? {
        grpcStatus.flatMap { UInt32(exactly: $0) }.flatMap(StatusCode.init(rawValue:))
    }
}
