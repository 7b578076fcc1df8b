"""Builds Tests/Fixtures/replication/cases.json: replication-stream messages encoded by Python protobuf with the
message classes of the dev server's reflected schema (Tests/Fixtures/temporal-dev-schema.binpb), and what routing
must read from them and write back, computed here independently of the Swift codec.

    .venv/bin/python Tests/Fixtures/replication/generate.py
"""

import json
import pathlib

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

HERE = pathlib.Path(__file__).parent
schema = descriptor_pb2.FileDescriptorSet()
schema.ParseFromString((HERE.parent / "temporal-dev-schema.binpb").read_bytes())
pool = descriptor_pool.DescriptorPool()
for file in schema.file:
    pool.Add(file)


def message(name):
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


Response = message("temporal.server.api.adminservice.v1.StreamWorkflowReplicationMessagesResponse")
Request = message("temporal.server.api.adminservice.v1.StreamWorkflowReplicationMessagesRequest")
Task = message("temporal.server.api.replication.v1.ReplicationTask")

NS = "01a225c4-48c3-79ce-8e7b-135b5db83528"
tasks = []
expected = []


def add(build, route, task_type):
    task = Task()
    build(task)
    tasks.append(task)
    expected.append({"sourceTaskID": task.source_task_id, "taskType": task_type, "route": route})


def history_with_raw(task):
    task.task_type = 2
    task.source_task_id = 1048577
    task.history_task_attributes.namespace_id = "not-the-routing-namespace"
    task.history_task_attributes.workflow_id = "not-the-routing-workflow"
    task.history_task_attributes.run_id = "r1"
    task.raw_task_info.namespace_id = NS
    task.raw_task_info.workflow_id = "orders-42"
    task.raw_task_info.task_id = 1048577
    task.raw_task_info.version = 7
    task.visibility_time.seconds = 1796690287


def activity_without_raw(task):
    task.task_type = 4
    task.source_task_id = 1048578
    task.sync_activity_task_attributes.namespace_id = NS
    task.sync_activity_task_attributes.workflow_id = "billing-7"
    task.sync_activity_task_attributes.version = 3


def shard_status(task):
    task.task_type = 3
    task.source_task_id = 1048579
    task.sync_shard_status_task_attributes.source_cluster = "cluster-a"


def namespace_task(task):
    task.task_type = 1
    task.source_task_id = 1048580
    task.namespace_task_attributes.id = NS


def workflow_state(task):
    task.task_type = 7
    task.source_task_id = 1048581
    info = task.sync_workflow_state_task_attributes.workflow_state.execution_info
    info.namespace_id = NS
    info.workflow_id = "state-1"


def versioned_transition(task):
    task.task_type = 12
    task.source_task_id = 1048582
    task.sync_versioned_transition_task_attributes.namespace_id = NS
    task.sync_versioned_transition_task_attributes.workflow_id = "vt-9"
    task.raw_task_info.run_id = "raw-without-ids"


add(history_with_raw, {"namespaceID": NS, "workflowID": "orders-42"}, 2)
add(activity_without_raw, {"namespaceID": NS, "workflowID": "billing-7"}, 4)
add(shard_status, "everyShard", 3)
add(namespace_task, "unroutable", 1)
add(workflow_state, {"namespaceID": NS, "workflowID": "state-1"}, 7)
add(versioned_transition, {"namespaceID": NS, "workflowID": "vt-9"}, 12)

response = Response()
response.messages.replication_tasks.extend(tasks)
response.messages.exclusive_high_watermark = 1048583
response.messages.exclusive_high_watermark_time.seconds = 1796690300
response.messages.exclusive_high_watermark_time.nanos = 5
response.messages.priority = 10

renumbered = []
for index, task in enumerate(tasks):
    copy = Task()
    copy.CopyFrom(task)
    copy.source_task_id = 5000 + index
    if copy.HasField("raw_task_info"):
        copy.raw_task_info.task_id = 5000 + index
    renumbered.append(copy.SerializeToString().hex())

built = Response()
built.messages.replication_tasks.extend(tasks[:2])
built.messages.exclusive_high_watermark = 77
built.messages.exclusive_high_watermark_time.seconds = 9
built.messages.priority = 1

request = Request()
request.sync_replication_state.inclusive_low_watermark = 1048000
request.sync_replication_state.inclusive_low_watermark_time.seconds = 1796690299
request.sync_replication_state.high_priority_state.inclusive_low_watermark = 1048100
request.sync_replication_state.high_priority_state.flow_control_command = 1
request.sync_replication_state.low_priority_state.inclusive_low_watermark = 1048000
request.sync_replication_state.low_priority_state.inclusive_low_watermark_time.nanos = 3

cases = {
    "response": response.SerializeToString().hex(),
    "tasks": [{**e, "bytes": t.SerializeToString().hex(), "renumbered5000Plus": r}
              for e, t, r in zip(expected, tasks, renumbered)],
    "exclusiveHighWatermark": 1048583,
    "highWatermarkTime": response.messages.exclusive_high_watermark_time.SerializeToString().hex(),
    "priority": 10,
    "builtResponse": built.SerializeToString().hex(),
    "builtResponseTime": built.messages.exclusive_high_watermark_time.SerializeToString().hex(),
    "request": request.SerializeToString().hex(),
    "requestTime": request.sync_replication_state.inclusive_low_watermark_time.SerializeToString().hex(),
    "lowPriorityTime": request.sync_replication_state.low_priority_state.inclusive_low_watermark_time.SerializeToString().hex(),
}
(HERE / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")
print("wrote", HERE / "cases.json")
