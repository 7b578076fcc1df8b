// HPACK (RFC 7541) decoding of the header blocks the engine receives.
//
// One decoder per connection holds the peer's dynamic table. The table keeps each entry as the two Strings it
// decoded to, so a field the peer sends by index (what a gRPC client does for nearly every field after its first
// call) costs an array read and a retain, not new Strings; static table entries are Strings made once. Huffman
// strings are decoded with the code's canonical tables (RFC 7541 appendix B: codes of one length are consecutive
// numbers), bit by bit: gRPC peers send few of them once their fields are in the table.
//
// Everything here is hostile input: every integer, index and length is bounded before use, the decoded list is
// bounded by SETTINGS_MAX_HEADER_LIST_SIZE (a one-byte index may stand for a 4 KiB entry), and any error is a
// `H2HeaderDecodingError`, which the engine turns into a connection error COMPRESSION_ERROR (RFC 9113 4.3: the table
// can no longer be trusted). A block is decoded to its end even when a field in it is malformed for HTTP
// (an empty name, say): that is the header validation's business, and the table stays in step with the peer's.

import NIOCore
import NIOHPACK

/// Why a header block cannot be decoded.
public struct H2HeaderDecodingError: Error, CustomStringConvertible, Equatable {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

public struct H2HeaderDecoder {
    private struct Entry {
        let name: String
        let value: String
        /// RFC 7541 4.1: the lengths of name and value in bytes, plus 32.
        let size: Int
        /// Why the field is malformed on its own (`H2HeaderValidation.fieldProblem`), checked once when it was
        /// added: a field sent by index is not checked again.
        let problem: String?
    }

    /// Oldest first: the newest entry, index 62, is the last.
    private var entries = CircularBuffer<Entry>(initialCapacity: 16)
    /// The sum of the entries' sizes.
    public private(set) var tableSize = 0
    /// The table's maximum size as the peer's encoder last set it (at most `allowedTableSize`).
    public private(set) var maxTableSize: Int
    /// The largest table the peer may use: this end's SETTINGS_HEADER_TABLE_SIZE.
    public let allowedTableSize: Int
    /// The largest decoded header list (names, values and 32 per field) accepted: SETTINGS_MAX_HEADER_LIST_SIZE.
    public let maxHeaderListSize: Int
    private let staticTable = H2HPACKTables.staticTable
    private let staticProblems = H2HPACKTables.staticTableProblems
    private let huffman = H2HPACKTables.huffman
    /// Decoded Huffman bytes, reused.
    private var scratch: [UInt8] = []
    /// The fields of the block being decoded, reused.
    private var fields: [(String, String)] = []
    /// The last block's fields as `H2HeaderValidation.fieldProblem` judges them one by one (the first problem).
    public private(set) var checkedFields = H2HeaderValidation.CheckedFields()

    public init(allowedTableSize: Int = 4096, maxHeaderListSize: Int) {
        self.allowedTableSize = allowedTableSize
        self.maxTableSize = allowedTableSize
        self.maxHeaderListSize = maxHeaderListSize
    }

    /// The number of entries in the dynamic table.
    public var tableCount: Int { entries.count }

    /// Decodes one complete header block (HEADERS and its CONTINUATIONs, joined).
    ///
    /// The fields keep their representation where it matters to an intermediary: a never-indexed literal stays
    /// never indexed (RFC 7541 7.1.3); others come out indexable. A field name may be anything the peer sent,
    /// upper case or not ASCII at all: whether the block is well formed is the header validation's question.
    public mutating func decode(_ block: ByteBuffer) throws(H2HeaderDecodingError) -> HPACKHeaders {
        fields.removeAll(keepingCapacity: true)
        checkedFields = H2HeaderValidation.CheckedFields()
        var neverIndexed: [Int] = []
        let result = block.withUnsafeReadableBytes { bytes -> H2HeaderDecodingError? in
            do throws(H2HeaderDecodingError) {
                try decode(bytes, neverIndexed: &neverIndexed)
                return nil
            } catch {
                return error
            }
        }
        if let result { throw result }
        // HPACKHeaders' `add`, the only public way to mark a field, traps on a name that is not ASCII and scans
        // every name for it; the list initializer does neither, so it takes every block but those with a
        // never-indexed field (credentials, rare), which are built field by field once their names are known to be
        // ASCII (a block with a name that is not is malformed, and its stream is reset before anyone reads it).
        guard !neverIndexed.isEmpty, fields.allSatisfy({ $0.0.utf8.allSatisfy { $0 < 0x80 } }) else {
            return HPACKHeaders(fields)
        }
        var headers = HPACKHeaders()
        headers.reserveCapacity(fields.count)
        var marked = neverIndexed.makeIterator()
        var next = marked.next()
        for (position, (name, value)) in fields.enumerated() {
            if position == next {
                headers.add(name: name, value: value, indexing: .neverIndexed)
                next = marked.next()
            } else {
                headers.add(name: name, value: value)
            }
        }
        return headers
    }

