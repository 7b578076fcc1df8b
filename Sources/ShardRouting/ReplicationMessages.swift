// The messages of AdminService/StreamWorkflowReplicationMessages that routing reads and writes, on the protobuf wire
// (temporal.server.api.adminservice.v1 and .replication.v1; field numbers as in Temporal's protos, checked against
// the dev server's reflected schema in Tests/ShardRoutingTests):
//
//   StreamWorkflowReplicationMessagesResponse { WorkflowReplicationMessages messages = 1 (oneof) }
//   WorkflowReplicationMessages { repeated ReplicationTask replication_tasks = 1; int64 exclusive_high_watermark = 2;
//                                 Timestamp exclusive_high_watermark_time = 3; TaskPriority priority = 4 }
//   ReplicationTask { ReplicationTaskType task_type = 1; int64 source_task_id = 2; oneof attributes { ... };
//                     persistence.v1.ReplicationTaskInfo raw_task_info = 17 (namespace_id 1, workflow_id 2,
//                     task_id 15) }
//   StreamWorkflowReplicationMessagesRequest { SyncReplicationState sync_replication_state = 1 (oneof) }
//   SyncReplicationState { int64 inclusive_low_watermark = 1; Timestamp inclusive_low_watermark_time = 2;
//                          ReplicationState high_priority_state = 3; ReplicationState low_priority_state = 4 }
//   ReplicationState { int64 inclusive_low_watermark = 1; Timestamp inclusive_low_watermark_time = 2;
//                      ReplicationFlowControlCommand flow_control_command = 3 }
//
// A task is kept as the bytes it arrived in; only its two ids are rewritten on the way out, in place, so every field
// routing does not know (including those of later Temporal releases) passes untouched. Malformed bytes are an error
// naming the offset; they end the one stream they came on.

import PluginKit

/// Where a replication task must go.
public enum TaskRoute: Sendable, Equatable {
    /// The shard that owns this workflow (Temporal's shard function of the two ids).
    case workflow(namespaceID: String, workflowID: String)
    /// Every target shard: a shard-level task (`sync_shard_status_task_attributes`).
    case everyShard
    /// Nothing in the task says where it belongs.
    case unroutable
}

/// One replication task of a batch.
public struct ReplicationTask: Sendable, Equatable {
    /// The task as the source encoded it.
    public let bytes: [UInt8]
    /// `source_task_id`.
    public let sourceTaskID: Int64
    /// `task_type` (temporal.server.api.enums.v1.ReplicationTaskType), for metrics and logs.
    public let taskType: Int
    public let route: TaskRoute

    /// Reads a `ReplicationTask`.
    public init(bytes: [UInt8]) throws(ProtoWireError) {
        self.bytes = bytes
        var sourceTaskID: Int64 = 0
        var taskType = 0
        var raw: TaskRoute?
        var fromAttributes: TaskRoute?
        var scanner = ProtoWireScanner(bytes: bytes)
        while let field = try scanner.next() {
            switch (field.fieldNumber, field.wireType) {
            case (1, .varint):
                taskType = Int(truncatingIfNeeded: try Wire.varint(bytes, field))
            case (2, .varint):
                sourceTaskID = Int64(bitPattern: try Wire.varint(bytes, field))
            case (17, .lengthDelimited):
                raw = try Wire.workflowRoute(bytes, field, namespaceField: 1, workflowField: 2)
            case (let number, .lengthDelimited):
                if let route = try Self.attributeRoute(bytes, field, number: number) { fromAttributes = route }
            default:
                continue
            }
        }
        self.sourceTaskID = sourceTaskID
        self.taskType = taskType
        self.route = raw ?? fromAttributes ?? .unroutable
    }

