// What routing-mode replicas tell each other (docs/design/routing.md, "Replicas"), as protobuf on the proxy-private
// stream `/s2sproxy.intra.v1.Routing/Exchange` (carried by Host/Routing/RoutingReplicas.swift). Field numbers (proxy-private, versioned by the method name):
//
//   IntraMessage { oneof kind { Announcement announcement = 1; Delivery delivery = 2; Settled settled = 3; } }
//   Announcement { string direction = 1; int32 shard = 2; string replica = 3; uint64 time = 4; bool withdrawn = 5; }
//   Delivery     { string direction = 1; int32 target_shard = 2; int32 source_shard = 3; uint64 batch = 4;
//                  int32 priority = 5; bytes high_watermark_time = 6; repeated bytes tasks = 7; }
//   Settled      { string direction = 1; int32 source_shard = 2; uint64 batch = 3; int32 target_shard = 4; }
//
// `direction` names the listener side the shards belong to (`outbound` or `inbound`); a Delivery carries a source
// batch's share for a target shard whose stream another replica holds, its tasks as the source encoded them (the
// holder renumbers them); Settled goes back once that target acknowledged them. Unknown fields are skipped, so a
// later version may add some; a malformed message is an error naming the offset.

import PluginKit

/// One message between replicas.
public enum IntraMessage: Sendable, Equatable {
    case announcement(direction: String, event: ShardDirectory.Event)
    case delivery(Delivery)
    case settled(direction: String, sourceShard: Int32, batch: UInt64, targetShard: Int32)

    /// A source batch's share for a target shard held by the receiving replica.
    public struct Delivery: Sendable, Equatable {
        public let direction: String
        public let targetShard: Int32
        public let sourceShard: Int32
        public let batch: UInt64
        public let priority: Int
        public let highWatermarkTime: [UInt8]?
        public let tasks: [ReplicationTask]

        public init(
            direction: String, targetShard: Int32, sourceShard: Int32, batch: UInt64, priority: Int,
            highWatermarkTime: [UInt8]?, tasks: [ReplicationTask]
        ) {
            self.direction = direction
            self.targetShard = targetShard
            self.sourceShard = sourceShard
            self.batch = batch
            self.priority = priority
            self.highWatermarkTime = highWatermarkTime
            self.tasks = tasks
        }
    }

    /// The message encoded.
    public var bytes: [UInt8] {
        var inner: [UInt8] = []
        let number: Int
        switch self {
        case .announcement(let direction, let event):
            number = 1
            Wire.appendBytesField(1, Array(direction.utf8), to: &inner)
            Wire.appendVarintField(2, UInt64(bitPattern: Int64(event.shard)), to: &inner)
            Wire.appendBytesField(3, Array(event.replica.utf8), to: &inner)
            Wire.appendVarintField(4, event.time, to: &inner)
            if event.kind == .withdrawn { Wire.appendVarintField(5, 1, to: &inner) }
        case .delivery(let delivery):
            number = 2
            Wire.appendBytesField(1, Array(delivery.direction.utf8), to: &inner)
            Wire.appendVarintField(2, UInt64(bitPattern: Int64(delivery.targetShard)), to: &inner)
            Wire.appendVarintField(3, UInt64(bitPattern: Int64(delivery.sourceShard)), to: &inner)
            Wire.appendVarintField(4, delivery.batch, to: &inner)
            Wire.appendVarintField(5, UInt64(bitPattern: Int64(delivery.priority)), to: &inner)
            if let time = delivery.highWatermarkTime { Wire.appendBytesField(6, time, to: &inner) }
            for task in delivery.tasks { Wire.appendBytesField(7, task.storage[task.range], to: &inner) }
        case .settled(let direction, let sourceShard, let batch, let targetShard):
            number = 3
            Wire.appendBytesField(1, Array(direction.utf8), to: &inner)
            Wire.appendVarintField(2, UInt64(bitPattern: Int64(sourceShard)), to: &inner)
            Wire.appendVarintField(3, batch, to: &inner)
            Wire.appendVarintField(4, UInt64(bitPattern: Int64(targetShard)), to: &inner)
        }
        var output: [UInt8] = []
        Wire.appendBytesField(number, inner, to: &output)
        return output
    }

