// What the ShardRouting tests share: protobuf fields written by hand (independently of the codec's own writer), hex,
// and the fixtures folder.

import Foundation
import PluginKit

/// Appends a varint field.
func field(_ number: Int, varint value: UInt64, to output: inout [UInt8]) {
    ProtoVarint.append(UInt64(number) << 3, to: &output)
    ProtoVarint.append(value, to: &output)
}

/// Appends a length-delimited field.
func field(_ number: Int, bytes value: [UInt8], to output: inout [UInt8]) {
    ProtoVarint.append(UInt64(number) << 3 | 2, to: &output)
    ProtoVarint.append(UInt64(value.count), to: &output)
    output.append(contentsOf: value)
}

/// The bytes of a hex string.
func hexBytes(_ hex: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        bytes.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

/// `Tests/Fixtures/<path>`.
func fixtureURL(_ path: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent(path)
}
