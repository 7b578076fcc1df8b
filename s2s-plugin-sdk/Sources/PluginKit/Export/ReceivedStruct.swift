// Reading the host's structs safely across ABI minor versions.
//
// Every struct that crosses the boundary starts with `struct_size`, and a minor version only appends fields. A
// host built against an older header passes a shorter struct: reading the whole Swift struct from its pointer
// would read past the host's memory. `ReceivedStruct` copies only the bytes the host declared into a zeroed
// struct of today's layout and answers, per field, whether the host's size covers it (the header's S2S_HAS_FIELD);
// fields it does not cover read as their defaults. A newer host's longer struct is read up to today's size.

import PluginABI

@usableFromInline
struct ReceivedStruct<Layout> {
    /// The host's struct, truncated or zero-extended to today's layout.
    @usableFromInline let copy: Layout
    /// The size the host declared in `struct_size`.
    @usableFromInline let declaredSize: Int

    /// Copies the struct at `pointer`, whose first four bytes are its `struct_size`.
    @inlinable
    init(_ pointer: UnsafePointer<Layout>, zeroed: Layout) {
        let raw = UnsafeRawPointer(pointer)
        declaredSize = Int(raw.load(as: UInt32.self))
        var copy = zeroed
        let count = min(declaredSize, MemoryLayout<Layout>.size)
        withUnsafeMutableBytes(of: &copy) { destination in
            destination.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: count))
        }
        self.copy = copy
    }

    /// Whether the host's struct includes all of `field`.
    @inlinable
    func has<Field>(_ field: KeyPath<Layout, Field>) -> Bool {
        guard let offset = MemoryLayout<Layout>.offset(of: field) else { return false }
        return declaredSize >= offset + MemoryLayout<Field>.size
    }

    /// The value of `field`, or `fallback` if the host's struct does not include it.
    @inlinable
    subscript<Field>(_ field: KeyPath<Layout, Field>, or fallback: Field) -> Field {
        has(field) ? copy[keyPath: field] : fallback
    }
}

extension s2s_bytes_t {
    /// The bytes as a buffer, or nil if the host broke the ABI (a NULL pointer with a length, or a length beyond
    /// `Int.max`, which `size_t` imports as a negative `Int`). A zero length is an empty buffer whatever the pointer.
    @inlinable
    var buffer: UnsafeRawBufferPointer? {
        guard len >= 0 else { return nil }
        if len == 0 { return UnsafeRawBufferPointer(start: nil, count: 0) }
        guard let data else { return nil }
        return UnsafeRawBufferPointer(start: data, count: len)
    }

    /// The bytes decoded as UTF-8 (invalid sequences become U+FFFD), or nil if the host broke the ABI.
    var string: String? {
        buffer.map { String(decoding: $0, as: UTF8.self) }
    }
}

extension CallSide {
    /// The side for an ABI value, or nil for a value this SDK does not know (a newer host's).
    @inlinable
    init?(abi: s2s_side_t) {
        switch abi {
        case S2S_SIDE_OUTBOUND: self = .outbound
        case S2S_SIDE_INBOUND: self = .inbound
        default: return nil
        }
    }
}

extension MessageDirection {
    /// The direction for an ABI value, or nil for a value this SDK does not know.
    @inlinable
    init?(abi: s2s_direction_t) {
        switch abi {
        case S2S_DIRECTION_REQUEST: self = .request
        case S2S_DIRECTION_RESPONSE: self = .response
        default: return nil
        }
    }
}
