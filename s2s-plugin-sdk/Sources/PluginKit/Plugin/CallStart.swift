// A call as `startCall` sees it: method, side, connection and request metadata, with the power to edit the
// metadata before anything is sent upstream.
//
// `CallStart` is a borrowed view of host memory and of the host's handle for the call, both valid only while
// `startCall` runs. It is non-copyable so that it cannot be kept: copy what you need (into your call state).

import PluginABI

/// The call that is starting, and its request metadata.
public struct CallStart: ~Copyable {
    private let access: HeaderAccess
    private let methodBytes: UnsafeRawBufferPointer
    private let connectionBytes: UnsafeRawBufferPointer

    /// Which listener the call came through.
    public let side: CallSide

    @usableFromInline
    init(
        call: OpaquePointer?, services: HostServices, method: UnsafeRawBufferPointer, side: CallSide,
        connection: UnsafeRawBufferPointer, headers: UnsafeBufferPointer<s2s_header_t>
    ) {
        access = HeaderAccess(call: call, services: services, entries: headers)
        self.methodBytes = method
        self.side = side
        self.connectionBytes = connection
    }

    /// The method's path, e.g. "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"; a new
    /// string on every access.
    public var method: String { String(decoding: methodBytes, as: UTF8.self) }

    /// The cluster connection's configured name; a new string on every access.
    public var connection: String { String(decoding: connectionBytes, as: UTF8.self) }

    // MARK: Reading metadata

    /// The request metadata (no pseudo-headers) as the host passed it, including edits by earlier plugins in the
    /// chain but not this plugin's own edits; copied.
    public var headers: [RequestHeader] { access.all }

    /// The first value of header `name` (matched without regard to ASCII case) as UTF-8 text, or nil.
    public func header(_ name: String) -> String? {
        access.firstValue(named: name).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Every value of header `name`, in order, as UTF-8 text.
    public func headerValues(_ name: String) -> [String] {
        var values: [String] = []
        access.forEachValue(named: name) { values.append(String(decoding: $0, as: UTF8.self)) }
        return values
    }

    /// The first value of header `name` as bytes (the decoded bytes for a "-bin" header), or nil.
    public func headerBytes(_ name: String) -> [UInt8]? {
        access.firstValue(named: name).map { Array($0) }
    }

    /// Whether the caller allows translation of this call: false when the request carries
    /// `s2s-request-translation` with a value that reads as false (`false`, `False`, `FALSE`, `f`, `F`, `0`), as
    /// the Go s2s-proxy reads it. Translating plugins (renames, cluster adapters) leave such a call untouched;
    /// access control does not ask.
    public var translationRequested: Bool {
        guard let value = header(Self.translationHeader) else { return true }
        return !Self.falseValues.contains(value)
    }

    /// The request header by which a caller opts out of translation for one call.
    public static let translationHeader = "s2s-request-translation"

    private static let falseValues: Set<String> = ["false", "False", "FALSE", "f", "F", "0"]

    // MARK: Editing metadata

    /// Replaces every value of header `name` with `value`. Edits apply in order to the metadata that later
    /// plugins and the upstream see.
    ///
    /// - Throws: ``HeaderEditRefused`` if the host refused the edit: names must be lowercase and may not be
    ///   pseudo-headers or connection-level headers.
    public func setHeader(_ name: String, _ value: String) throws(HeaderEditRefused) {
        try access.edit(.set, name, text: value)
    }

    /// Replaces every value of header `name` with raw bytes; for "-bin" headers (the host base64-encodes them).
    public func setHeader(_ name: String, bytes: [UInt8]) throws(HeaderEditRefused) {
        try access.edit(.set, name, bytes: bytes)
    }

    /// Adds a value to header `name`, keeping the values it has.
    public func addHeader(_ name: String, _ value: String) throws(HeaderEditRefused) {
        try access.edit(.add, name, text: value)
    }

    /// Adds a raw value to header `name`; for "-bin" headers.
    public func addHeader(_ name: String, bytes: [UInt8]) throws(HeaderEditRefused) {
        try access.edit(.add, name, bytes: bytes)
    }

    /// Removes every value of header `name` (nothing happens if it has none).
    public func removeHeader(_ name: String) throws(HeaderEditRefused) {
        try access.remove(name)
    }
}

/// One request metadata entry, copied out of the host's memory.
public struct RequestHeader: Sendable, Hashable {
    /// The lowercase name.
    public let name: String
    /// The value's bytes (decoded bytes for a "-bin" header).
    public let value: [UInt8]

    /// A header, e.g. for tests of code that takes headers.
    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }

    /// The value as UTF-8 text.
    public var stringValue: String { String(decoding: value, as: UTF8.self) }
}
