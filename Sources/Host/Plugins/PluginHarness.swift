// Runs one plugin over one message outside the proxy, exactly as a chain of one entry would inside it: the
// config from the options, the schema if the plugin needs one, `wants`, `call_start` with the given metadata, one
// `on_message` (none when no message is given: a plugin that only looks at calls), `call_end`. Behind
// `s2s-proxy plugin run`, for plugin authors and their tests.

import Logging
import NIOCore
import NIOHPACK
import PluginABI

public enum PluginHarness {
    public enum Direction: String, Sendable, CaseIterable {
        case request
        case response
    }

    public struct Result: Sendable {
        public enum Outcome: Sendable, Equatable {
            /// The plugin does not want calls of this method on this side.
            case notWanted
            /// The plugin wants the call but not messages in this direction.
            case messageNotWanted
            /// The call was ended in call_start (rejected by the plugin, or a failure under failClosed).
            case callEnded(code: Int, message: String)
            /// call_start let the call go on, and no message was given, so none ran.
            case callProceeds
            case unchanged
            case replaced
            /// The message ended the call (rejected by the plugin, or a failure under failClosed).
            case messageEnded(code: Int, message: String)
        }

        public var wants: UInt32
        public var outcome: Outcome
        /// Request metadata after call_start's edits (pseudo-headers left out).
        public var headers: [(name: String, value: String)]
        /// The message as it would be forwarded.
        public var output: [UInt8]
    }

    public static func run(
        library: PluginLibrary, optionsJSON: String, schema: [UInt8]?, method: String, side: PluginSide,
        direction: Direction, headers: [(String, String)], message: [UInt8]?, policy: PluginFailurePolicy = .failClosed,
        priorRequest: [UInt8]? = nil, logger: Logger
    ) throws -> Result {
        let entry = try PluginEntry(
            library: library, label: "--options", connectionName: "harness", sides: .both, policy: policy,
            optionsJSON: optionsJSON, logger: logger, metrics: PluginMetricsRegistry()
        )
        defer { entry.destroy() }
        if library.needsSchema {
            guard let schema else {
                throw HarnessError(message: "plugin \(library.name) needs the Temporal schema: pass --schema FILE (see `s2s-proxy schema pull`)")
            }
            entry.deliverSchema(schema)
            if case .failed(let reason) = entry.currentSchemaState {
                throw HarnessError(message: reason)
            }
        }
        let chain = PluginChain(side: side, connectionName: "harness", entries: [entry])
        var result = Result(
            wants: entry.wants(method: method, side: side), outcome: .notWanted, headers: [], output: message ?? []
        )
        guard let plan = chain.plan(for: method) else { return result }

        var block = HPACKHeaders([(":method", "POST"), (":path", method), (":scheme", "http"), ("content-type", "application/grpc")])
        for (name, value) in headers { block.add(name: name, value: value) }
        let runner = PluginCallRunner(plan: plan, method: method, side: side, connection: "harness")
        defer { runner.end(grpcStatus: 0) }
        let verdict = runner.start(headers: &block)
        result.headers = block.filter { !$0.name.hasPrefix(":") }.map { ($0.name, $0.value) }
        if case .fail(let status) = verdict {
            result.outcome = .callEnded(code: status.code.rawValue, message: status.message)
            return result
        }
        guard let message else {
            result.outcome = .callProceeds
            return result
        }
        let wanted = direction == .request ? runner.wantsRequestMessages : runner.wantsResponseMessages
        guard wanted else {
            result.outcome = .messageNotWanted
            return result
        }
        // A response can depend on the call's request (a plugin remembers what it named): pass that one first.
        if direction == .response, let priorRequest, runner.wantsRequestMessages,
           case .fail(let status) = runner.message(.grpcMessage(priorRequest), direction: S2S_DIRECTION_REQUEST) {
            result.outcome = .messageEnded(code: status.code.rawValue, message: status.message)
            return result
        }
        let framed = ByteBuffer.grpcMessage(message)
        switch runner.message(framed, direction: direction == .request ? S2S_DIRECTION_REQUEST : S2S_DIRECTION_RESPONSE) {
        case .fail(let status):
            result.outcome = .messageEnded(code: status.code.rawValue, message: status.message)
        case .forward(var output):
            output.moveReaderIndex(forwardBy: 5)
            let bytes = output.readBytes(length: output.readableBytes) ?? []
            result.outcome = output.storageIsShared(with: framed) && bytes == message ? .unchanged : .replaced
            result.output = bytes
        }
        return result
    }

    public struct HarnessError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }
}

extension ByteBuffer {
    /// Whether two buffers are views of the same storage (a forwarded original rather than a replacement).
    func storageIsShared(with other: ByteBuffer) -> Bool {
        withVeryUnsafeBytes { mine in
            other.withVeryUnsafeBytes { theirs in
                guard let mine = mine.baseAddress, let theirs = theirs.baseAddress else { return false }
                return mine == theirs || (mine > theirs && mine < theirs + other.capacity) || (theirs > mine && theirs < mine + capacity)
            }
        }
    }
}
