// libFuzzer target: PluginKit's schema (`ProtoSchema(fileDescriptorSet:)`, Sources/PluginKit/Schema) on arbitrary
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
        preconditionFailure("rules made from the schema's own fields do not compile: \(error)")
    }
    let sample = Array(bytes.suffix(48))
    for name in schema.messages.keys.sorted().prefix(64) {
        let plan: WalkPlan
        do {
            plan = try walker.plan(message: name)
        } catch {
            preconditionFailure("no plan for \(name), a message of the schema: \(error)")
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
        precondition(message.fullName == name && schema.message(named: "." + name) != nil)
        for field in message.fields {
            precondition(message.field(number: field.number) != nil && message.field(named: field.name) != nil)
            if let index = field.oneofIndex {
                precondition(index >= 0 && index < message.oneofNames.count, "a oneof index out of range")
            }
            switch field.type {
            case .message, .group:
                guard let typeName = field.typeName, let target = schema.messages[typeName] else {
                    preconditionFailure("\(name).\(field.name) refers to a message the schema lacks")
                }
                precondition(!field.isMap || (target.isMapEntry && field.isRepeated), "a map field without an entry")
            case .enumeration:
                guard let typeName = field.typeName else { preconditionFailure("an enum field without its type") }
                precondition(schema.enumerations[typeName] != nil, "\(name).\(field.name) refers to a missing enum")
            default:
                precondition(!field.isMap)
            }
        }
    }
    for (path, method) in schema.methods {
        precondition(path == "/\(method.serviceName)/\(method.name)")
        precondition(schema.message(named: method.inputType) != nil && schema.message(named: method.outputType) != nil)
        precondition(schema.method(path: path) == method)
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
                embedded.append(EmbeddedMessageRule(fields: .field(field.name, of: name), container: nil, messageName: names[0]))
                // A container: a message with this bytes field and an integer field, held by some other field.
                if let encoding = message.fields.first(where: { !$0.isRepeated && $0.type.wireType == .varint }) {
                    let container = EmbeddedMessageRule.Container(
                        messageName: name, bytesField: field.name, encodingField: encoding.name, walkedEncodings: [0, 1]
                    )
                    let holders = schema.messages.values.flatMap { holder in
                        holder.fields.filter { $0.type == .message && $0.typeName == name }.map { (holder.fullName, $0.name) }
                    }.sorted { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
                    if let (holder, holderField) = holders.first {
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
            precondition(target.valueOffset >= 0 && target.valueOffset + target.valueBytes.count <= message.count)
            precondition(target.enclosingMessageRange.contains(target.valueOffset)
                || target.enclosingMessageRange.upperBound == target.valueOffset)
            _ = target.pathDescription
            seen.append(target.value)
        }
    } catch {
        precondition((try? plan.rewrite(message) { _ in "x" }) == nil, "rewrite went through where visit failed")
        return
    }
    guard plan.canMatch else {
        precondition(seen.isEmpty)
        return
    }
    let renamed = try! plan.rewrite(message) { "#" + $0.value }
    var again: [String] = []
    try! plan.visit(renamed) { again.append($0.value) }
    precondition(again == seen.map { "#" + $0 }, "a renamed message does not walk to the renamed values")
}