    /// The route the task's own attributes give (a task without `raw_task_info`), for the members of the
    /// `attributes` oneof: nil for a field that is not one of them.
    private static func attributeRoute(
        _ bytes: [UInt8], _ field: ProtoWireField, number: Int
    ) throws(ProtoWireError) -> TaskRoute? {
        switch number {
        case 5:  // sync_shard_status_task_attributes: shard-level
            return .everyShard
        case 6, 14, 16, 18:  // sync_activity, sync_hsm, backfill_history, verify_versioned_transition
            return try Wire.workflowRoute(bytes, field, namespaceField: 1, workflowField: 2) ?? .unroutable
        case 8:  // history_task_attributes
            return try Wire.workflowRoute(bytes, field, namespaceField: 2, workflowField: 3) ?? .unroutable
        case 19:  // sync_versioned_transition_task_attributes
            return try Wire.workflowRoute(bytes, field, namespaceField: 6, workflowField: 7) ?? .unroutable
        case 10:  // sync_workflow_state_task_attributes.workflow_state (1).execution_info (7)
            var state = ProtoWireScanner(bytes: bytes, subMessageOf: field)
            while let stateField = try state.next() {
                guard stateField.fieldNumber == 1, stateField.wireType == .lengthDelimited else { continue }
                var mutable = ProtoWireScanner(bytes: bytes, subMessageOf: stateField)
                while let info = try mutable.next() {
                    guard info.fieldNumber == 7, info.wireType == .lengthDelimited else { continue }
                    return try Wire.workflowRoute(bytes, info, namespaceField: 1, workflowField: 2) ?? .unroutable
                }
            }
            return .unroutable
        case 3, 11:  // namespace_task_attributes, task_queue_user_data_attributes: no workflow
            return .unroutable
        default:
            return nil
        }
    }

    /// The task with `source_task_id` and `raw_task_info.task_id` set to `id` (each replaced where it is, added when
    /// absent; `raw_task_info.task_id` only when the task has `raw_task_info`).
    public func renumbered(to id: Int64) throws(ProtoWireError) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count + 12)
        var wroteID = false
        var scanner = ProtoWireScanner(bytes: bytes)
        while let field = try scanner.next() {
            switch (field.fieldNumber, field.wireType) {
            case (2, _):
                if !wroteID { Wire.appendVarintField(2, UInt64(bitPattern: id), to: &output) }
                wroteID = true
            case (17, .lengthDelimited):
                var info: [UInt8] = []
                info.reserveCapacity(field.payloadRange.count + 11)
                var wroteInfoID = false
                var inner = ProtoWireScanner(bytes: bytes, subMessageOf: field)
                while let innerField = try inner.next() {
                    if innerField.fieldNumber == 15 {
                        if !wroteInfoID { Wire.appendVarintField(15, UInt64(bitPattern: id), to: &info) }
                        wroteInfoID = true
                    } else {
                        info.append(contentsOf: bytes[innerField.fieldRange])
                    }
                }
                if !wroteInfoID { Wire.appendVarintField(15, UInt64(bitPattern: id), to: &info) }
                Wire.appendBytesField(17, info, to: &output)
            default:
                output.append(contentsOf: bytes[field.fieldRange])
            }
        }
        if !wroteID { Wire.appendVarintField(2, UInt64(bitPattern: id), to: &output) }
        return output
    }
}

/// `WorkflowReplicationMessages`: one batch a source shard sends.
public struct ReplicationBatch: Sendable, Equatable {
    public var tasks: [ReplicationTask]
    public var exclusiveHighWatermark: Int64
    /// `exclusive_high_watermark_time`, as its encoded Timestamp (nil when absent).
    public var highWatermarkTime: [UInt8]?
    /// `priority` (temporal.server.api.enums.v1.TaskPriority: 0 unspecified, 1 high, 10 low).
    public var priority: Int

    public init(tasks: [ReplicationTask], exclusiveHighWatermark: Int64, highWatermarkTime: [UInt8]?, priority: Int) {
        self.tasks = tasks
        self.exclusiveHighWatermark = exclusiveHighWatermark
        self.highWatermarkTime = highWatermarkTime
        self.priority = priority
    }

