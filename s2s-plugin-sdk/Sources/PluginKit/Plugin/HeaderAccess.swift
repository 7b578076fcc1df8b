// Reading and editing a list of metadata the host lent for one hook: what `CallStart` (request metadata) and
// `ResponseMetadata` (response headers and trailers) share. Names compare without regard to ASCII case; edits go
// to the host, which copies them.

import PluginABI

@usableFromInline
struct HeaderAccess {
    let call: OpaquePointer?
    let services: HostServices
    let entries: UnsafeBufferPointer<s2s_header_t>

    var all: [RequestHeader] {
        var result: [RequestHeader] = []
        result.reserveCapacity(entries.count)
        for entry in entries {
            guard let name = entry.name.buffer, let value = entry.value.buffer else { continue }
            result.append(RequestHeader(name: String(decoding: name, as: UTF8.self), value: Array(value)))
        }
        return result
    }

    func firstValue(named name: String) -> UnsafeRawBufferPointer? {
        for entry in entries {
            if let entryName = entry.name.buffer, Self.namesMatch(entryName, name), let value = entry.value.buffer {
                return value
            }
        }
        return nil
    }

    func forEachValue(named name: String, _ body: (UnsafeRawBufferPointer) -> Void) {
        for entry in entries {
            if let entryName = entry.name.buffer, Self.namesMatch(entryName, name), let value = entry.value.buffer {
                body(value)
            }
        }
    }

    /// Sets or adds a header through the host, without copying name or value; whether the host accepted it.
    func edit(_ kind: HeaderEditRefused.Edit, _ name: String, _ value: UnsafeRawBufferPointer) -> Bool {
        var accepted = false
        if let function = kind == .set ? services.setHeader : services.addHeader {
            var name = name
            accepted = name.withUTF8 { utf8 in
                utf8.withMemoryRebound(to: CChar.self) { nameChars in
                    function(
                        call, nameChars.baseAddress, nameChars.count,
                        value.baseAddress?.assumingMemoryBound(to: UInt8.self), value.count
                    ) == 0
                }
            }
        }
        return accepted
    }

    /// Sets or adds `value`'s UTF-8 or raw bytes; throws if the host refused the edit.
    func edit(_ kind: HeaderEditRefused.Edit, _ name: String, text value: String) throws(HeaderEditRefused) {
        var value = value
        guard value.withUTF8({ edit(kind, name, UnsafeRawBufferPointer($0)) }) else {
            throw HeaderEditRefused(edit: kind, name: name)
        }
    }

    func edit(_ kind: HeaderEditRefused.Edit, _ name: String, bytes value: [UInt8]) throws(HeaderEditRefused) {
        guard value.withUnsafeBytes({ edit(kind, name, $0) }) else { throw HeaderEditRefused(edit: kind, name: name) }
    }

    func remove(_ name: String) throws(HeaderEditRefused) {
        var accepted = false
        if let remove = services.removeHeader {
            var name = name
            accepted = name.withUTF8 { utf8 in
                utf8.withMemoryRebound(to: CChar.self) { remove(call, $0.baseAddress, $0.count) } == 0
            }
        }
        guard accepted else { throw HeaderEditRefused(edit: .remove, name: name) }
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
