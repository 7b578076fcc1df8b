"""Replication streams (`AdminService/StreamWorkflowReplicationMessages`) as the proxy reports them: the Go proxy's
`temporal_s2s_proxy_admin_service_stream*` metrics and the `active_streams` of `/debug/connections`.

A stand-in upstream serves the stream: for every request it receives it sends `RESPONSES_PER_REQUEST` responses, so
the client knows every message crossed the proxy once it has read them. A request metadata key makes the upstream
end the stream itself (status OK) when a given request arrives, while the client is still sending.

Temporal's words are used for who ended a stream (`terminated_by`): the client that opens it is the replication
*target*, the upstream that serves it the *source*.
"""

from __future__ import annotations

import json
import queue
import time
from concurrent import futures

import grpc
import pytest

from netutil import free_address
from proxy_process import DIRECT, ClusterConnection
from test_health import get
from test_metrics import samples, scrape, value

pytestmark = pytest.mark.skipif(DIRECT, reason="stream bookkeeping is the proxy's")

SERVICE = "temporal.server.api.adminservice.v1.AdminService"
STREAM = f"/{SERVICE}/StreamWorkflowReplicationMessages"
PREFIX = "temporal_s2s_proxy_admin_service_"
RESPONSES_PER_REQUEST = 2
# The upstream ends the stream, without answering it, when the request with this number arrives.
END_AT = "x-test-upstream-ends-at"
# The upstream ends the stream right after answering the request with this number.
END_AFTER = "x-test-upstream-ends-after"
SHARDS = (("temporal-client-cluster-id", "2"), ("temporal-client-shard-id", "1"),
          ("temporal-server-cluster-id", "1"), ("temporal-server-shard-id", "3"))


class StreamUpstream:
    """Serves the replication stream: `RESPONSES_PER_REQUEST` responses per request; ends it with status OK when the
    client ends its requests, at request number `END_AT` or after answering request number `END_AFTER` when the
    call's metadata asks."""

    def __init__(self):
        self.address = free_address()
        self.ended = queue.Queue()
        handler = grpc.method_handlers_generic_handler(
            SERVICE, {"StreamWorkflowReplicationMessages": grpc.stream_stream_rpc_method_handler(self._stream)})
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers((handler,))
        self.server.add_insecure_port(self.address)

    def _stream(self, requests, context):
        metadata = dict(context.invocation_metadata())
        end_at, end_after = metadata.get(END_AT), metadata.get(END_AFTER)
        received = 0
        for request in requests:
            received += 1
            if end_at is not None and received == int(end_at):
                break
            for index in range(RESPONSES_PER_REQUEST):
                yield b"task %d of %s" % (index, request)
            if end_after is not None and received == int(end_after):
                break
        self.ended.put(received)


class ClientStream:
    """One replication stream opened by a grpcio client; requests are sent one by one."""

    def __init__(self, address: str, metadata=()):
        self.channel = grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)])
        self._requests: queue.Queue = queue.Queue()
        self.call = self.channel.stream_stream(STREAM)(iter(self._requests.get, None), metadata=SHARDS + metadata,
                                                       timeout=60)

    def send(self, request: bytes) -> list[bytes]:
        """Sends one request and reads the responses it brings."""
        self._requests.put(request)
        return [next(self.call) for _ in range(RESPONSES_PER_REQUEST)]

    def send_unanswered(self, request: bytes) -> None:
        self._requests.put(request)

    def end_requests(self) -> None:
        self._requests.put(None)

    def close(self) -> None:
        self.end_requests()
        self.channel.close()


@pytest.fixture
def upstream():
    server = StreamUpstream()
    server.server.start()
    yield server
    server.server.stop(0)


@pytest.fixture
def proxied(upstream, proxy_factory):
    """A proxy whose two listeners forward to the stand-in upstream; its metrics and health (debug) addresses."""
    metrics, health = free_address(), free_address()
    connection = ClusterConnection("itest", local_upstream=upstream.address, remote_upstream=upstream.address,
                                   extra={"localClusterHealthCheck": {"protocol": "http", "listenAddress": health}})
    proxy = proxy_factory.start([connection], metrics_address=metrics)
    return proxy, metrics, health


