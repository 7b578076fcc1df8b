// libFuzzer target: the engine's HPACK decoder (HTTP2Forwarding's H2HeaderDecoder) on arbitrary header blocks of
// one connection, side by side with an independent decoder (NIOHPACK's). Nothing may crash; the dynamic table must
// stay within its bounds; and whenever both decoders accept a block, they must have decoded the same fields (a
// difference means one of them has its dynamic table, Huffman code or integers wrong). After a block either one
// refuses, the connection would end, so the input ends there too. Built and run by scripts/fuzz.
//
// Input: a control byte (bits 0-1: the table size this end allows, 0, 64, 256 or 4096), then blocks, each after a
// byte with its length.

import NIOCore
import NIOHPACK

@testable import HTTP2Forwarding

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHPACK(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard let control = bytes.first else { return 0 }
    let tableSize = [0, 64, 256, 4096][Int(control & 3)]
    let listSize = 16 << 10
    var ours = H2HeaderDecoder(allowedTableSize: tableSize, maxHeaderListSize: listSize)
    var theirs = HPACKDecoder(allocator: ByteBufferAllocator(), maxDynamicTableSize: tableSize, maxHeaderListSize: listSize)
    var offset = 1
    while offset < count {
        let length = Int(bytes[offset])
        offset += 1
        let end = min(count, offset + length)
        let block = ByteBuffer(bytes: bytes[offset..<end])
        offset = end
        let decoded: HPACKHeaders
        do {
            decoded = try ours.decode(block)
        } catch {
            return 0
        }
        precondition(ours.tableSize <= ours.maxTableSize && ours.maxTableSize <= tableSize, "table beyond its bounds")
        var listed = 0
        for (name, value, _) in decoded { listed += name.utf8.count + value.utf8.count + 32 }
        precondition(listed <= listSize, "a header list beyond SETTINGS_MAX_HEADER_LIST_SIZE")
        var copy = block
        guard let expected = try? theirs.decodeHeaders(from: &copy) else { return 0 }
        precondition(
            decoded.map { "\($0.name)\u{0}\($0.value)" } == expected.map { "\($0.name)\u{0}\($0.value)" },
            "the decoders disagree: \(decoded) against \(expected)")
    }
    return 0
}
