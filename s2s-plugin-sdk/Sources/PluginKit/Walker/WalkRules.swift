// What a walk looks for, written against the schema by field name, number and type at any depth: string fields,
// string map keys and values, and messages serialized inside `bytes` fields.
//
// Rules say nothing about where in a message tree a field sits: a selector without a message matches the field
// in every message that declares it, the way the Go s2s-proxy matches Go field names. ``ProtoWalker`` compiles
// them once against a schema; the compiled form decides which subtrees can contain a target at all.

/// Selects fields of the schema: by name or number, in any message or in one message.
public struct FieldSelector: Sendable, Hashable {
    /// The message whose fields are selected, by full name; `nil` selects in every message.
    public var messageName: String?
    /// Field names selected.
    public var fieldNames: Set<String>
    /// Field numbers selected (only meaningful with a ``messageName``).
    public var fieldNumbers: Set<Int>

    /// Selects fields by name and number, in one message or (with `messageName` nil) in all.
    public init(messageName: String? = nil, fieldNames: Set<String> = [], fieldNumbers: Set<Int> = []) {
        self.messageName = messageName.map { $0.hasPrefix(".") ? String($0.dropFirst()) : $0 }
        self.fieldNames = fieldNames
        self.fieldNumbers = fieldNumbers
    }

    /// Every field with one of these names, in any message.
    public static func named(_ names: Set<String>) -> FieldSelector {
        FieldSelector(fieldNames: names)
    }

    /// The field `name` of the message `messageName` (a full name).
    public static func field(_ name: String, of messageName: String) -> FieldSelector {
        FieldSelector(messageName: messageName, fieldNames: [name])
    }

    /// The field numbered `number` of the message `messageName` (a full name).
    public static func field(number: Int, of messageName: String) -> FieldSelector {
        FieldSelector(messageName: messageName, fieldNumbers: [number])
    }

    func matches(_ field: ProtoSchema.Field, in message: ProtoSchema.Message) -> Bool {
        if let messageName, messageName != message.fullName {
            return false
        }
        return fieldNames.contains(field.name) || (messageName != nil && fieldNumbers.contains(field.number))
    }
}

/// A `bytes` field that holds a serialized message, walked as if it were that message.
///
/// Either the selected fields are themselves `bytes` fields, or they are messages of a *container* type whose
/// `bytes` field holds the serialized message, optionally with an encoding field saying whether it is protobuf
/// (Temporal's `DataBlob`: `encoding_type` and `data`).
public struct EmbeddedMessageRule: Sendable, Hashable {
    /// What to do with a holder whose encoding field names an encoding the rule does not walk.
    public enum OtherEncodings: Sendable, Hashable {
        /// Leave its bytes untouched and unvisited (the Go proxy's behaviour for blobs it cannot decode).
        case leaveUntouched
        /// Fail the walk with ``ProtoWireError/Kind/embeddedEncodingNotWalked(encoding:)``: for rules whose
        /// purpose is to see every value, such as an access check.
        case fail
    }

    /// The message type that wraps the serialized bytes, and how to tell whether they are protobuf.
    public struct Container: Sendable, Hashable {
        /// The container's full name (`temporal.api.common.v1.DataBlob`).
        public var messageName: String
        /// Its `bytes` field holding the serialized message (`data`).
        public var bytesField: String
        /// Its enum or integer field naming the encoding (`encoding_type`); `nil` when the bytes are always protobuf.
        public var encodingField: String?
        /// Encoding values under which the bytes are walked; an absent encoding field counts as 0.
        public var walkedEncodings: Set<UInt64>

        /// Describes a container type.
        public init(messageName: String, bytesField: String, encodingField: String?, walkedEncodings: Set<UInt64>) {
            self.messageName = messageName
            self.bytesField = bytesField
            self.encodingField = encodingField
            self.walkedEncodings = walkedEncodings
        }

        /// Temporal's `DataBlob`: `data` is walked when `encoding_type` is `ENCODING_TYPE_PROTO3` (1) or unset (0).
        /// `ENCODING_TYPE_JSON` (2) blobs are protojson, not protobuf; Temporal no longer writes them, and the rule's
        /// ``OtherEncodings`` decides what happens if one arrives.
        public static let temporalDataBlob = Container(
            messageName: "temporal.api.common.v1.DataBlob",
            bytesField: "data",
            encodingField: "encoding_type",
            walkedEncodings: [0, 1]
        )
    }

    /// The fields that hold the serialized message (directly, or through a ``container``).
    public var fields: FieldSelector
    /// The container type of the selected fields, or `nil` when they are `bytes` fields themselves.
    public var container: Container?
    /// The full name of the serialized message's type.
    public var messageName: String
    /// What to do with holders in an encoding the container does not walk.
    public var otherEncodings: OtherEncodings

    /// A rule for `fields` holding a serialized `messageName`, directly or through `container`.
    public init(
        fields: FieldSelector,
        container: Container?,
        messageName: String,
        otherEncodings: OtherEncodings = .leaveUntouched
    ) {
        self.fields = fields
        self.container = container
        self.messageName = messageName
        self.otherEncodings = otherEncodings
    }

    /// `DataBlob` fields whose `data` holds a serialized message, e.g. Temporal's history batches.
    public static func dataBlobs(
        _ fields: FieldSelector,
        holding messageName: String,
        otherEncodings: OtherEncodings = .leaveUntouched
    ) -> EmbeddedMessageRule {
        EmbeddedMessageRule(
            fields: fields,
            container: .temporalDataBlob,
            messageName: messageName,
            otherEncodings: otherEncodings
        )
    }
}

/// The targets of a walk: which string values a visit sees and a rewrite may replace, and which serialized
/// messages are walked as part of the message that carries them.
public struct WalkRules: Sendable, Hashable {
    /// `string` fields (singular or repeated) whose values are targets.
    public var strings: [FieldSelector]
    /// `map<string, V>` fields whose keys are targets.
    public var mapKeys: [FieldSelector]
    /// `map<K, string>` fields whose values are targets.
    public var mapValues: [FieldSelector]
    /// `bytes` fields walked as the messages they hold.
    public var embeddedMessages: [EmbeddedMessageRule]

    /// Rules with the given targets; all default to none.
    public init(
        strings: [FieldSelector] = [],
        mapKeys: [FieldSelector] = [],
        mapValues: [FieldSelector] = [],
        embeddedMessages: [EmbeddedMessageRule] = []
    ) {
        self.strings = strings
        self.mapKeys = mapKeys
        self.mapValues = mapValues
        self.embeddedMessages = embeddedMessages
    }
}
