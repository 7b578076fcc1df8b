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
    /// The buffer the task is in (the whole batch's, shared, never copied) and where in it the task is.
    public let storage: [UInt8]
    public let range: Range<Int>
    /// The task as the source encoded it (a copy).
    public var bytes: [UInt8] { Array(storage[range]) }
    /// `source_task_id`.
    public let sourceTaskID: Int64
    /// `task_type` (temporal.server.api.enums.v1.ReplicationTaskType), for metrics and logs.
    public let taskType: Int
    public let route: TaskRoute

    public static func == (lhs: ReplicationTask, rhs: ReplicationTask) -> Bool {
        lhs.storage[lhs.range].elementsEqual(rhs.storage[rhs.range])
    }

    /// Reads a `ReplicationTask`.
    public init(bytes: [UInt8]) throws(ProtoWireError) {
        try self.init(storage: bytes, range: 0..<bytes.count)
    }

    /// Reads the `ReplicationTask` in `range` of `storage`, without copying it.
    public init(storage: [UInt8], range: Range<Int>) throws(ProtoWireError) {
        self.storage = storage
        self.range = range
        let bytes = storage
        var sourceTaskID: Int64 = 0
        var taskType = 0
        var raw: TaskRoute?
        var fromAttributes: TaskRoute?
        var scanner = ProtoWireScanner(bytes: bytes, range: range)
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
        let size = try renumberedSize(id)
        var output = [UInt8](repeating: 0, count: size)
        var failure: ProtoWireError?
        output.withUnsafeMutableBytes { buffer in
            do throws(ProtoWireError) {
                var writer = WireWriter(buffer)
                try writeRenumbered(id, to: &writer)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return output
    }

    /// The size of the task renumbered to `id`.
    func renumberedSize(_ id: Int64) throws(ProtoWireError) -> Int {
        var size = 0
        var wroteID = false
        var scanner = ProtoWireScanner(bytes: storage, range: range)
        while let field = try scanner.next() {
            switch (field.fieldNumber, field.wireType) {
            case (2, _):
                if !wroteID { size += WireWriter.varintFieldSize(2, UInt64(bitPattern: id)) }
                wroteID = true
            case (17, .lengthDelimited):
                let inner = try infoSize(field, id)
                size += WireWriter.bytesFieldSize(17, inner)
            default:
                size += field.fieldRange.count
            }
        }
        if !wroteID { size += WireWriter.varintFieldSize(2, UInt64(bitPattern: id)) }
        return size
    }

    /// The size of `raw_task_info` (`field`) with `task_id` = `id`.
    private func infoSize(_ field: ProtoWireField, _ id: Int64) throws(ProtoWireError) -> Int {
        var size = 0
        var wroteID = false
        var inner = ProtoWireScanner(bytes: storage, subMessageOf: field)
        while let innerField = try inner.next() {
            if innerField.fieldNumber == 15 {
                if !wroteID { size += WireWriter.varintFieldSize(15, UInt64(bitPattern: id)) }
                wroteID = true
            } else {
                size += innerField.fieldRange.count
            }
        }
        if !wroteID { size += WireWriter.varintFieldSize(15, UInt64(bitPattern: id)) }
        return size
    }

    /// Writes the task renumbered to `id` (exactly `renumberedSize(id)` bytes).
    func writeRenumbered(_ id: Int64, to writer: inout WireWriter) throws(ProtoWireError) {
        var wroteID = false
        var scanner = ProtoWireScanner(bytes: storage, range: range)
        while let field = try scanner.next() {
            switch (field.fieldNumber, field.wireType) {
            case (2, _):
                if !wroteID { writer.varintField(2, UInt64(bitPattern: id)) }
                wroteID = true
            case (17, .lengthDelimited):
                writer.key(17, wireType: 2)
                writer.varint(UInt64(try infoSize(field, id)))
                var wroteInfoID = false
                var inner = ProtoWireScanner(bytes: storage, subMessageOf: field)
                while let innerField = try inner.next() {
                    if innerField.fieldNumber == 15 {
                        if !wroteInfoID { writer.varintField(15, UInt64(bitPattern: id)) }
                        wroteInfoID = true
                    } else {
                        writer.copy(storage, innerField.fieldRange)
                    }
                }
                if !wroteInfoID { writer.varintField(15, UInt64(bitPattern: id)) }
            default:
                writer.copy(storage, field.fieldRange)
            }
        }
        if !wroteID { writer.varintField(2, UInt64(bitPattern: id)) }
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
                tasks.append(try ReplicationTask(storage: bytes, range: field.payloadRange))
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
        let outgoing = OutgoingBatch(
            encodedTasks: tasks, exclusiveHighWatermark: exclusiveHighWatermark, highWatermarkTime: highWatermarkTime,
            priority: priority)
        return try! outgoing.bytes()
    }
}

/// A batch on its way to a target shard: its tasks renumbered as they are written, in one pass into the caller's
/// buffer (`size`, then `write(into:)`), so that a task's bytes are copied once, from the batch they came in to the
/// buffer that goes out.
public struct OutgoingBatch: Sendable {
    private enum Tasks: Sendable {
        /// Tasks and the id of the first (the rest follow one by one).
        case renumbered([ReplicationTask], firstID: Int64)
        case encoded([[UInt8]])
    }

    private let tasks: Tasks
    public let exclusiveHighWatermark: Int64
    public let highWatermarkTime: [UInt8]?
    public let priority: Int
    /// The size of the `WorkflowReplicationMessages` inside the response.
    private let batchSize: Int
    /// The size of the whole `StreamWorkflowReplicationMessagesResponse`.
    public let size: Int

    /// `tasks` numbered from `firstID`.
    init(
        tasks: [ReplicationTask], firstID: Int64, exclusiveHighWatermark: Int64, highWatermarkTime: [UInt8]?,
        priority: Int
    ) throws(ProtoWireError) {
        var taskSizes = 0
        var id = firstID
        for task in tasks {
            taskSizes += WireWriter.bytesFieldSize(1, try task.renumberedSize(id))
            id += 1
        }
        self.init(
            tasks: .renumbered(tasks, firstID: firstID), taskSizes: taskSizes,
            exclusiveHighWatermark: exclusiveHighWatermark, highWatermarkTime: highWatermarkTime, priority: priority)
    }

    init(encodedTasks: [[UInt8]], exclusiveHighWatermark: Int64, highWatermarkTime: [UInt8]?, priority: Int) {
        self.init(
            tasks: .encoded(encodedTasks),
            taskSizes: encodedTasks.reduce(0) { $0 + WireWriter.bytesFieldSize(1, $1.count) },
            exclusiveHighWatermark: exclusiveHighWatermark, highWatermarkTime: highWatermarkTime, priority: priority)
    }

    private init(
        tasks: Tasks, taskSizes: Int, exclusiveHighWatermark: Int64, highWatermarkTime: [UInt8]?, priority: Int
    ) {
        self.tasks = tasks
        self.exclusiveHighWatermark = exclusiveHighWatermark
        self.highWatermarkTime = highWatermarkTime
        self.priority = priority
        var batch = taskSizes + WireWriter.varintFieldSize(2, UInt64(bitPattern: exclusiveHighWatermark))
        if let highWatermarkTime { batch += WireWriter.bytesFieldSize(3, highWatermarkTime.count) }
        if priority != 0 { batch += WireWriter.varintFieldSize(4, UInt64(bitPattern: Int64(priority))) }
        batchSize = batch
        size = WireWriter.bytesFieldSize(1, batch)
    }

    /// Writes the response into `buffer` (at least `size` bytes).
    public func write(into buffer: UnsafeMutableRawBufferPointer) throws(ProtoWireError) {
        var writer = WireWriter(buffer)
        writer.key(1, wireType: 2)
        writer.varint(UInt64(batchSize))
        switch tasks {
        case .renumbered(let tasks, let firstID):
            var id = firstID
            for task in tasks {
                writer.key(1, wireType: 2)
                writer.varint(UInt64(try task.renumberedSize(id)))
                try task.writeRenumbered(id, to: &writer)
                id += 1
            }
        case .encoded(let tasks):
            for task in tasks {
                writer.key(1, wireType: 2)
                writer.varint(UInt64(task.count))
                writer.copy(task, 0..<task.count)
            }
        }
        writer.varintField(2, UInt64(bitPattern: exclusiveHighWatermark))
        if let highWatermarkTime {
            writer.key(3, wireType: 2)
            writer.varint(UInt64(highWatermarkTime.count))
            writer.copy(highWatermarkTime, 0..<highWatermarkTime.count)
        }
        if priority != 0 { writer.varintField(4, UInt64(bitPattern: Int64(priority))) }
    }

    /// The response as an array (tests, and callers without a buffer of their own).
    public func bytes() throws(ProtoWireError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: size)
        var failure: ProtoWireError?
        output.withUnsafeMutableBytes { buffer in
            do throws(ProtoWireError) {
                try write(into: buffer)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return output
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

/// Writes protobuf into a buffer sized beforehand (sizes from the `...Size` functions).
struct WireWriter {
    private let buffer: UnsafeMutableRawBufferPointer
    private(set) var offset = 0

    init(_ buffer: UnsafeMutableRawBufferPointer) {
        self.buffer = buffer
    }

    static func varintFieldSize(_ number: Int, _ value: UInt64) -> Int {
        ProtoVarint.encodedLength(of: UInt64(number) << 3) + ProtoVarint.encodedLength(of: value)
    }

    static func bytesFieldSize(_ number: Int, _ length: Int) -> Int {
        ProtoVarint.encodedLength(of: UInt64(number) << 3 | 2) + ProtoVarint.encodedLength(of: UInt64(length)) + length
    }

    mutating func varint(_ value: UInt64) {
        var remaining = value
        while remaining >= 0x80 {
            buffer[offset] = UInt8(truncatingIfNeeded: remaining) | 0x80
            offset += 1
            remaining >>= 7
        }
        buffer[offset] = UInt8(remaining)
        offset += 1
    }

    mutating func key(_ number: Int, wireType: UInt64) {
        varint(UInt64(number) << 3 | wireType)
    }

    mutating func varintField(_ number: Int, _ value: UInt64) {
        key(number, wireType: 0)
        varint(value)
    }

    mutating func copy(_ source: [UInt8], _ range: Range<Int>) {
        guard !range.isEmpty else { return }
        source.withUnsafeBytes { bytes in
            (buffer.baseAddress! + offset).copyMemory(from: bytes.baseAddress! + range.lowerBound, byteCount: range.count)
        }
        offset += range.count
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

    static func appendBytesField(_ number: Int, _ value: some Collection<UInt8>, to output: inout [UInt8]) {
        ProtoVarint.append(UInt64(number) << 3 | 2, to: &output)
        ProtoVarint.append(UInt64(value.count), to: &output)
        output.append(contentsOf: value)
    }
}
