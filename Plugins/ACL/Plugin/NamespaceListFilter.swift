// Drops the entries of a `ListNamespacesResponse` whose namespace the policy does not allow, at the wire level:
// the kept fields (other entries, the page token, fields newer than the schema) are copied byte for byte, in
// their order. The field numbers come from the schema the host delivers, not from generated code.
//
// An entry's name is `namespaces[i].namespace_info.name`, read with protobuf's merge rules (the last occurrence
// wins, also across repeated `namespace_info` fields). An entry without one has the empty name and is dropped, as
// an empty name is never on an allow-list (the Go proxy crashes on such an entry).

import PluginKit

/// Where the namespace names sit in a `ListNamespacesResponse`, and the filter over its bytes.
public struct NamespaceListFilter: Sendable {
    static let responseType = "temporal.api.workflowservice.v1.ListNamespacesResponse"
    static let entryType = "temporal.api.workflowservice.v1.DescribeNamespaceResponse"
    static let infoType = "temporal.api.namespace.v1.NamespaceInfo"

    let namespacesField: Int
    let namespaceInfoField: Int
    let nameField: Int

    /// Looks the three fields up by name.
    ///
    /// - Throws: ``PluginFailure`` naming the message or field the schema lacks.
    public init(schema: ProtoSchema) throws {
        func number(_ field: String, of message: String) throws -> Int {
            guard let number = schema.message(named: message)?.field(named: field)?.number else {
                throw PluginFailure("the Temporal schema has no field \(field) in \(message); the acl plugin needs it")
            }
            return number
        }
        namespacesField = try number("namespaces", of: Self.responseType)
        namespaceInfoField = try number("namespace_info", of: Self.entryType)
        nameField = try number("name", of: Self.infoType)
    }

    /// The response without the entries whose name `allows` refuses, or `nil` when every entry stays.
    ///
    /// - Throws: ``ProtoWireError`` when the response or one of its entries is malformed.
    public func filter(_ payload: UnsafeRawBufferPointer, allows: (String) -> Bool) throws(ProtoWireError) -> [UInt8]? {
        let bytes = [UInt8](payload)
        var scanner = ProtoWireScanner(bytes: bytes)
        var dropped: [Range<Int>] = []
        while let field = try scanner.next() {
            guard field.fieldNumber == namespacesField, field.wireType == .lengthDelimited else {
                continue
            }
            if !allows(try name(ofEntry: field, in: bytes)) {
                dropped.append(field.fieldRange)
            }
        }
        guard !dropped.isEmpty else {
            return nil
        }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count - dropped.reduce(0) { $0 + $1.count })
        var kept = 0
        for range in dropped {
            output.append(contentsOf: bytes[kept..<range.lowerBound])
            kept = range.upperBound
        }
        output.append(contentsOf: bytes[kept...])
        return output
    }

    private func name(ofEntry entry: ProtoWireField, in bytes: [UInt8]) throws(ProtoWireError) -> String {
        var name = ""
        var entryScanner = ProtoWireScanner(bytes: bytes, subMessageOf: entry)
        while let info = try entryScanner.next() {
            guard info.fieldNumber == namespaceInfoField, info.wireType == .lengthDelimited else {
                continue
            }
            var infoScanner = ProtoWireScanner(bytes: bytes, subMessageOf: info)
            while let field = try infoScanner.next() {
                if field.fieldNumber == nameField, field.wireType == .lengthDelimited {
                    name = String(decoding: bytes[field.payloadRange], as: UTF8.self)
                }
            }
        }
        return name
    }
}
