"""Capture (`capture:` of a cluster connection): chosen calls recorded as the network carried them into a rotating
JSON Lines file — request metadata with secrets redacted, every message each way before any plugin, the response's
headers and trailers, the status — by the real binary, with real gRPC peers and a real Temporal dev server."""

from __future__ import annotations

import base64
import gzip
import json
import signal
import time
import uuid
from pathlib import Path

import grpc
import pytest

from backend import CALL_ID_HEADER, method
from proxy_process import DIRECT, ClusterConnection, render_config

pytestmark = pytest.mark.skipif(DIRECT, reason="capture is the proxy's")


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def calls(path: Path) -> dict[str, list[dict]]:
    """Records grouped by call id, in file order."""
    grouped: dict[str, list[dict]] = {}
    for record in records(path):
        grouped.setdefault(record["id"], []).append(record)
    return grouped


def wait_for(condition, what: str, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.05)


def capturing(backend, tmp_path, **capture) -> ClusterConnection:
    return ClusterConnection("itest", local_upstream=backend.address, remote_upstream=backend.address,
                             extra={"capture": {"file": str(tmp_path / "calls.jsonl"), **capture}})


def test_a_unary_call_and_a_stream_are_recorded_as_sent_with_secrets_redacted(backend, proxy_factory,
                                                                               channel_factory, tmp_path):
    proxy = proxy_factory.start([capturing(backend, tmp_path, redactHeaders=["x-team-token"])])
    channel = channel_factory(proxy.outbound())
    metadata = [(CALL_ID_HEADER, "unary"), ("authorization", "Bearer secret"), ("x-team-token", "t0k3n"),
                ("x-kept", 'visible "quoted" \\ back')]
    assert channel.unary_unary(method("Echo"))(b"\x00hello\xff", timeout=10, metadata=metadata) == b"\x00hello\xff"
    answers = list(channel.stream_stream(method("EchoStream"))(iter([b"one", b"two"]), timeout=10))
    assert answers == [b"one", b"two"]
    path = tmp_path / "calls.jsonl"
    wait_for(lambda: sum(r["type"] == "end" for r in records(path)) == 2, "both calls recorded")
    assert oct(path.stat().st_mode & 0o777) == "0o600"

    unary, stream = calls(path).values()
    start = unary[0]
    assert start["type"] == "call" and start["v"] == 1
    assert start["method"] == method("Echo") and start["side"] == "outbound" and start["connection"] == "itest"
    headers = dict(start["metadata"])
    assert headers["authorization"] == "<redacted>" and headers["x-team-token"] == "<redacted>"
    assert headers["x-kept"] == 'visible "quoted" \\ back' and headers[":path"] == method("Echo")
    messages = [r for r in unary if r["type"] == "message"]
    assert [(m["direction"], m["index"], base64.b64decode(m["payload"])) for m in messages] == [
        ("request", 0, b"\x00hello\xff"), ("response", 0, b"\x00hello\xff")]
    kinds = [r["kind"] for r in unary if r["type"] == "metadata"]
    assert kinds == ["headers", "trailers"], unary
    assert unary[-1]["type"] == "end" and unary[-1]["status"] == 0 and "truncated" not in unary[-1]

    payloads = [(m["direction"], base64.b64decode(m["payload"])) for m in stream if m["type"] == "message"]
    assert sorted(payloads) == [("request", b"one"), ("request", b"two"), ("response", b"one"), ("response", b"two")]
    assert stream[-1]["status"] == 0


def test_only_the_chosen_side_methods_and_namespaces_are_recorded(backend, proxy_factory, channel_factory, tmp_path):
    proxy = proxy_factory.start([capturing(backend, tmp_path, side="inbound", methods=[method("Echo")],
                                           namespaces=["orders"])])
    inbound = channel_factory(proxy.inbound())
    outbound = channel_factory(proxy.outbound())
    inbound.unary_unary(method("Echo"))(b"kept", timeout=10, metadata=[("temporal-namespace", "orders")])
    inbound.unary_unary(method("Echo"))(b"other namespace", timeout=10, metadata=[("temporal-namespace", "billing")])
    inbound.unary_unary(method("Echo"))(b"no namespace", timeout=10)
    inbound.unary_unary(method("Who"))(b"", timeout=10, metadata=[("temporal-namespace", "orders")])
    outbound.unary_unary(method("Echo"))(b"outbound", timeout=10, metadata=[("temporal-namespace", "orders")])
    path = tmp_path / "calls.jsonl"
    wait_for(lambda: any(r["type"] == "end" for r in records(path)), "the matching call recorded")
    time.sleep(0.5)
    [call] = calls(path).values()
    assert [base64.b64decode(r["payload"]) for r in call if r["type"] == "message"] == [b"kept", b"kept"]


