"""The Prometheus endpoint (`metrics.prometheus.listenAddress`): real calls through the proxy, then a scrape parsed
by prometheus_client's text-format parser, whose figures must match the calls made."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeNamespaceResponse

from backend import method
from netutil import free_address
from plugin_build import wait_for_plugin_schema
from proxy_process import DIRECT, ClusterConnection

TIMEOUT = 30

pytestmark = pytest.mark.skipif(DIRECT, reason="the metrics endpoint belongs to the proxy process")


def scrape(address: str) -> dict:
    """Families by name, from `GET /metrics`."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(families: dict, family: str, sample: str, **labels) -> list:
    """The samples named `sample` of `family` whose labels include `labels`."""
    return [
        s for s in families[family].samples
        if s.name == sample and all(s.labels.get(key) == value for key, value in labels.items())
    ]  # fmt: skip


def value(families: dict, family: str, sample: str, **labels) -> float:
    found = samples(families, family, sample, **labels)
    assert len(found) == 1, f"{sample} {labels}: {len(found)} series: {found}"
    return found[0].value


def test_scrape_counts_each_call_by_method_direction_and_status(proxy_factory, backend, channel_factory):
    metrics_address = free_address()
    proxy = proxy_factory.start(
        [ClusterConnection("itest", local_upstream=backend.address, remote_upstream=backend.address)],
        metrics_address=metrics_address,
    )
    outbound = channel_factory(proxy.outbound())
    inbound = channel_factory(proxy.inbound())
    for _ in range(5):
        assert outbound.unary_unary(method("Echo"))(b"hi", timeout=TIMEOUT) == b"hi"
    for _ in range(3):
        assert inbound.unary_unary(method("Echo"))(b"", timeout=TIMEOUT) == b""
    fail = outbound.unary_unary(method("Fail"))
    for _ in range(2):
        with pytest.raises(grpc.RpcError) as error:
            fail(json.dumps({"code": "NOT_FOUND", "message": "gone"}).encode(), timeout=TIMEOUT)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
    repeat = inbound.unary_stream(method("Repeat"))
    assert len(list(repeat(json.dumps({"count": 7, "size": 10}).encode(), timeout=TIMEOUT))) == 7

    families = scrape(metrics_address)
    calls = "s2s_proxy_calls"  # the parser names a counter family without its `_total`
    echo, fail_path, repeat_path = method("Echo"), method("Fail"), method("Repeat")
    expected = [
        ("outbound", echo, "OK", 5),
        ("inbound", echo, "OK", 3),
        ("outbound", fail_path, "NOT_FOUND", 2),
        ("inbound", repeat_path, "OK", 1),
    ]
    for direction, path, code, count in expected:
        assert value(families, calls, "s2s_proxy_calls_total",
                     connection="itest", direction=direction, method=path, grpc_code=code) == count  # fmt: skip
    assert len(samples(families, calls, "s2s_proxy_calls_total")) == len(expected), "only the methods called"

    duration = "s2s_proxy_call_duration_seconds"
    for direction, path, _, count in expected:
        labels = dict(connection="itest", direction=direction, method=path)
        assert value(families, duration, duration + "_count", **labels) == count
        assert value(families, duration, duration + "_sum", **labels) > 0
        buckets = samples(families, duration, duration + "_bucket", **labels)
        assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == count
        values = [b.value for b in buckets]
        assert values == sorted(values), f"buckets are cumulative: {values}"

    for direction in ("outbound", "inbound"):
        assert value(families, "s2s_proxy_calls_in_flight", "s2s_proxy_calls_in_flight",
                     connection="itest", direction=direction) == 0  # fmt: skip
    assert samples(families, "s2s_proxy_calls_failed_in_proxy", "s2s_proxy_calls_failed_in_proxy_total") == []

    # The same calls in the Go proxy's go-grpc-middleware families, with its label names and code spelling.
    handled = "temporal_s2s_proxy_grpc_server_handled"
    handling = "temporal_s2s_proxy_grpc_server_handling_seconds"
    go_codes = {"OK": "OK", "NOT_FOUND": "NotFound"}
    for direction, path, code, count in expected:
        service, name = path.strip("/").split("/")
        labels = dict(grpc_type="unary", grpc_service=service, grpc_method=name, direction=direction,
                      config_name="itest")  # fmt: skip
        assert value(families, handled, handled + "_total", grpc_code=go_codes[code], **labels) == count
        assert value(families, handling, handling + "_count", **labels) == count
        buckets = samples(families, handling, handling + "_bucket", **labels)
        assert [b.labels["le"] for b in buckets] == \
            ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
        assert buckets[-1].value == count
    assert len(samples(families, handled, handled + "_total")) == len(expected)


