// A call as `startCall` sees it: method, side, connection and request metadata, with the power to edit the
// metadata before anything is sent upstream.
//
// `CallStart` is a borrowed view of host memory and of the host's handle for the call, both valid only while
// `startCall` runs. It is non-copyable so that it cannot be kept: copy what you need (into your call state).

import PluginABI

/// The call that is starting, and its request metadata.
public struct CallStart: ~Copyable {
    private let call: OpaquePointer?
    private let services: HostServices
    private let methodBytes: UnsafeRawBufferPointer
    private let connectionBytes: UnsafeRawBufferPointer
    private let headerEntries: UnsafeBufferPointer<s2s_header_t>

    /// Which listener the call came through.
    public let side: CallSide

    @usableFromInline
    init(
        call: OpaquePointer?, services: HostServices, method: UnsafeRawBufferPointer, side: CallSide,
        connection: UnsafeRawBufferPointer, headers: UnsafeBufferPointer<s2s_header_t>
    ) {
        self.call = call
        self.services = services
        self.methodBytes = method
        self.side = side
        self.connectionBytes = connection
        self.headerEntries = headers
    }

    /// The method's path, e.g. "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"; a new
    /// string on every access.
    public var method: String { String(decoding: methodBytes, as: UTF8.self) }

    /// The cluster connection's configured name; a new string on every access.
    public var connection: String { String(decoding: connectionBytes, as: UTF8.self) }

    // MARK: Reading metadata

    /// The request metadata (no pseudo-headers) as the host passed it, including edits by earlier plugins in the
    /// chain but not this plugin's own edits; copied.
    public var headers: [RequestHeader] {
        var result: [RequestHeader] = []
        result.reserveCapacity(headerEntries.count)
        for entry in headerEntries {
            guard let name = entry.name.buffer, let value = entry.value.buffer else { continue }
            result.append(RequestHeader(name: String(decoding: name, as: UTF8.self), value: Array(value)))
        }
        return result
    }

    /// The first value of header `name` (matched without regard to ASCII case) as UTF-8 text, or nil.
    public func header(_ name: String) -> String? {
        firstValue(named: name).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Every value of header `name`, in order, as UTF-8 text.
    public func headerValues(_ name: String) -> [String] {
        var values: [String] = []
        forEachValue(named: name) { values.append(String(decoding: $0, as: UTF8.self)) }
        return values
    }

    /// The first value of header `name` as bytes (the decoded bytes for a "-bin" header), or nil.
    public func headerBytes(_ name: String) -> [UInt8]? {
        firstValue(named: name).map { Array($0) }
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
        var value = value
        try check(value.withUTF8 { edit(.set, name, UnsafeRawBufferPointer($0)) }, .set, name)
    }

    /// Replaces every value of header `name` with raw bytes; for "-bin" headers (the host base64-encodes them).
    public func setHeader(_ name: String, bytes: [UInt8]) throws(HeaderEditRefused) {
        try check(bytes.withUnsafeBytes { edit(.set, name, $0) }, .set, name)
    }

    /// Adds a value to header `name`, keeping the values it has.
    public func addHeader(_ name: String, _ value: String) throws(HeaderEditRefused) {
        var value = value
        try check(value.withUTF8 { edit(.add, name, UnsafeRawBufferPointer($0)) }, .add, name)
    }

    /// Adds a raw value to header `name`; for "-bin" headers.
    public func addHeader(_ name: String, bytes: [UInt8]) throws(HeaderEditRefused) {
        try check(bytes.withUnsafeBytes { edit(.add, name, $0) }, .add, name)
    }

    /// Removes every value of header `name` (nothing happens if it has none).
    public func removeHeader(_ name: String) throws(HeaderEditRefused) {
        var accepted = false
        if let remove = services.removeHeader {
            var name = name
            accepted = name.withUTF8 { utf8 in
                utf8.withMemoryRebound(to: CChar.self) { remove(call, $0.baseAddress, $0.count) } == 0
            }
        }
        try check(accepted, .remove, name)
    }

    // MARK: Helpers

    /// Sets or adds a header through the host, without copying name or value; whether the host accepted it.
    private func edit(_ kind: HeaderEditRefused.Edit, _ name: String, _ value: UnsafeRawBufferPointer) -> Bool {
        guard let function = kind == .set ? services.setHeader : services.addHeader else { return false }
        var name = name
        return name.withUTF8 { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { nameChars in
                function(
                    call, nameChars.baseAddress, nameChars.count,
                    value.baseAddress?.assumingMemoryBound(to: UInt8.self), value.count
                ) == 0
            }
        }
    }

    private func check(_ accepted: Bool, _ kind: HeaderEditRefused.Edit, _ name: String) throws(HeaderEditRefused) {
        guard accepted else { throw HeaderEditRefused(edit: kind, name: name) }
    }

    private func firstValue(named name: String) -> UnsafeRawBufferPointer? {
        for entry in headerEntries {
            if let entryName = entry.name.buffer, Self.namesMatch(entryName, name), let value = entry.value.buffer {
                return value
            }
        }
        return nil
    }

    private func forEachValue(named name: String, _ body: (UnsafeRawBufferPointer) -> Void) {
        for entry in headerEntries {
            if let entryName = entry.name.buffer, Self.namesMatch(entryName, name), let value = entry.value.buffer {
                body(value)
            }
        }
    }

    /// Header names compare without regard to ASCII case (the host passes them lowercase; callers may not).
    private static func namesMatch(_ bytes: UnsafeRawBufferPointer, _ name: String) -> Bool {
        guard bytes.count == name.utf8.count else { return false }
        for (byte, other) in zip(bytes, name.utf8) where lowercased(byte) != lowercased(other) {
            return false
        }
        return true
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
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
