"""Writes the fixtures of Tests/HostTests/GoObjectCaseTests.swift: the Go s2s-proxy's own translation test cases
(its behaviour reference, section 4.5), rebuilt as Temporal messages on the wire.

Each case is a function below whose docstring names the Go case it mirrors. It builds its message twice, once with
the local names and once with the remote ones, so `<case>.binpb` is what the local cluster sends and
`<case>.renamed.binpb` what must leave the proxy toward the remote cluster:

* namespace cases (`ns-*`): namespace-rename with the mapping {orders -> orders.cloud};
* search-attribute cases (`sa-*`): search-attribute-rename with {CustomerId -> Keyword05} on an entry without a
  namespace (the Go proxy's single mapping, applied to every namespace);
* the UTF-8 case (`utf8-*`): namespace-rename as above keeps the invalid bytes of a Failure message, and
  `<case>.repaired.binpb` is utf8-repair {fields: failureMessages} run on the renamed message: each run of invalid
  bytes becomes one U+FFFD. The Go proxy does both in one pass; a chain does them in two entries.

A case whose expected bytes equal its original (a message with nothing to rename) says so in the Swift test.
Built from the schema fixture with Python protobuf, independently of the Swift walker; serialized
deterministically, and every map holds one entry, so the bytes do not depend on map order. Run from the
repository root: `python3 Tests/Fixtures/go-cases/generate.py`.
"""

import importlib.util
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

HERE = Path(__file__).parent
LOCAL, REMOTE = "orders", "orders.cloud"
LOCAL_ATTRIBUTE, REMOTE_ATTRIBUTE = "CustomerId", "Keyword05"
NAMESPACE_ID = "5f3c0b4e-7a8e-4a55-9d8c-0d1b2e3f4a5b"
PROTO3 = 1  # temporal.api.enums.v1.EncodingType.ENCODING_TYPE_PROTO3
# Swapped for invalid UTF-8 after serializing (protobuf refuses to serialize it); the same length, so every
# enclosing length prefix stays right.
PLACEHOLDER, INVALID = b"@#@", b"\xff\xfe\xc3"

ADMIN = "temporal.server.api.adminservice.v1."
WORKFLOW = "temporal.api.workflowservice.v1."

POOL = descriptor_pool.DescriptorPool()


def new(name):
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(name))()


def serialize(message):
    return message.SerializeToString(deterministic=True)


def varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def length_delimited(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def history_blob(blob, events):
    """Fills a DataBlob with a serialized History of the given events (messages, or bytes encoded by hand), as
    Temporal stores them: History.events is field 1."""
    blob.encoding_type = PROTO3
    blob.data = b"".join(length_delimited(1, each if isinstance(each, bytes) else serialize(each)) for each in events)


def event(event_id, event_type):
    result = new("temporal.api.history.v1.HistoryEvent")
    result.event_id = event_id
    result.event_type = event_type
    result.version = 1
    return result


def started_event(event_id, parent_namespace):
    """WorkflowExecutionStarted of a child workflow, naming its parent's namespace."""
    result = event(event_id, 1)
    attributes = result.workflow_execution_started_event_attributes
    attributes.workflow_type.name = "ShipOrder"
    attributes.parent_workflow_namespace = parent_namespace
    attributes.parent_workflow_execution.workflow_id = "order-1"
    attributes.parent_workflow_execution.run_id = "run-parent"
    attributes.task_queue.name = "shipping"
    return result


def start_child_event(event_id, namespace):
    result = event(event_id, 29)
    attributes = result.start_child_workflow_execution_initiated_event_attributes
    attributes.namespace = namespace
    attributes.namespace_id = NAMESPACE_ID
    attributes.workflow_id = "shipment-1"
    attributes.workflow_type.name = "ShipOrder"
    return result


def signal_external_event(event_id, namespace):
    result = event(event_id, 37)
    attributes = result.signal_external_workflow_execution_initiated_event_attributes
    attributes.namespace = namespace
    attributes.namespace_id = NAMESPACE_ID
    attributes.workflow_execution.workflow_id = "invoice-9"
    attributes.signal_name = "paid"
    return result


def task(tasks, task_type):
    result = tasks.add()
    result.task_type = task_type
    result.source_task_id = 40
    return result


# Namespace cases: each takes the namespace name to write and returns the serialized message.

def ns_respond_workflow_task_completed(namespace):
    """RespondWorkflowTaskCompletedRequest with SignalExternal and StartChild commands: the request's namespace and
    each command's."""
    request = new(WORKFLOW + "RespondWorkflowTaskCompletedRequest")
    request.task_token = b"token"
    signal = request.commands.add()
    signal.command_type = 12
    attributes = signal.signal_external_workflow_execution_command_attributes
    attributes.namespace = namespace
    attributes.execution.workflow_id = "invoice-9"
    attributes.signal_name = "paid"
    child = request.commands.add()
    child.command_type = 11
    attributes = child.start_child_workflow_execution_command_attributes
    attributes.namespace = namespace
    attributes.workflow_id = "shipment-1"
    attributes.workflow_type.name = "ShipOrder"
    request.identity = "worker-1"
    request.namespace = namespace
    return serialize(request)


def ns_poll_workflow_task_queue(namespace):
    """PollWorkflowTaskQueueResponse whose history holds a SignalExternalWorkflowExecutionInitiated event."""
    response = new(WORKFLOW + "PollWorkflowTaskQueueResponse")
    response.task_token = b"token"
    response.workflow_execution.workflow_id = "order-1"
    response.history.events.append(event(5, 7))
    response.history.events.append(signal_external_event(6, namespace))
    return serialize(response)


def ns_poll_activity_task_queue(namespace):
    """PollActivityTaskQueueResponse: a field named WorkflowNamespace (Go: the plain structs with a
    WorkflowNamespace field)."""
    response = new(WORKFLOW + "PollActivityTaskQueueResponse")
    response.task_token = b"token"
    response.workflow_namespace = namespace
    response.workflow_type.name = "ShipOrder"
    response.activity_id = "1"
    return serialize(response)


def ns_raw_history_two_blobs(namespace):
    """GetWorkflowExecutionRawHistoryV2Response with two event blobs."""
    response = new(ADMIN + "GetWorkflowExecutionRawHistoryV2Response")
    history_blob(response.history_batches.add(), [started_event(1, namespace)])
    history_blob(response.history_batches.add(), [event(5, 7), start_child_event(6, namespace)])
    response.history_node_ids.extend([1, 5])
    return serialize(response)


def namespace_info(info, name):
    info.name = name
    info.state = 1
    info.description = "orders of the shop"
    info.id = NAMESPACE_ID


def ns_describe_namespace(namespace):
    """DescribeNamespaceResponse: NamespaceInfo.name."""
    response = new(WORKFLOW + "DescribeNamespaceResponse")
    namespace_info(response.namespace_info, namespace)
    response.is_global_namespace = True
    return serialize(response)


def ns_update_namespace(namespace):
    """UpdateNamespaceResponse: NamespaceInfo.name."""
    response = new(WORKFLOW + "UpdateNamespaceResponse")
    namespace_info(response.namespace_info, namespace)
    response.failover_version = 2
    return serialize(response)


def ns_list_namespaces(namespace):
    """ListNamespacesResponse: each entry's NamespaceInfo.name; the second, not in the mapping, stays."""
    response = new(WORKFLOW + "ListNamespacesResponse")
    namespace_info(response.namespaces.add().namespace_info, namespace)
    other = response.namespaces.add().namespace_info
    other.name = "billing"
    other.id = "0b9d3a51-2c4e-4f6a-8b7c-9d0e1f2a3b4c"
    response.next_page_token = b"page-2"
    return serialize(response)


def stream_response():
    response = new(ADMIN + "StreamWorkflowReplicationMessagesResponse")
    response.messages.exclusive_high_watermark = 42
    return response


def ns_stream_history_task(namespace):
    """StreamWorkflowReplicationMessagesResponse, HistoryTaskAttributes: the Events and NewRunEvents blobs."""
    response = stream_response()
    attributes = task(response.messages.replication_tasks, 2).history_task_attributes
    attributes.namespace_id = NAMESPACE_ID
    attributes.workflow_id = "order-1"
    history_blob(attributes.events, [event(5, 7), signal_external_event(6, namespace)])
    history_blob(attributes.new_run_events, [started_event(1, namespace)])
    attributes.new_run_id = "run-2"
    return serialize(response)


def ns_stream_sync_workflow_state(namespace):
    """StreamWorkflowReplicationMessagesResponse, SyncWorkflowStateTaskAttributes: a child execution's namespace and
    a buffered WorkflowExecutionStarted event's ParentWorkflowNamespace in the workflow state."""
    response = stream_response()
    attributes = task(response.messages.replication_tasks, 7).sync_workflow_state_task_attributes
    state = attributes.workflow_state
    child = state.child_execution_infos[6]
    child.namespace = namespace
    child.namespace_id = NAMESPACE_ID
    child.started_workflow_id = "shipment-1"
    state.execution_info.namespace_id = NAMESPACE_ID
    state.execution_info.workflow_id = "order-1"
    state.buffered_events.append(started_event(7, namespace))
    return serialize(response)


def ns_stream_backfill_history(namespace):
    """StreamWorkflowReplicationMessagesResponse, BackfillHistoryTaskAttributes: EventBatches and
    NewRunInfo.EventBatch."""
    response = stream_response()
    attributes = task(response.messages.replication_tasks, 10).backfill_history_task_attributes
    attributes.namespace_id = NAMESPACE_ID
    attributes.workflow_id = "order-1"
    history_blob(attributes.event_batches.add(), [start_child_event(6, namespace)])
    history_blob(attributes.event_batches.add(), [signal_external_event(7, namespace)])
    attributes.new_run_info.run_id = "run-2"
    history_blob(attributes.new_run_info.event_batch, [started_event(1, namespace)])
    return serialize(response)


def ns_stream_sync_versioned_transition(namespace):
    """StreamWorkflowReplicationMessagesResponse, SyncVersionedTransitionTaskAttributes: the artifact's EventBatches
    and NewRunInfo."""
    response = stream_response()
    attributes = task(response.messages.replication_tasks, 12).sync_versioned_transition_task_attributes
    artifact = attributes.versioned_transition_artifact
    history_blob(artifact.event_batches.add(), [start_child_event(6, namespace)])
    artifact.new_run_info.run_id = "run-2"
    history_blob(artifact.new_run_info.event_batch, [started_event(1, namespace)])
    attributes.namespace_id = NAMESPACE_ID
    attributes.workflow_id = "order-1"
    return serialize(response)


def ns_namespace_replication_empty(namespace):
    """GetNamespaceReplicationMessagesResponse without messages (Go: a nil response and nil messages)."""
    return serialize(new(ADMIN + "GetNamespaceReplicationMessagesResponse"))


def ns_namespace_replication_no_tasks(namespace):
    """GetNamespaceReplicationMessagesResponse whose messages hold no task (Go: a nil task list)."""
    response = new(ADMIN + "GetNamespaceReplicationMessagesResponse")
    response.messages.last_retrieved_message_id = 3
    return serialize(response)


def ns_namespace_replication_task_without_attributes(namespace):
    """GetNamespaceReplicationMessagesResponse with a namespace task that carries no attributes (Go: a nil task, nil
    attributes)."""
    response = new(ADMIN + "GetNamespaceReplicationMessagesResponse")
    task(response.messages.replication_tasks, 1)
    return serialize(response)


def ns_namespace_replication_attributes_without_info(namespace):
    """GetNamespaceReplicationMessagesResponse with NamespaceTaskAttributes but no NamespaceInfo (Go: nil info)."""
    response = new(ADMIN + "GetNamespaceReplicationMessagesResponse")
    attributes = task(response.messages.replication_tasks, 1).namespace_task_attributes
    attributes.namespace_operation = 2
    attributes.id = NAMESPACE_ID
    return serialize(response)


def ns_namespace_replication_full(namespace):
    """GetNamespaceReplicationMessagesResponse with full NamespaceTaskAttributes: Info.Name."""
    response = new(ADMIN + "GetNamespaceReplicationMessagesResponse")
    attributes = task(response.messages.replication_tasks, 1).namespace_task_attributes
    attributes.namespace_operation = 1
    attributes.id = NAMESPACE_ID
    namespace_info(attributes.info, namespace)
    attributes.config_version = 4
    response.messages.last_retrieved_message_id = 3
    return serialize(response)


def ns_history_event_links(namespace):
    """A list of events of types that carry no namespace field, whose links name a workflow event's namespace
    (Link.WorkflowEvent.namespace): the Go proxy's skip list must not skip them."""
    response = new(WORKFLOW + "GetWorkflowExecutionHistoryResponse")
    signaled = event(8, 26)
    signaled.workflow_execution_signaled_event_attributes.signal_name = "paid"
    completed = event(9, 7)
    for linked, workflow_id in ((signaled, "invoice-9"), (completed, "shipment-1")):
        link = linked.links.add().workflow_event
        link.namespace = namespace
        link.workflow_id = workflow_id
        link.run_id = "run-1"
        link.event_ref.event_id = 4
        link.event_ref.event_type = 1
    response.history.events.extend([signaled, completed])
    return serialize(response)


NAMESPACE_CASES = [
    ns_respond_workflow_task_completed,
    ns_poll_workflow_task_queue,
    ns_poll_activity_task_queue,
    ns_raw_history_two_blobs,
    ns_describe_namespace,
    ns_update_namespace,
    ns_list_namespaces,
    ns_stream_history_task,
    ns_stream_sync_workflow_state,
    ns_stream_backfill_history,
    ns_stream_sync_versioned_transition,
    ns_namespace_replication_empty,
    ns_namespace_replication_no_tasks,
    ns_namespace_replication_task_without_attributes,
    ns_namespace_replication_attributes_without_info,
    ns_namespace_replication_full,
    ns_history_event_links,
]


# Search-attribute cases: each takes the attribute name to write.

def started_event_with_a_valueless_attribute(event_id, key):
    """A WorkflowExecutionStarted event whose only search attribute entry has a key and no value field at all, which
    Python protobuf cannot write (it writes an empty value): encoded by hand, fields in number order."""
    entry = length_delimited(1, key.encode())  # IndexedFieldsEntry.key
    search_attributes = length_delimited(1, entry)  # SearchAttributes.indexed_fields
    attributes = length_delimited(23, search_attributes)  # WorkflowExecutionStartedEventAttributes.search_attributes
    return serialize(event(event_id, 1)) + length_delimited(6, attributes)  # after event_id, event_type, version


def sa_stream_history_task(key):
    """StreamWorkflowReplicationMessagesResponse, HistoryTaskAttributes blobs with WorkflowExecutionStarted search
    attributes: one attribute, no SearchAttributes (Go: nil), empty SearchAttributes (Go: nil IndexedFields), an
    attribute with an empty payload and one with no value at all (Go: a nil value), and the new run's attribute."""
    response = stream_response()
    attributes = task(response.messages.replication_tasks, 2).history_task_attributes
    attributes.namespace_id = NAMESPACE_ID
    attributes.workflow_id = "order-1"
    with_value = event(1, 1)
    payload = with_value.workflow_execution_started_event_attributes.search_attributes.indexed_fields[key]
    payload.metadata["encoding"] = b"json/plain"
    payload.data = b'"customer-7"'
    without = event(2, 1)
    without.workflow_execution_started_event_attributes.task_queue.name = "orders"
    empty = event(3, 1)
    empty.workflow_execution_started_event_attributes.search_attributes.SetInParent()
    empty_payload = event(4, 1)
    empty_payload.workflow_execution_started_event_attributes.search_attributes.indexed_fields[key].SetInParent()
    no_value = started_event_with_a_valueless_attribute(5, key)
    history_blob(attributes.events, [with_value, without, empty, empty_payload, no_value])
    new_run = event(1, 1)
    payload = new_run.workflow_execution_started_event_attributes.search_attributes.indexed_fields[key]
    payload.data = b'"customer-8"'
    history_blob(attributes.new_run_events, [new_run])
    attributes.new_run_id = "run-2"
    return serialize(response)


SEARCH_ATTRIBUTE_CASES = [sa_stream_history_task]


def sa_mutable_state_memo_renamed():
    """Mutable-state WorkflowExecutionInfo.search_attributes beside a memo of the same shape, which must not change
    (Go: SyncVersionedTransition's WorkflowExecutionInfo with a Memo). The original is
    Tests/Fixtures/search-attributes/mutable-state.binpb; under the every-namespace entry both of its tasks'
    attributes become Keyword05."""
    source = HERE.parent / "search-attributes" / "generate.py"
    spec = importlib.util.spec_from_file_location("search_attribute_fixtures", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.batch(POOL, REMOTE_ATTRIBUTE, REMOTE_ATTRIBUTE)


# The UTF-8 case.

def utf8_raw_history_invalid_failure(namespace, message):
    """GetWorkflowExecutionRawHistoryV2Response whose blob holds a namespace name and a Failure message with invalid
    UTF-8 (Go: the raw-history case with "\\xff\\xff", names translated and the bytes repaired in one pass)."""
    response = new(ADMIN + "GetWorkflowExecutionRawHistoryV2Response")
    failed = event(9, 3)
    failure = failed.workflow_execution_failed_event_attributes.failure
    failure.message = "shipping failed"
    failure.cause.message = message
    failure.cause.stack_trace = "trace @ line 3"
    history_blob(response.history_batches.add(), [start_child_event(6, namespace), failed])
    response.history_node_ids.append(6)
    return serialize(response)


def main():
    files = descriptor_pb2.FileDescriptorSet()
    files.ParseFromString((HERE.parent / "temporal-dev-schema.binpb").read_bytes())
    for file in files.file:
        POOL.Add(file)
    for old in HERE.glob("*.binpb"):
        old.unlink()

    def write(name, suffix, data):
        (HERE / f"{name.replace('_', '-')}{suffix}.binpb").write_bytes(data)

    for case in NAMESPACE_CASES:
        write(case.__name__, "", case(LOCAL))
        write(case.__name__, ".renamed", case(REMOTE))
    for case in SEARCH_ATTRIBUTE_CASES:
        write(case.__name__, "", case(LOCAL_ATTRIBUTE))
        write(case.__name__, ".renamed", case(REMOTE_ATTRIBUTE))
    write("sa_mutable_state_memo", ".renamed", sa_mutable_state_memo_renamed())

    def with_invalid_utf8(data):
        assert data.count(PLACEHOLDER) == 2, "the placeholder must occur only where the invalid bytes go"
        return data.replace(PLACEHOLDER, INVALID)

    invalid = "bad @#@ and @#@"
    case = utf8_raw_history_invalid_failure
    write(case.__name__, "", with_invalid_utf8(case(LOCAL, invalid)))
    write(case.__name__, ".renamed", with_invalid_utf8(case(REMOTE, invalid)))
    write(case.__name__, ".repaired", case(REMOTE, "bad \ufffd and \ufffd"))


if __name__ == "__main__":
    main()
