// The descriptor decoder and schema index: the real Temporal dev-server schema, hand-written descriptors for
// name resolution and maps, and descriptor bytes that are malformed or inconsistent.

import TestSupport
import PluginKit
import XCTest

final class ProtoSchemaTests: XCTestCase {
    // MARK: The real Temporal schema

    func testTemporalSchemaIndexesFilesMessagesAndFields() throws {
        let schema = try TemporalFixtures.schema.get()
        XCTAssertEqual(schema.files.count, 92)
        let blobFile = try XCTUnwrap(schema.files.first { $0.name == "temporal/api/common/v1/message.proto" })
        XCTAssertEqual(blobFile.package, "temporal.api.common.v1")
        XCTAssertTrue(blobFile.dependencies.contains("google/protobuf/duration.proto"))

        let blob = try XCTUnwrap(schema.message(named: "temporal.api.common.v1.DataBlob"))
        XCTAssertEqual(blob.name, "DataBlob")
        XCTAssertEqual(blob.fileName, "temporal/api/common/v1/message.proto")
        XCTAssertEqual(blob.field(named: "data")?.number, 2)
        XCTAssertEqual(blob.field(named: "data")?.type, .bytes)
        XCTAssertEqual(blob.field(number: 1)?.name, "encoding_type")
        XCTAssertEqual(blob.field(number: 1)?.type, .enumeration)
        XCTAssertEqual(blob.field(number: 1)?.typeName, "temporal.api.enums.v1.EncodingType")
        XCTAssertNotNil(schema.message(named: ".temporal.api.common.v1.DataBlob"), "a leading dot is accepted")

        let encoding = try XCTUnwrap(schema.enumerations["temporal.api.enums.v1.EncodingType"])
        XCTAssertEqual(encoding.number(of: "ENCODING_TYPE_PROTO3"), 1)
        XCTAssertEqual(encoding.number(of: "ENCODING_TYPE_JSON"), 2)
    }

    func testTemporalSchemaResolvesMessageReferencesAndRepeatedFields() throws {
        let schema = try TemporalFixtures.schema.get()
        let tasks = try XCTUnwrap(
            schema.message(named: "temporal.server.api.replication.v1.HistoryTaskAttributes")
        )
        XCTAssertEqual(tasks.field(named: "events")?.typeName, "temporal.api.common.v1.DataBlob")
        XCTAssertEqual(tasks.field(named: "events")?.isRepeated, false)
        XCTAssertEqual(tasks.field(named: "events_batches")?.isRepeated, true)
        let history = try XCTUnwrap(schema.message(named: "temporal.api.history.v1.History"))
        XCTAssertEqual(history.field(named: "events")?.typeName, "temporal.api.history.v1.HistoryEvent")
    }

    func testMapFieldsAndTheirEntryTypesAreRecognised() throws {
        let schema = try TemporalFixtures.schema.get()
        let attributes = try XCTUnwrap(schema.message(named: "temporal.api.common.v1.SearchAttributes"))
        let indexedFields = try XCTUnwrap(attributes.field(named: "indexed_fields"))
        XCTAssertTrue(indexedFields.isMap)
        XCTAssertEqual(indexedFields.typeName, "temporal.api.common.v1.SearchAttributes.IndexedFieldsEntry")
        let entry = try XCTUnwrap(schema.message(named: "temporal.api.common.v1.SearchAttributes.IndexedFieldsEntry"))
        XCTAssertTrue(entry.isMapEntry)
        XCTAssertEqual(entry.field(number: 1)?.type, .string)
        XCTAssertEqual(entry.field(number: 2)?.typeName, "temporal.api.common.v1.Payload")
        let history = try XCTUnwrap(schema.message(named: "temporal.api.history.v1.History"))
        XCTAssertEqual(history.field(named: "events")?.isMap, false, "a repeated message is not a map")
    }

    func testOneofMembersKnowTheirOneof() throws {
        let schema = try TemporalFixtures.schema.get()
        let event = try XCTUnwrap(schema.message(named: "temporal.api.history.v1.HistoryEvent"))
        let started = try XCTUnwrap(event.field(named: "workflow_execution_started_event_attributes"))
        let oneofIndex = try XCTUnwrap(started.oneofIndex)
        XCTAssertEqual(event.oneofNames[oneofIndex], "attributes")
        XCTAssertNil(event.field(named: "event_id")?.oneofIndex)
    }

