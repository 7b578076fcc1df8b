// The response's headers or trailers as `responseMetadata` sees them (ABI 1.1), with the power to edit them before
// plugins nearer the client and the client see them: e.g. names inside `grpc-status-details-bin`.
//
// Like `CallStart`, a borrowed, non-copyable view of host memory, valid only while the hook runs.

import PluginABI

/// A response's headers or trailers.
public struct ResponseMetadata: ~Copyable {
    /// Which metadata this is.
    public enum Kind: Sendable, Hashable {
        /// The response's first HEADERS (custom metadata, `grpc-encoding`, ...).
        case headers
        /// The response's last HEADERS: `grpc-status`, `grpc-message`, `grpc-status-details-bin`, ...; for a
        /// response that is nothing but trailers (gRPC's Trailers-Only), everything the server sent.
        case trailers
    }

    public let kind: Kind
    private let access: HeaderAccess

    @usableFromInline
    init(call: OpaquePointer?, services: HostServices, kind: Kind, headers: UnsafeBufferPointer<s2s_header_t>) {
        self.kind = kind
        access = HeaderAccess(call: call, services: services, entries: headers)
    }

    /// Every entry (no pseudo-headers), as the host passed it; copied.
    public var headers: [RequestHeader] { access.all }

    /// The first value of `name` (matched without regard to ASCII case) as UTF-8 text, or nil.
    public func header(_ name: String) -> String? {
        access.firstValue(named: name).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The first value of `name` as bytes (the decoded bytes for a "-bin" name, e.g. `grpc-status-details-bin`).
    public func headerBytes(_ name: String) -> [UInt8]? {
        access.firstValue(named: name).map { Array($0) }
    }

    /// The gRPC status code of trailers (`grpc-status`), or nil.
    public var grpcStatus: Int? {
        header("grpc-status").flatMap { Int($0) }
    }

    /// Replaces every value of `name` with `value`. `grpc-status` cannot be edited (reject the call instead).
    ///
    /// - Throws: ``HeaderEditRefused`` if the host refused the edit.
    public func setHeader(_ name: String, _ value: String) throws(HeaderEditRefused) {
        try access.edit(.set, name, text: value)
    }

    /// Replaces every value of a "-bin" header with raw bytes (the host base64-encodes them).
    public func setHeader(_ name: String, bytes: [UInt8]) throws(HeaderEditRefused) {
        try access.edit(.set, name, bytes: bytes)
    }

    /// Adds a value to `name`.
    public func addHeader(_ name: String, _ value: String) throws(HeaderEditRefused) {
        try access.edit(.add, name, text: value)
    }

    /// Removes every value of `name`.
    public func removeHeader(_ name: String) throws(HeaderEditRefused) {
        try access.remove(name)
    }
}

/// What `responseMetadata` decided.
public enum MetadataDecision: Sendable, Equatable {
    /// Go on with the metadata as it now stands (with this plugin's edits).
    case proceed
    /// End the call with this status instead of the server's (the client receives it).
    case rejected(StatusCode, String)
}
