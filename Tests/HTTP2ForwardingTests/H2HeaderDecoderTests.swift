// The engine's HPACK decoder: RFC 7541's own examples (appendix C) with the dynamic table's size after each block,
// blocks written by an independent encoder (NIOHPACK's, with Huffman strings and its dynamic table) over many
// blocks of one connection, and every way a hostile block can be malformed.

import TestSupport
import NIOCore
import NIOHPACK
import Testing

@testable import HTTP2Forwarding

@Suite struct H2HeaderDecoderTests {
    private func bytes(_ hex: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        var digits = hex.filter { !$0.isWhitespace }[...]
        while !digits.isEmpty {
            buffer.writeInteger(UInt8(digits.prefix(2), radix: 16)!)
            digits = digits.dropFirst(2)
        }
        return buffer
    }

    private func fields(_ headers: HPACKHeaders) -> [String] {
        headers.map { "\($0.name)=\($0.value)" }
    }

    private func decodingError(_ hex: String, tableSize: Int = 4096, listSize: Int = 1 << 16) -> String? {
        var decoder = H2HeaderDecoder(allowedTableSize: tableSize, maxHeaderListSize: listSize)
        do {
            _ = try decoder.decode(bytes(hex))
            return nil
        } catch {
            return error.description
        }
    }

