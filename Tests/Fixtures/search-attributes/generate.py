"""Writes the search-attribute fixtures of Tests/HostTests/SearchAttributeRenamePluginTests.swift.

A replication batch of two mutable-state tasks of two namespaces, each with one search attribute and a memo entry
of the same name and shape, as the source cluster sends it (`mutable-state.binpb`) and as it must leave the proxy
toward the remote cluster (`mutable-state-renamed.binpb`): namespace A's CustomerId becomes Keyword05, namespace B's
becomes Text02, both memos stay. The first task names its namespace only after the state (its own namespace_id
field comes after the artifact on the wire). Built from the schema fixture with Python protobuf, independently of
the Swift walker. Run from the repository root: `python3 Tests/Fixtures/search-attributes/generate.py`.
"""

from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

HERE = Path(__file__).parent
NAMESPACE_A = "aaaaaaaa-0000-4000-8000-000000000001"
NAMESPACE_B = "bbbbbbbb-0000-4000-8000-000000000002"


def message_class(pool, name):
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


def batch(pool, key_a, key_b):
    response = message_class(pool, "temporal.server.api.adminservice.v1.StreamWorkflowReplicationMessagesResponse")()
    messages = response.messages
    messages.exclusive_high_watermark = 42

    first = messages.replication_tasks.add()
    first.task_type = 13
    first.source_task_id = 40
    versioned = first.sync_versioned_transition_task_attributes
    info = versioned.versioned_transition_artifact.sync_workflow_state_snapshot_attributes.state.execution_info
    info.workflow_id = "order-1"
    fill(info, key_a)
    versioned.namespace_id = NAMESPACE_A
    versioned.workflow_id = "order-1"

    second = messages.replication_tasks.add()
    second.task_type = 7
    second.source_task_id = 41
    info = second.sync_workflow_state_task_attributes.workflow_state.execution_info
    info.namespace_id = NAMESPACE_B
    info.workflow_id = "invoice-9"
    fill(info, key_b)
    return response.SerializeToString(deterministic=True)


def fill(info, key):
    attribute = info.search_attributes[key]
    attribute.metadata["encoding"] = b"json/plain"
    attribute.data = b'"customer-7"'
    memo = info.memo["CustomerId"]
    memo.metadata["encoding"] = b"json/plain"
    memo.data = b'"memo stays"'


def main():
    files = descriptor_pb2.FileDescriptorSet()
    files.ParseFromString((HERE.parent / "temporal-dev-schema.binpb").read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    (HERE / "mutable-state.binpb").write_bytes(batch(pool, "CustomerId", "CustomerId"))
    (HERE / "mutable-state-renamed.binpb").write_bytes(batch(pool, "Keyword05", "Text02"))


if __name__ == "__main__":
    main()