    /// Reads a message; nil for a kind this version does not know.
    public init?(bytes: [UInt8]) throws(ProtoWireError) {
        var scanner = ProtoWireScanner(bytes: bytes)
        var found: IntraMessage?
        while let field = try scanner.next() {
            guard field.wireType == .lengthDelimited else { continue }
            switch field.fieldNumber {
            case 1: found = try Self.announcement(bytes, field)
            case 2: found = try Self.delivery(bytes, field)
            case 3: found = try Self.settled(bytes, field)
            default: continue
            }
        }
        guard let found else { return nil }
        self = found
    }

    private static func string(_ bytes: [UInt8], _ field: ProtoWireField) -> String {
        String(decoding: bytes[field.payloadRange], as: UTF8.self)
    }

    private static func int32(_ bytes: [UInt8], _ field: ProtoWireField) throws(ProtoWireError) -> Int32 {
        Int32(truncatingIfNeeded: Int64(bitPattern: try Wire.varint(bytes, field)))
    }

    private static func announcement(_ bytes: [UInt8], _ outer: ProtoWireField) throws(ProtoWireError) -> IntraMessage {
        var direction = "", replica = ""
        var shard: Int32 = 0
        var time: UInt64 = 0
        var withdrawn = false
        var scanner = ProtoWireScanner(bytes: bytes, subMessageOf: outer)
        while let field = try scanner.next() {
            switch (field.fieldNumber, field.wireType) {
            case (1, .lengthDelimited): direction = string(bytes, field)
            case (2, .varint): shard = try int32(bytes, field)
            case (3, .lengthDelimited): replica = string(bytes, field)
            case (4, .varint): time = try Wire.varint(bytes, field)
            case (5, .varint): withdrawn = try Wire.varint(bytes, field) != 0
            default: continue
            }
        }
        return .announcement(
            direction: direction,
            event: .init(shard: shard, replica: replica, time: time, kind: withdrawn ? .withdrawn : .registered))
    }

    private static func delivery(_ bytes: [UInt8], _ outer: ProtoWireField) throws(ProtoWireError) -> IntraMessage {
        var direction = ""
        var targetShard: Int32 = 0, sourceShard: Int32 = 0
        var batch: UInt64 = 0
        var priority = 0
        var time: [UInt8]?
        var tasks: [ReplicationTask] = []
        var scanner = ProtoWireScanner(bytes: bytes, subMessageOf: outer)
        while let field = try scanner.next() {
            switch (field.fieldNumber, field.wireType) {
            case (1, .lengthDelimited): direction = string(bytes, field)
            case (2, .varint): targetShard = try int32(bytes, field)
            case (3, .varint): sourceShard = try int32(bytes, field)
            case (4, .varint): batch = try Wire.varint(bytes, field)
            case (5, .varint): priority = Int(truncatingIfNeeded: Int64(bitPattern: try Wire.varint(bytes, field)))
            case (6, .lengthDelimited): time = Array(bytes[field.payloadRange])
            case (7, .lengthDelimited): tasks.append(try ReplicationTask(storage: bytes, range: field.payloadRange))
            default: continue
            }
        }
        return .delivery(.init(
            direction: direction, targetShard: targetShard, sourceShard: sourceShard, batch: batch, priority: priority,
            highWatermarkTime: time, tasks: tasks))
    }

    private static func settled(_ bytes: [UInt8], _ outer: ProtoWireField) throws(ProtoWireError) -> IntraMessage {
        var direction = ""
        var sourceShard: Int32 = 0, targetShard: Int32 = 0
        var batch: UInt64 = 0
        var scanner = ProtoWireScanner(bytes: bytes, subMessageOf: outer)
        while let field = try scanner.next() {
            switch (field.fieldNumber, field.wireType) {
            case (1, .lengthDelimited): direction = string(bytes, field)
            case (2, .varint): sourceShard = try int32(bytes, field)
            case (3, .varint): batch = try Wire.varint(bytes, field)
            case (4, .varint): targetShard = try int32(bytes, field)
            default: continue
            }
        }
        return .settled(direction: direction, sourceShard: sourceShard, batch: batch, targetShard: targetShard)
    }
}
