// gRPC status codes a plugin can end a call with.

/// A gRPC status code other than OK, for rejecting a call: the numbering of the gRPC specification
/// (`grpc/doc/statuscodes.md`). OK is left out because a rejection must carry an error, as in grpc-swift's
/// `RPCError.Code`.
public enum StatusCode: UInt32, Sendable, Hashable, CaseIterable {
    case cancelled = 1
    case unknown = 2
    case invalidArgument = 3
    case deadlineExceeded = 4
    case notFound = 5
    case alreadyExists = 6
    case permissionDenied = 7
    case resourceExhausted = 8
    case failedPrecondition = 9
    case aborted = 10
    case outOfRange = 11
    case unimplemented = 12
    case internalError = 13
    case unavailable = 14
    case dataLoss = 15
    case unauthenticated = 16
}