def stream_figures(metrics_address: str, direction: str) -> dict:
    """The replication-stream families of one listener, by the short names of the Go proxy."""
    families = scrape(metrics_address)
    labels = dict(direction=direction, config_name="itest")
    figures = {
        "active": value(families, PREFIX + "streams_active", PREFIX + "streams_active", **labels),
        "duration_count": value(families, PREFIX + "stream_duration", PREFIX + "stream_duration_count", **labels),
    }
    for name in ("streams_opened_count", "streams_closed_count", "stream_request_count", "stream_response_count"):
        figures[name] = value(families, PREFIX + name, PREFIX + name + "_total", **labels)
    for end in ("source", "target"):
        figures["terminated_by_" + end] = value(families, PREFIX + "stream_terminated_count",
                                                PREFIX + "stream_terminated_count_total", terminated_by=end, **labels)
    return figures


def wait_for_figures(metrics_address: str, direction: str, expected: dict, timeout: float = 10) -> dict:
    """Scrapes until the figures named in `expected` have those values; fails with the last scrape otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        figures = stream_figures(metrics_address, direction)
        if all(figures[name] == wanted for name, wanted in expected.items()):
            return figures
        assert time.monotonic() < deadline, f"expected {expected}, scraped {figures}"
        time.sleep(0.1)


def debug_connection(health_address: str) -> dict:
    status, text = get(health_address, "/debug/connections")
    assert status == 200, text
    [connection] = json.loads(text)["connections"]
    return connection


@pytest.mark.parametrize("ending", ["half-close", "cancel"])
def test_a_stream_the_client_ends_is_counted_shown_while_open_and_terminated_by_the_target(proxied, ending):
    proxy, metrics, health = proxied
    client = ClientStream(proxy.outbound())
    try:
        for index in range(3):
            assert client.send(b"ack %d" % index) == [b"task 0 of ack %d" % index, b"task 1 of ack %d" % index]

        figures = stream_figures(metrics, "outbound")
        assert figures == {
            "active": 1, "duration_count": 0, "streams_opened_count": 1, "streams_closed_count": 0,
            # The Go proxy's names: "requests" are the replication messages sent to the stream's opener (the gRPC
            # responses), "responses" the ACKs it sends (the gRPC requests).
            "stream_request_count": 3 * RESPONSES_PER_REQUEST, "stream_response_count": 3,
            "terminated_by_source": 0, "terminated_by_target": 0,
        }
        assert stream_figures(metrics, "inbound")["active"] == 0

        connection = debug_connection(health)
        assert connection["stream_counts"] == {"outbound": 1, "inbound": 0}
        [stream] = connection["active_streams"]
        assert stream["method"] == STREAM
        assert stream["direction"] == "outbound"
        assert stream["id"].startswith("outbound-")
        assert stream["client_shard"] == "(id: 2, shard: 1)"
        assert stream["server_shard"] == "(id: 1, shard: 3)"
        assert (stream["request_messages"], stream["response_messages"]) == (3, 3 * RESPONSES_PER_REQUEST)
        assert stream["total_duration"].endswith("s") and stream["idle_duration"].endswith("s")
        assert stream["start_time"] <= stream["last_seen"], stream

        if ending == "half-close":
            client.end_requests()
            assert list(client.call) == [], "the upstream ends the stream with status OK and no more messages"
            assert client.call.code() == grpc.StatusCode.OK
        else:
            client.call.cancel()
        wait_for_figures(metrics, "outbound", {
            "active": 0, "streams_closed_count": 1, "terminated_by_target": 1, "terminated_by_source": 0,
            "duration_count": 1,
        })
    finally:
        client.close()
    assert stream_figures(metrics, "outbound")["stream_response_count"] == 3, "counts stay after the stream ended"
    connection = debug_connection(health)
    assert connection["active_streams"] == [] and connection["stream_counts"] == {"outbound": 0, "inbound": 0}


def test_a_stream_the_upstream_ends_is_terminated_by_the_source(proxied, upstream):
    proxy, metrics, health = proxied
    client = ClientStream(proxy.inbound(), metadata=((END_AT, "3"),))
    try:
        client.send(b"first")
        client.send(b"second")
        client.send_unanswered(b"third")
        assert upstream.ended.get(timeout=10) == 3
        assert list(client.call) == []
        assert client.call.code() == grpc.StatusCode.OK
        wait_for_figures(metrics, "inbound", {
            "active": 0, "streams_opened_count": 1, "streams_closed_count": 1,
            "terminated_by_source": 1, "terminated_by_target": 0,
            "stream_request_count": 2 * RESPONSES_PER_REQUEST, "stream_response_count": 3,
        })
    finally:
        client.close()
    assert stream_figures(metrics, "outbound")["streams_opened_count"] == 0, "the other listener saw nothing"
    assert debug_connection(health)["active_streams"] == []


def test_a_client_still_sending_gets_every_message_and_the_status_when_the_upstream_ends(proxied, upstream):
    """The upstream answers and ends while the client still sends: the proxy's RST_STREAM(NO_ERROR) that stops the
    client's requests must follow the status, not overtake it (grpcio then reported INTERNAL "Stream removed" and
    lost the unread messages, 9 times in 10)."""
    proxy, _, _ = proxied
    for attempt in range(10):
        client = ClientStream(proxy.inbound(), metadata=((END_AFTER, "2"),))
        try:
            client.send(b"first")
            client.send_unanswered(b"second")
            assert upstream.ended.get(timeout=10) == 2
            assert list(client.call) == [b"task 0 of second", b"task 1 of second"], f"attempt {attempt}"
            assert client.call.code() == grpc.StatusCode.OK, f"attempt {attempt}: {client.call.details()}"
        finally:
            client.close()


def test_other_calls_are_not_replication_streams(proxied, upstream):
    proxy, metrics, _ = proxied
    with grpc.insecure_channel(proxy.outbound(), options=[("grpc.enable_http_proxy", 0)]) as channel:
        other = channel.stream_stream(f"/{SERVICE}/SomethingElse")
        with pytest.raises(grpc.RpcError) as error:
            list(other(iter([b"x"]), timeout=10))
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert stream_figures(metrics, "outbound")["streams_opened_count"] == 0
    assert len(samples(scrape(metrics), PREFIX + "streams_active", PREFIX + "streams_active")) == 2


def test_streams_whose_messages_pass_a_plugin_are_counted_alike_and_refused_ones_never_open(
        upstream, proxy_factory, probe_plugins):
    metrics = free_address()
    connection = ClusterConnection("itest", local_upstream=upstream.address, remote_upstream=upstream.address,
                                   plugins=[{"path": str(probe_plugins["probe"])}])
    proxy = proxy_factory.start([connection], metrics_address=metrics)

    # The probe refuses the call at its start: no stream is recorded, as the Go proxy records none it refuses.
    refused = ClientStream(proxy.outbound(), metadata=(("x-probe-reject", "7"),))
    try:
        with pytest.raises(grpc.RpcError) as error:
            refused.send(b"ack")
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        refused.close()
    assert stream_figures(metrics, "outbound")["streams_opened_count"] == 0

    # Whole messages cut out for the plugin are counted as the pass-through ones are.
    client = ClientStream(proxy.outbound())
    try:
        for index in range(3):
            assert client.send(b"ack %d" % index)[0] == b"task 0 of ack %d" % index
        wait_for_figures(metrics, "outbound", {"active": 1, "stream_request_count": 3 * RESPONSES_PER_REQUEST,
                                               "stream_response_count": 3})
        # A request the plugin refuses ends the stream on the client's (the target's) account.
        client.send_unanswered(b"reject")
        with pytest.raises(grpc.RpcError) as error:
            list(client.call)
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
        wait_for_figures(metrics, "outbound", {"active": 0, "terminated_by_target": 1, "terminated_by_source": 0,
                                               "stream_response_count": 3})
    finally:
        client.close()
