// libFuzzer target: what a gRPC reflection server (the local Temporal, or whatever answers at its address) sends
// back to a schema pull, and a saved schema file (Sources/Host/Schema).
//
// Conversation mode feeds `ReflectionPull` the input's messages one by one, as `ReflectionStreamHandler` does: the
// hand-written `ReflectionResponse` decoding, `DescriptorSetAssembler` (SwiftProtobuf's descriptor decoding, the
// import closure and the dependency order) and, when the pull finishes, `TemporalSchema`'s checks. Every message
// decodes or fails with an offset inside it; every request the pull sends encodes and reads back as itself; a
// finished pull's schema re-checks, declares every service listed, and lists imports before importers. File mode
// hands the bytes to `TemporalSchema(descriptorSetBytes:)` as `schema.file` would. Built and run by scripts/fuzz.
//
// Layout: byte 0 = bit 0 file mode; in conversation mode the rest is messages, each a 2-byte big-endian length
// and that many bytes (the last one cut short where the input ends).

import SwiftProtobuf

@testable import Host

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReflection(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count >= 1 else { return 0 }
    let input = UnsafeRawBufferPointer(start: start, count: count)
    let rest = Array(input[1...])
    if input[0] & 1 != 0 {
        checkFile(rest)
    } else {
        converse(rest)
    }
    return 0
}

private func converse(_ bytes: [UInt8]) {
    var pull = ReflectionPull(address: "fuzz:7233")
    var listed: [String] = []
    check(pull.start())
    var offset = 0
    while offset < bytes.count {
        let length = offset + 1 < bytes.count ? Int(bytes[offset]) << 8 | Int(bytes[offset + 1]) : 0
        let end = min(bytes.count, offset + 2 + length)
        let message = Array(bytes[min(bytes.count, offset + 2)..<end])
        offset = end
        checkDecoding(message)
        if case .services(let names) = try? ReflectionResponse(decoding: message) {
            listed = names
        }
        _ = pull.progress
        switch pull.receive(message: message) {
        case .send(let requests):
            check(requests)
        case .failed(let error):
            _ = "\(error)"
            return
        case .finished(let schema):
            checkFinished(schema, listed: listed)
            return
        }
    }
}

/// A response decodes, or fails at an offset inside it.
private func checkDecoding(_ message: [UInt8]) {
    do {
        switch try ReflectionResponse(decoding: message) {
        case .files(let files):
            require(files.reduce(0) { $0 + $1.count } <= message.count, "more file bytes than message bytes")
        case .services(let names):
            require(names.count <= message.count)
        case .error, .unexpected:
            break
        }
    } catch {
        require(error.offset >= 0 && error.offset <= message.count, "error offset \(error.offset) outside the message")
    }
}

/// Each request reads back as one string field of the number its kind has.
private func check(_ requests: [ReflectionRequest]) {
    for request in requests {
        var reader = ReflectionWireReader(request.encoded()[...])
        guard let field = try! reader.nextField(), case .lengthDelimited(let text) = field.value else {
            fatalError("a request does not read back")
        }
        require(try! reader.nextField() == nil, "a request has more than one field")
        let value = String(decoding: text, as: UTF8.self)
        switch request {
        case .listServices: require(field.number == 7)
        case .fileContainingSymbol(let symbol): require(field.number == 4 && value == symbol)
        case .fileByFilename(let name): require(field.number == 3 && value == name)
        }
    }
}

private func checkFinished(_ schema: TemporalSchema, listed: [String]) {
    let again: TemporalSchema
    do {
        again = try TemporalSchema(descriptorSetBytes: schema.descriptorSetBytes, source: schema.source)
    } catch {
        fatalError("a pulled schema fails its own checks: \(error)")
    }
    require(again == schema)
    let declared = Set(schema.serviceNames)
    for name in listed where !ReflectionPull.skippedServicePrefixes.contains(where: name.hasPrefix) {
        require(declared.contains(name), "\(name) was listed but the finished schema lacks it")
    }
    let set = try! Google_Protobuf_FileDescriptorSet(serializedBytes: schema.descriptorSetBytes, partial: true)
    var seen: Set<String> = []
    for file in set.file {
        for dependency in file.dependency where dependency != file.name {
            // An import cycle cannot be ordered; anything else comes before its importers.
            require(seen.contains(dependency) || importsCycle(set, from: dependency, to: file.name),
                         "\(file.name) comes before its import \(dependency)")
        }
        seen.insert(file.name)
    }
}

private func importsCycle(_ set: Google_Protobuf_FileDescriptorSet, from start: String, to target: String) -> Bool {
    var byName: [String: Google_Protobuf_FileDescriptorProto] = [:]
    for file in set.file where byName[file.name] == nil { byName[file.name] = file }
    var stack = [start]
    var visited: Set<String> = []
    while let name = stack.popLast() {
        if name == target { return true }
        guard visited.insert(name).inserted, let file = byName[name] else { continue }
        stack += file.dependency
    }
    return false
}

/// A saved schema file: accepted with its services sorted and counted, or refused with a reason.
private func checkFile(_ bytes: [UInt8]) {
    let schema: TemporalSchema
    do {
        schema = try TemporalSchema(descriptorSetBytes: bytes, source: "file fuzz.binpb")
    } catch {
        _ = "\(error)"
        return
    }
    require(!schema.services.isEmpty && schema.fileCount > 0)
    require(schema.serviceNames == schema.serviceNames.sorted())
    for service in schema.services {
        for method in service.methods {
            require(method.path == "/\(service.name)/\(method.name)")
        }
    }
    // The same files through the assembler give a set that checks the same way.
    let set = try! Google_Protobuf_FileDescriptorSet(serializedBytes: bytes, partial: true)
    var assembler = DescriptorSetAssembler()
    for file in set.file {
        try! assembler.add(serialized: try! file.serializedBytes(partial: true), source: "fuzz")
    }
    require(assembler.missingImports.isEmpty)
    let ordered = assembler.filesInDependencyOrder
    require(ordered.count == assembler.fileCount, "the dependency order lost or repeated a file")
    // A name given twice keeps its first file only, which may lose services; otherwise nothing is lost.
    guard Set(set.file.map(\.name)).count == set.file.count else { return }
    let reassembled = try! assembler.serializedDescriptorSet(source: "fuzz")
    let again = try! TemporalSchema(descriptorSetBytes: reassembled, source: "fuzz")
    require(again.serviceNames == schema.serviceNames && again.fileCount == schema.fileCount)
}

/// `precondition` that says what failed in an optimized build too.
private func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = "", file: StaticString = #file,
    line: UInt = #line
) {
    if !condition() { fatalError("fuzz check failed: \(message())", file: file, line: line) }
}
