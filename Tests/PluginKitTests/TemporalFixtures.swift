// The real Temporal schema and messages under Tests/Fixtures (see Tests/Fixtures/README.md), loaded once
// per test run by paths relative to this file.

import Foundation
import PluginKit

enum TemporalFixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    /// The message type of each fixture, by file name.
    static let messageTypes: [String: String] = [
        "DescribeNamespaceResponse": "temporal.api.workflowservice.v1.DescribeNamespaceResponse",
        "GetNamespaceReplicationMessagesResponse":
            "temporal.server.api.adminservice.v1.GetNamespaceReplicationMessagesResponse",
        "GetWorkflowExecutionHistoryResponse": "temporal.api.workflowservice.v1.GetWorkflowExecutionHistoryResponse",
        "GetWorkflowExecutionRawHistoryV2Response":
            "temporal.server.api.adminservice.v1.GetWorkflowExecutionRawHistoryV2Response",
        "PollActivityTaskQueueResponse": "temporal.api.workflowservice.v1.PollActivityTaskQueueResponse",
        "PollWorkflowTaskQueueResponse": "temporal.api.workflowservice.v1.PollWorkflowTaskQueueResponse",
        "RespondWorkflowTaskCompletedRequest": "temporal.api.workflowservice.v1.RespondWorkflowTaskCompletedRequest",
        "StartWorkflowExecutionRequest": "temporal.api.workflowservice.v1.StartWorkflowExecutionRequest",
        "StreamWorkflowReplicationMessagesResponse":
            "temporal.server.api.adminservice.v1.StreamWorkflowReplicationMessagesResponse",
    ]

    static func read(_ relativePath: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(relativePath)))
    }

    static func schemaBytes() throws -> [UInt8] {
        try read("temporal-dev-schema.binpb")
    }

    /// Decoded once: about 400 KB of descriptors.
    static let schema: Result<ProtoSchema, Error> = Result {
        try ProtoSchema(fileDescriptorSet: try schemaBytes())
    }

    static func message(_ name: String) throws -> [UInt8] {
        try read("walker/messages/\(name).binpb")
    }

    static func expected(_ folder: String, _ name: String) throws -> [UInt8] {
        try read("walker/\(folder)/\(name).binpb")
    }

    struct Renames: Decodable {
        let namespace: [String: String]
        let searchAttribute: [String: String]
    }

    static func renames() throws -> Renames {
        try JSONDecoder().decode(Renames.self, from: Data(read("walker/renames.json")))
    }
}
