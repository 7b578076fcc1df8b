"""utf8-repair, run by `s2s-proxy plugin run` on messages that carry invalid UTF-8 the way Temporal 1.22 sent them,
with the repaired output parsed by the Temporal Python SDK's generated types (a strict protobuf decoder that refuses
invalid UTF-8 in string fields, as Temporal 1.23 and newer do); and in a running proxy whose Go-format config
translates names (which implies the repair), on a replication stream from a stand-in for a 1.22 server (no 1.22
server is installable here: grpcio serving the bytes such a server sends).

Owns: the plugin's end-to-end contract with a strict decoder; the rules themselves are unit-tested in
Tests/PluginKitTests/Plugins.
"""

from __future__ import annotations

import subprocess
from concurrent import futures

import grpc
import pytest
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import DataBlob
from temporalio.api.enums.v1 import EncodingType, EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import History, HistoryEvent, WorkflowExecutionFailedEventAttributes
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryResponse

from admin_calls import message_class
from netutil import LOOPBACK
from plugin_build import REPO_ROOT, wait_for_plugin_schema
from protowire import decode, field_bytes, field_varint
from proxy_process import DIRECT, ClusterConnection, proxy_binary

pytestmark = pytest.mark.skipif(DIRECT, reason="runs the proxy binary's plugin harness")

SCHEMA = REPO_ROOT / "Tests" / "Fixtures" / "temporal-dev-schema.binpb"
ADMIN = "/temporal.server.api.adminservice.v1.AdminService/"
WORKFLOW = "/temporal.api.workflowservice.v1.WorkflowService/"
# A placeholder of the same length as the invalid bytes, swapped in after serializing: the SDK refuses to build a
# message with invalid UTF-8, and equal lengths keep every enclosing length prefix right.
PLACEHOLDER, INVALID = b"@#@", b"\xff\xfe\xc3"


def failed_history() -> bytes:
    failure = Failure(message="activity failed", cause=Failure(message="bad @#@ end", stack_trace="trace"))
    event = HistoryEvent(event_id=2, event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
                         workflow_execution_failed_event_attributes=WorkflowExecutionFailedEventAttributes(
                             failure=failure))
    return History(events=[HistoryEvent(event_id=1), event]).SerializeToString().replace(PLACEHOLDER, INVALID)


