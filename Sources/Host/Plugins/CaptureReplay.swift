// `s2s-proxy replay`: a capture (`capture:`, CallCapture.swift) run offline through a configuration's plugin chains,
// with the code the proxy runs (`PluginCallRunner`), and a report of what each chain entry did to each call: its
// metadata edits, each message unchanged or replaced (with the fields that changed, read through the schema),
// rejections and failures. Reports are compared to saved ones (`--expect`), so that an author keeps real traffic and
// its expected treatment as a regression test. See docs/design/capture-replay.md.

import Foundation
import NIOCore
import NIOHPACK
import PluginABI

public enum CaptureReplay {
    /// What the chain did to every replayed call, in capture order. Saved and compared as JSON.
    public struct Report: Codable, Equatable, Sendable {
        public var calls: [CallReport]
    }

    public struct CallReport: Codable, Equatable, Sendable {
        public var id: String
        public var connection: String
        public var side: String
        public var method: String
        /// What the chain entries did, in the order their hooks ran.
        public var events: [Event]
    }

    public struct Event: Codable, Equatable, Sendable {
        /// call_start, on_message, on_response_metadata; "chain" for a call no entry wants.
        public var hook: String
        /// The entry's plugin and config key; nil for "chain".
        public var plugin: String?
        public var entry: String?
        /// on_message: request or response, and the message's index in its direction; on_response_metadata:
        /// headers or trailers.
        public var direction: String?
        public var index: Int?
        /// unchanged, edited (metadata), replaced, rejected, failed (fail closed: the call ended), failed-open,
        /// not wanted.
        public var outcome: String
        /// rejected and failed: the status the client would get.
        public var status: String?
        /// What changed: field paths with old and new values, or metadata names with old and new values.
        public var changes: [String]?
    }

    public struct ReplayError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Replays the capture `lines` (JSON Lines) through `setup`'s chains for `config`'s cluster connections; only
    /// calls of connection `onlyConnection` when given. `schema` makes the field-level diffs.
    public static func run(
        lines: [String], setup: PluginSetup, config: ProxyConfig, schema: TemporalSchema?, onlyConnection: String?
    ) throws -> Report {
        let transcoder = schema.flatMap { try? ProtoJSONTranscoder(schema: $0) }
        var methodTypes: [String: (request: String, response: String)] = [:]
        for service in schema?.services ?? [] {
            for method in service.methods {
                methodTypes["/\(service.name)/\(method.name)"] = (method.inputType, method.outputType)
            }
        }
        var order: [String] = []
        var records: [String: [[String: Any]]] = [:]
        for (number, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let id = object["id"] as? String, object["type"] is String
            else {
                throw ReplayError(message: "capture line \(number + 1) is not a capture record (a JSON object with id and type)")
            }
            if records[id] == nil { order.append(id) }
            records[id, default: []].append(object)
        }
        var report = Report(calls: [])
        for id in order {
            guard let call = records[id], let start = call.first(where: { $0["type"] as? String == "call" }),
                  let connection = start["connection"] as? String, let sideName = start["side"] as? String,
                  let method = start["method"] as? String
            else { continue }
            if let onlyConnection, connection != onlyConnection { continue }
            guard let index = config.clusterConnections.firstIndex(where: { $0.name == connection }) else {
                throw ReplayError(message: "the capture has calls of cluster connection \"\(connection)\", which the config does not have (use --connection)")
            }
            guard let side = PluginSide(rawValue: sideName) else { continue }
            let events = replay(
                call, method: method, chain: setup.chain(connection: index, side: side), types: methodTypes[method],
                transcoder: transcoder
            )
            report.calls.append(CallReport(id: id, connection: connection, side: sideName, method: method, events: events))
        }
        return report
    }

