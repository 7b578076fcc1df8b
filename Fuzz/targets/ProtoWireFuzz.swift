// libFuzzer target: PluginKit's protobuf wire layer (s2s-plugin-sdk/Sources/PluginKit/Wire) on arbitrary bytes, as a plugin meets
// them in a peer's message.
//
// The scanner reads the message and, nested, every length-delimited payload as a sub-message (as far as it scans):
// fields must tile their range, ranges must hold what their wire type says, and a scanner that threw keeps throwing.
// The rewriter then replaces one or two payloads found that way (a field and one of its ancestors must be refused
// as overlapping, anything else accepted) and the result must re-scan level by level to the same fields with only
// the edited payloads and the length prefixes above them changed. `ProtoFieldOverrides` sets one or two top-level
// fields and is compared with the same result built by hand; varints decode the same through every entry point
// and round-trip. Built and run by scripts/fuzz.
//
// Layout: byte 0 picks the edits (and the scanned sub-range), byte 1 the new payloads and the overrides; the rest
// is the message.

@testable import PluginKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProtoWire(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count >= 2 else { return 0 }
    let input = UnsafeRawBufferPointer(start: start, count: count)
    let pick = input[0]
    let shape = input[1]
    let message = Array(input[2...])

    checkVarints(message)
    checkClampedRange(message, pick: pick)
    var tree = FieldTree(bytes: message)
    tree.root = tree.scan(0..<message.count, depth: 0)
    checkRewrite(tree, pick: pick, shape: shape)
    checkOverrides(tree, shape: shape)
    return 0
}

// MARK: Scanning

/// A field found by scanning, with its sub-message scan when its payload was tried as one.
private struct ScannedField {
    let field: ProtoWireField
    var children: ScannedLevel?
}

/// One message level: its fields in order, and whether the scan reached the end without an error.
private struct ScannedLevel {
    var fields: [ScannedField]
    var complete: Bool
}

private struct FieldTree {
    let bytes: [UInt8]
    var root = ScannedLevel(fields: [], complete: true)

    init(bytes: [UInt8]) { self.bytes = bytes }

    func scan(_ range: Range<Int>, depth: Int) -> ScannedLevel {
        var scanner = ProtoWireScanner(bytes: bytes, range: range)
        var level = ScannedLevel(fields: [], complete: true)
        var expectedStart = range.lowerBound
        while true {
            let field: ProtoWireField?
            do {
                field = try scanner.next()
            } catch {
                require(error.offset >= expectedStart && error.offset <= range.upperBound, "error outside the field")
                // The scanner stays at the offending field.
                do {
                    _ = try scanner.next()
                    fatalError("a scanner that threw went on")
                } catch {}
                level.complete = false
                return level
            }
            guard let field else { break }
            check(field, startingAt: expectedStart, end: range.upperBound)
            expectedStart = field.fieldRange.upperBound
            var scanned = ScannedField(field: field)
            if field.wireType == .lengthDelimited, depth < 8 {
                scanned.children = scan(field.payloadRange, depth: depth + 1)
            }
            level.fields.append(scanned)
        }
        require(expectedStart == range.upperBound, "the fields do not reach the end of the message")
        return level
    }

    private func check(_ field: ProtoWireField, startingAt start: Int, end: Int) {
        require(field.fieldRange.lowerBound == start, "a gap or an overlap before a field")
        require(field.fieldRange.upperBound <= end && field.fieldRange.upperBound > start)
        require(field.payloadRange.upperBound == field.fieldRange.upperBound)
        require(field.keyEnd > start && field.keyEnd <= field.payloadRange.lowerBound)
        require((1...ProtoFieldNumber.maximum).contains(field.fieldNumber))
        let key = try! ProtoVarint.decode(bytes, at: start, end: end)
        require(start + key.length == field.keyEnd)
        require(key.value == ProtoFieldNumber.key(fieldNumber: field.fieldNumber, wireType: field.wireType))
        switch field.wireType {
        case .varint:
            require(field.keyEnd == field.payloadRange.lowerBound)
            let value = try! ProtoVarint.decode(bytes, at: field.keyEnd, end: end)
            require(value.length == field.payloadRange.count)
        case .fixed32:
            require(field.keyEnd == field.payloadRange.lowerBound && field.payloadRange.count == 4)
        case .fixed64:
            require(field.keyEnd == field.payloadRange.lowerBound && field.payloadRange.count == 8)
        case .lengthDelimited:
            let length = try! ProtoVarint.decode(bytes, at: field.keyEnd, end: end)
            require(field.keyEnd + length.length == field.payloadRange.lowerBound)
            require(Int(length.value) == field.payloadRange.count)
        }
    }
}

/// A scanner over any range of the bytes, in bounds or not, reads only inside the bytes.
private func checkClampedRange(_ bytes: [UInt8], pick: UInt8) {
    let lower = Int(pick & 0xF) % (bytes.count + 1)
    let upper = lower + Int(pick >> 4) * 4
    var scanner = ProtoWireScanner(bytes: bytes, range: lower..<upper)
    require(scanner.range.upperBound <= bytes.count)
    while let field = try? scanner.next() {
        require(field.fieldRange.upperBound <= scanner.range.upperBound)
    }
}

