// HPACK (RFC 7541) encoding for header blocks the proxy sends: the static table only, no dynamic table, no Huffman.
//
// A forwarding proxy sends each call's headers once and gains little from a dynamic table: its entries would have
// to be looked up (a hash of every name and value) for every field of every block, which cost more CPU than
// anything else the engine did per call. Here a field whose name (or name and value) is in the static table is
// written by index, any other as a literal with its name; values go as they are, without Huffman coding. Nothing
// is ever added to a table, so the encoder is stateless but for one thing: the first block of a connection opens
// with a dynamic table size update to 0 (RFC 7541 6.3), so that no later SETTINGS_HEADER_TABLE_SIZE from the peer,
// however small, can require another one. Fields the sender marked never-indexed keep that representation
// (RFC 7541 7.1.3: an intermediary must).

import NIOCore
import NIOHPACK

public struct H2HeaderEncoder: Sendable {
    private var announcedTableSize = false

    public init() {}

    /// Appends the HPACK encoding of `headers` to `buffer`.
    public mutating func encode(_ headers: HPACKHeaders, into buffer: inout ByteBuffer) {
        // At most: the table size update, and per field a prefix byte with a 5-byte integer for the name's index
        // or length, the name, a 5-byte integer for the value's length and the value. The block is written with
        // one reservation and plain stores: a buffer write per byte costs the buffer's checks every time.
        var bound = 1
        for (name, value, _) in headers {
            bound += 11 + name.utf8.count + value.utf8.count
        }
        let announce = !announcedTableSize
        announcedTableSize = true
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { bytes in
            var writer = BlockWriter(base: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
            if announce {
                // Dynamic table size update (001xxxxx) to 0.
                writer.byte(0x20)
            }
            for (name, value, indexing) in headers {
                let neverIndexed = indexing == .neverIndexed
                if !neverIndexed, let index = Self.staticIndex(name: name, value: value) {
                    // Indexed header field (1xxxxxxx).
                    writer.integer(index, prefixBits: 7, flags: 0x80)
                    continue
                }
                // Literal without indexing (0000xxxx) or never indexed (0001xxxx).
                let flags: UInt8 = neverIndexed ? 0x10 : 0x00
                if let nameIndex = Self.staticNameIndex(name) {
                    writer.integer(nameIndex, prefixBits: 4, flags: flags)
                } else {
                    writer.byte(flags)
                    writer.string(name)
                }
                writer.string(value)
            }
            precondition(writer.count <= bound, "HPACK block overran its reservation")
            return writer.count
        }
    }

    /// Stores an HPACK block's bytes into memory reserved for it.
    private struct BlockWriter {
        let base: UnsafeMutablePointer<UInt8>
        var count = 0

        @inline(__always)
        mutating func byte(_ value: UInt8) {
            base[count] = value
            count += 1
        }

        /// An HPACK integer with an N-bit prefix (RFC 7541 5.1), the prefix byte's other bits set to `flags`.
        @inline(__always)
        mutating func integer(_ value: Int, prefixBits: Int, flags: UInt8) {
            let limit = (1 << prefixBits) - 1
            if value < limit {
                byte(flags | UInt8(value))
                return
            }
            byte(flags | UInt8(limit))
            var rest = value - limit
            while rest >= 128 {
                byte(UInt8(rest & 0x7F | 0x80))
                rest >>= 7
            }
            byte(UInt8(rest))
        }

        /// A string literal without Huffman coding (RFC 7541 5.2).
        @inline(__always)
        mutating func string(_ string: String) {
            var string = string
            let length = string.utf8.count
            integer(length, prefixBits: 7, flags: 0)
            let target = base + count
            string.withUTF8 { utf8 in
                if let source = utf8.baseAddress { target.update(from: source, count: utf8.count) }
            }
            count += length
        }
    }

    /// The static table entry that matches both name and value, for the pairs a gRPC call uses (RFC 7541
    /// appendix A).
    @inline(__always)
    static func staticIndex(name: String, value: String) -> Int? {
        let utf8 = name.utf8
        guard utf8.count == 7, utf8.first == UInt8(ascii: ":") else { return nil }
        switch (name, value) {
        case (":method", "GET"): return 2
        case (":method", "POST"): return 3
        case (":scheme", "http"): return 6
        case (":scheme", "https"): return 7
        case (":status", "200"): return 8
        default: return nil
        }
    }

    /// The first static table entry with this name (RFC 7541 appendix A), for the names gRPC and Temporal
    /// calls carry; other names are written as literals.
    @inline(__always)
    static func staticNameIndex(_ name: String) -> Int? {
        switch name.utf8.count {
        case 5: return name == ":path" ? 4 : nil
        case 7:
            switch name {
            case ":method": return 2
            case ":scheme": return 6
            case ":status": return 8
            default: return nil
            }
        case 10: return name == ":authority" ? 1 : (name == "user-agent" ? 58 : nil)
        case 12: return name == "content-type" ? 31 : nil
        case 14: return name == "content-length" ? 28 : nil
        case 15: return name == "accept-encoding" ? 16 : nil
        case 16: return name == "content-encoding" ? 26 : nil
        default: return nil
        }
    }
}