    func testMethodPathsLeadToRequestAndResponseTypes() throws {
        let schema = try TemporalFixtures.schema.get()
        let start = try XCTUnwrap(
            schema.method(path: "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution")
        )
        XCTAssertEqual(start.inputType, "temporal.api.workflowservice.v1.StartWorkflowExecutionRequest")
        XCTAssertEqual(start.outputType, "temporal.api.workflowservice.v1.StartWorkflowExecutionResponse")
        XCTAssertFalse(start.clientStreaming || start.serverStreaming)
        let stream = try XCTUnwrap(
            schema.method(path: "/temporal.server.api.adminservice.v1.AdminService/StreamWorkflowReplicationMessages")
        )
        XCTAssertEqual(
            stream.outputType,
            "temporal.server.api.adminservice.v1.StreamWorkflowReplicationMessagesResponse"
        )
        XCTAssertTrue(stream.clientStreaming && stream.serverStreaming)
        XCTAssertEqual(stream.serviceName, "temporal.server.api.adminservice.v1.AdminService")
        XCTAssertNil(schema.method(path: "/temporal.api.workflowservice.v1.WorkflowService/NoSuchMethod"))
    }

    func testBorrowedBufferDecodesLikeAnArray() throws {
        let bytes = try TemporalFixtures.schemaBytes()
        let schema = try bytes.withUnsafeBytes { try ProtoSchema(fileDescriptorSet: $0) }
        XCTAssertEqual(schema.messages.count, try TemporalFixtures.schema.get().messages.count)
    }

    // MARK: Hand-written descriptors

    func testRelativeTypeNamesResolveFromTheInnermostScopeOutwards() throws {
        let set = Descriptor.set(
            Descriptor.file(
                "a.proto",
                package: "pkg.sub",
                messages: [
                    Descriptor.message(
                        "Outer",
                        fields: [
                            Descriptor.field("inner", 1, .message, typeName: "Inner"),
                            Descriptor.field("sibling", 2, .message, typeName: "Sibling"),
                            Descriptor.field("top", 3, .message, typeName: "Top"),
                            Descriptor.field("absolute", 4, .message, typeName: ".pkg.sub.Sibling"),
                            Descriptor.field("untyped", 5, nil, typeName: "Inner"),
                            Descriptor.field("color", 6, nil, typeName: "Color"),
                        ],
                        nested: [Descriptor.message("Inner")],
                        enums: [Descriptor.enumeration("Color", values: [("RED", 0), ("MINUS", -1)])]
                    ),
                    Descriptor.message("Sibling"),
                ]
            ),
            Descriptor.file("b.proto", package: "", messages: [Descriptor.message("Top")])
        )
        let schema = try ProtoSchema(fileDescriptorSet: set)
        let outer = try XCTUnwrap(schema.message(named: "pkg.sub.Outer"))
        XCTAssertEqual(outer.field(named: "inner")?.typeName, "pkg.sub.Outer.Inner")
        XCTAssertEqual(outer.field(named: "sibling")?.typeName, "pkg.sub.Sibling")
        XCTAssertEqual(outer.field(named: "top")?.typeName, "Top")
        XCTAssertEqual(outer.field(named: "absolute")?.typeName, "pkg.sub.Sibling")
        XCTAssertEqual(outer.field(named: "untyped")?.type, .message, "a missing type is inferred from the name")
        XCTAssertEqual(outer.field(named: "color")?.type, .enumeration)
        XCTAssertEqual(schema.enumerations["pkg.sub.Outer.Color"]?.number(of: "MINUS"), -1)
    }

    func testServicesResolveRelativeMethodTypes() throws {
        let set = Descriptor.set(
            Descriptor.file(
                "s.proto",
                package: "pkg",
                messages: [Descriptor.message("Ask"), Descriptor.message("Answer")],
                services: [Descriptor.service("Oracle", methods: [("Consult", "Ask", ".pkg.Answer")])]
            )
        )
        let method = try XCTUnwrap(try ProtoSchema(fileDescriptorSet: set).method(path: "/pkg.Oracle/Consult"))
        XCTAssertEqual(method.inputType, "pkg.Ask")
        XCTAssertEqual(method.outputType, "pkg.Answer")
    }