    private static func replay(
        _ records: [[String: Any]], method: String, chain: PluginChain?,
        types: (request: String, response: String)?, transcoder: ProtoJSONTranscoder?
    ) -> [Event] {
        guard let chain, let plan = chain.plan(for: method), !plan.steps.isEmpty else {
            return [Event(hook: "chain", outcome: "not wanted")]
        }
        var events: [Event] = []
        let runner = PluginCallRunner(plan: plan, method: method, side: chain.side, connection: chain.connectionName)
        var previousHeaders = HPACKHeaders()
        var current: [UInt8] = []
        var currentType: String?
        var context: (direction: String?, index: Int?) = (nil, nil)
        runner.stepObserver = { event in
            let step = plan.steps[event.step]
            var entry = Event(
                hook: event.hook, plugin: step.entry.library.name, entry: step.entry.label,
                direction: context.direction, index: context.index, outcome: "unchanged"
            )
            switch event.outcome {
            case .goOn:
                if let headers = event.headers {
                    let changes = headerChanges(previousHeaders, headers)
                    if !changes.isEmpty {
                        entry.outcome = "edited"
                        entry.changes = changes
                    }
                    previousHeaders = headers
                }
            case .replaced(var framed):
                framed.moveReaderIndex(forwardBy: 5)
                let bytes = framed.readBytes(length: framed.readableBytes) ?? []
                entry.outcome = "replaced"
                entry.changes = fieldChanges(current, bytes, type: currentType, transcoder: transcoder)
                current = bytes
            case .failedOpen:
                entry.outcome = "failed-open"
            case .rejected(let status):
                entry.outcome = "rejected"
                entry.status = "\(status.code): \(status.message)"
            case .failedClosed(let status):
                entry.outcome = "failed"
                entry.status = "\(status.code): \(status.message)"
            }
            events.append(entry)
        }
        let end = records.last { $0["type"] as? String == "end" }
        let status = Int32(end?["status"] as? Int ?? -1)
        replaying: do {
        for record in records {
            switch record["type"] as? String {
            case "call":
                var headers = metadata(record["metadata"])
                runner.requestEncoding = headers.first(name: "grpc-encoding")
                previousHeaders = headers
                context = (nil, nil)
                if case .fail = runner.start(headers: &headers) { break replaying }
            case "message":
                guard let payload = (record["payload"] as? String).flatMap({ Data(base64Encoded: $0) }) else { continue }
                let isRequest = record["direction"] as? String == "request"
                guard isRequest ? runner.wantsRequestMessages : runner.wantsResponseMessages else { continue }
                let compressed = record["compressed"] as? Bool ?? false
                var framed = ByteBufferAllocator().buffer(capacity: payload.count + 5)
                framed.writeGRPCPrefix(length: payload.count, flag: compressed ? 1 : 0)
                framed.writeBytes(payload)
                current = plainBytes(Array(payload), compressed: compressed, encoding: record["encoding"] as? String)
                currentType = isRequest ? types?.request : types?.response
                context = (isRequest ? "request" : "response", record["index"] as? Int)
                let direction = isRequest ? S2S_DIRECTION_REQUEST : S2S_DIRECTION_RESPONSE
                if case .fail = runner.message(framed, direction: direction) { break replaying }
            case "metadata":
                var headers = metadata(record["metadata"])
                let trailers = record["kind"] as? String == "trailers"
                if !trailers { runner.responseEncoding = headers.first(name: "grpc-encoding") }
                let wanted = trailers
                    ? runner.wantsTrailers(status: headers.first(name: "grpc-status")) : runner.wantsResponseHeaders
                guard wanted else { continue }
                previousHeaders = headers
                context = (trailers ? "trailers" : "headers", nil)
                let kind = trailers ? S2S_METADATA_RESPONSE_TRAILERS : S2S_METADATA_RESPONSE_HEADERS
                if case .fail = runner.responseMetadata(&headers, kind: kind) { break replaying }
            default:
                continue
            }
        }
        }
        runner.end(grpcStatus: status)
        return events
    }

    private static func metadata(_ value: Any?) -> HPACKHeaders {
        var headers = HPACKHeaders()
        for pair in value as? [[String]] ?? [] where pair.count == 2 {
            headers.add(name: pair[0], value: pair[1])
        }
        return headers
    }

    private static func plainBytes(_ payload: [UInt8], compressed: Bool, encoding: String?) -> [UInt8] {
        guard compressed, GRPCMessageInflater.canInflate(encoding),
              var inflated = try? GRPCMessageInflater.inflate(ByteBuffer(bytes: payload), limit: Int(Int32.max))
        else { return payload }
        return inflated.readBytes(length: inflated.readableBytes) ?? payload
    }

