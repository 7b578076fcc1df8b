// Rejects walk rules that name what the schema does not have, when the rule set is compiled (a plugin's
// configuration time), so a typo in a message or field name fails loudly instead of matching nothing.
//
// Only selectors that name a message are checked field by field: a name-only selector ("every field called
// `namespace`") legitimately matches nothing in a schema version without such fields.

struct WalkRuleValidator {
    let schema: ProtoSchema
    let rules: WalkRules

    func validate() throws(ProtoSchemaError) {
        for selector in rules.strings {
            try check(selector, role: "string target") { field, _ in field.type == .string }
        }
        for selector in rules.mapKeys {
            try check(selector, role: "map-key target") { field, _ in
                field.isMap && entry(of: field)?.field(number: 1)?.type == .string
            }
        }
        for selector in rules.mapValues {
            try check(selector, role: "map-value target") { field, _ in
                field.isMap && entry(of: field)?.field(number: 2)?.type == .string
            }
        }
        for rule in rules.embeddedMessages {
            try validate(rule)
        }
    }

    private func validate(_ rule: EmbeddedMessageRule) throws(ProtoSchemaError) {
        guard schema.messages[rule.messageName] != nil else {
            throw ProtoSchemaError(.invalidRule("embedded message type \(rule.messageName) is not in the schema"))
        }
        guard let container = rule.container else {
            try check(rule.fields, role: "embedded-message holder") { field, _ in field.type == .bytes }
            return
        }
        guard let containerMessage = schema.messages[container.messageName] else {
            throw ProtoSchemaError(.invalidRule("container type \(container.messageName) is not in the schema"))
        }
        guard containerMessage.field(named: container.bytesField)?.type == .bytes else {
            throw ProtoSchemaError(
                .invalidRule("\(container.messageName) has no bytes field \(container.bytesField)")
            )
        }
        if let encodingField = container.encodingField {
            guard let encoding = containerMessage.field(named: encodingField), !encoding.isRepeated,
                encoding.type.wireType == .varint
            else {
                throw ProtoSchemaError(
                    .invalidRule("\(container.messageName) has no enum or integer field \(encodingField)")
                )
            }
        }
        try check(rule.fields, role: "\(container.messageName) holder") { field, _ in
            field.type == .message && field.typeName == container.messageName
        }
    }

    /// For a selector that names a message: the message exists, and every field it names exists and passes
    /// `fits`. Field numbers without a message are always an error: numbers mean nothing across messages.
    private func check(
        _ selector: FieldSelector,
        role: String,
        fits: (ProtoSchema.Field, ProtoSchema.Message) -> Bool
    ) throws(ProtoSchemaError) {
        guard let messageName = selector.messageName else {
            if !selector.fieldNumbers.isEmpty {
                throw ProtoSchemaError(.invalidRule("field numbers \(selector.fieldNumbers.sorted()) need a message"))
            }
            return
        }
        guard let message = schema.messages[messageName] else {
            throw ProtoSchemaError(.invalidRule("message \(messageName) is not in the schema"))
        }
        let named = selector.fieldNames.sorted().map { (label: $0, field: message.field(named: $0)) }
        let numbered = selector.fieldNumbers.sorted().map { (label: "#\($0)", field: message.field(number: $0)) }
        for (label, field) in named + numbered {
            guard let field else {
                throw ProtoSchemaError(.invalidRule("\(messageName) has no field \(label)"))
            }
            guard fits(field, message) else {
                throw ProtoSchemaError(.invalidRule("\(messageName).\(field.name) cannot be a \(role)"))
            }
        }
    }

    private func entry(of field: ProtoSchema.Field) -> ProtoSchema.Message? {
        field.typeName.flatMap { schema.messages[$0] }
    }
}
