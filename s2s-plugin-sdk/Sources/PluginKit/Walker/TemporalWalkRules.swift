// Walk rules that find what the Go s2s-proxy's translators and access check find in Temporal messages, so our
// plugins and third-party ones start from the same field lists (its behaviour reference, section 4.2).
//
// They are ordinary ``WalkRules``; a plugin that needs more (another blob field a new Temporal release adds) copies
// and extends them.

extension EmbeddedMessageRule {
    /// The `DataBlob` fields of Temporal's APIs that carry serialized history events (a `History` message):
    /// `events` and `new_run_events` (replication history tasks), `event_batch` (new-run info), `event_batches`
    /// (backfill tasks, versioned-transition artifacts), `events_batches`, and `history_batches`
    /// (`GetWorkflowExecutionRawHistoryV2Response`).
    public static let temporalHistoryBlobFieldNames: Set<String> = [
        "events", "new_run_events", "event_batch", "event_batches", "events_batches", "history_batches",
    ]

    /// Walks the `History` inside every history-carrying `DataBlob`, when its encoding is protobuf.
    public static func temporalHistoryBlobs(otherEncodings: OtherEncodings = .leaveUntouched) -> EmbeddedMessageRule {
        .dataBlobs(
            .named(temporalHistoryBlobFieldNames),
            holding: "temporal.api.history.v1.History",
            otherEncodings: otherEncodings
        )
    }
}

extension WalkRules {
    /// Namespace names: string fields `namespace`, `workflow_namespace` and `parent_workflow_namespace` in any
    /// message, `NamespaceInfo.name`, and the same inside history blobs. Namespace ids are not targets.
    public static func temporalNamespaces(
        historyBlobs: EmbeddedMessageRule.OtherEncodings = .leaveUntouched
    ) -> WalkRules {
        WalkRules(
            strings: [
                .named(["namespace", "workflow_namespace", "parent_workflow_namespace"]),
                .field("name", of: "temporal.api.namespace.v1.NamespaceInfo"),
            ],
            embeddedMessages: [.temporalHistoryBlobs(otherEncodings: historyBlobs)]
        )
    }

    /// Search-attribute names: keys of `SearchAttributes.indexed_fields` and of `map<string, …>` fields named
    /// `search_attributes` (mutable state in replication tasks), and the same inside history blobs. Other maps of
    /// the same shape (`Memo`, `Header`) are not targets.
    public static func temporalSearchAttributes(
        historyBlobs: EmbeddedMessageRule.OtherEncodings = .leaveUntouched
    ) -> WalkRules {
        WalkRules(
            mapKeys: [
                .field("indexed_fields", of: "temporal.api.common.v1.SearchAttributes"),
                .named(["search_attributes"]),
            ],
            embeddedMessages: [.temporalHistoryBlobs(otherEncodings: historyBlobs)]
        )
    }
}