    /// Reads a `StreamWorkflowReplicationMessagesResponse`; nil when it carries no `messages` (a later oneof member:
    /// not a batch).
    public init?(response bytes: [UInt8]) throws(ProtoWireError) {
        var scanner = ProtoWireScanner(bytes: bytes)
        var messages: ProtoWireField?
        while let field = try scanner.next() {
            if field.fieldNumber == 1, field.wireType == .lengthDelimited { messages = field }
        }
        guard let messages else { return nil }
        tasks = []
        exclusiveHighWatermark = 0
        highWatermarkTime = nil
        priority = 0
        var batch = ProtoWireScanner(bytes: bytes, subMessageOf: messages)
        while let field = try batch.next() {
            switch (field.fieldNumber, field.wireType) {
            case (1, .lengthDelimited):
                tasks.append(try ReplicationTask(bytes: Array(bytes[field.payloadRange])))
            case (2, .varint):
                exclusiveHighWatermark = Int64(bitPattern: try Wire.varint(bytes, field))
            case (3, .lengthDelimited):
                highWatermarkTime = Array(bytes[field.payloadRange])
            case (4, .varint):
                priority = Int(truncatingIfNeeded: try Wire.varint(bytes, field))
            default:
                continue
            }
        }
    }

    /// A `StreamWorkflowReplicationMessagesResponse` carrying `tasks` (already encoded), the watermark, time and
    /// priority given.
    public static func response(
        tasks: [[UInt8]], exclusiveHighWatermark: Int64, highWatermarkTime: [UInt8]?, priority: Int
    ) -> [UInt8] {
        var batch: [UInt8] = []
        batch.reserveCapacity(tasks.reduce(16) { $0 + $1.count + 4 })
        for task in tasks { Wire.appendBytesField(1, task, to: &batch) }
        Wire.appendVarintField(2, UInt64(bitPattern: exclusiveHighWatermark), to: &batch)
        if let highWatermarkTime { Wire.appendBytesField(3, highWatermarkTime, to: &batch) }
        if priority != 0 { Wire.appendVarintField(4, UInt64(bitPattern: Int64(priority)), to: &batch) }
        var response: [UInt8] = []
        response.reserveCapacity(batch.count + 6)
        Wire.appendBytesField(1, batch, to: &response)
        return response
    }
}

/// `SyncReplicationState`: the ACK a target shard sends.
public struct SyncReplicationState: Sendable, Equatable {
    /// `ReplicationState`: one priority's ACK.
    public struct PriorityState: Sendable, Equatable {
        public var inclusiveLowWatermark: Int64
        public var time: [UInt8]?
        /// `flow_control_command` (ReplicationFlowControlCommand: 0 unspecified, 1 resume, 2 pause).
        public var flowControlCommand: Int

        public init(inclusiveLowWatermark: Int64, time: [UInt8]? = nil, flowControlCommand: Int = 0) {
            self.inclusiveLowWatermark = inclusiveLowWatermark
            self.time = time
            self.flowControlCommand = flowControlCommand
        }
    }

    public var inclusiveLowWatermark: Int64
    public var time: [UInt8]?
    public var highPriority: PriorityState?
    public var lowPriority: PriorityState?

    public init(
        inclusiveLowWatermark: Int64, time: [UInt8]? = nil, highPriority: PriorityState? = nil,
        lowPriority: PriorityState? = nil
    ) {
        self.inclusiveLowWatermark = inclusiveLowWatermark
        self.time = time
        self.highPriority = highPriority
        self.lowPriority = lowPriority
    }

    /// Reads a `StreamWorkflowReplicationMessagesRequest`; nil when it carries no `sync_replication_state`.
    public init?(request bytes: [UInt8]) throws(ProtoWireError) {
        var scanner = ProtoWireScanner(bytes: bytes)
        var state: ProtoWireField?
        while let field = try scanner.next() {
            if field.fieldNumber == 1, field.wireType == .lengthDelimited { state = field }
        }
        guard let state else { return nil }
        inclusiveLowWatermark = 0
        time = nil
        highPriority = nil
        lowPriority = nil
        var fields = ProtoWireScanner(bytes: bytes, subMessageOf: state)
        while let field = try fields.next() {
            switch (field.fieldNumber, field.wireType) {
            case (1, .varint):
                inclusiveLowWatermark = Int64(bitPattern: try Wire.varint(bytes, field))
            case (2, .lengthDelimited):
                time = Array(bytes[field.payloadRange])
            case (3, .lengthDelimited):
                highPriority = try Self.priorityState(bytes, field)
            case (4, .lengthDelimited):
                lowPriority = try Self.priorityState(bytes, field)
            default:
                continue
            }
        }
    }