    private mutating func decode(
        _ bytes: UnsafeRawBufferPointer, neverIndexed: inout [Int]
    ) throws(H2HeaderDecodingError) {
        var reader = Reader(bytes)
        var listSize = 0
        var fieldSeen = false
        while let first = reader.peek() {
            let name: String
            let value: String
            let problem: String?
            if first & 0x80 != 0 {
                // Indexed header field (1xxxxxxx).
                (name, value, problem) = try field(at: reader.integer(prefixBits: 7))
            } else if first & 0x40 != 0 {
                // Literal with incremental indexing (01xxxxxx).
                (name, value, problem) = try literal(&reader, prefixBits: 6)
                insert(name: name, value: value, problem: problem)
            } else if first & 0x20 != 0 {
                // Dynamic table size update (001xxxxx): only at the start of a block (RFC 7541 4.2).
                guard !fieldSeen else {
                    throw H2HeaderDecodingError("a dynamic table size update after a header field")
                }
                let size = try reader.integer(prefixBits: 5)
                guard size <= allowedTableSize else {
                    throw H2HeaderDecodingError(
                        "a dynamic table size update to \(size), above the \(allowedTableSize) this end allows")
                }
                maxTableSize = size
                evict(toFit: 0)
                continue
            } else {
                // Literal without indexing (0000xxxx) or never indexed (0001xxxx).
                if first & 0x10 != 0 { neverIndexed.append(fields.count) }
                (name, value, problem) = try literal(&reader, prefixBits: 4)
            }
            if let problem, checkedFields.firstProblem == nil {
                checkedFields.firstProblem = (fields.count, problem)
            }
            fieldSeen = true
            listSize += name.utf8.count + value.utf8.count + 32
            guard listSize <= maxHeaderListSize else {
                throw H2HeaderDecodingError("a header list larger than SETTINGS_MAX_HEADER_LIST_SIZE (\(maxHeaderListSize))")
            }
            fields.append((name, value))
        }
    }

    /// The field at an index of the static (1...61) or the dynamic table (62 and up, newest first), with its
    /// problem on its own, if it has one.
    private func field(at index: Int) throws(H2HeaderDecodingError) -> (String, String, String?) {
        if index >= 1, index <= staticTable.count {
            let (name, value) = staticTable[index - 1]
            return (name, value, staticProblems[index - 1])
        }
        let dynamicIndex = index - staticTable.count - 1
        guard index > 0, dynamicIndex < entries.count else {
            throw H2HeaderDecodingError("header table index \(index), beyond the \(entries.count) dynamic entries")
        }
        let entry = entries[entries.index(entries.startIndex, offsetBy: entries.count - 1 - dynamicIndex)]
        return (entry.name, entry.value, entry.problem)
    }

    /// A literal field: its name by index (non-zero) or as a string, then its value.
    private mutating func literal(
        _ reader: inout Reader, prefixBits: Int
    ) throws(H2HeaderDecodingError) -> (String, String, String?) {
        let index = try reader.integer(prefixBits: prefixBits)
        let name = index == 0 ? try string(&reader) : try field(at: index).0
        let value = try string(&reader)
        return (name, value, H2HeaderValidation.fieldProblem(name: name, value: value))
    }

    /// A string literal (RFC 7541 5.2), raw or Huffman coded.
    private mutating func string(_ reader: inout Reader) throws(H2HeaderDecodingError) -> String {
        guard let first = reader.peek() else { throw H2HeaderDecodingError("a header block that ends inside a field") }
        let length = try reader.integer(prefixBits: 7)
        guard let bytes = reader.take(length) else {
            throw H2HeaderDecodingError("a string of \(length) bytes in a header block with \(reader.remaining) left")
        }
        guard first & 0x80 != 0 else {
            return String(decoding: bytes, as: UTF8.self)
        }
        scratch.removeAll(keepingCapacity: true)
        try huffman.decode(bytes, into: &scratch)
        return String(decoding: scratch, as: UTF8.self)
    }

    /// Adds an entry, evicting the oldest ones to make room (RFC 7541 4.4); an entry larger than the table empties
    /// it and is not added.
    private mutating func insert(name: String, value: String, problem: String?) {
        let size = name.utf8.count + value.utf8.count + 32
        guard size <= maxTableSize else {
            entries.removeAll(keepingCapacity: true)
            tableSize = 0
            return
        }
        evict(toFit: size)
        entries.append(Entry(name: name, value: value, size: size, problem: problem))
        tableSize += size
    }

    private mutating func evict(toFit size: Int) {
        while tableSize + size > maxTableSize, let oldest = entries.popFirst() {
            tableSize -= oldest.size
        }
    }

    /// Reads a block's bytes front to back.
    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        init(_ bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
        }

        var remaining: Int { bytes.count - position }

        func peek() -> UInt8? {
            position < bytes.count ? bytes[position] : nil
        }

        mutating func take(_ count: Int) -> UnsafeRawBufferPointer? {
            guard count <= remaining else { return nil }
            defer { position += count }
            return UnsafeRawBufferPointer(rebasing: bytes[position..<position + count])
        }

        /// An integer with an N-bit prefix (RFC 7541 5.1); at most four continuation bytes (2^28 and a little),
        /// more than any index, length or table size a block can hold.
        mutating func integer(prefixBits: Int) throws(H2HeaderDecodingError) -> Int {
            guard position < bytes.count else { throw H2HeaderDecodingError("a header block that ends inside a field") }
            let limit = (1 << prefixBits) - 1
            var value = Int(bytes[position]) & limit
            position += 1
            guard value == limit else { return value }
            var shift = 0
            while true {
                guard position < bytes.count else {
                    throw H2HeaderDecodingError("a header block that ends inside an integer")
                }
                let byte = bytes[position]
                position += 1
                value += Int(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
                guard shift <= 21 else { throw H2HeaderDecodingError("an integer of more than five bytes in a header block") }
            }
        }
    }
}