def run_plugin(tmp_path, method: str, message: bytes, options: str = "{}") -> bytes:
    library = proxy_binary().resolve().parent / "libutf8-repair.so"
    assert library.exists(), f"{library} is missing: `swift build` builds the utf8-repair product"
    source, output = tmp_path / "in.binpb", tmp_path / "out.binpb"
    source.write_bytes(message)
    result = subprocess.run([str(proxy_binary()), "plugin", "run", str(library), "--schema", str(SCHEMA),
                             "--method", method, "--direction", "response", "--options", options,
                             "--message", str(source), "--output", str(output)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "outcome:  replaced" in result.stdout, result.stdout
    return output.read_bytes()


def test_invalid_failure_message_in_a_history_becomes_decodable(tmp_path):
    response = field_bytes(1, failed_history())  # GetWorkflowExecutionHistoryResponse.history
    with pytest.raises(DecodeError):
        GetWorkflowExecutionHistoryResponse.FromString(response)
    repaired = GetWorkflowExecutionHistoryResponse.FromString(
        run_plugin(tmp_path, WORKFLOW + "GetWorkflowExecutionHistory", response))
    failure = repaired.history.events[1].workflow_execution_failed_event_attributes.failure
    assert failure.message == "activity failed"
    assert failure.cause.message == "bad \ufffd end"
    assert failure.cause.stack_trace == "trace"


@pytest.mark.parametrize("fields", ["all", "failureMessages"])
def test_invalid_failure_message_inside_a_history_blob_becomes_decodable(tmp_path, fields):
    blob_bytes = DataBlob(encoding_type=EncodingType.ENCODING_TYPE_PROTO3, data=failed_history()).SerializeToString()
    # GetWorkflowExecutionRawHistoryV2Response (an AdminService type the SDK does not ship): history_batches = 2.
    response = field_bytes(2, blob_bytes) + field_varint(4, 5)
    with pytest.raises(DecodeError):
        History.FromString(DataBlob.FromString(blob_bytes).data)
    output = run_plugin(tmp_path, ADMIN + "GetWorkflowExecutionRawHistoryV2", response, f'{{"fields": "{fields}"}}')
    fields_out = decode(output)
    assert fields_out[4] == [5]
    history = History.FromString(DataBlob.FromString(fields_out[2][0]).data)
    assert history.events[1].workflow_execution_failed_event_attributes.failure.cause.message == "bad \ufffd end"


STREAM = ADMIN + "StreamWorkflowReplicationMessages"


def replication_batch_from_1_22() -> bytes:
    """A StreamWorkflowReplicationMessagesResponse with invalid UTF-8 in a SyncActivity task's last failure and in
    the failed-workflow event of a history task's blob."""
    response = message_class("temporal.server.api.adminservice.v1.StreamWorkflowReplicationMessagesResponse")()
    history_task = response.messages.replication_tasks.add()
    history_task.task_type = 5
    attributes = history_task.history_task_attributes
    attributes.namespace_id = "11111111-2222-4333-8444-555555555555"
    attributes.events.encoding_type = EncodingType.ENCODING_TYPE_PROTO3
    attributes.events.data = failed_history()  # already holds the invalid bytes
    activity_task = response.messages.replication_tasks.add()
    activity_task.task_type = 2
    activity_task.sync_activity_task_attributes.last_failure.message = "heartbeat @#@ lost"
    response.messages.exclusive_high_watermark = 7
    # Serialized by hand around the blob: the pool's classes refuse to serialize invalid UTF-8 too.
    return response.SerializeToString().replace(PLACEHOLDER, INVALID)


@pytest.fixture
def server_1_22():
    """Answers every replication-stream request with the batch above, as a 1.22 source shard would."""
    batch = replication_batch_from_1_22()

    def stream(requests, context):
        for _ in requests:
            yield batch

    handler = grpc.method_handlers_generic_handler("temporal.server.api.adminservice.v1.AdminService", {
        "StreamWorkflowReplicationMessages": grpc.stream_stream_rpc_method_handler(stream),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(f"{LOOPBACK}:0")
    server.start()
    yield f"{LOOPBACK}:{port}"
    server.stop(0)


def open_stream(channel) -> bytes:
    call = channel.stream_stream(STREAM)
    return next(iter(call(iter([b""]), timeout=10)))


def test_a_replication_stream_from_a_1_22_peer_is_repaired_by_a_translating_proxy(server_1_22, proxy_factory,
                                                                                  channel_factory):
    response_class = message_class("temporal.server.api.adminservice.v1.StreamWorkflowReplicationMessagesResponse")
    with pytest.raises(DecodeError):
        response_class.FromString(open_stream(channel_factory(server_1_22)))

    # A Go-format connection that renames namespaces: the Go proxy repairs Failure messages there, and so do we.
    connection = ClusterConnection("itest", local_upstream=server_1_22, remote_upstream=server_1_22, extra={
        "namespaceTranslation": {"mappings": [{"local": "orders", "remote": "orders.remote"}]},
        "schema": {"file": str(SCHEMA)},
    })  # fmt: skip
    proxy = proxy_factory.start([connection])
    channel = channel_factory(proxy.inbound())
    repaired = response_class.FromString(wait_for_plugin_schema(channel, call=open_stream))

    history_task, activity_task = repaired.messages.replication_tasks
    assert activity_task.sync_activity_task_attributes.last_failure.message == "heartbeat \ufffd lost"
    events = History.FromString(history_task.history_task_attributes.events.data).events
    assert events[1].workflow_execution_failed_event_attributes.failure.cause.message == "bad \ufffd end"
    assert repaired.messages.exclusive_high_watermark == 7