    private static func priorityState(_ bytes: [UInt8], _ field: ProtoWireField) throws(ProtoWireError) -> PriorityState {
        var state = PriorityState(inclusiveLowWatermark: 0)
        var scanner = ProtoWireScanner(bytes: bytes, subMessageOf: field)
        while let inner = try scanner.next() {
            switch (inner.fieldNumber, inner.wireType) {
            case (1, .varint): state.inclusiveLowWatermark = Int64(bitPattern: try Wire.varint(bytes, inner))
            case (2, .lengthDelimited): state.time = Array(bytes[inner.payloadRange])
            case (3, .varint): state.flowControlCommand = Int(truncatingIfNeeded: try Wire.varint(bytes, inner))
            default: continue
            }
        }
        return state
    }

    /// This state as a `StreamWorkflowReplicationMessagesRequest`.
    public var request: [UInt8] {
        var state: [UInt8] = []
        Wire.appendVarintField(1, UInt64(bitPattern: inclusiveLowWatermark), to: &state)
        if let time { Wire.appendBytesField(2, time, to: &state) }
        for (number, priority) in [(3, highPriority), (4, lowPriority)] {
            guard let priority else { continue }
            var encoded: [UInt8] = []
            Wire.appendVarintField(1, UInt64(bitPattern: priority.inclusiveLowWatermark), to: &encoded)
            if let time = priority.time { Wire.appendBytesField(2, time, to: &encoded) }
            if priority.flowControlCommand != 0 {
                Wire.appendVarintField(3, UInt64(bitPattern: Int64(priority.flowControlCommand)), to: &encoded)
            }
            Wire.appendBytesField(number, encoded, to: &state)
        }
        var request: [UInt8] = []
        Wire.appendBytesField(1, state, to: &request)
        return request
    }
}

/// Reading and writing single fields.
enum Wire {
    static func varint(_ bytes: [UInt8], _ field: ProtoWireField) throws(ProtoWireError) -> UInt64 {
        try ProtoVarint.decode(bytes, at: field.payloadRange.lowerBound, end: field.payloadRange.upperBound).value
    }

    /// The workflow route of a message whose string fields `namespaceField` and `workflowField` name it; nil when
    /// either is missing or empty.
    static func workflowRoute(
        _ bytes: [UInt8], _ field: ProtoWireField, namespaceField: Int, workflowField: Int
    ) throws(ProtoWireError) -> TaskRoute? {
        var namespaceID: String?
        var workflowID: String?
        var scanner = ProtoWireScanner(bytes: bytes, subMessageOf: field)
        while let inner = try scanner.next() {
            guard inner.wireType == .lengthDelimited else { continue }
            if inner.fieldNumber == namespaceField {
                namespaceID = String(decoding: bytes[inner.payloadRange], as: UTF8.self)
            } else if inner.fieldNumber == workflowField {
                workflowID = String(decoding: bytes[inner.payloadRange], as: UTF8.self)
            }
        }
        guard let namespaceID, let workflowID, !namespaceID.isEmpty, !workflowID.isEmpty else { return nil }
        return .workflow(namespaceID: namespaceID, workflowID: workflowID)
    }

    static func appendVarintField(_ number: Int, _ value: UInt64, to output: inout [UInt8]) {
        ProtoVarint.append(UInt64(number) << 3, to: &output)
        ProtoVarint.append(value, to: &output)
    }

    static func appendBytesField(_ number: Int, _ value: [UInt8], to output: inout [UInt8]) {
        ProtoVarint.append(UInt64(number) << 3 | 2, to: &output)
        ProtoVarint.append(UInt64(value.count), to: &output)
        output.append(contentsOf: value)
    }
}
