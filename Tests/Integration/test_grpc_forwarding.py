"""Generic gRPC forwarding through the proxy against a real grpcio backend.

Each test runs through both listeners of a cluster connection (`listener` fixture): the outbound one
(`local.tcpServer` -> `remote.tcpClient`) and the inbound one (`remote.tcpServer` -> `local.tcpClient`).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import uuid

import grpc
import pytest

from backend import INITIAL_METADATA, TRAILING_METADATA, method, pattern
from netutil import TcpRelay
from protowire import field_bytes, field_varint

TIMEOUT = 30


def call_id() -> str:
    return str(uuid.uuid4())


# The four call kinds -------------------------------------------------------------------------------------------------


def test_unary_call_returns_the_backend_response_byte_for_byte(via, channel_factory):
    payload = os.urandom(100_000)
    echo = channel_factory(via).unary_unary(method("Echo"))
    assert echo(payload, timeout=TIMEOUT) == payload


def test_empty_unary_message_is_forwarded(via, channel_factory):
    echo = channel_factory(via).unary_unary(method("Echo"))
    assert echo(b"", timeout=TIMEOUT) == b""


def test_server_stream_delivers_every_message_in_order(via, channel_factory):
    repeat = channel_factory(via).unary_stream(method("Repeat"))
    received = list(repeat(json.dumps({"count": 200, "size": 3000}).encode(), timeout=TIMEOUT))
    assert len(received) == 200
    assert received == [pattern(i, 3000) for i in range(200)]


def test_client_stream_delivers_every_message_in_order(via, channel_factory):
    messages = [os.urandom(n) for n in (0, 1, 5, 4096, 70_000, 300_000, 17) * 10]
    collect = channel_factory(via).stream_unary(method("Collect"))
    summary = json.loads(collect(iter(messages), timeout=TIMEOUT))
    assert summary["count"] == len(messages)
    assert summary["bytes"] == sum(map(len, messages))
    assert summary["sha256"] == hashlib.sha256(b"".join(messages)).hexdigest()


def test_bidi_stream_echoes_each_message_before_the_next_is_sent(via, channel_factory):
    """Lock-step ping-pong: only works if the proxy forwards each message as it arrives, in both directions."""
    outgoing: queue.Queue = queue.Queue()

    def requests():
        while (item := outgoing.get()) is not None:
            yield item

    responses = channel_factory(via).stream_stream(method("EchoStream"))(requests(), timeout=TIMEOUT)
    for i in range(50):
        message = pattern(i, 10 + i * 100)
        outgoing.put(message)
        assert next(responses) == message
    outgoing.put(None)
    assert list(responses) == []
    assert responses.code() == grpc.StatusCode.OK


def test_concurrent_calls_on_one_connection_each_get_their_own_response(via, channel_factory):
    """Many interleaved HTTP/2 streams on one client connection: no response may land on the wrong call."""
    channel = channel_factory(via)
    echo = channel.unary_unary(method("Echo"))
    repeat = channel.unary_stream(method("Repeat"))
    payloads = [os.urandom(1000 + i * 997) for i in range(64)]
    unary_futures = [echo.future(p, timeout=TIMEOUT) for p in payloads]
    streams = [repeat(json.dumps({"count": 20 + i, "size": 5000 + i}).encode(), timeout=TIMEOUT) for i in range(8)]
    for i, stream in enumerate(streams):
        assert list(stream) == [pattern(n, 5000 + i) for n in range(20 + i)]
    assert [f.result() for f in unary_futures] == payloads


# Metadata -------------------------------------------------------------------------------------------------------


def test_custom_request_metadata_reaches_backend_including_binary_and_repeated_headers(via, channel_factory):
    sent = [
        ("x-itest-call-id", call_id()),
        ("x-itest-text", "first value"),
        ("x-itest-text", "second value"),
        ("x-itest-bin", b"\x00\x01\x02\xff\xfe"),
        ("temporal-client-cluster-id", "cluster-a"),
        ("x-itest-long", "v" * 4000),
    ]
    inspect = channel_factory(via).unary_unary(method("Inspect"))
    seen = json.loads(inspect(b"", metadata=sent, timeout=TIMEOUT))["metadata"]
    seen_pairs = [(k, bytes.fromhex(v) if is_bin else v) for k, v, is_bin in seen]
    for key in ("x-itest-call-id", "x-itest-text", "x-itest-bin", "temporal-client-cluster-id", "x-itest-long"):
        assert [v for k, v in seen_pairs if k == key] == [v for k, v in sent if k == key], f"header {key}"


def test_response_initial_metadata_and_trailers_reach_client(via, channel_factory):
    inspect = channel_factory(via).unary_unary(method("Inspect"))
    _, call = inspect.with_call(b"", timeout=TIMEOUT)
    initial = list(call.initial_metadata())
    trailing = list(call.trailing_metadata())
    for entry in INITIAL_METADATA:
        assert entry in initial, f"initial metadata {entry} missing from {initial}"
    for entry in TRAILING_METADATA:
        assert entry in trailing, f"trailer {entry} missing from {trailing}"
    assert call.code() == grpc.StatusCode.OK


# Errors ------------------------------------------------------------------------------------------------------------


def rpc_status(code: int, message: str, type_url: str, value: bytes) -> bytes:
    """A google.rpc.Status with one Any detail, hand-encoded."""
    detail = field_bytes(1, type_url) + field_bytes(2, value)
    return field_varint(1, code) + field_bytes(2, message) + field_bytes(3, detail)


def test_error_status_message_details_and_trailers_arrive_intact(via, channel_factory):
    message = "namespace ünïcødé-ns not found: 100% sure\nsecond line"
    details = rpc_status(5, message, "type.googleapis.com/temporal.api.errordetails.v1.NamespaceNotFoundFailure",
                         field_bytes(1, "ünïcødé-ns"))  # fmt: skip
    spec = {
        "code": "NOT_FOUND",
        "message": message,
        "details_hex": details.hex(),
        "trailers": [["x-itest-trailer", "custom"], ["x-itest-trailer-bin", "00ff10"]],
    }
    fail = channel_factory(via).unary_unary(method("Fail"))
    with pytest.raises(grpc.RpcError) as caught:
        fail(json.dumps(spec).encode(), timeout=TIMEOUT)
    error = caught.value
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == message
    trailing = list(error.trailing_metadata())
    assert ("grpc-status-details-bin", details) in trailing
    assert ("x-itest-trailer", "custom") in trailing
    assert ("x-itest-trailer-bin", b"\x00\xff\x10") in trailing


def test_stream_error_status_arrives_after_the_messages_sent_before_it(via, channel_factory):
    fail_stream = channel_factory(via).unary_stream(method("FailStream"))
    call = fail_stream(json.dumps({"count": 3, "code": "ABORTED", "message": "stream aborted by backend"}).encode(),
                       timeout=TIMEOUT)  # fmt: skip
    received = []
    with pytest.raises(grpc.RpcError) as caught:
        for message in call:
            received.append(message)
    assert received == [pattern(i, 100) for i in range(3)]
    assert caught.value.code() == grpc.StatusCode.ABORTED
    assert caught.value.details() == "stream aborted by backend"
    assert ("x-itest-trailer", "stream-failed") in list(caught.value.trailing_metadata())


def test_unknown_method_gets_the_backends_unimplemented(via, channel_factory):
    missing = channel_factory(via).unary_unary("/itest.Backend/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as caught:
        missing(b"x", timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


# Compression --------------------------------------------------------------------------------------------------------


def test_gzip_messages_work_and_stay_compressed_on_the_upstream_connection(backend, proxy_factory, channel_factory):
    """A counting relay between proxy and backend shows the upstream bytes: far fewer than the raw payload."""
    relay = TcpRelay(backend.address)
    try:
        proxy = proxy_factory.to(relay.address)
        channel = channel_factory(proxy.outbound(), compression=grpc.Compression.Gzip)
        payload = pattern(7, 8 * 1024 * 1024)  # very compressible
        echo = channel.unary_unary(method("Echo"))
        response = echo(payload, metadata=[("x-itest-response-compression", "gzip")], timeout=TIMEOUT)
        assert response == payload
        upstream_sent, upstream_received = relay.counters.client_to_server, relay.counters.server_to_client
        print(f"8 MiB each way; upstream wire bytes: request {upstream_sent}, response {upstream_received}")
        assert upstream_sent < len(payload) // 10, f"request reached the backend uncompressed ({upstream_sent} bytes)"
        assert upstream_received < len(payload) // 10, f"backend response was not gzip ({upstream_received} bytes)"
    finally:
        relay.close()


def test_gzip_streams_work_in_both_directions(via, channel_factory):
    channel = channel_factory(via, compression=grpc.Compression.Gzip)
    messages = [pattern(i, 50_000) for i in range(40)]
    responses = channel.stream_stream(method("EchoStream"))(
        iter(messages), metadata=[("x-itest-response-compression", "gzip")], timeout=TIMEOUT
    )
    assert list(responses) == messages