// MARK: Rewriting

/// A length-delimited field and the fields it lies in, outermost first (indexes into each level).
private struct EditCandidate {
    let path: [Int]
    let field: ProtoWireField
}

private func candidates(in level: ScannedLevel, path: [Int], into result: inout [EditCandidate]) {
    for (index, scanned) in level.fields.enumerated() where scanned.field.wireType == .lengthDelimited {
        result.append(EditCandidate(path: path + [index], field: scanned.field))
        if let children = scanned.children {
            candidates(in: children, path: path + [index], into: &result)
        }
    }
}

private func newPayload(for field: ProtoWireField, in bytes: [UInt8], shape: UInt8) -> [UInt8] {
    let old = Array(bytes[field.payloadRange])
    switch shape & 3 {
    case 0: return []
    case 1: return old + [UInt8](repeating: 0x61, count: Int(shape >> 2) + 1)
    case 2: return Array(old.prefix(old.count / 2))
    default: return [UInt8](repeating: 0x62, count: 120 + Int(shape >> 2))  // often crosses a prefix size
    }
}

private func checkRewrite(_ tree: FieldTree, pick: UInt8, shape: UInt8) {
    var rewriter = ProtoWireRewriter(original: tree.bytes)
    require(try! rewriter.rebuiltBytes() == tree.bytes, "no edit must give the original back")
    var all: [EditCandidate] = []
    candidates(in: tree.root, path: [], into: &all)
    guard !all.isEmpty else { return }
    let first = all[Int(pick) % all.count]
    var edits: [(EditCandidate, [UInt8])] = [(first, newPayload(for: first.field, in: tree.bytes, shape: shape))]
    try! rewriter.replacePayload(of: first.field, with: edits[0].1)
    if pick & 0x80 != 0 {
        let second = all[(Int(pick) / 3 + Int(shape)) % all.count]
        let payload = newPayload(for: second.field, in: tree.bytes, shape: shape >> 1)
        let nested = second.path.starts(with: first.path) || first.path.starts(with: second.path)
        do {
            try rewriter.replacePayload(of: second.field, with: payload)
            require(!nested, "an edit inside another edit was accepted")
            edits.append((second, payload))
        } catch {
            require(nested, "a second edit elsewhere was refused: \(error)")
            guard case .overlappingOrOutOfBoundsEdit = error.kind else { fatalError("\(error)") }
        }
    }
    let rebuilt: [UInt8]
    do {
        rebuilt = try rewriter.rebuiltBytes()
    } catch {
        fatalError("the edits of scanned fields cannot be applied: \(error)")
    }
    compare(original: tree.bytes, 0..<tree.bytes.count, rebuilt: rebuilt, 0..<rebuilt.count, edits: edits, depth: 0)
}

/// Scans a level of the original and of the rebuilt message side by side: the same fields, the same bytes except
/// for edited payloads (which hold the new payload) and the length prefixes of the fields around them.
private func compare(
    original: [UInt8], _ originalRange: Range<Int>,
    rebuilt: [UInt8], _ rebuiltRange: Range<Int>,
    edits: [(EditCandidate, [UInt8])], depth: Int
) {
    var left = ProtoWireScanner(bytes: original, range: originalRange)
    var right = ProtoWireScanner(bytes: rebuilt, range: rebuiltRange)
    var index = 0
    while true {
        let before = try? left.next()
        let after = try? right.next()
        guard let before else {
            // Whatever stopped the original's scan (its end, or bytes copied as they were) stops the rebuilt one.
            require(after == nil, "the rebuilt message has a field more")
            return
        }
        guard let after else { fatalError("the rebuilt message lost field \(index) at depth \(depth)") }
        require(before.fieldNumber == after.fieldNumber && before.wireType == after.wireType)
        require(original[before.fieldRange.lowerBound..<before.keyEnd].elementsEqual(
            rebuilt[after.fieldRange.lowerBound..<after.keyEnd]), "a key changed")
        let here = edits.filter { $0.0.path.count > depth && $0.0.path[depth] == index }
        if here.isEmpty {
            require(original[before.fieldRange].elementsEqual(rebuilt[after.fieldRange]), "an untouched field changed")
        } else if let whole = here.first(where: { $0.0.path.count == depth + 1 }) {
            require(rebuilt[after.payloadRange].elementsEqual(whole.1), "an edited payload is not the new one")
            if whole.1.count == before.payloadRange.count {
                require(original[before.keyEnd..<before.payloadRange.lowerBound].elementsEqual(
                    rebuilt[after.keyEnd..<after.payloadRange.lowerBound]), "an unchanged length was re-encoded")
            } else {
                let prefix = after.payloadRange.lowerBound - after.keyEnd
                require(prefix == ProtoVarint.encodedLength(of: UInt64(whole.1.count)), "a new length is not minimal")
            }
        } else {
            compare(
                original: original, before.payloadRange, rebuilt: rebuilt, after.payloadRange, edits: here,
                depth: depth + 1
            )
        }
        index += 1
    }
}

