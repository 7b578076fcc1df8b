// The repair itself: bytes of a protobuf `string` field that are not valid UTF-8 become valid UTF-8 by replacing
// each maximal run of invalid bytes with one U+FFFD, and nothing else changes.
//
// "Run" is meant as Go's `strings.ToValidUTF8(s, "\uFFFD")` means it, which is what the Go s2s-proxy applies: a byte
// that does not start a well-formed sequence is invalid, and consecutive invalid bytes collapse into a single
// U+FFFD (`"abc\xff\xfe"` -> `"abc\u{FFFD}"`). Swift's `String(decoding:as:)`, and so `WalkTarget.value`, follows
// the Unicode standard's "maximal subpart" practice instead and would give two U+FFFD there. Both yield valid
// UTF-8; we follow Go so that a repaired failure message reads the same whichever proxy repaired it.

/// Finds and replaces invalid UTF-8 in one string value.
public enum InvalidUTF8Runs {
    /// The value with each maximal run of invalid bytes replaced by one U+FFFD, or `nil` when `bytes` are valid
    /// UTF-8 already (the common case, decided without allocating).
    public static func repaired(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard let firstInvalid = firstInvalidOffset(in: bytes) else {
            return nil
        }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count + 2)
        output.append(contentsOf: bytes[..<firstInvalid])
        var position = firstInvalid
        var inInvalidRun = false
        while position < bytes.count {
            let length = wellFormedLength(in: bytes, at: position)
            if length == 0 {
                if !inInvalidRun {
                    output.append(contentsOf: [0xEF, 0xBF, 0xBD])
                }
                inInvalidRun = true
                position += 1
            } else {
                output.append(contentsOf: bytes[position..<position + length])
                inInvalidRun = false
                position += length
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The value with its invalid runs replaced, or `nil` when it is valid UTF-8.
    public static func repaired(_ bytes: [UInt8]) -> String? {
        bytes.withUnsafeBytes { repaired($0) }
    }

    /// The offset of the first byte that does not start a well-formed sequence, or `nil` if there is none.
    static func firstInvalidOffset(in bytes: UnsafeRawBufferPointer) -> Int? {
        var position = 0
        while position < bytes.count {
            if bytes[position] < 0x80 {
                position += 1
                continue
            }
            let length = wellFormedLength(in: bytes, at: position)
            if length == 0 {
                return position
            }
            position += length
        }
        return nil
    }

    /// The length of the well-formed UTF-8 sequence starting at `position` (Unicode table 3-7: no overlong forms,
    /// no surrogates, nothing above U+10FFFF), or 0 when the byte there starts none.
    static func wellFormedLength(in bytes: UnsafeRawBufferPointer, at position: Int) -> Int {
        let lead = bytes[position]
        let length: Int
        // The range the second byte must fall in; later bytes are always 0x80...0xBF.
        let second: ClosedRange<UInt8>
        switch lead {
        case 0x00...0x7F: return 1
        case 0xC2...0xDF: (length, second) = (2, 0x80...0xBF)
        case 0xE0: (length, second) = (3, 0xA0...0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: (length, second) = (3, 0x80...0xBF)
        case 0xED: (length, second) = (3, 0x80...0x9F)
        case 0xF0: (length, second) = (4, 0x90...0xBF)
        case 0xF1...0xF3: (length, second) = (4, 0x80...0xBF)
        case 0xF4: (length, second) = (4, 0x80...0x8F)
        default: return 0
        }
        guard position + length <= bytes.count, second.contains(bytes[position + 1]) else {
            return 0
        }
        for offset in 2..<length where !(0x80...0xBF).contains(bytes[position + offset]) {
            return 0
        }
        return length
    }
}
