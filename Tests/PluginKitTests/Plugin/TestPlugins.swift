// Plugin types the export tests drive through their C tables, each exercising one part of the Swift API.

import Foundation
import PluginKit

/// What the test plugins did, for the tests to check. Locked because plugins must be `Sendable`.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String] = []

    func append(_ entry: String) {
        lock.withLock { entries.append(entry) }
    }

    var all: [String] { lock.withLock { entries } }

    func removeAll() {
        lock.withLock { entries.removeAll() }
    }
}

/// A stateless plugin: reads and edits metadata, rejects, logs, counts, and throws when told to.
final class MetadataPlugin: TranslatorPlugin {
    static let name = "test-metadata"
    static let version = "0.1.0"
    static let description = "Edits metadata for the export tests"

    static let events = EventLog()

    let host: PluginHost
    let calls: PluginCounter
    let latency: PluginHistogram
    let denied: Set<String>
    let header: String

    init(options: PluginOptions, host: PluginHost) throws {
        self.host = host
        denied = Set(try options.stringArray(forKey: "deny") ?? [])
        header = try options.string(forKey: "header") ?? "x-stamp"
        if try options.bool(forKey: "failInit") == true {
            throw PluginConfigError("failInit was set, so this entry fails: remove failInit")
        }
        calls = try host.counter(name: "calls_total", help: "Calls seen")
        latency = try host.histogram(name: "latency_seconds", help: "Made-up latencies")
        host.info("configured with \(denied.count) denied methods")
    }

    deinit {
        MetadataPlugin.events.append("deinit")
    }

    func wants(method: String, side: CallSide) -> Wants {
        switch method {
        case "/test.Svc/Nothing": return .nothing
        case "/test.Svc/Requests": return .requestMessages
        case "/test.Svc/Inbound": return side == .inbound ? .call : .nothing
        default: return .call
        }
    }

    func startCall(_ call: borrowing CallStart) throws -> CallDecision<Void> {
        calls.add()
        latency.record(0.25)
        host.debug("start \(call.method) \(call.side) \(call.connection)")
        let method = call.method
        if denied.contains(method) {
            return .rejected(.permissionDenied, "\(method) is denied")
        }
        if call.header("x-fail") != nil {
            throw PluginFailure("x-fail was present")
        }
        MetadataPlugin.events.append(
            "headers " + call.headers.map { "\($0.name)=\($0.stringValue)" }.joined(separator: ",")
        )
        if let team = call.header("X-Team") {
            MetadataPlugin.events.append("team \(team) of \(call.headerValues("x-team").count)")
        }
        try call.setHeader(header, "stamped")
        try call.addHeader("x-added", "1")
        try call.setHeader("x-trace-bin", bytes: [0, 1, 2])
        try call.removeHeader("x-remove")
        return .proceed
    }

    func endCall(_ end: CallEnd, state: consuming Void) {
        MetadataPlugin.events.append("end \(end.grpcStatus.map(String.init) ?? "reset")")
    }
}

/// A plugin with per-call state that rewrites messages.
final class MessagePlugin: TranslatorPlugin {
    static let name = "test-messages"
    static let version = "0.2.0"

    /// Per-call state; a class, so the tests can see it released.
    final class State {
        let method: String
        var requests = 0
        var responses = 0

        init(method: String) {
            self.method = method
        }

        deinit {
            MessagePlugin.events.append("state released")
        }
    }

    static let events = EventLog()

    init(options: PluginOptions, host: PluginHost) throws {}

    func wants(method: String, side: CallSide) -> Wants {
        .allMessages
    }

    func startCall(_ call: borrowing CallStart) throws -> CallDecision<State> {
        .proceed(with: State(method: call.method))
    }

    func message(_ message: borrowing MessageView, state: inout State) throws -> MessageDecision {
        switch message.direction {
        case .request: state.requests += 1
        case .response: state.responses += 1
        }
        let text = String(decoding: message.payload, as: UTF8.self)
        let compressed = message.isCompressed ? " compressed" : ""
        MessagePlugin.events.append("\(state.method) \(message.direction) #\(message.index) \(text)\(compressed)")
        switch text {
        case "keep": return .unchanged
        case "reject": return .rejected(.invalidArgument, "rejected message \(message.index)")
        case "fail": throw PluginFailure("cannot handle message \(message.index)")
        default: return .replaced(Array("\(text)+\(state.requests)/\(state.responses)".utf8))
        }
    }

    func endCall(_ end: CallEnd, state: consuming State) {
        MessagePlugin.events.append(
            "end \(state.method) requests=\(state.requests) responses=\(state.responses)"
                + " status=\(end.grpcStatus.map(String.init) ?? "reset")"
                + " code=\(end.errorCode.map { "\($0)" } ?? "none")"
        )
    }
}

/// A plugin that needs the schema and stores what it derives from it.
final class SchemaPlugin: TranslatorPlugin {
    static let name = "test-schema"
    static let version = "1.0.0"
    static let needsSchema = true

    let schemaSize = SchemaDerived<Int>()

    init(options: PluginOptions, host: PluginHost) throws {}

    func schemaReady(_ fileDescriptorSet: UnsafeRawBufferPointer) throws {
        guard !fileDescriptorSet.isEmpty else {
            throw PluginConfigError("the schema has no file for temporal.api.workflowservice.v1")
        }
        schemaSize.value = fileDescriptorSet.count
    }

    func wants(method: String, side: CallSide) -> Wants {
        schemaSize.value == nil ? .nothing : .call
    }
}

/// A plugin whose init fails with a long message in several scripts, for truncation tests.
final class VerbosePlugin: TranslatorPlugin {
    static let name = "test-verbose"
    static let version = "1.0.0"
    static let failureMessage = "größe überschritten — 名前空間が見つかりません 🚫 at the end"

    init(options: PluginOptions, host: PluginHost) throws {
        throw PluginConfigError(VerbosePlugin.failureMessage)
    }

    func wants(method: String, side: CallSide) -> Wants { .nothing }
}