    /// Metadata entries (pseudo-headers left out) that a hook changed, added or removed: `name: old -> new`.
    static func headerChanges(_ before: HPACKHeaders, _ after: HPACKHeaders) -> [String] {
        func values(_ headers: HPACKHeaders) -> [String: [String]] {
            var result: [String: [String]] = [:]
            for (name, value, _) in headers where !name.hasPrefix(":") { result[name, default: []].append(value) }
            return result
        }
        let old = values(before)
        let new = values(after)
        return Set(old.keys).union(new.keys).sorted().compactMap { name in
            let was = old[name] ?? []
            let now = new[name] ?? []
            guard was != now else { return nil }
            let show = { (list: [String]) in list.isEmpty ? "(none)" : list.joined(separator: ", ") }
            return "\(name): \(show(was)) -> \(show(now))"
        }
    }

    /// The fields that differ between two encodings of `type`, by JSON path (`namespace: "a" -> "b"`); sizes when
    /// the schema cannot read them.
    static func fieldChanges(_ before: [UInt8], _ after: [UInt8], type: String?, transcoder: ProtoJSONTranscoder?) -> [String] {
        guard let type, let transcoder,
              let old = (try? transcoder.decode(before, as: type)).flatMap(flatten),
              let new = (try? transcoder.decode(after, as: type)).flatMap(flatten)
        else {
            return ["bytes: \(before.count) -> \(after.count) (no schema to read \(type ?? "the message") with)"]
        }
        let changes: [String] = Set(old.keys).union(new.keys).sorted().compactMap { path in
            guard old[path] != new[path] else { return nil }
            return "\(path): \(old[path] ?? "(none)") -> \(new[path] ?? "(none)")"
        }
        return changes.isEmpty ? ["the same fields, encoded differently"] : changes
    }

    /// JSON text as leaf paths (`a.b[2].c`) to their JSON values.
    private static func flatten(_ json: String) -> [String: String]? {
        guard let root = try? JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed]) else {
            return nil
        }
        var leaves: [String: String] = [:]
        func visit(_ value: Any, _ path: String) {
            if let object = value as? [String: Any] {
                for (key, child) in object { visit(child, path.isEmpty ? key : "\(path).\(key)") }
            } else if let array = value as? [Any] {
                for (index, child) in array.enumerated() { visit(child, "\(path)[\(index)]") }
            } else if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]) {
                leaves[path] = String(decoding: data, as: UTF8.self)
            }
        }
        visit(root, "")
        return leaves
    }

    /// The report as text, one line per call and per event.
    public static func describe(_ report: Report) -> [String] {
        var lines: [String] = []
        for (number, call) in report.calls.enumerated() {
            lines.append("call \(number + 1) \(call.connection)/\(call.side) \(call.method) (\(call.id))")
            for event in call.events {
                var where_ = event.hook
                if let direction = event.direction { where_ += " \(direction)" + (event.index.map { " #\($0)" } ?? "") }
                let who = event.plugin.map { " \($0) (\(event.entry ?? ""))" } ?? ""
                var line = "  \(where_)\(who): \(event.outcome)"
                if let status = event.status { line += " with \(status)" }
                lines.append(line)
                for change in event.changes ?? [] { lines.append("      \(change)") }
            }
        }
        return lines
    }

    /// Where two reports differ, call by call and event by event; empty when they are the same.
    public static func differences(expected: Report, actual: Report) -> [String] {
        var found: [String] = []
        if expected.calls.count != actual.calls.count {
            found.append("\(expected.calls.count) calls expected, \(actual.calls.count) replayed")
        }
        for (number, (want, got)) in zip(expected.calls, actual.calls).enumerated() where want != got {
            if want.method != got.method || want.id != got.id {
                found.append("call \(number + 1): expected \(want.method) (\(want.id)), replayed \(got.method) (\(got.id))")
                continue
            }
            let wanted = describe(Report(calls: [want])).dropFirst()
            let replayed = describe(Report(calls: [got])).dropFirst()
            found.append("call \(number + 1) \(got.method) (\(got.id)):")
            for line in wanted where !replayed.contains(line) { found.append("  expected:\(line)") }
            for line in replayed where !wanted.contains(line) { found.append("  replayed:\(line)") }
        }
        return found
    }
}
