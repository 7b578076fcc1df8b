// What the host records for the Go proxy's translation metric families (`temporal_s2s_proxy_translation_*`, labels
// `kind` and `message_type`): which chain entries play the part of a Go translator, the protobuf message type of
// each method's requests and responses, and the counters kept per message type.
//
// The Go proxy times and counts every run of a translator over a message. Here the runs are the `on_message` hooks
// of the bundled plugins that do the Go translations; other plugins (acl, cluster-adapter, third-party ones) have
// no Go counterpart and stay out of these families. The counters live in the entry, behind the same lock as its
// other stats (`PluginEntry.count`, in the call runner's batches), indexed by a number the call resolves once, so
// that a message costs no hashing and no allocation.

/// The Go proxy's `kind` label: which translation a chain entry does.
public enum TranslationKind: String, Sendable, CaseIterable {
    /// namespace-rename, the Go `namespaceTranslation`.
    case namespace
    /// search-attribute-rename, the Go `searchAttributeTranslation`.
    case searchAttribute = "search-attribute"
    /// utf8-repair, the Go proxy's repair of invalid UTF-8 in failure messages.
    case utf8Repair = "utf8repair"

    /// The kind of the bundled plugin named `pluginName` (the name its table declares), nil for any other plugin.
    public init?(pluginName: String) {
        switch pluginName {
        case "namespace-rename": self = .namespace
        case "search-attribute-rename": self = .searchAttribute
        case "utf8-repair": self = .utf8Repair
        default: return nil
        }
    }
}

/// The message types of every method in a Temporal schema, numbered: `names[i]` is the full protobuf name of type
/// number i, and a method path leads to the numbers of its request and response types.
struct MessageTypeTable: Sendable {
    /// The type numbers of one method's messages.
    struct MethodTypes: Sendable, Equatable {
        let request: Int
        let response: Int
    }

    /// The `message_type` of messages whose method the schema does not declare (a Temporal newer than the schema).
    static let unknownTypeName = "unknown"

    /// Full names (e.g. `temporal.api.workflowservice.v1.DescribeNamespaceResponse`), each once, sorted, then
    /// `unknownTypeName` last.
    let names: [String]
    private let typesByPath: [String: MethodTypes]

    /// Numbers the request and response types of every method of `schema`'s services.
    init(schema: TemporalSchema) {
        let methods = schema.services.flatMap(\.methods)
        let names = Set(methods.flatMap { [$0.inputType, $0.outputType] }).sorted() + [Self.unknownTypeName]
        let numbers = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        var typesByPath: [String: MethodTypes] = [:]
        for method in methods {
            typesByPath[method.path] = MethodTypes(request: numbers[method.inputType]!, response: numbers[method.outputType]!)
        }
        self.names = names
        self.typesByPath = typesByPath
    }

    /// The types of the messages of the method at `path`; both are the unknown type for a path the schema lacks.
    func types(ofMethod path: String) -> MethodTypes {
        typesByPath[path] ?? MethodTypes(request: names.count - 1, response: names.count - 1)
    }
}

/// The Go proxy's translation figures for one message type of one chain entry.
public struct TranslationCounters: Sendable, Equatable {
    /// Messages the plugin changed (`translation_success`: the Go proxy counts a run as a success when it
    /// changed something; a run that found nothing to change counts only in `latency`).
    public var succeeded: UInt64 = 0
    /// Messages whose hook failed: S2S_ERROR or a breach of the ABI, whatever the failure policy did with it.
    public var failed: UInt64 = 0
    /// The time of every run, whatever its outcome.
    public var latency = DurationHistogram()

    public init() {}

    /// Adds another entry's figures for the same kind and message type.
    mutating func add(_ other: TranslationCounters) {
        succeeded += other.succeeded
        failed += other.failed
        latency.add(other.latency)
    }
}

/// The translation figures of one chain entry, per message type, as a scrape reads them.
public struct TranslationSnapshot: Sendable {
    public let kind: TranslationKind
    /// `(message type, counters)` for the types the entry has seen at least one message of.
    public let seen: [(messageType: String, counters: TranslationCounters)]
}