    func testUnresolvableTypeNameNamesTheField() {
        let set = Descriptor.set(
            Descriptor.file(
                "a.proto",
                package: "pkg",
                messages: [
                    Descriptor.message("M", fields: [Descriptor.field("x", 1, .message, typeName: ".other.Missing")])
                ]
            )
        )
        assertSchemaError(set, .unresolvedTypeName(".other.Missing"), locationContains: "pkg.M, field \"x\"")
    }

    func testDuplicateDefinitionIsAnError() {
        let set = Descriptor.set(
            Descriptor.file("a.proto", package: "pkg", messages: [Descriptor.message("M")]),
            Descriptor.file("b.proto", package: "pkg", messages: [Descriptor.message("M")])
        )
        assertSchemaError(set, .duplicateDefinition("pkg.M"), locationContains: "b.proto")
    }

    /// Full names are names joined by dots, so a dot inside a name, or an empty package segment, made a message whose
    /// full name a walk rule could not name: the proto-schema fuzz target (in CI) built a message ".x.DataBlob" from
    /// the package ".x", and a rule for it, normalised to "x.DataBlob", found no such message.
    func testNamesThatAreNotProtobufIdentifiersAreErrors() {
        func file(package: String = "p", message: String = "M", field: String = "f", service: String = "S",
                  method: String = "Call", enumeration: String = "E") -> [UInt8] {
            Descriptor.set(
                Descriptor.file(
                    "a.proto", package: package,
                    messages: [Descriptor.message(message, fields: [Descriptor.field(field, 1, .string)])],
                    enums: [Descriptor.enumeration(enumeration, values: [("ZERO", 0)])],
                    services: [Descriptor.service(service, methods: [(method, message, message)])]
                )
            )
        }
        XCTAssertNoThrow(try ProtoSchema(fileDescriptorSet: file(package: "a_1.B2.c", message: "_M9", field: "f_2")))
        XCTAssertNoThrow(try ProtoSchema(fileDescriptorSet: file(package: "")))
        for package in [".x", "x.", "a..b", "1a", "a.1b", "a-b", "a b", "ä"] {
            assertSchemaError(file(package: package), .invalidName(package), locationContains: "its package")
        }
        for name in ["x.DataBlob", "9M", "M-1", "M\u{0}"] {
            assertSchemaError(file(message: name), .invalidName(name), locationContains: "a message in p")
        }
        assertSchemaError(file(field: "a.b"), .invalidName("a.b"), locationContains: "p.M, field")
        assertSchemaError(file(service: "S.T"), .invalidName("S.T"), locationContains: "a service")
        assertSchemaError(file(method: "/Call"), .invalidName("/Call"), locationContains: "method")
        assertSchemaError(file(enumeration: "E.F"), .invalidName("E.F"), locationContains: "an enum")
        XCTAssertEqual(
            ProtoSchemaError(.invalidName("a.b")).description,
            "\"a.b\" is not a protobuf name (letters, digits and underscores, not starting with a digit)"
        )
    }

    func testMessageTypeNamingAnEnumIsAnError() {
        let set = Descriptor.set(
            Descriptor.file(
                "a.proto",
                package: "pkg",
                messages: [Descriptor.message("M", fields: [Descriptor.field("x", 1, .message, typeName: "E")])],
                enums: [Descriptor.enumeration("E", values: [("ZERO", 0)])]
            )
        )
        assertSchemaError(set, .typeKindMismatch("pkg.E"))
    }

    func testFieldWithoutNumberIsIncomplete() {
        let field = stringField(1, "x") + varintField(5, 9)
        let set = Descriptor.set(
            Descriptor.file("a.proto", package: "p", messages: [Descriptor.message("M", fields: [field])])
        )
        assertSchemaError(set, .incompleteDefinition, locationContains: "p.M, field \"x\"")
    }