def test_calls_the_proxy_fails_itself_are_counted_by_the_status_it_sent(proxy_factory, channel_factory):
    metrics_address = free_address()
    nowhere = free_address()  # nothing listens there
    proxy = proxy_factory.start(
        [ClusterConnection("dead", local_upstream=nowhere, remote_upstream=nowhere)],
        metrics_address=metrics_address, connect_timeout_seconds=2,
    )  # fmt: skip
    echo = channel_factory(proxy.outbound()).unary_unary(method("Echo"))
    for _ in range(2):
        with pytest.raises(grpc.RpcError) as error:
            echo(b"x", timeout=TIMEOUT)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE

    families = scrape(metrics_address)
    assert value(families, "s2s_proxy_calls_failed_in_proxy", "s2s_proxy_calls_failed_in_proxy_total",
                 connection="dead", direction="outbound", grpc_code="UNAVAILABLE") == 2  # fmt: skip
    labels = dict(connection="dead", direction="outbound", method=method("Echo"), grpc_code="UNAVAILABLE")
    assert value(families, "s2s_proxy_calls", "s2s_proxy_calls_total", **labels) == 2


def test_other_paths_are_not_found(proxy_factory, backend):
    metrics_address = free_address()
    proxy_factory.start(
        [ClusterConnection("itest", local_upstream=backend.address, remote_upstream=backend.address)],
        metrics_address=metrics_address,
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"http://{metrics_address}/", timeout=10)
    assert error.value.code == 404


def test_plugin_metrics_are_exposed_with_plugin_and_connection_labels(proxy_factory, backend, channel_factory,
                                                                      probe_plugins):
    metrics_address = free_address()
    connection = ClusterConnection("itest", local_upstream=backend.address, remote_upstream=backend.address,
                                   plugins=[{"path": str(probe_plugins["probe"])}])
    proxy = proxy_factory.start([connection], metrics_address=metrics_address)
    echo = channel_factory(proxy.outbound()).unary_unary(method("Echo"))
    for _ in range(3):
        assert echo(b"upper:x", timeout=TIMEOUT) == b"UPPER:X"

    families = scrape(metrics_address)
    series = samples(families, "s2s_plugin_probe_messages", "s2s_plugin_probe_messages_total", connection="itest")
    assert len(series) == 1, series
    assert series[0].value == 6, "three requests and three responses"
    assert series[0].labels["plugin"]
    # What the host counts for the entry itself.
    entry = {"connection": "itest", "entry": "clusterConnections[0].plugins[0]"}
    host_counts = {
        family: samples(families, family.removesuffix("_total"), family, **entry)
        for family in ("s2s_proxy_plugin_calls_total", "s2s_proxy_plugin_messages_total",
                       "s2s_proxy_plugin_rewrites_total", "s2s_proxy_plugin_errors_total",
                       "s2s_proxy_plugin_rejections_total")
    }
    assert all(len(found) == 1 for found in host_counts.values()), host_counts
    assert host_counts["s2s_proxy_plugin_calls_total"][0].value == 3
    assert host_counts["s2s_proxy_plugin_messages_total"][0].value == 6
    assert host_counts["s2s_proxy_plugin_rewrites_total"][0].value >= 3, "the upper-cased responses"
    assert host_counts["s2s_proxy_plugin_errors_total"][0].value == 0
    assert host_counts["s2s_proxy_plugin_rejections_total"][0].value == 0