def test_the_file_rotates_and_keeps_max_files(backend, proxy_factory, channel_factory, tmp_path):
    import urllib.request

    from netutil import free_address

    metrics = free_address()
    proxy = proxy_factory.start([capturing(backend, tmp_path, maxFileBytes=4096, maxFiles=2)], metrics_address=metrics)
    channel = channel_factory(proxy.outbound())
    for index in range(40):
        channel.unary_unary(method("Echo"))(b"x" * 200, timeout=10, metadata=[(CALL_ID_HEADER, f"c{index}")])
    path = tmp_path / "calls.jsonl"
    rotated = tmp_path / "calls.jsonl.1"
    wait_for(lambda: rotated.exists() and path.exists(), "a rotation")
    time.sleep(0.5)
    assert not (tmp_path / "calls.jsonl.2").exists()
    for file in (path, rotated):
        assert file.stat().st_size <= 4096, file
        records(file)  # every line parses
    text = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=5).read().decode()
    written = [line for line in text.splitlines() if line.startswith("s2s_proxy_capture_records_total{")]
    assert written and float(written[0].split()[-1]) >= 40 * 3, written  # at least call, end and one message each
    assert f's2s_proxy_capture_dropped_calls_total{{file="{path}"}} 0' in text, text


def test_sighup_turns_capture_on_and_off(backend, proxy_factory, channel_factory, tmp_path):
    connection = ClusterConnection("itest", local_upstream=backend.address, remote_upstream=backend.address)
    proxy = proxy_factory.start([connection])
    channel = channel_factory(proxy.outbound())
    path = tmp_path / "calls.jsonl"

    def reload(count: int) -> None:
        proxy.config_path.write_text(render_config([connection], drain_timeout_seconds=proxy.drain_timeout_seconds))
        proxy.process.send_signal(signal.SIGHUP)
        wait_for(lambda: proxy.log(None).count("reload done") == count, "the reload")

    channel.unary_unary(method("Echo"))(b"before", timeout=10)
    connection.extra = {"capture": {"file": str(path)}}
    reload(1)
    channel.unary_unary(method("Echo"))(b"during", timeout=10)
    wait_for(lambda: any(r["type"] == "end" for r in records(path)), "the call recorded")
    connection.extra = {}
    reload(2)
    channel.unary_unary(method("Echo"))(b"after", timeout=10)
    time.sleep(0.5)
    payloads = {base64.b64decode(r["payload"]) for r in records(path) if r["type"] == "message"}
    assert payloads == {b"during"}, payloads