    /// A oneof index the message does not declare: `message.oneofNames[field.oneofIndex!]`, as the test of the real
    /// schema above reads it, would trap (found by the proto-schema fuzz target).
    func testOneofIndexWithoutItsOneofIsIncomplete() {
        let beyond = Descriptor.field("x", 1, .string, oneofIndex: 1)
        let negative = Descriptor.field("y", 2, .string) + varintField(9, UInt64(bitPattern: -1))
        let inRange = Descriptor.field("z", 3, .string, oneofIndex: 0)
        func set(_ field: [UInt8]) -> [UInt8] {
            let message = Descriptor.message("M", fields: [field], oneofs: ["o"])
            return Descriptor.set(Descriptor.file("a.proto", package: "p", messages: [message]))
        }
        assertSchemaError(set(beyond), .incompleteDefinition, locationContains: "p.M, field \"x\"")
        assertSchemaError(set(negative), .incompleteDefinition, locationContains: "p.M, field \"y\"")
        XCTAssertNoThrow(try ProtoSchema(fileDescriptorSet: set(inRange)))
    }

    func testDescriptorFieldInTheWrongWireTypeIsAnError() {
        let file = varintField(1, 7)  // FileDescriptorProto.name as a varint
        assertSchemaError(
            Descriptor.set(file),
            .descriptorWireTypeMismatch(fieldNumber: 1, expected: .lengthDelimited, found: .varint),
            locationContains: "file #1"
        )
    }

    func testInvalidUTF8NameIsAnError() {
        let file = lengthDelimited(1, [0x61, 0xFF, 0x62])
        assertSchemaError(Descriptor.set(file), .invalidUTF8)
    }

    func testTruncatedDescriptorSetReportsTheOffset() {
        let set = Descriptor.set(Descriptor.file("a.proto", package: "pkg", messages: [Descriptor.message("M")]))
        let truncated = Array(set.dropLast(3))
        XCTAssertThrowsError(try ProtoSchema(fileDescriptorSet: truncated)) { error in
            guard case .malformedDescriptor(let wireError)? = (error as? ProtoSchemaError)?.kind else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(
                wireError,
                ProtoWireError(
                    offset: 1,
                    kind: .lengthBeyondEnd(length: UInt64(set.count - 2), available: set.count - 5)
                )
            )
        }
    }

    func testEmptySetIsAnEmptySchema() throws {
        let schema = try ProtoSchema(fileDescriptorSet: [])
        XCTAssertTrue(schema.messages.isEmpty && schema.methods.isEmpty && schema.files.isEmpty)
    }

    func testRandomBytesAndMutatedSchemasNeverTrap() throws {
        let original = try TemporalFixtures.schemaBytes()
        var generator = SeededGenerator(seed: 0x5C4E_3A)
        var outcomes = (decoded: 0, rejected: 0)
        for round in 0..<300 {
            var candidate: [UInt8]
            if round % 3 == 0 {
                candidate = (0..<Int.random(in: 0...512, using: &generator)).map { _ in
                    UInt8.random(in: 0...255, using: &generator)
                }
            } else {
                // A prefix of the real schema (whole files only sometimes), with a few bytes changed.
                candidate = Array(original.prefix(Int.random(in: 0...20_000, using: &generator)))
                for _ in 0..<Int.random(in: 0...4, using: &generator) where !candidate.isEmpty {
                    candidate[Int.random(in: 0..<candidate.count, using: &generator)] = UInt8.random(
                        in: 0...255,
                        using: &generator
                    )
                }
            }
            do {
                _ = try ProtoSchema(fileDescriptorSet: candidate)
                outcomes.decoded += 1
            } catch {
                outcomes.rejected += 1  // a typed ProtoSchemaError: the only way out besides success
            }
        }
        XCTAssertGreaterThan(outcomes.rejected, 0)
    }

    private func assertSchemaError(
        _ bytes: [UInt8],
        _ kind: ProtoSchemaError.Kind,
        locationContains location: String = "",
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertThrowsError(try ProtoSchema(fileDescriptorSet: bytes), file: file, line: line) { error in
            let schemaError = error as? ProtoSchemaError
            XCTAssertEqual(schemaError?.kind, kind, "\(error)", file: file, line: line)
            XCTAssertTrue(
                location.isEmpty || schemaError?.location.contains(location) == true,
                "location \"\(schemaError?.location ?? "")\" lacks \"\(location)\"",
                file: file,
                line: line
            )
        }
    }
}