def test_a_mux_pair_reports_its_sessions_and_the_calls_across_it(proxy_factory, backend, channel_factory):
    mux_address = free_address()
    server_metrics, client_metrics = free_address(), free_address()
    server = proxy_factory.start([ClusterConnection("pair", local_upstream=backend.address, remote_upstream="",
                                                    mux="mux-server", mux_address=mux_address, mux_count=3)],
                                 metrics_address=server_metrics)  # fmt: skip
    client = proxy_factory.start([ClusterConnection("pair", local_upstream=backend.address, remote_upstream="",
                                                    mux="mux-client", mux_address=mux_address, mux_count=3)],
                                 metrics_address=client_metrics)  # fmt: skip
    active = "temporal_s2s_proxy_num_muxes_active"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(value(scrape(a), active, active, config_name="pair") == 3 for a in (server_metrics, client_metrics)):
            break
        time.sleep(0.2)
    echo = channel_factory(client.outbound()).unary_unary(method("Echo"))
    for _ in range(4):
        assert echo(b"m", timeout=TIMEOUT) == b"m"

    for address, mode in ((server_metrics, "mux-server"), (client_metrics, "mux-client")):
        families = scrape(address)
        labels = dict(addr=mux_address, mode=mode, config_name="pair")
        assert value(families, active, active, **labels) == 3
        established = "temporal_s2s_proxy_mux_connection_establish"
        assert value(families, established, established + "_total", **labels) == 3
        ended = "s2s_proxy_mux_sessions_ended"
        assert value(families, ended, ended + "_total", **labels) == 0
        errors = "temporal_s2s_proxy_mux_errors"
        counted = {s.labels["error"]: s.value for s in samples(families, errors, errors + "_total", **labels)}
        assert sum(counted.values()) == 0, counted
        # The Go proxy's per-session gauges, summed over the sessions between the two hosts.
        hosts = dict(local_addr="127.0.0.1", remote_addr="127.0.0.1", mode="muxed", config_name="pair")
        sessions = "temporal_s2s_proxy_mux_connection_active"
        assert value(families, sessions, sessions, **hosts) == 3
    # The calls went over one tunnelled HTTP/2 connection (a yamux stream), still open on both sides.
    streams = "temporal_s2s_proxy_mux_streams_active"
    open_streams = [value(scrape(a), streams, streams, config_name="pair") for a in (client_metrics, server_metrics)]
    assert open_streams[0] >= 1 and open_streams[0] == open_streams[1], open_streams
    calls = dict(connection="pair", method=method("Echo"), grpc_code="OK")
    assert value(scrape(client_metrics), "s2s_proxy_calls", "s2s_proxy_calls_total", direction="outbound", **calls) == 4
    assert value(scrape(server_metrics), "s2s_proxy_calls", "s2s_proxy_calls_total", direction="inbound", **calls) == 4


def test_a_mux_client_counts_the_sessions_it_could_not_establish(proxy_factory, backend):
    metrics_address = free_address()
    nobody = free_address()  # nothing listens there: every dial is refused
    proxy_factory.start([ClusterConnection("lonely", local_upstream=backend.address, remote_upstream="",
                                           mux="mux-client", mux_address=nobody, mux_count=1)],
                        metrics_address=metrics_address)  # fmt: skip
    errors = "temporal_s2s_proxy_mux_errors"
    labels = dict(addr=nobody, mode="mux-client", config_name="lonely")
    deadline = time.monotonic() + 20
    while value(scrape(metrics_address), errors, errors + "_total", error="disconnected", **labels) < 2:
        assert time.monotonic() < deadline, "the refused dials were not counted"
        time.sleep(0.2)
    families = scrape(metrics_address)
    assert value(families, errors, errors + "_total", error="timeout", **labels) == 0
    active = "temporal_s2s_proxy_num_muxes_active"
    assert value(families, active, active, **labels) == 0


def test_plugin_metrics_go_on_counting_across_a_reload(proxy_factory, backend, channel_factory, probe_plugins):
    metrics_address = free_address()
    connection = ClusterConnection("itest", local_upstream=backend.address, remote_upstream=backend.address,
                                   plugins=[{"path": str(probe_plugins["probe"])}])
    proxy = proxy_factory.start([connection], metrics_address=metrics_address)
    echo = channel_factory(proxy.outbound()).unary_unary(method("Echo"))
    assert echo(b"a", timeout=TIMEOUT) == b"a"
    proxy.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while "reload done" not in proxy.log(None):
        assert time.monotonic() < deadline, f"no reload:\n{proxy.log()}"
        time.sleep(0.1)
    assert echo(b"b", timeout=TIMEOUT) == b"b"

    families = scrape(metrics_address)
    series = samples(families, "s2s_plugin_probe_messages", "s2s_plugin_probe_messages_total", connection="itest")
    assert [s.value for s in series] == [4], "the reloaded chain records into the series the endpoint serves"