// MARK: Overrides

private func checkOverrides(_ tree: FieldTree, shape: UInt8) {
    var overrides = ProtoFieldOverrides()
    let topNumbers = tree.root.fields.map(\.field.fieldNumber)
    // A field the message has (when it has one) and a fresh one, or the same field twice (the later value wins).
    let firstNumber = topNumbers.isEmpty ? 1 : topNumbers[Int(shape) % topNumbers.count]
    let firstValue: ProtoFieldOverrides.Value = shape & 0x10 != 0
        ? .varint(UInt64(shape) << (shape & 0x20 != 0 ? 57 : 0))
        : .lengthDelimited(Array("renamed".utf8.prefix(Int(shape & 7))))
    overrides.set(fieldNumber: firstNumber, to: firstValue)
    if shape & 0x40 != 0 {
        let secondNumber = shape & 0x80 != 0 ? firstNumber : 1000 + Int(shape & 0xF)
        overrides.set(fieldNumber: secondNumber, to: .varint(UInt64(shape & 3)))
    }
    let result: [UInt8]?
    do {
        result = try tree.bytes.withUnsafeBytes { (buffer) throws(ProtoWireError) in try overrides.apply(to: buffer) }
    } catch {
        require(!tree.root.complete, "overrides refused a message that scans: \(error)")
        return
    }
    require(tree.root.complete, "overrides applied to a message that does not scan")
    let fields = tree.root.fields.map(\.field)
    var expected: [UInt8] = []
    var lastIndex: [Int: Int] = [:]
    for (index, field) in fields.enumerated() { lastIndex[field.fieldNumber] = index }
    var carried = true
    for entry in overrides.values {
        let occurrences = fields.filter { $0.fieldNumber == entry.fieldNumber }
        if occurrences.count != 1 || occurrences[0].wireType != entry.value.wireType {
            carried = false
        } else {
            switch entry.value {
            case .varint(let value):
                let payload = occurrences[0].payloadRange
                let decoded = try! ProtoVarint.decode(tree.bytes, at: payload.lowerBound, end: payload.upperBound)
                carried = carried && decoded.value == value
            case .lengthDelimited(let payload):
                carried = carried && tree.bytes[occurrences[0].payloadRange].elementsEqual(payload)
            }
        }
    }
    for (index, field) in fields.enumerated() {
        if let entry = overrides.values.first(where: { $0.fieldNumber == field.fieldNumber }) {
            if lastIndex[field.fieldNumber] == index { encode(entry, into: &expected) }
        } else {
            expected += tree.bytes[field.fieldRange]
        }
    }
    for entry in overrides.values where lastIndex[entry.fieldNumber] == nil {
        encode(entry, into: &expected)
    }
    if let result {
        require(!carried, "a message that carries every value was rebuilt")
        require(result == expected, "overrides built \(result), expected \(expected)")
    } else {
        require(carried, "a message that lacks a value was reported unchanged")
    }
}

private func encode(_ entry: ProtoFieldOverrides.Override, into output: inout [UInt8]) {
    switch entry.value {
    case .varint(let value):
        ProtoVarint.append(UInt64(entry.fieldNumber) << 3, to: &output)
        ProtoVarint.append(value, to: &output)
    case .lengthDelimited(let payload):
        ProtoVarint.append(UInt64(entry.fieldNumber) << 3 | 2, to: &output)
        ProtoVarint.append(UInt64(payload.count), to: &output)
        output += payload
    }
}

// MARK: Varints

/// Every entry point decodes the varint at every offset the same way, and what decodes re-encodes.
private func checkVarints(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { raw in
        for offset in 0...bytes.count {
            let end = bytes.count - (offset & 1)  // sometimes end before the last byte
            let array = Result { () throws(ProtoWireError) in try ProtoVarint.decode(bytes, at: offset, end: end) }
            let inline = Result { () throws(ProtoWireError) in try ProtoVarint.decodeInline(raw, at: offset, end: end) }
            let length = Result { () throws(ProtoWireError) in try ProtoVarint.length(in: raw, at: offset, end: end) }
            switch (array, inline, length) {
            case (.success(let a), .success(let b), .success(let c)):
                require(a == b && a.length == c && a.length <= ProtoVarint.maximumLength)
                require(offset + a.length <= end)
                var encoded: [UInt8] = []
                ProtoVarint.append(a.value, to: &encoded)
                require(encoded.count == ProtoVarint.encodedLength(of: a.value) && encoded.count <= a.length)
                let again = try! ProtoVarint.decode(encoded, at: 0, end: encoded.count)
                require(again.value == a.value && again.length == encoded.count)
            case (.failure(let a), .failure(let b), .failure(let c)):
                require(a == b && b == c, "the entry points disagree on an error")
            default:
                fatalError("the varint entry points disagree at \(offset)")
            }
        }
    }
}

/// `precondition` that says what failed in an optimized build too.
private func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = "", file: StaticString = #file,
    line: UInt = #line
) {
    if !condition() { fatalError("fuzz check failed: \(message())", file: file, line: line) }
}
