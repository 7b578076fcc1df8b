"""Translator plugins loaded into the real proxy: the probe plugin (Tests/Plugins/probe_plugin.c), built with `cc`
against the ABI header, rewriting, rejecting and failing on real gRPC traffic between grpcio clients and a grpcio
backend. What the probe does with which message is described at the top of its source.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import subprocess
import threading
import time
import uuid
from pathlib import Path

import grpc
import pytest

from backend import CALL_ID_HEADER, DETECT_HALF_CLOSE_HEADER, RESPONSE_COMPRESSION_HEADER, method
from plugin_build import wait_for_plugin_schema
from proxy_process import DIRECT, ClusterConnection, proxy_binary, render_config

TIMEOUT = 30

pytestmark = pytest.mark.skipif(DIRECT, reason="plugins run inside the proxy process")


def probe(probe_plugins, variant="probe", **entry):
    return {"path": str(probe_plugins[variant]), **entry}


@pytest.fixture
def plugin_proxy(backend, proxy_factory):
    """Starts a proxy whose one connection forwards both listeners to `backend` through the given plugin chain."""

    def start(plugins, **options):
        connection = ClusterConnection("itest", local_upstream=backend.address, remote_upstream=backend.address,
                                       plugins=plugins)
        return proxy_factory.start([connection], **options)

    return start


def address(proxy, listener):
    return proxy.outbound() if listener == "outbound" else proxy.inbound()


def metadata_seen(backend, call_id):
    return [(k, v) for k, v in backend.record(call_id).metadata]


def bidi_lockstep(channel, messages, metadata=()):
    """Sends each message and waits for its echo before the next one; returns the echoes, or the error."""
    outgoing = queue.Queue()
    stream = channel.stream_stream(method("EchoStream"))

    def requests():
        while True:
            item = outgoing.get()
            if item is None:
                return
            yield item

    responses = stream(requests(), timeout=TIMEOUT, metadata=metadata)
    echoes = []
    try:
        for message in messages:
            outgoing.put(message)
            echoes.append(next(responses))
        outgoing.put(None)
        echoes.extend(responses)
    finally:
        outgoing.put(None)
    return echoes


# Rewriting ---------------------------------------------------------------------------------------------------------


def test_plugin_rewrites_requests_and_responses_on_both_listeners(probe_plugins, plugin_proxy, channel_factory,
                                                                  listener):
    proxy = plugin_proxy([probe(probe_plugins)])
    echo = channel_factory(address(proxy, listener)).unary_unary(method("Echo"))
    assert echo(b"upper:hello plugin", timeout=TIMEOUT) == b"UPPER:HELLO PLUGIN"
    # Messages the plugin leaves alone arrive byte for byte.
    payload = os.urandom(200_000)
    assert echo(payload, timeout=TIMEOUT) == payload


def test_plugin_metadata_edits_reach_the_upstream_in_chain_order(probe_plugins, plugin_proxy, backend,
                                                                 channel_factory, listener):
    proxy = plugin_proxy([probe(probe_plugins, options={"tag": "A"}), probe(probe_plugins, options={"tag": "B"})])
    cid = str(uuid.uuid4())
    inspect = channel_factory(address(proxy, listener)).unary_unary(method("Inspect"))
    inspect(b"", timeout=TIMEOUT, metadata=[(CALL_ID_HEADER, cid), ("x-client", "kept")])
    seen = metadata_seen(backend, cid)
    assert [v for k, v in seen if k == "x-probe-chain"] == ["A", "B"]
    assert [v for k, v in seen if k == "x-probe-side"] == [listener]
    assert ("x-client", "kept") in seen


def test_side_restricts_an_entry_to_one_listener(probe_plugins, plugin_proxy, backend, channel_factory):
    proxy = plugin_proxy([probe(probe_plugins, side="inbound", options={"tag": "in"})])
    inspect = channel_factory(proxy.inbound()).unary_unary(method("Inspect"))
    cid = str(uuid.uuid4())
    inspect(b"", timeout=TIMEOUT, metadata=[(CALL_ID_HEADER, cid)])
    assert ("x-probe-chain", "in") in metadata_seen(backend, cid)
    cid = str(uuid.uuid4())
    channel_factory(proxy.outbound()).unary_unary(method("Inspect"))(b"", timeout=TIMEOUT,
                                                                     metadata=[(CALL_ID_HEADER, cid)])
    assert not [k for k, _ in metadata_seen(backend, cid) if k.startswith("x-probe")]
    echo = channel_factory(proxy.outbound()).unary_unary(method("Echo"))
    assert echo(b"upper:untouched", timeout=TIMEOUT) == b"upper:untouched"


def test_per_call_state_follows_each_bidi_stream(probe_plugins, plugin_proxy, channel_factory, listener):
    """The probe numbers requests and responses per call: two interleaved streams keep separate counts."""
    proxy = plugin_proxy([probe(probe_plugins, options={"tag": "x"})])
    channel = channel_factory(address(proxy, listener))
    results = {}

    def run(name):
        results[name] = bidi_lockstep(channel, [b"count"] * 5)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    expected = [f"count={i}x;resp={i}".encode() for i in range(1, 6)]
    assert results == {"first": expected, "second": expected}


def test_call_end_reports_the_status_the_client_received(probe_plugins, plugin_proxy, channel_factory):
    proxy = plugin_proxy([probe(probe_plugins)])
    echo = channel_factory(proxy.inbound()).unary_unary(method("Echo"))
    echo(b"one", timeout=TIMEOUT)
    fail = channel_factory(proxy.inbound()).unary_unary(method("Fail"))
    with pytest.raises(grpc.RpcError) as error:
        fail(json.dumps({"code": "NOT_FOUND", "message": "gone"}).encode(), timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    wait_for_log(proxy, "probe call_end status=0 requests=1 responses=1")
    wait_for_log(proxy, "probe call_end status=5 requests=1")


def test_large_replacement_and_fragmented_messages(probe_plugins, plugin_proxy, channel_factory, listener):
    """A replacement far larger than a frame or a window, and messages split across and packed into frames."""
    proxy = plugin_proxy([probe(probe_plugins)])
    channel = channel_factory(address(proxy, listener))
    echo = channel.unary_unary(method("Echo"))
    assert echo(b"grow:3000000", timeout=TIMEOUT) == b"g" * 3_000_000
    messages = [os.urandom(n) for n in (0, 1, 5, 4096, 70_000, 300_000, 17) * 10]
    summary = json.loads(channel.stream_unary(method("Collect"))(iter(messages), timeout=TIMEOUT))
    assert summary["count"] == len(messages)
    assert summary["sha256"] == hashlib.sha256(b"".join(messages)).hexdigest()


def test_a_replacement_over_the_message_limit_ends_the_call(probe_plugins, plugin_proxy, channel_factory):
    proxy = plugin_proxy([probe(probe_plugins)], max_message_bytes=1_000_000)
    echo = channel_factory(proxy.inbound()).unary_unary(method("Echo"))
    with pytest.raises(grpc.RpcError) as error:
        echo(b"grow:2000000", timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "a plugin made a request message of 2000000 bytes" in error.value.details()
    assert echo(b"grow:1000", timeout=TIMEOUT) == b"g" * 1000


def test_compressed_call_passes_a_plugin_that_leaves_it_alone(probe_plugins, plugin_proxy, channel_factory):
    proxy = plugin_proxy([probe(probe_plugins)])
    echo = channel_factory(proxy.inbound(), compression=grpc.Compression.Gzip).unary_unary(method("Echo"))
    payload = b"compressible " * 10_000
    assert echo(payload, timeout=TIMEOUT) == payload


def test_plugins_read_gzip_messages_inflated(probe_plugins, plugin_proxy, channel_factory):
    """Both directions compressed: the probe sees the plain bytes, and its replacement reaches the client."""
    proxy = plugin_proxy([probe(probe_plugins)])
    echo = channel_factory(proxy.inbound(), compression=grpc.Compression.Gzip).unary_unary(method("Echo"))
    payload = b"upper:" + b"compressible " * 5_000
    assert echo(payload, timeout=TIMEOUT, metadata=[(RESPONSE_COMPRESSION_HEADER, "gzip")]) == payload.upper()


def test_a_compressed_message_that_inflates_past_the_limit_ends_the_call(probe_plugins, plugin_proxy,
                                                                        channel_factory):
    proxy = plugin_proxy([probe(probe_plugins)], max_message_bytes=1_000_000)
    echo = channel_factory(proxy.inbound(), compression=grpc.Compression.Gzip).unary_unary(method("Echo"))
    with pytest.raises(grpc.RpcError) as error:
        echo(b"\0" * 900_000 + b"\0" * 200_000, timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_plugin_that_wants_nothing_is_skipped(probe_plugins, plugin_proxy, channel_factory):
    proxy = plugin_proxy([probe(probe_plugins, options={"wantsNothing": True})])
    echo = channel_factory(proxy.inbound()).unary_unary(method("Echo"))
    assert echo(b"upper:skipped", timeout=TIMEOUT) == b"upper:skipped"


# Rejection ----------------------------------------------------------------------------------------------------------


def test_rejection_in_call_start_reaches_the_client_and_never_the_upstream(probe_plugins, plugin_proxy, backend,
                                                                          channel_factory, listener):
    proxy = plugin_proxy([probe(probe_plugins)])
    echo = channel_factory(address(proxy, listener)).unary_unary(method("Echo"))
    cid = str(uuid.uuid4())
    with pytest.raises(grpc.RpcError) as error:
        echo(b"hi", timeout=TIMEOUT, metadata=[(CALL_ID_HEADER, cid), ("x-probe-reject", "7")])
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.value.details() == "probe rejected the call"
    assert not backend.record(cid).started.is_set()
    assert backend.call_count == 0


def test_rejection_mid_stream_ends_the_call_and_cancels_the_upstream(probe_plugins, plugin_proxy, backend,
                                                                     channel_factory, listener):
    proxy = plugin_proxy([probe(probe_plugins)])
    channel = channel_factory(address(proxy, listener))
    cid = str(uuid.uuid4())
    with pytest.raises(grpc.RpcError) as error:
        bidi_lockstep(channel, [b"one", b"two", b"reject", b"never"],
                      metadata=[(CALL_ID_HEADER, cid), (DETECT_HALF_CLOSE_HEADER, "1")])
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.value.details() == "probe rejected request message 2"
    record = backend.record(cid)
    assert record.terminated.wait(10), "the upstream call was not ended"
    assert record.received_messages == 2
    assert not record.request_half_closed, "the upstream saw a clean end of the requests instead of a cancel"


def test_rejecting_a_response_replaces_it_with_the_status(probe_plugins, plugin_proxy, channel_factory):
    """The request "reject" is rejected on its way in; a plugin on the response side sees the echo the same way."""
    proxy = plugin_proxy([probe(probe_plugins, options={"tag": "t"})])
    channel = channel_factory(proxy.inbound())
    with pytest.raises(grpc.RpcError) as error:
        channel.unary_unary(method("Echo"))(b"reject", timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED


# Failure policy -----------------------------------------------------------------------------------------------------


def test_fail_closed_ends_the_call_with_internal(probe_plugins, plugin_proxy, backend, channel_factory):
    proxy = plugin_proxy([probe(probe_plugins)])
    echo = channel_factory(proxy.inbound()).unary_unary(method("Echo"))
    with pytest.raises(grpc.RpcError) as error:
        echo(b"error", timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.INTERNAL
    assert error.value.details() == "s2s-proxy plugin probe failed in on_message: probe failed on purpose"
    cid = str(uuid.uuid4())
    with pytest.raises(grpc.RpcError) as error:
        echo(b"x", timeout=TIMEOUT, metadata=[(CALL_ID_HEADER, cid), ("x-probe-error", "1")])
    assert error.value.code() == grpc.StatusCode.INTERNAL
    assert "probe failed in call_start on purpose" in error.value.details()
    assert not backend.record(cid).started.is_set()


def test_fail_open_forwards_unchanged_and_logs(probe_plugins, plugin_proxy, backend, channel_factory):
    proxy = plugin_proxy([probe(probe_plugins, onError="failOpen", options={"tag": "open"})])
    echo = channel_factory(proxy.inbound()).unary_unary(method("Echo"))
    assert echo(b"error", timeout=TIMEOUT) == b"error"
    cid = str(uuid.uuid4())
    assert echo(b"x", timeout=TIMEOUT, metadata=[(CALL_ID_HEADER, cid), ("x-probe-error", "1")]) == b"x"
    assert backend.record(cid).completed
    wait_for_log(proxy, "going on without it (onError: failOpen)")


# Schema gating --------------------------------------------------------------------------------------------------------


def test_calls_wait_for_the_schema_with_unavailable(probe_plugins, backend, proxy_factory, channel_factory):
    """A plugin that needs the schema gets none here (the backend serves no reflection): its calls say why."""
    connection = ClusterConnection("itest", local_upstream=backend.address, remote_upstream=backend.address,
                                   plugins=[probe(probe_plugins, "probe-schema")])
    proxy = proxy_factory.start([connection])
    echo = channel_factory(proxy.inbound()).unary_unary(method("Echo"))
    with pytest.raises(grpc.RpcError) as error:
        echo(b"schema", timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "waiting for the Temporal schema" in error.value.details()


SCHEMA_FIXTURE = Path(__file__).resolve().parents[1] / "Fixtures" / "temporal-dev-schema.binpb"


def test_schema_from_a_saved_file_reaches_the_plugin(probe_plugins, backend, proxy_factory, channel_factory):
    connection = ClusterConnection("itest", local_upstream=backend.address, remote_upstream=backend.address,
                                   plugins=[probe(probe_plugins, "probe-schema")],
                                   extra={"schema": {"file": str(SCHEMA_FIXTURE)}})
    proxy = proxy_factory.start([connection])
    echo = channel_factory(proxy.inbound()).unary_unary(method("Echo"))
    assert echo(b"schema", timeout=TIMEOUT) == f"schema={SCHEMA_FIXTURE.stat().st_size}".encode()


def test_schema_pulled_from_the_local_temporal_unlocks_the_plugins_calls(probe_plugins, temporal_server,
                                                                         proxy_factory, channel_factory):
    """Reflection from the real dev server (local.tcpClient): calls wait UNAVAILABLE, then pass once it arrived."""
    connection = ClusterConnection("itest", local_upstream=temporal_server.address,
                                   remote_upstream=temporal_server.address,
                                   plugins=[probe(probe_plugins, "probe-schema")])
    proxy = proxy_factory.start([connection])
    assert len(wait_for_plugin_schema(channel_factory(proxy.inbound()))) > 0
    wait_for_log(proxy, "plugin has the Temporal schema")
    wait_for_log(proxy, "Temporal schema ready")


# Loading errors ---------------------------------------------------------------------------------------------------


def run_proxy(tmp_path, backend, plugins, command="start", extra=None):
    connection = ClusterConnection("itest", local_upstream=backend.address, remote_upstream=backend.address,
                                   plugins=plugins, extra=extra or {})
    config = tmp_path / "plugins.yaml"
    config.write_text(render_config([connection]))
    return subprocess.run([str(proxy_binary()), command, "--config", str(config)], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("command", ["start", "validate"])
@pytest.mark.parametrize(
    "variant, entry, expected",
    [
        ("probe-abi2", {}, "was built for plugin ABI 2.1, but this s2s-proxy speaks plugin ABI 1.1"),
        ("probe-no-entry", {}, "has no `s2s_plugin_entry` symbol"),
        ("probe-refuse-entry", {}, "refused to load into this host"),
        ("probe", {"options": {"refuse": True}},
         "clusterConnections[0].plugins[0]: plugin probe refused its options: refusing as the options ask"),
        (None, {"path": "/nonexistent/libnothing.so"}, "plugin file /nonexistent/libnothing.so does not exist"),
        (None, {"path": "/etc/hostname"}, "is not a loadable shared object"),
        (None, {"name": "no-such-plugin"}, "no bundled plugin named no-such-plugin"),
    ],
)
def test_plugin_loading_errors_refuse_the_config(tmp_path, backend, probe_plugins, command, variant, entry, expected):
    plugin = probe(probe_plugins, variant, **entry) if variant else entry
    result = run_proxy(tmp_path, backend, [plugin], command)
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in result.stderr


@pytest.mark.parametrize("command", ["start", "validate"])
def test_a_schema_the_plugin_rejects_or_a_broken_schema_file_refuses_the_config(tmp_path, backend, probe_plugins,
                                                                               command):
    rejecting = probe(probe_plugins, "probe-schema", options={"rejectSchema": True})
    result = run_proxy(tmp_path, backend, [rejecting], command, extra={"schema": {"file": str(SCHEMA_FIXTURE)}})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "plugin probe (clusterConnections[0].plugins[0]) rejected the Temporal schema: the schema lacks" \
        in result.stderr
    broken = tmp_path / "broken.binpb"
    broken.write_bytes(b"\xff\xff\xff garbage")
    result = run_proxy(tmp_path, backend, [probe(probe_plugins, "probe-schema")], command,
                       extra={"schema": {"file": str(broken)}})
    assert result.returncode == 2, result.stdout + result.stderr
    assert str(broken) in result.stderr


def test_validate_notes_a_schema_pulled_at_start(tmp_path, backend, probe_plugins):
    result = run_proxy(tmp_path, backend, [probe(probe_plugins, "probe-schema")], "validate")
    assert result.returncode == 0, result.stderr
    assert f"note: plugins get the Temporal schema by gRPC reflection at {backend.address} once started" \
        in result.stdout


def test_validate_notes_a_schema_no_plugin_needs(tmp_path, backend, probe_plugins):
    result = run_proxy(tmp_path, backend, [probe(probe_plugins)], "validate",
                       extra={"schema": {"file": str(SCHEMA_FIXTURE)}})
    assert result.returncode == 0, result.stderr
    assert "note: clusterConnections[0].schema is set, but no plugin of itest needs the Temporal schema" in result.stdout


def test_validate_prints_the_chain_per_side(tmp_path, backend, probe_plugins):
    result = run_proxy(tmp_path, backend, [probe(probe_plugins), probe(probe_plugins, side="inbound",
                                                                       onError="failOpen")], "validate")
    assert result.returncode == 0, result.stderr
    assert "plugins itest/outbound: probe 0.0.1\n" in result.stdout
    assert "plugins itest/inbound: probe 0.0.1 -> probe 0.0.1 (failOpen)\n" in result.stdout


def test_bundled_name_is_found_through_the_plugin_path(tmp_path, backend, probe_plugins, monkeypatch):
    monkeypatch.setenv("S2S_PROXY_PLUGIN_PATH", str(probe_plugins["probe"].parent))
    result = run_proxy(tmp_path, backend, [{"name": "probe"}], "validate")
    assert result.returncode == 0, result.stderr
    assert "plugins itest/inbound: probe 0.0.1" in result.stdout


# The command line -----------------------------------------------------------------------------------------------------


def test_plugin_inspect_prints_identity_and_wants(probe_plugins):
    result = subprocess.run([str(proxy_binary()), "plugin", "inspect", str(probe_plugins["probe"]),
                             "--method", "/itest.Backend/Echo"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "name:         probe\n" in result.stdout
    assert "version:      0.0.1\n" in result.stdout
    assert "plugin ABI:   1.1 (this host: 1.1)" in result.stdout
    assert "/itest.Backend/Echo (inbound): call, request messages, response messages" in result.stdout


def test_plugin_run_shows_the_outcome(probe_plugins, tmp_path):
    message = tmp_path / "message.bin"
    message.write_bytes(b"upper:abc")
    output = tmp_path / "out.bin"
    result = subprocess.run([str(proxy_binary()), "plugin", "run", str(probe_plugins["probe"]), "--method", "/a.B/C",
                             "--side", "outbound", "--message", str(message), "--output", str(output),
                             "--header", "x-one=1"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "outcome:  replaced (9 bytes in, 9 bytes out)" in result.stdout
    assert "x-probe-side: outbound" in result.stdout
    assert output.read_bytes() == b"UPPER:ABC"
    rejected = subprocess.run([str(proxy_binary()), "plugin", "run", str(probe_plugins["probe"]), "--method", "/a.B/C",
                               "--message-text", "reject"], capture_output=True, text=True, timeout=30)
    assert rejected.returncode == 3
    assert "status 7 (PERMISSION_DENIED): probe rejected request message 0" in rejected.stdout


def test_plugin_run_without_a_message_runs_the_call_hooks_only(probe_plugins):
    proceeds = subprocess.run([str(proxy_binary()), "plugin", "run", str(probe_plugins["probe"]), "--method", "/a.B/C",
                               "--side", "inbound"], capture_output=True, text=True, timeout=30)
    assert proceeds.returncode == 0, proceeds.stderr
    assert "outcome:  the call proceeds (no message given: call_start and call_end ran)" in proceeds.stdout
    assert "x-probe-side: inbound" in proceeds.stdout
    rejected = subprocess.run([str(proxy_binary()), "plugin", "run", str(probe_plugins["probe"]), "--method", "/a.B/C",
                               "--header", "x-probe-reject=7"], capture_output=True, text=True, timeout=30)
    assert rejected.returncode == 3
    assert "call ended in call_start: status 7 (PERMISSION_DENIED): probe rejected the call" in rejected.stdout


def test_plugin_inspect_checks_options_without_a_method(probe_plugins):
    plugin = str(probe_plugins["probe"])
    accepted = subprocess.run([str(proxy_binary()), "plugin", "inspect", plugin, "--options", '{"tag": "x"}'],
                              capture_output=True, text=True, timeout=30)
    assert accepted.returncode == 0, accepted.stderr
    assert "options:      accepted by the plugin" in accepted.stdout
    assert "wants:" not in accepted.stdout
    refused = subprocess.run([str(proxy_binary()), "plugin", "inspect", plugin, "--options", "[1]"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2
    assert "--options must be a JSON object" in refused.stderr


def wait_for_log(proxy, text, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in proxy.log(tail_lines=None):
            return
        time.sleep(0.1)
    raise AssertionError(f"log never showed {text!r}:\n{proxy.log()}")


def test_plugin_run_takes_and_prints_json_through_the_schema(probe_plugins, tmp_path):
    output = tmp_path / "out.bin"
    """A real Temporal request written as JSON, encoded with the saved dev-server schema, shown back as JSON."""
    request = {"namespace": "default", "workflowId": "wf-1", "workflowType": {"name": "Hello"},
               "taskQueue": {"name": "q"}, "workflowRunTimeout": "30s",
               "searchAttributes": {"indexedFields": {"CustomKeywordField": {"data": "Ilgi"}}}}
    result = subprocess.run([str(proxy_binary()), "plugin", "run", str(probe_plugins["probe"]), "--json",
                             "--schema", str(SCHEMA_FIXTURE), "--method",
                             "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution",
                             "--message-text", json.dumps(request), "--output", str(output)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "outcome:  unchanged" in result.stdout
    # The bytes are the message the Temporal SDK's own generated types make of the same JSON.
    from google.protobuf import json_format
    from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest

    decoded = StartWorkflowExecutionRequest()
    decoded.ParseFromString(output.read_bytes())
    assert decoded == json_format.Parse(json.dumps(request), StartWorkflowExecutionRequest())
    printed = result.stdout.split("output (temporal.api.workflowservice.v1.StartWorkflowExecutionRequest):\n", 1)[1]
    assert json.loads(printed) == request
    missing = subprocess.run([str(proxy_binary()), "plugin", "run", str(probe_plugins["probe"]), "--json",
                              "--method", "/a.B/C", "--message-text", "{}"], capture_output=True, text=True,
                             timeout=30)
    assert missing.returncode != 0
    assert "--json needs --schema" in missing.stderr


# Response metadata (ABI 1.1) ---------------------------------------------------------------------------------------


def test_response_headers_and_trailers_pass_the_plugins_in_response_order(probe_plugins, plugin_proxy,
                                                                           channel_factory):
    # Two entries that want the response's metadata: each adds its tag, so the order shows; the one nearest the
    # server (B) sees them first. Neither may edit grpc-status. The server's own metadata and status go through.
    proxy = plugin_proxy([probe(probe_plugins, options={"tag": "A", "metadata": True}),
                          probe(probe_plugins, options={"tag": "B", "metadata": True})])
    call = channel_factory(proxy.outbound()).unary_unary(method("Inspect"))
    _, rpc = call.with_call(b"", timeout=10)
    initial = list(rpc.initial_metadata())
    trailing = list(rpc.trailing_metadata())
    assert [v for k, v in initial if k == "x-probe-seen-headers"] == ["B", "A"], initial
    assert ("x-itest-initial", "hello") in initial and ("x-itest-initial-bin", b"\x00\x01\xfe\xff") in initial
    assert [v for k, v in trailing if k == "x-probe-trailer"] == ["B", "A"], trailing
    assert [v for k, v in trailing if k == "x-probe-status-edit"] == ["refused"], trailing
    assert ("x-itest-trailer-bin", b"\xff\x00\x7f") in trailing, trailing
    assert rpc.code() == grpc.StatusCode.OK


def test_a_plugin_can_end_a_call_from_its_trailers(probe_plugins, plugin_proxy, channel_factory):
    # Trailers-Only responses (an error with no message) too: the status the client gets is the plugin's.
    proxy = plugin_proxy([probe(probe_plugins, options={"metadata": True})])
    fail = channel_factory(proxy.outbound()).unary_unary(method("Fail"))
    spec = {"code": "NOT_FOUND", "message": "no such thing", "trailers": [["x-probe-reject-trailers", "1"]]}
    with pytest.raises(grpc.RpcError) as ended:
        fail(json.dumps(spec).encode(), timeout=10)
    assert ended.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert ended.value.details() == "probe rejected the trailers"
    assert "call failed in proxy" in proxy.log(None) and "plugin=probe" in proxy.log(None), proxy.log()
    # Without the marker the server's own status and details go through, with the plugin's trailer.
    spec = {"code": "NOT_FOUND", "message": "no such thing", "details_hex": "0805"}
    with pytest.raises(grpc.RpcError) as kept:
        fail(json.dumps(spec).encode(), timeout=10)
    assert kept.value.code() == grpc.StatusCode.NOT_FOUND and kept.value.details() == "no such thing"
    trailers = dict(kept.value.trailing_metadata())
    assert trailers.get("x-probe-trailer") == "probe" and trailers.get("grpc-status-details-bin") == b"\x08\x05"


@pytest.mark.parametrize("on_error", ["failClosed", "failOpen"])
def test_a_plugin_failing_on_the_trailers_follows_its_policy(probe_plugins, plugin_proxy, channel_factory, on_error):
    proxy = plugin_proxy([probe(probe_plugins, onError=on_error, options={"metadata": True})])
    fail = channel_factory(proxy.outbound()).unary_unary(method("Fail"))
    spec = {"code": "ABORTED", "message": "server says", "trailers": [["x-probe-fail-trailers", "1"]]}
    with pytest.raises(grpc.RpcError) as ended:
        fail(json.dumps(spec).encode(), timeout=10)
    if on_error == "failClosed":
        assert ended.value.code() == grpc.StatusCode.INTERNAL
        assert "s2s-proxy plugin probe failed in on_response_metadata: probe failed on the trailers" in \
            ended.value.details()
    else:
        assert ended.value.code() == grpc.StatusCode.ABORTED and ended.value.details() == "server says"


def test_a_plugin_built_for_abi_1_0_is_never_given_response_metadata(probe_plugins, plugin_proxy, channel_factory,
                                                                     tmp_path):
    from plugin_build import PROBE_SOURCE, build_c_plugin

    old = build_c_plugin(PROBE_SOURCE, tmp_path / "libprobe-abi10.so", ["-DPROBE_ABI_1_0"])
    proxy = plugin_proxy([{"path": str(old), "options": {"metadata": True}}])
    _, rpc = channel_factory(proxy.outbound()).unary_unary(method("Inspect")).with_call(b"", timeout=10)
    assert "x-probe-trailer" not in dict(rpc.trailing_metadata())
    assert "x-probe-seen-headers" not in dict(rpc.initial_metadata())


def test_error_trailers_only_reach_a_plugin_for_failed_calls(probe_plugins, plugin_proxy, channel_factory):
    # S2S_WANTS_ERROR_TRAILERS: nothing for a call that succeeds (its headers and trailers cost the plugin nothing),
    # the trailers of one that fails.
    proxy = plugin_proxy([probe(probe_plugins, options={"errorTrailers": True})])
    channel = channel_factory(proxy.outbound())
    _, ok = channel.unary_unary(method("Inspect")).with_call(b"", timeout=10)
    assert "x-probe-trailer" not in dict(ok.trailing_metadata())
    assert "x-probe-seen-headers" not in dict(ok.initial_metadata())
    spec = {"code": "NOT_FOUND", "message": "no such thing"}
    with pytest.raises(grpc.RpcError) as failed:
        channel.unary_unary(method("Fail"))(json.dumps(spec).encode(), timeout=10)
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND
    assert dict(failed.value.trailing_metadata()).get("x-probe-trailer") == "probe"