    @Test func literalRepresentationsOfAppendixC2() throws {
        var decoder = H2HeaderDecoder(maxHeaderListSize: 1 << 16)
        // C.2.1: literal with indexing, new name.
        #expect(fields(try decoder.decode(bytes("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")))
            == ["custom-key=custom-header"])
        #expect(decoder.tableSize == 55)
        // C.2.2: literal without indexing, indexed name.
        var decoder2 = H2HeaderDecoder(maxHeaderListSize: 1 << 16)
        let path = try decoder2.decode(bytes("040c 2f73 616d 706c 652f 7061 7468"))
        #expect(fields(path) == [":path=/sample/path"])
        #expect(path.first?.indexable != .neverIndexed)
        #expect(decoder2.tableSize == 0)
        // C.2.3: never indexed, which an intermediary must keep (RFC 7541 7.1.3).
        let password = try decoder2.decode(bytes("1008 7061 7373 776f 7264 0673 6563 7265 74"))
        #expect(fields(password) == ["password=secret"])
        #expect(password.first?.indexable == .neverIndexed)
        #expect(decoder2.tableCount == 0)
        // C.2.4: indexed, static table.
        #expect(fields(try decoder2.decode(bytes("82"))) == [":method=GET"])
    }

    @Test func requestsWithHuffmanOfAppendixC4ShareTheTable() throws {
        var decoder = H2HeaderDecoder(maxHeaderListSize: 1 << 16)
        #expect(fields(try decoder.decode(bytes("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")))
            == [":method=GET", ":scheme=http", ":path=/", ":authority=www.example.com"])
        #expect(decoder.tableSize == 57)
        #expect(fields(try decoder.decode(bytes("8286 84be 5886 a8eb 1064 9cbf")))
            == [":method=GET", ":scheme=http", ":path=/", ":authority=www.example.com", "cache-control=no-cache"])
        #expect(decoder.tableSize == 110)
        #expect(fields(try decoder.decode(bytes("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")))
            == [":method=GET", ":scheme=https", ":path=/index.html", ":authority=www.example.com",
                "custom-key=custom-value"])
        #expect(decoder.tableSize == 164)
        #expect(decoder.tableCount == 3)
    }

    @Test func responsesOfAppendixC6EvictFromA256ByteTable() throws {
        var decoder = H2HeaderDecoder(allowedTableSize: 256, maxHeaderListSize: 1 << 16)
        let first = try decoder.decode(bytes("""
            4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad
            1718 63c7 8f0b 97c8 e9ae 82ae 43d3
            """))
        #expect(fields(first) == [":status=302", "cache-control=private", "date=Mon, 21 Oct 2013 20:13:21 GMT",
                                  "location=https://www.example.com"])
        #expect(decoder.tableSize == 222)
        // ":status: 307" evicts ":status: 302".
        let second = try decoder.decode(bytes("4883 640e ffc1 c0bf"))
        #expect(fields(second) == [":status=307", "cache-control=private", "date=Mon, 21 Oct 2013 20:13:21 GMT",
                                   "location=https://www.example.com"])
        #expect(decoder.tableSize == 222)
        let third = try decoder.decode(bytes("""
            88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2
            e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07
            """))
        #expect(fields(third) == [":status=200", "cache-control=private", "date=Mon, 21 Oct 2013 20:13:22 GMT",
                                  "location=https://www.example.com", "content-encoding=gzip",
                                  "set-cookie=foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"])
        #expect(decoder.tableSize == 215)
        #expect(decoder.tableCount == 3)
    }

    @Test func blocksOfAnIndependentEncoderDecodeToWhatItWasGiven() throws {
        // NIOHPACK's encoder: Huffman strings, its own dynamic table (with evictions at 4096 bytes), over 2000
        // blocks of one connection; names and values from a seeded generator, some repeating so they get indexed.
        var random = SeededGenerator(seed: 7541)
        var encoder = HPACKEncoder(allocator: ByteBufferAllocator())
        var decoder = H2HeaderDecoder(maxHeaderListSize: 1 << 20)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789-_.~/:;, =+%\"'")
        func text(_ count: Int) -> String {
            String((0..<count).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &random)] })
        }
        let common = (0..<40).map { _ in (text(Int.random(in: 1...20, using: &random)), text(Int.random(in: 0...60, using: &random))) }
        for _ in 0..<2000 {
            var headers: HPACKHeaders = [":method": "POST", ":scheme": "http", ":path": "/a.B/C"]
            for _ in 0..<Int.random(in: 0...12, using: &random) {
                let indexing: HPACKIndexing = [.indexable, .indexable, .nonIndexable, .neverIndexed].randomElement(using: &random)!
                if Bool.random(using: &random) {
                    let (name, value) = common.randomElement(using: &random)!
                    headers.add(name: name, value: value, indexing: indexing)
                } else {
                    // Every byte value a Huffman string can carry, not only text.
                    let value = String(decoding: (0..<Int.random(in: 0...30, using: &random)).map { _ in
                        UInt8.random(in: 0x20...0x7E, using: &random)
                    }, as: UTF8.self)
                    headers.add(name: text(Int.random(in: 1...30, using: &random)), value: value, indexing: indexing)
                }
            }
            var block = ByteBuffer()
            try encoder.encode(headers: headers, to: &block)
            let decoded = try decoder.decode(block)
            #expect(fields(decoded) == fields(headers))
            #expect(decoded.map { $0.indexable == .neverIndexed } == headers.map { $0.indexable == .neverIndexed })
            #expect(decoder.tableSize <= 4096)
        }
    }

    @Test func huffmanDecodingRoundTripsEveryByteValue() throws {
        let code = H2HPACKTables.huffman
        var random = SeededGenerator(seed: 9113)
        var inputs: [[UInt8]] = [[], Array(0...255), Array((0...255).reversed())]
        for _ in 0..<500 {
            inputs.append((0..<Int.random(in: 1...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
        }
        for input in inputs {
            let encoded = code.encode(input)
            var decoded: [UInt8] = []
            try encoded.withUnsafeBytes { try code.decode($0, into: &decoded) }
            #expect(decoded == input)
        }
        // RFC 7541 C.4.1's "www.example.com".
        #expect(code.encode(Array("www.example.com".utf8)) == [0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff])
    }

    @Test func malformedBlocksAreRefusedWithAReason() {
        // Index 0, and an index past the dynamic table.
        #expect(decodingError("80")?.contains("index 0") == true)
        #expect(decodingError("be")?.contains("beyond the 0 dynamic entries") == true)
        // A table size update above what this end allows, and one after a field.
        #expect(decodingError("3fe21f", tableSize: 4096)?.contains("above the 4096") == true)
        #expect(decodingError("82 20")?.contains("after a header field") == true)
        #expect(decodingError("20 82") == nil)
        // Truncated: inside an integer, a string longer than the block, a literal without its value.
        #expect(decodingError("ff")?.contains("ends inside an integer") == true)
        #expect(decodingError("000a 6162")?.contains("a string of 10 bytes") == true)
        #expect(decodingError("0003 616263")?.contains("ends inside a field") == true)
        // An integer of more than five bytes.
        #expect(decodingError("ff ff ff ff ff 01")?.contains("more than five bytes") == true)
        // Huffman: EOS coded in the string (30 ones), padding of eight bits, padding with a zero bit.
        #expect(decodingError("00 01 61 84 ff ff ff fc")?.contains("EOS") == true)
        #expect(decodingError("00 01 61 82 1f ff")?.contains("longer than seven bits") == true)
        #expect(decodingError("00 01 61 81 1e")?.contains("not the start of EOS") == true)
        // The same 4 KiB entry sent by index over and over: bounded by the header list size, not the block's.
        let entry = "40 01 61 7f a1 1e" + String(repeating: "61", count: 4000)
        #expect(decodingError(entry + String(repeating: " be", count: 100), listSize: 64 << 10)?
            .contains("larger than SETTINGS_MAX_HEADER_LIST_SIZE") == true)
    }

    @Test func namesThatAreNotASCIIDecodeForTheValidationToRefuse() throws {
        // "é" (C3 A9) as a name: HPACKHeaders' add would trap on it; the block decodes, validation refuses it.
        for prefix in ["00", "10", "40"] {  // without indexing, never indexed, with incremental indexing
            var decoder = H2HeaderDecoder(maxHeaderListSize: 1 << 16)
            let headers = try decoder.decode(bytes("82 86 84 \(prefix) 02 c3a9 01 78"))
            #expect(fields(headers) == [":method=GET", ":scheme=http", ":path=/", "\u{e9}=x"])
            #expect(H2HeaderValidation.violation(in: headers, as: .request)?.contains("not allowed in a field name") == true)
        }
    }

    @Test func fieldsAreCheckedOnceAndTheAnswerKeptWithTheirTableEntry() throws {
        var decoder = H2HeaderDecoder(maxHeaderListSize: 1 << 16)
        // A well-formed block: no problem. Its literal "x-ok: 1" is indexed (62).
        _ = try decoder.decode(bytes("82 86 84 40 04 782d6f6b 01 31"))
        #expect(decoder.checkedFields.firstProblem == nil)
        // "X-Bad: 1" with incremental indexing: a problem at field 3, and again when it is sent by index (62).
        _ = try decoder.decode(bytes("82 86 84 40 05 582d426164 01 31"))
        #expect(decoder.checkedFields.firstProblem?.index == 3)
        #expect(decoder.checkedFields.firstProblem?.problem.contains("not allowed in a field name") == true)
        let again = try decoder.decode(bytes("82 86 84 bf be"))
        #expect(fields(again).suffix(2) == ["x-ok=1", "X-Bad=1"])
        #expect(decoder.checkedFields.firstProblem?.index == 4)
        // The static table's transfer-encoding (57) with a value: connection-specific, whatever its value.
        _ = try decoder.decode(bytes("82 86 84 0f2a 07 636875 6e6b6564"))
        #expect(decoder.checkedFields.firstProblem?.problem.contains("transfer-encoding") == true)
        // The block's structure is still checked with the fields' answers taken from the decoder.
        var contentLength: Int?
        let block = try decoder.decode(bytes("82 86 84 bf"))
        #expect(H2HeaderValidation.violation(
            in: block, as: .request, contentLength: &contentLength, checkedFields: decoder.checkedFields) == nil)
        #expect(H2HeaderValidation.violation(
            in: block, as: .response, contentLength: &contentLength, checkedFields: decoder.checkedFields) != nil)
    }

    @Test func anEntryLargerThanTheTableEmptiesIt() throws {
        var decoder = H2HeaderDecoder(allowedTableSize: 100, maxHeaderListSize: 1 << 16)
        _ = try decoder.decode(bytes("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"))
        #expect(decoder.tableCount == 1)
        // A 200-byte value: more than the whole table.
        let large = "40 01 78 7f 49" + String(repeating: "79", count: 200)
        #expect(fields(try decoder.decode(bytes(large))) == ["x=" + String(repeating: "y", count: 200)])
        #expect(decoder.tableCount == 0)
        #expect(decoder.tableSize == 0)
        // A size update to 0 empties the table too, and later entries are not kept.
        _ = try decoder.decode(bytes("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"))
        _ = try decoder.decode(bytes("20 400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"))
        #expect(decoder.tableCount == 0)
        #expect(decoder.maxTableSize == 0)
    }
}