def test_namespace_rename_reports_hook_times_and_the_go_translation_families(temporal_server, proxy_factory,
                                                                             channel_factory):
    """Real Temporal calls through namespace-rename on the inbound side: the hook histogram counts what the entry
    saw, and the Go proxy's translation families count per protobuf message type, a success being a message the
    plugin changed."""
    metrics_address = free_address()
    connection = ClusterConnection("itest", local_upstream=temporal_server.address,
                                   remote_upstream=temporal_server.address,
                                   extra={"namespaceTranslation": {"mappings": [{"local": "orders",
                                                                                 "remote": "orders.remote"}]}})
    proxy = proxy_factory.start([connection], metrics_address=metrics_address)
    channel = channel_factory(proxy.inbound())
    wait_for_plugin_schema(channel)  # one GetSystemInfo call gets through; those refused earlier ran no hook
    describe = channel.unary_unary("/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace",
                                   request_serializer=DescribeNamespaceRequest.SerializeToString,
                                   response_deserializer=DescribeNamespaceResponse.FromString)
    for _ in range(3):  # renamed both ways
        assert describe(DescribeNamespaceRequest(namespace="orders.remote"), timeout=TIMEOUT).namespace_info.name \
            == "orders.remote"
    for _ in range(2):  # outside the mapping: nothing to change
        assert describe(DescribeNamespaceRequest(namespace="default"), timeout=TIMEOUT).namespace_info.name == "default"

    families = scrape(metrics_address)
    entry = dict(plugin="namespace-rename", entry="clusterConnections[0].namespaceTranslation", connection="itest")
    calls = value(families, "s2s_proxy_plugin_calls", "s2s_proxy_plugin_calls_total", **entry)
    messages = value(families, "s2s_proxy_plugin_messages", "s2s_proxy_plugin_messages_total", **entry)
    assert (calls, messages) == (6, 12), "GetSystemInfo once, DescribeNamespace five times; a request and a response each"
    hook = "s2s_proxy_plugin_hook_duration_seconds"
    assert families[hook].type == "histogram"
    assert value(families, hook, hook + "_count", hook="call_start", **entry) == calls
    assert value(families, hook, hook + "_count", hook="on_message", **entry) == messages
    assert value(families, hook, hook + "_count", hook="call_end", **entry) == calls
    on_message = samples(families, hook, hook + "_bucket", hook="on_message", **entry)
    assert [b.labels["le"] for b in on_message][:2] == ["1e-06", "2.5e-06"] and on_message[-1].labels["le"] == "+Inf"
    assert [b.value for b in on_message] == sorted(b.value for b in on_message), "buckets are cumulative"
    assert value(families, hook, hook + "_sum", hook="on_message", **entry) > 0

    package = "temporal.api.workflowservice.v1."
    success, error, latency = ("temporal_s2s_proxy_translation_success", "temporal_s2s_proxy_translation_error",
                               "temporal_s2s_proxy_translation_latency")
    assert families[latency].type == "histogram"
    counted = {s.labels["message_type"]: s.value for s in samples(families, success, success + "_total", kind="namespace")}
    assert counted == {
        package + "GetSystemInfoRequest": 0, package + "GetSystemInfoResponse": 0,
        package + "DescribeNamespaceRequest": 3, package + "DescribeNamespaceResponse": 3,
    }, "a success is a message the plugin changed; every type it saw has a series"
    runs = {s.labels["message_type"]: s.value for s in samples(families, latency, latency + "_count", kind="namespace")}
    assert runs == {
        package + "GetSystemInfoRequest": 1, package + "GetSystemInfoResponse": 1,
        package + "DescribeNamespaceRequest": 5, package + "DescribeNamespaceResponse": 5,
    }
    assert sum(runs.values()) == messages
    assert all(s.value == 0 for s in samples(families, error, error + "_total"))
    # Only the Go proxy's translations have a kind: namespaceTranslation also brings utf8-repair, nothing else.
    kinds = {s.labels["kind"] for s in samples(families, latency, latency + "_count")}
    assert kinds <= {"namespace", "utf8repair"}, kinds