def test_a_capture_that_names_a_missing_directory_is_refused_by_validate(backend, proxy_factory, tmp_path):
    import subprocess

    from proxy_process import proxy_binary

    config = tmp_path / "bad.yaml"
    connection = ClusterConnection("itest", local_upstream=backend.address, remote_upstream=backend.address,
                                   extra={"capture": {"file": str(tmp_path / "nope" / "calls.jsonl"), "side": "up"}})
    config.write_text(render_config([connection]))
    result = subprocess.run([str(proxy_binary()), "validate", "--config", str(config)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "does not exist; create it or record elsewhere" in result.stderr, result.stderr
    assert '"up" is not a side; use inbound, outbound or both' in result.stderr, result.stderr


def test_temporal_sdk_traffic_is_captured_and_decodes(temporal_server, proxy_factory, tmp_path):
    # What an author captures to test a translator against: the Python SDK starting a workflow through the proxy.
    import asyncio

    from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest, StartWorkflowExecutionResponse
    from temporalio.client import Client

    path = tmp_path / "temporal.jsonl"
    start = "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"
    proxy = proxy_factory.start([ClusterConnection(
        "itest", local_upstream=temporal_server.address, remote_upstream=temporal_server.address,
        extra={"capture": {"file": str(path), "methods": [start]}})])
    workflow_id = f"captured-{uuid.uuid4()}"

    async def start_workflow():
        client = await Client.connect(proxy.outbound(), namespace="default")
        await client.start_workflow("CapturedWorkflow", "arg", id=workflow_id, task_queue="captured-queue")

    asyncio.run(start_workflow())
    wait_for(lambda: any(r["type"] == "end" for r in records(path)), "the call recorded")
    [call] = calls(path).values()
    assert call[0]["method"] == start and dict(call[0]["metadata"])["temporal-namespace"] == "default"
    request, response = [r for r in call if r["type"] == "message"]

    def payload(record: dict) -> bytes:
        # As on the wire: the SDK and Temporal compress with gzip, and the record says so.
        raw = base64.b64decode(record["payload"])
        if record["compressed"]:
            assert record["encoding"] == "gzip", record
            return gzip.decompress(raw)
        return raw

    decoded = StartWorkflowExecutionRequest.FromString(payload(request))
    assert decoded.workflow_id == workflow_id and decoded.namespace == "default"
    assert StartWorkflowExecutionResponse.FromString(payload(response)).run_id
    assert call[-1]["status"] == 0


def test_replay_reports_what_each_plugin_did_and_expect_catches_a_change(temporal_server, proxy_factory, tmp_path):
    # Real traffic from the Temporal SDK through a renaming proxy, captured on the inbound side; replayed offline
    # (no Temporal) through the same config: the report names namespace-rename's header edit and the renamed
    # field; a saved report passes --expect, and the same capture under another mapping fails it.
    import asyncio
    import subprocess

    from temporalio.client import Client

    from proxy_process import REPO_ROOT, proxy_binary

    path = tmp_path / "renamed.jsonl"
    start = "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"
    connection = ClusterConnection(
        "itest", local_upstream=temporal_server.address, remote_upstream=temporal_server.address,
        extra={"namespaceTranslation": {"mappings": [{"local": "default", "remote": "default.remote"}]},
               "capture": {"file": str(path), "side": "inbound", "methods": [start]}})
    proxy = proxy_factory.start([connection])
    from plugin_build import wait_for_plugin_schema
    import grpc as grpc_module

    wait_for_plugin_schema(grpc_module.insecure_channel(proxy.inbound()))

    async def start_workflow():
        client = await Client.connect(proxy.inbound(), namespace="default.remote")
        await client.start_workflow("Replayed", "arg", id=f"replayed-{uuid.uuid4()}", task_queue="replayed")

    asyncio.run(start_workflow())
    wait_for(lambda: any(r["type"] == "end" for r in records(path)), "the call recorded")

    schema = REPO_ROOT / "Tests" / "Fixtures" / "temporal-dev-schema.binpb"
    config = tmp_path / "replay.yaml"
    config.write_text(render_config([connection]))
    report = tmp_path / "report.json"

    def replay(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(proxy_binary()), "replay", "--config", str(config), "--capture", str(path),
                               "--schema", str(schema), *extra], capture_output=True, text=True, timeout=60)

    first = replay("--write-report", str(report))
    assert first.returncode == 0, first.stderr
    text = first.stdout
    assert f"itest/inbound {start}" in text, text
    assert "call_start namespace-rename (clusterConnections[0].namespaceTranslation): edited" in text, text
    assert "temporal-namespace: default.remote -> default" in text, text
    assert "on_message request #0 namespace-rename" in text and 'namespace: "default.remote" -> "default"' in text, text
    assert "on_message request #0 utf8-repair" in text, text

    same = replay("--expect", str(report))
    assert same.returncode == 0 and "same as" in same.stderr, same.stderr

    connection.extra["namespaceTranslation"] = {"mappings": [{"local": "elsewhere", "remote": "default.remote"}]}
    config.write_text(render_config([connection]))
    changed = replay("--expect", str(report))
    assert changed.returncode == 1, (changed.stdout, changed.stderr)
    assert "differs from" in changed.stderr and '"default.remote" -> "elsewhere"' in changed.stderr, changed.stderr

    broken = tmp_path / "broken.jsonl"
    broken.write_text(path.read_text() + "not json\n")
    bad = subprocess.run([str(proxy_binary()), "replay", "--config", str(config), "--capture", str(broken),
                          "--schema", str(schema)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "is not a capture record" in bad.stderr, bad.stderr
