// libFuzzer target: PluginKit's schema (`ProtoSchema(fileDescriptorSet:)`, s2s-plugin-sdk/Sources/PluginKit/Schema) on arbitrary
// bytes, as a plugin receives them from the host (a reflection answer or a saved file, both from outside).
//
// Decoding either throws `ProtoSchemaError` or gives a schema whose every reference resolves: field types, map
// entries and the request and response types of methods. Walk rules made from the schema's own fields (string
// fields, string-keyed maps, bytes fields holding one of its messages, a container with a bytes and a varint field)
// must compile against it, however its types nest or recur; every plan then walks a few bytes without trapping,
// and a rewrite of what it visits is seen again by a second visit. Built and run by scripts/fuzz.
//
// Layout: the input is the FileDescriptorSet; its last 48 bytes are also the message the plans walk.

@testable import PluginKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProtoSchema(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = [UInt8](UnsafeRawBufferPointer(start: start, count: count))
    let schema: ProtoSchema
    do {
        schema = try ProtoSchema(fileDescriptorSet: bytes)
    } catch {
        _ = error.description
        return 0
    }
    checkReferences(schema)
    let walker: ProtoWalker
    do {
        walker = try schema.walker(rules: rules(for: schema), maximumDepth: 12)
    } catch {
        fatalError("rules made from the schema's own fields do not compile: \(error)")
    }
    let sample = Array(bytes.suffix(48))
    for name in schema.messages.keys.sorted().prefix(64) {
        let plan: WalkPlan
        do {
            plan = try walker.plan(message: name)
        } catch {
            fatalError("no plan for \(name), a message of the schema: \(error)")
        }
        walk(sample, with: plan)
    }
    for path in schema.methods.keys.sorted().prefix(8) {
        _ = try! walker.plan(method: path, direction: .request)
        _ = try! walker.plan(method: path, direction: .response)
    }
    return 0
}

private func checkReferences(_ schema: ProtoSchema) {
    for (name, message) in schema.messages {
        require(message.fullName == name && schema.message(named: "." + name) != nil)
        for field in message.fields {
            require(message.field(number: field.number) != nil && message.field(named: field.name) != nil)
            if let index = field.oneofIndex {
                require(index >= 0 && index < message.oneofNames.count, "a oneof index out of range")
            }
            switch field.type {
            case .message, .group:
                guard let typeName = field.typeName, let target = schema.messages[typeName] else {
                    fatalError("\(name).\(field.name) refers to a message the schema lacks")
                }
                require(!field.isMap || (target.isMapEntry && field.isRepeated), "a map field without an entry")
            case .enumeration:
                guard let typeName = field.typeName else { fatalError("an enum field without its type") }
                require(schema.enumerations[typeName] != nil, "\(name).\(field.name) refers to a missing enum")
            default:
                require(!field.isMap)
            }
        }
    }
    for (path, method) in schema.methods {
        require(path == "/\(method.serviceName)/\(method.name)")
        require(schema.message(named: method.inputType) != nil && schema.message(named: method.outputType) != nil)
        require(schema.method(path: path) == method)
    }
}

/// Rules that fit the schema by construction.
private func rules(for schema: ProtoSchema) -> WalkRules {
    var strings: [FieldSelector] = [.named(["name", "namespace"])]
    var mapKeys: [FieldSelector] = []
    var mapValues: [FieldSelector] = []
    var embedded: [EmbeddedMessageRule] = []
    let names = schema.messages.keys.sorted()
    for name in names.prefix(200) {
        let message = schema.messages[name]!
        for field in message.fields {
            switch field.type {
            case .string where strings.count < 4:
                strings.append(.field(field.name, of: name))
            case .message where field.isMap:
                let entry = schema.messages[field.typeName!]!
                if entry.field(number: 1)?.type == .string, mapKeys.count < 2 {
                    mapKeys.append(.field(field.name, of: name))
                }
                if entry.field(number: 2)?.type == .string, mapValues.count < 2 {
                    mapValues.append(.field(field.name, of: name))
                }
            case .bytes where embedded.isEmpty:
                embedded.append(
                    EmbeddedMessageRule(fields: .field(field.name, of: name), container: nil, messageName: names[0])
                )
                // A container: a message with this bytes field and an integer field, held by some other field.
                if let encoding = message.fields.first(where: { !$0.isRepeated && $0.type.wireType == .varint }) {
                    let container = EmbeddedMessageRule.Container(
                        messageName: name, bytesField: field.name, encodingField: encoding.name, walkedEncodings: [0, 1]
                    )
                    var holders: [(message: String, field: String)] = []
                    for holder in schema.messages.values {
                        for field in holder.fields where field.type == .message && field.typeName == name {
                            holders.append((holder.fullName, field.name))
                        }
                    }
                    let first = holders.min { left, right in
                        left.message < right.message || (left.message == right.message && left.field < right.field)
                    }
                    if let (holder, holderField) = first {
                        embedded.append(EmbeddedMessageRule(
                            fields: .field(holderField, of: holder), container: container, messageName: name,
                            otherEncodings: .fail
                        ))
                    }
                }
            default:
                break
            }
        }
    }
    return WalkRules(strings: strings, mapKeys: mapKeys, mapValues: mapValues, embeddedMessages: embedded)
}

private func walk(_ message: [UInt8], with plan: WalkPlan) {
    var seen: [String] = []
    do {
        try plan.visit(message) { target in
            require(target.valueOffset >= 0 && target.valueOffset + target.valueBytes.count <= message.count)
            require(target.enclosingMessageRange.contains(target.valueOffset)
                || target.enclosingMessageRange.upperBound == target.valueOffset)
            _ = target.pathDescription
            seen.append(target.value)
        }
    } catch {
        require((try? plan.rewrite(message) { _ in "x" }) == nil, "rewrite went through where visit failed")
        return
    }
    guard plan.canMatch else {
        require(seen.isEmpty)
        return
    }
    let renamed = try! plan.rewrite(message) { "#" + $0.value }
    var again: [String] = []
    try! plan.visit(renamed) { again.append($0.value) }
    require(again == seen.map { "#" + $0 }, "a renamed message does not walk to the renamed values")
}

/// `precondition` that says what failed in an optimized build too.
private func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = "", file: StaticString = #file,
    line: UInt = #line
) {
    if !condition() { fatalError("fuzz check failed: \(message())", file: file, line: line) }
}
