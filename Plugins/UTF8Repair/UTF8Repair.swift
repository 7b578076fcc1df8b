// utf8-repair: the version adapter for Temporal 1.22 peers. Temporal 1.22 and older (gogo/protobuf) could store and
// send `string` fields holding invalid UTF-8, which 1.23 and newer (and every strict protobuf decoder) refuse to
// decode. This plugin replaces each maximal run of invalid bytes in such fields with U+FFFD, in messages and in the
// history events that `DataBlob` fields carry, so the newer peer decodes them.
//
//     plugins:
//       - name: utf8-repair
//         options:
//           fields: all              # all (default) | failureMessages
//
// `all` checks every string field, map key and map value the schema declares; `failureMessages` only the `message`
// of `temporal.api.failure.v1.Failure`, wherever a Failure sits (the Go proxy's scope; it follows `cause` chains
// only 10 deep, the walker follows them as deep as the message goes). Valid strings are never rewritten and a message
// without invalid UTF-8 is forwarded as it came, without a copy. Which bytes a repair produces: InvalidUTF8Runs.
//
// This target holds the logic; `UTF8RepairExport` exports it as `libutf8-repair.so`.

import PluginKit

public final class UTF8Repair: TranslatorPlugin {
    public static let name = "utf8-repair"
    public static let version = "1.0.0"
    public static let description = "Replaces invalid UTF-8 in string fields with U+FFFD (Temporal 1.22 peers)"
    public static let needsSchema = true

    /// Which string fields are repaired.
    public enum Fields: String, Sendable {
        /// Every string field, map key and map value of the schema.
        case all
        /// Only `temporal.api.failure.v1.Failure.message`, as the Go proxy does.
        case failureMessages
    }

    public struct CallState {
        let method: String
        var request: WalkPlan?
        var response: WalkPlan?
    }

    let fields: Fields
    let walker = SchemaDerived<ProtoWalker>()
    let host: PluginHost
    let repairs: PluginCounter

    public init(options: PluginOptions, host: PluginHost) throws {
        let fieldsOption = try options.string(forKey: "fields") ?? Fields.all.rawValue
        guard let fields = Fields(rawValue: fieldsOption) else {
            throw PluginConfigError("fields must be \"all\" or \"failureMessages\", not \"\(fieldsOption)\"")
        }
        self.fields = fields
        self.host = host
        repairs = try host.counter(name: "utf8_repairs_total", help: "String values whose invalid UTF-8 was replaced")
    }

    public func schemaReady(_ fileDescriptorSet: UnsafeRawBufferPointer) throws {
        let schema = try ProtoSchema(fileDescriptorSet: fileDescriptorSet)
        walker.value = try schema.walker(rules: Self.rules(fields, in: schema))
    }

    /// The walk rules for `fields`: the string targets, and the history inside `DataBlob`s in either case.
    public static func rules(_ fields: Fields, in schema: ProtoSchema) -> WalkRules {
        switch fields {
        case .failureMessages:
            return WalkRules(
                strings: [.field("message", of: "temporal.api.failure.v1.Failure")],
                embeddedMessages: [.temporalHistoryBlobs()]
            )
        case .all:
            // The walker has no "every string" selector; the names of all string and map fields are the same
            // thing, since a name-only selector matches only fields of the right type.
            var stringFields: Set<String> = []
            var mapFields: Set<String> = []
            for message in schema.messages.values where !message.isMapEntry {
                for field in message.fields {
                    if field.type == .string {
                        stringFields.insert(field.name)
                    } else if field.isMap {
                        mapFields.insert(field.name)
                    }
                }
            }
            return WalkRules(
                strings: [.named(stringFields)],
                mapKeys: [.named(mapFields)],
                mapValues: [.named(mapFields)],
                embeddedMessages: [.temporalHistoryBlobs()]
            )
        }
    }

    public func wants(method: String, side: CallSide) -> Wants {
        .allMessages
    }

    public func startCall(_ call: borrowing CallStart) throws -> CallDecision<CallState> {
        // A method the schema does not know (a Temporal newer than the schema) passes untouched.
        let method = call.method
        let plans = walker.value?.plans(method: method)
        return .proceed(with: CallState(
            method: method,
            request: plans?.request,
            response: plans?.response
        ))
    }

    public func message(_ message: borrowing MessageView, state: inout CallState) throws -> MessageDecision {
        let isRequest = message.direction == .request
        guard let plan = isRequest ? state.request : state.response, plan.canMatch else { return .unchanged }
        if message.isCompressed {
            throw PluginFailure(
                "utf8-repair cannot check a message compressed in an encoding the proxy does not inflate (it inflates"
                    + " gzip and deflate); use one of those, or none, between Temporal and the proxy"
            )
        }
        let logsRepairs = host.isLogEnabled(.debug)
        var count = 0
        let output = try plan.rewrite(message.payload) { target in
            guard let repaired = InvalidUTF8Runs.repaired(target.valueBytes) else { return nil }
            count += 1
            if logsRepairs {
                let direction = isRequest ? "request" : "response"
                host.debug("repaired invalid UTF-8 in \(state.method) \(direction) at \(target.pathDescription)")
            }
            return repaired
        }
        guard let output else { return .unchanged }
        repairs.add(Double(count))
        return .replaced(output)
    }
}
