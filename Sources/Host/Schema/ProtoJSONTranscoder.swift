// Turns protobuf messages into proto3 JSON and back, driven only by the descriptors of a `TemporalSchema`: no
// generated types. Behind `s2s-proxy plugin run --message-json` / `--print-json`, so that a plugin author can
// write a Temporal request as JSON and read what the plugin made of it.
//
// Covers what Temporal messages use: scalars (64-bit integers as JSON strings, accepted as numbers too), enums by
// name or number, bytes as base64, nested and repeated messages, maps, oneofs, and the well-known
// `google.protobuf.Timestamp` / `Duration` in their string forms. Field names are accepted as written in the proto
// or in lowerCamelCase; output uses lowerCamelCase. Unknown fields in binary input are skipped in the JSON view.
// Not meant for the data path: it builds Foundation objects.

import Foundation
import SwiftProtobuf

public struct ProtoJSONTranscoder {
    public struct TranscodeError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    private var messages: [String: Google_Protobuf_DescriptorProto] = [:]
    private var enums: [String: Google_Protobuf_EnumDescriptorProto] = [:]

    public init(schema: TemporalSchema) throws {
        let set = try Google_Protobuf_FileDescriptorSet(serializedBytes: schema.descriptorSetBytes, partial: true)
        for file in set.file {
            let prefix = file.package.isEmpty ? "" : file.package + "."
            for message in file.messageType { register(message, prefix: prefix) }
            for item in file.enumType { enums[prefix + item.name] = item }
        }
    }

    private mutating func register(_ message: Google_Protobuf_DescriptorProto, prefix: String) {
        let name = prefix + message.name
        messages[name] = message
        for nested in message.nestedType { register(nested, prefix: name + ".") }
        for item in message.enumType { enums[name + "." + item.name] = item }
    }

    public func hasMessage(_ name: String) -> Bool { messages[name] != nil }

    // MARK: JSON -> binary

