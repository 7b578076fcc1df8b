"""utf8-repair, run by `s2s-proxy plugin run` on messages that carry invalid UTF-8 the way Temporal 1.22 sent them,
with the repaired output parsed by the Temporal Python SDK's generated types (a strict protobuf decoder that refuses
invalid UTF-8 in string fields, as Temporal 1.23 and newer do).

Owns: the plugin's end-to-end contract with a strict decoder; the rules themselves are unit-tested in
Tests/PluginKitTests/Plugins.
"""

from __future__ import annotations

import subprocess

import pytest
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import DataBlob
from temporalio.api.enums.v1 import EncodingType, EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import History, HistoryEvent, WorkflowExecutionFailedEventAttributes
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryResponse

from plugin_build import REPO_ROOT
from protowire import decode, field_bytes, field_varint
from proxy_process import DIRECT, proxy_binary

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
