// HPACK's fixed tables (RFC 7541 appendices A and B): the static table, and the Huffman code as its code lengths.
//
// The Huffman code is canonical: sorted by length, then by symbol, each code is the previous one plus one, shifted
// left by the difference in length. So the lengths alone define it, and decoding needs, per length, the first
// code, how many codes have it, and where their symbols start in the sorted list.

enum H2HPACKTables {
    /// RFC 7541 appendix A, index 1 first.
    static let staticTable: [(String, String)] = [
        (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
        (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
        (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
        ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""),
        ("cache-control", ""), ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""),
        ("content-length", ""), ("content-location", ""), ("content-range", ""), ("content-type", ""),
        ("cookie", ""), ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
        ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
        ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""),
        ("proxy-authenticate", ""), ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""),
        ("retry-after", ""), ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""),
        ("transfer-encoding", ""), ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
    ]

    /// Why each static table entry is malformed on its own (`transfer-encoding` is connection-specific).
    static let staticTableProblems: [String?] = staticTable.map { H2HeaderValidation.fieldProblem(name: $0.0, value: $0.1) }

    /// The Huffman code's length in bits for each symbol: the 256 byte values, then EOS (RFC 7541 appendix B).
    static let huffmanCodeLengths: [UInt8] = [
        13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
        28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
        6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
        5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
        13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
        7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
        15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
        6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
        20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
        24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
        22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
        21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
        26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
        19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
        20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
        26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
        30,
    ]

    static let huffman = HuffmanCode(lengths: huffmanCodeLengths)
}

/// The decoding tables of a canonical Huffman code.
struct HuffmanCode: Sendable {
    static let endOfString: UInt16 = 256
    static let maximumLength = 30

    /// Per code length: the numerically first code of that length, the number of codes, and the position of their
    /// symbols in `symbols`.
    let firstCode: [UInt32]
    let codeCount: [UInt32]
    let symbolStart: [UInt32]
    /// The symbols sorted by code length, then by value.
    let symbols: [UInt16]
    /// Each symbol's code and length, for encoding (tests).
    let codes: [(code: UInt32, length: Int)]

    init(lengths: [UInt8]) {
        let order = lengths.indices.sorted { (lengths[$0], $0) < (lengths[$1], $1) }
        var firstCode = [UInt32](repeating: 0, count: Self.maximumLength + 1)
        var codeCount = [UInt32](repeating: 0, count: Self.maximumLength + 1)
        var symbolStart = [UInt32](repeating: 0, count: Self.maximumLength + 1)
        var codes = [(code: UInt32, length: Int)](repeating: (0, 0), count: lengths.count)
        var code: UInt32 = 0
        var previousLength = Int(lengths[order[0]])
        for (position, symbol) in order.enumerated() {
            let length = Int(lengths[symbol])
            if position > 0 {
                code = (code + 1) << UInt32(length - previousLength)
            }
            previousLength = length
            if codeCount[length] == 0 {
                firstCode[length] = code
                symbolStart[length] = UInt32(position)
            }
            codeCount[length] += 1
            codes[symbol] = (code, length)
        }
        self.firstCode = firstCode
        self.codeCount = codeCount
        self.symbolStart = symbolStart
        self.symbols = order.map { UInt16($0) }
        self.codes = codes
    }

    /// Appends the decoding of `bytes` to `output`. RFC 7541 5.2: EOS inside the string, padding longer than seven
    /// bits, and padding that is not the start of EOS (all ones) are errors.
    func decode(_ bytes: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(H2HeaderDecodingError) {
        var code: UInt32 = 0
        var length = 0
        for byte in bytes {
            var bit = 7
            while bit >= 0 {
                code = code << 1 | UInt32((byte >> UInt8(bit)) & 1)
                length += 1
                bit -= 1
                let count = codeCount[length]
                if count != 0 {
                    let offset = code &- firstCode[length]
                    if offset < count {
                        let symbol = symbols[Int(symbolStart[length] + offset)]
                        guard symbol != Self.endOfString else {
                            throw H2HeaderDecodingError("a Huffman string holding EOS")
                        }
                        output.append(UInt8(truncatingIfNeeded: symbol))
                        code = 0
                        length = 0
                        continue
                    }
                }
                // The code is complete (every 30-bit sequence starts with a code), so this cannot happen.
                guard length < Self.maximumLength else { throw H2HeaderDecodingError("an invalid Huffman code") }
            }
        }
        guard length <= 7 else { throw H2HeaderDecodingError("Huffman padding longer than seven bits") }
        guard code == (UInt32(1) << UInt32(length)) - 1 else {
            throw H2HeaderDecodingError("Huffman padding that is not the start of EOS")
        }
    }

    /// The Huffman coding of `bytes`, padded with ones (for tests: the engine sends no Huffman strings).
    func encode(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        var output: [UInt8] = []
        var accumulator: UInt64 = 0
        var bits = 0
        for byte in bytes {
            let (code, length) = codes[Int(byte)]
            accumulator = accumulator << UInt64(length) | UInt64(code)
            bits += length
            while bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt64(bits)))
            }
        }
        if bits > 0 {
            let padding = 8 - bits
            output.append(UInt8(truncatingIfNeeded: accumulator << UInt64(padding) | ((1 << UInt64(padding)) - 1)))
        }
        return output
    }
}