    public func encode(json text: String, as type: String) throws -> [UInt8] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) else {
            throw TranscodeError(message: "the message is not valid JSON")
        }
        var output: [UInt8] = []
        try encodeMessage(object, type: type, path: type, into: &output)
        return output
    }

    private func descriptor(_ type: String) throws -> Google_Protobuf_DescriptorProto {
        guard let message = messages[type] else { throw TranscodeError(message: "the schema has no message \(type)") }
        return message
    }

    private func encodeMessage(_ value: Any, type: String, path: String, into output: inout [UInt8]) throws {
        switch type {
        case "google.protobuf.Timestamp":
            if let text = value as? String { return try encodeTimestamp(text, path: path, into: &output) }
        case "google.protobuf.Duration":
            if let text = value as? String { return try encodeDuration(text, path: path, into: &output) }
        default:
            break
        }
        guard let object = value as? [String: Any] else { throw TranscodeError(message: "\(path): expected a JSON object") }
        let message = try descriptor(type)
        for (key, item) in object.sorted(by: { $0.key < $1.key }) {
            guard let field = message.field.first(where: { $0.name == key || $0.jsonName == key }) else {
                throw TranscodeError(message: "\(path): \(type) has no field \(key)")
            }
            if item is NSNull { continue }
            let fieldPath = path + "." + key
            if field.label == .repeated {
                if let entry = mapEntry(of: field) {
                    guard let map = item as? [String: Any] else { throw TranscodeError(message: "\(fieldPath): expected a JSON object (map)") }
                    for (mapKey, mapValue) in map.sorted(by: { $0.key < $1.key }) {
                        var entryBytes: [UInt8] = []
                        try encodeField(entry.field[0], mapKey, path: fieldPath, into: &entryBytes, keyText: true)
                        try encodeField(entry.field[1], mapValue, path: fieldPath + "[\(mapKey)]", into: &entryBytes)
                        appendTag(Int(field.number), wireType: 2, into: &output)
                        appendVarint(UInt64(entryBytes.count), into: &output)
                        output += entryBytes
                    }
                    continue
                }
                guard let list = item as? [Any] else { throw TranscodeError(message: "\(fieldPath): expected a JSON array") }
                for (index, element) in list.enumerated() {
                    try encodeField(field, element, path: fieldPath + "[\(index)]", into: &output)
                }
            } else {
                try encodeField(field, item, path: fieldPath, into: &output)
            }
        }
    }

    private func mapEntry(of field: Google_Protobuf_FieldDescriptorProto) -> Google_Protobuf_DescriptorProto? {
        guard field.type == .message, let entry = messages[Self.strip(field.typeName)], entry.options.mapEntry,
              entry.field.count == 2 else { return nil }
        return entry
    }

    private func encodeField(_ field: Google_Protobuf_FieldDescriptorProto, _ value: Any, path: String,
                             into output: inout [UInt8], keyText: Bool = false) throws {
        let number = Int(field.number)
        func integer() throws -> Int64 {
            if let text = value as? String, let parsed = Int64(text) { return parsed }
            if let number = value as? NSNumber, !(value is Bool) { return number.int64Value }
            throw TranscodeError(message: "\(path): expected an integer")
        }
        func unsigned() throws -> UInt64 {
            if let text = value as? String, let parsed = UInt64(text) { return parsed }
            if let number = value as? NSNumber, !(value is Bool), number.int64Value >= 0 { return number.uint64Value }
            throw TranscodeError(message: "\(path): expected a non-negative integer")
        }
        func double() throws -> Double {
            if let number = value as? NSNumber, !(value is Bool) { return number.doubleValue }
            if let text = value as? String, let parsed = Double(text) { return parsed }
            throw TranscodeError(message: "\(path): expected a number")
        }
        switch field.type {
        case .string:
            guard let text = value as? String else { throw TranscodeError(message: "\(path): expected a string") }
            appendLengthDelimited(number, Array(text.utf8), into: &output)
        case .bytes:
            guard let text = value as? String, let data = Data(base64Encoded: Self.padded(text)) else {
                throw TranscodeError(message: "\(path): expected base64 bytes")
            }
            appendLengthDelimited(number, Array(data), into: &output)
        case .bool:
            let flag: Bool
            if keyText, let text = value as? String { flag = text == "true" } else if let value = value as? Bool { flag = value } else {
                throw TranscodeError(message: "\(path): expected true or false")
            }
            appendTag(number, wireType: 0, into: &output)
            appendVarint(flag ? 1 : 0, into: &output)
        case .int32, .int64:
            appendTag(number, wireType: 0, into: &output)
            appendVarint(UInt64(bitPattern: try integer()), into: &output)
        case .uint32, .uint64:
            appendTag(number, wireType: 0, into: &output)
            appendVarint(try unsigned(), into: &output)
        case .sint32, .sint64:
            let signed = try integer()
            appendTag(number, wireType: 0, into: &output)
            appendVarint(UInt64(bitPattern: (signed << 1) ^ (signed >> 63)), into: &output)
        case .fixed32, .sfixed32, .float:
            let bits: UInt32 = field.type == .float ? Float(try double()).bitPattern
                : field.type == .fixed32 ? UInt32(truncatingIfNeeded: try unsigned()) : UInt32(bitPattern: Int32(truncatingIfNeeded: try integer()))
            appendTag(number, wireType: 5, into: &output)
            for shift in stride(from: 0, to: 32, by: 8) { output.append(UInt8(truncatingIfNeeded: bits >> UInt32(shift))) }
        case .fixed64, .sfixed64, .double:
            let bits: UInt64 = field.type == .double ? (try double()).bitPattern
                : field.type == .fixed64 ? try unsigned() : UInt64(bitPattern: try integer())
            appendTag(number, wireType: 1, into: &output)
            for shift in stride(from: 0, to: 64, by: 8) { output.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
        case .enum:
            let enumType = Self.strip(field.typeName)
            var raw: Int32
            if let name = value as? String {
                guard let match = enums[enumType]?.value.first(where: { $0.name == name }) else {
                    throw TranscodeError(message: "\(path): \(enumType) has no value \(name)")
                }
                raw = match.number
            } else {
                raw = Int32(truncatingIfNeeded: try integer())
            }
            appendTag(number, wireType: 0, into: &output)
            appendVarint(UInt64(bitPattern: Int64(raw)), into: &output)
        case .message, .group:
            var nested: [UInt8] = []
            try encodeMessage(value, type: Self.strip(field.typeName), path: path, into: &nested)
            appendLengthDelimited(number, nested, into: &output)
        @unknown default:
            throw TranscodeError(message: "\(path): unsupported field type")
        }
    }

    private func encodeTimestamp(_ text: String, path: String, into output: inout [UInt8]) throws {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        guard let date = formatter.date(from: text) ?? plain.date(from: text) else {
            throw TranscodeError(message: "\(path): expected an RFC 3339 timestamp such as 2026-01-02T03:04:05Z")
        }
        let seconds = date.timeIntervalSince1970.rounded(.down)
        let nanos = Int64(((date.timeIntervalSince1970 - seconds) * 1e9).rounded())
        if seconds != 0 { appendTag(1, wireType: 0, into: &output); appendVarint(UInt64(bitPattern: Int64(seconds)), into: &output) }
        if nanos != 0 { appendTag(2, wireType: 0, into: &output); appendVarint(UInt64(nanos), into: &output) }
    }

    private func encodeDuration(_ text: String, path: String, into output: inout [UInt8]) throws {
        guard text.hasSuffix("s"), let value = Double(text.dropLast()) else {
            throw TranscodeError(message: "\(path): expected a duration such as \"1.5s\"")
        }
        let seconds = Int64(value.rounded(.towardZero))
        let nanos = Int64(((value - Double(seconds)) * 1e9).rounded())
        if seconds != 0 { appendTag(1, wireType: 0, into: &output); appendVarint(UInt64(bitPattern: seconds), into: &output) }
        if nanos != 0 { appendTag(2, wireType: 0, into: &output); appendVarint(UInt64(bitPattern: nanos), into: &output) }
    }

    // MARK: binary -> JSON

    public func decode(_ bytes: [UInt8], as type: String) throws -> String {
        let object = try decodeMessage(bytes[...], type: type, path: type, depth: 0)
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed])
        return String(decoding: data, as: UTF8.self)
    }

    private func decodeMessage(_ bytes: ArraySlice<UInt8>, type: String, path: String, depth: Int) throws -> Any {
        guard depth < 100 else { throw TranscodeError(message: "\(path): nested too deeply") }
        let message = try descriptor(type)
        var result: [String: Any] = [:]
        var reader = WireReader(bytes: bytes, path: path)
        var seconds: Int64 = 0
        var nanos: Int64 = 0
        while let (number, wireType) = try reader.nextTag() {
            guard let field = message.field.first(where: { $0.number == Int32(number) }) else {
                try reader.skip(wireType: wireType)
                continue
            }
            let name = field.jsonName.isEmpty ? field.name : field.jsonName
            let fieldPath = path + "." + name
            if field.label == .repeated, let entry = mapEntry(of: field) {
                let entryBytes = try reader.lengthDelimited()
                var entryReader = WireReader(bytes: entryBytes, path: fieldPath)
                var key: Any = ""
                var value: Any = NSNull()
                while let (entryNumber, entryWire) = try entryReader.nextTag() {
                    if entryNumber == 1 { key = try decodeValue(entry.field[0], &entryReader, wireType: entryWire, path: fieldPath, depth: depth) }
                    else if entryNumber == 2 { value = try decodeValue(entry.field[1], &entryReader, wireType: entryWire, path: fieldPath, depth: depth) }
                    else { try entryReader.skip(wireType: entryWire) }
                }
                var map = result[name] as? [String: Any] ?? [:]
                map["\(key)"] = value
                result[name] = map
                continue
            }
            if field.label == .repeated, wireType == 2, Self.isPackable(field.type) {
                let packed = try reader.lengthDelimited()
                var packedReader = WireReader(bytes: packed, path: fieldPath)
                var list = result[name] as? [Any] ?? []
                while !packedReader.atEnd {
                    list.append(try decodeValue(field, &packedReader, wireType: Self.wireType(of: field.type), path: fieldPath, depth: depth))
                }
                result[name] = list
                continue
            }
            let value = try decodeValue(field, &reader, wireType: wireType, path: fieldPath, depth: depth)
            if type == "google.protobuf.Timestamp" || type == "google.protobuf.Duration" {
                if number == 1 { seconds = Int64(value as? String ?? "0") ?? 0 } else if number == 2 { nanos = (value as? NSNumber)?.int64Value ?? 0 }
            }
            if field.label == .repeated {
                var list = result[name] as? [Any] ?? []
                list.append(value)
                result[name] = list
            } else {
                result[name] = value
            }
        }
        if type == "google.protobuf.Timestamp" {
            let date = Date(timeIntervalSince1970: Double(seconds) + Double(nanos) / 1e9)
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = nanos == 0 ? [.withInternetDateTime] : [.withInternetDateTime, .withFractionalSeconds]
            return formatter.string(from: date)
        }
        if type == "google.protobuf.Duration" {
            return nanos == 0 ? "\(seconds)s" : "\(Double(seconds) + Double(nanos) / 1e9)s"
        }
        return result
    }

    private func decodeValue(_ field: Google_Protobuf_FieldDescriptorProto, _ reader: inout WireReader, wireType: Int,
                             path: String, depth: Int) throws -> Any {
        let expected = Self.wireType(of: field.type)
        guard wireType == expected else {
            throw TranscodeError(message: "\(path): wire type \(wireType) where the schema's \(field.type) needs \(expected)")
        }
        switch field.type {
        case .string: return String(decoding: try reader.lengthDelimited(), as: UTF8.self)
        case .bytes: return Data(try reader.lengthDelimited()).base64EncodedString()
        case .message, .group:
            return try decodeMessage(try reader.lengthDelimited(), type: Self.strip(field.typeName), path: path, depth: depth + 1)
        case .bool: return try reader.varint() != 0
        case .int64: return String(Int64(bitPattern: try reader.varint()))
        case .uint64: return String(try reader.varint())
        case .sint64:
            let raw = try reader.varint()
            return String(Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1))
        case .int32: return NSNumber(value: Int32(truncatingIfNeeded: Int64(bitPattern: try reader.varint())))
        case .uint32: return NSNumber(value: UInt32(truncatingIfNeeded: try reader.varint()))
        case .sint32:
            let raw = try reader.varint()
            return NSNumber(value: Int32(truncatingIfNeeded: Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)))
        case .enum:
            let raw = Int32(truncatingIfNeeded: Int64(bitPattern: try reader.varint()))
            return enums[Self.strip(field.typeName)]?.value.first(where: { $0.number == raw })?.name ?? NSNumber(value: raw)
        case .fixed32: return NSNumber(value: try reader.fixed32())
        case .sfixed32: return NSNumber(value: Int32(bitPattern: try reader.fixed32()))
        case .float: return NSNumber(value: Float(bitPattern: try reader.fixed32()))
        case .fixed64: return String(try reader.fixed64())
        case .sfixed64: return String(Int64(bitPattern: try reader.fixed64()))
        case .double: return NSNumber(value: Double(bitPattern: try reader.fixed64()))
        @unknown default: throw TranscodeError(message: "\(path): unsupported field type")
        }
    }

    // MARK: Wire helpers

    private static func wireType(of type: Google_Protobuf_FieldDescriptorProto.TypeEnum) -> Int {
        switch type {
        case .string, .bytes, .message: return 2
        case .group: return 3
        case .fixed32, .sfixed32, .float: return 5
        case .fixed64, .sfixed64, .double: return 1
        default: return 0
        }
    }

    private static func isPackable(_ type: Google_Protobuf_FieldDescriptorProto.TypeEnum) -> Bool {
        wireType(of: type) != 2 && type != .group
    }

    static func strip(_ name: String) -> String { name.hasPrefix(".") ? String(name.dropFirst()) : name }

    static func padded(_ base64: String) -> String {
        let standard = base64.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        let remainder = standard.utf8.count % 4
        return remainder == 0 ? standard : standard + String(repeating: "=", count: 4 - remainder)
    }

    private func appendTag(_ number: Int, wireType: Int, into output: inout [UInt8]) {
        appendVarint(UInt64(number << 3 | wireType), into: &output)
    }

    private func appendVarint(_ value: UInt64, into output: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            output.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        output.append(UInt8(value))
    }

    private func appendLengthDelimited(_ number: Int, _ bytes: [UInt8], into output: inout [UInt8]) {
        appendTag(number, wireType: 2, into: &output)
        appendVarint(UInt64(bytes.count), into: &output)
        output += bytes
    }

    private struct WireReader {
        var bytes: ArraySlice<UInt8>
        let path: String

        var atEnd: Bool { bytes.isEmpty }

        mutating func nextTag() throws -> (Int, Int)? {
            guard !bytes.isEmpty else { return nil }
            let tag = try varint()
            let number = tag >> 3
            guard number > 0, number <= 536_870_911 else { throw error("invalid field number") }
            return (Int(number), Int(tag & 7))
        }

        mutating func varint() throws -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while let byte = bytes.first {
                bytes = bytes.dropFirst()
                guard shift < 64 else { throw error("varint too long") }
                result |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return result }
                shift += 7
            }
            throw error("truncated varint")
        }

        mutating func fixed32() throws -> UInt32 {
            guard bytes.count >= 4 else { throw error("truncated fixed32") }
            var value: UInt32 = 0
            for (index, byte) in bytes.prefix(4).enumerated() { value |= UInt32(byte) << UInt32(index * 8) }
            bytes = bytes.dropFirst(4)
            return value
        }

        mutating func fixed64() throws -> UInt64 {
            guard bytes.count >= 8 else { throw error("truncated fixed64") }
            var value: UInt64 = 0
            for (index, byte) in bytes.prefix(8).enumerated() { value |= UInt64(byte) << UInt64(index * 8) }
            bytes = bytes.dropFirst(8)
            return value
        }

        mutating func lengthDelimited() throws -> ArraySlice<UInt8> {
            let length = try varint()
            guard length <= UInt64(bytes.count) else { throw error("length \(length) past the end") }
            let payload = bytes.prefix(Int(length))
            bytes = bytes.dropFirst(Int(length))
            return payload
        }

        mutating func skip(wireType: Int) throws {
            switch wireType {
            case 0: _ = try varint()
            case 1: _ = try fixed64()
            case 2: _ = try lengthDelimited()
            case 5: _ = try fixed32()
            default: throw error("unsupported wire type \(wireType)")
            }
        }

        func error(_ text: String) -> TranscodeError {
            TranscodeError(message: "\(path): malformed message: \(text)")
        }
    }
}
