"""Calls do not wait on each other: no hidden cap on concurrent calls per upstream connection, and a client that
stops reading slows only its own calls.

Both proxies here run one event-loop thread (`--threads 1`), so every call shares one upstream pool and, unless the
upstream's limit says otherwise, one upstream connection: the case where one call can hold up another.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import grpc
import h2.config
import h2.connection
import h2.events
import pytest

from backend import Backend, method
from netutil import split_address

ONE_THREAD = ("--threads", "1")


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def started_holds(backend: Backend) -> int:
    with backend._lock:
        return sum(1 for r in backend._records.values() if r.started.is_set())


def hold_calls(backend: Backend, channel: grpc.Channel, count: int, timeout: float):
    """Starts `count` `Hold` calls, each with its own call id; returns their response iterators."""
    hold = channel.unary_stream(method("Hold"))
    return [hold(b"", metadata=[("x-itest-call-id", f"hold-{i}")], timeout=timeout) for i in range(count)]


def assert_unary_calls_complete(address: str, channel_factory, count: int = 5, timeout: float = 10) -> None:
    """Unary calls on a fresh connection, beside whatever else is going on, each within `timeout`."""
    echo = channel_factory(address).unary_unary(method("Echo"))
    for i in range(count):
        payload = f"beside-{i}".encode()
        assert echo(payload, timeout=timeout) == payload


@pytest.fixture
def many_workers_backend():
    server = Backend("many-workers", max_workers=1100).start()
    yield server
    server.release_held.set()
    server.stop()


def test_a_thousand_long_lived_calls_and_unary_calls_beside_them_all_run(
    many_workers_backend, proxy_factory, channel_factory
):
    """grpcio servers, like grpc-go (the Temporal frontend), send no SETTINGS_MAX_CONCURRENT_STREAMS: no limit.
    NIOHTTP2 assumed 100 and queued every further call until one of the first 100 ended."""
    backend = many_workers_backend
    proxy = proxy_factory.to(backend.address, extra_args=ONE_THREAD)
    calls = hold_calls(backend, channel_factory(proxy.outbound()), 1000, timeout=120)
    try:
        all_started = wait_until(lambda: started_holds(backend) >= 1000, timeout=60)
        assert all_started, f"only {started_holds(backend)} of 1000 long-lived calls reached the upstream"
        assert_unary_calls_complete(proxy.outbound(), channel_factory)
        backend.release_held.set()
        for index, call in enumerate(calls):
            assert list(call) == [b"started", b"released"], f"call {index}"
            assert call.code() == grpc.StatusCode.OK, f"call {index}: {call.code()} {call.details()}"
    finally:
        backend.release_held.set()
        for call in calls:
            call.cancel()


def test_an_upstream_stream_limit_opens_more_connections_instead_of_queueing(proxy_factory, channel_factory):
    """A peer that does set a limit is obeyed; calls beyond it go over further connections, not into a queue."""
    backend = Backend("limited", max_workers=200, options=(("grpc.max_concurrent_streams", 10),)).start()
    proxy = proxy_factory.to(backend.address, extra_args=ONE_THREAD)
    calls = hold_calls(backend, channel_factory(proxy.inbound()), 60, timeout=60)
    try:
        all_started = wait_until(lambda: started_holds(backend) >= 60, timeout=30)
        assert all_started, f"only {started_holds(backend)} of 60 calls reached an upstream that allows 10 per connection"
        assert_unary_calls_complete(proxy.inbound(), channel_factory)
        backend.release_held.set()
        for index, call in enumerate(calls):
            assert list(call) == [b"started", b"released"], f"call {index}"
        assert "opened another" in proxy.log(), "the proxy did not say it opened further upstream connections"
    finally:
        backend.release_held.set()
        for call in calls:
            call.cancel()
        backend.stop()


class StalledClient:
    """A raw HTTP/2 client that asks for large responses and never grants flow-control window for them.

    It answers SETTINGS and PING (h2 does that by itself) but never sends WINDOW_UPDATE, so the proxy can deliver at
    most the 64 KiB initial windows to it; the rest of every response stays on the proxy's side.
    """

    def __init__(self, address: str):
        self.sock = socket.create_connection(split_address(address), timeout=10)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.received = 0
        self.ended_streams = 0
        self._lock = threading.Lock()
        self._send()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _send(self) -> None:
        with self._lock:
            data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def _read(self) -> None:
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return
                with self._lock:
                    events = self.conn.receive_data(data)
                for event in events:
                    if isinstance(event, h2.events.DataReceived):
                        self.received += len(event.data)
                    elif isinstance(event, h2.events.StreamEnded):
                        self.ended_streams += 1
                self._send()
        except OSError:
            return

    def request_big_responses(self, count: int, size: int) -> None:
        body = json.dumps({"size": size}).encode()
        message = b"\x00" + len(body).to_bytes(4, "big") + body
        with self._lock:
            for _ in range(count):
                stream_id = self.conn.get_next_available_stream_id()
                self.conn.send_headers(stream_id, [
                    (":method", "POST"), (":scheme", "http"), (":path", method("Big")), (":authority", "proxy"),
                    ("content-type", "application/grpc"), ("te", "trailers"),
                ])  # fmt: skip
                self.conn.send_data(stream_id, message, end_stream=True)
        self._send()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def test_a_client_that_never_reads_stalls_only_its_own_calls(backend, proxy_factory, channel_factory):
    """Responses stuck behind a client's closed flow-control window used to fill the upstream connection's shared
    window (8 MiB): after ten 2 MiB responses nobody else on the event loop got an answer until that client left."""
    proxy = proxy_factory.to(backend.address, extra_args=ONE_THREAD)
    stalled = StalledClient(proxy.outbound())
    try:
        stalled.request_big_responses(16, 2 * 1024 * 1024)
        # Let the upstream push what the proxy lets it: before the fix, the whole upstream connection window.
        assert wait_until(lambda: backend.call_count >= 16, timeout=10), "the stalled client's calls never started"
        time.sleep(1.0)
        assert stalled.received <= 128 * 1024, f"the proxy sent {stalled.received} bytes past the client's windows"

        healthy = channel_factory(proxy.outbound())
        echo = healthy.unary_unary(method("Echo"))
        big = healthy.unary_unary(method("Big"))
        for i in range(5):
            payload = f"healthy-{i}".encode()
            assert echo(payload, timeout=10) == payload
        assert len(big(json.dumps({"size": 4 * 1024 * 1024}).encode(), timeout=20)) == 4 * 1024 * 1024
        # What the proxy holds for the stalled client stays within one stream window per call.
        rss_mib = proxy.memory_kib()["VmRSS"] / 1024
        print(f"\nproxy RSS with 16 stalled 2 MiB responses: {rss_mib:.0f} MiB")
        assert rss_mib < 200, f"proxy RSS {rss_mib:.0f} MiB while holding 16 stalled responses"
        assert stalled.ended_streams == 0
    finally:
        stalled.close()
    # Once the stalled client is gone, the proxy goes on as before.
    assert_unary_calls_complete(proxy.outbound(), channel_factory)


def test_hundreds_of_temporal_long_polls_leave_room_for_other_calls(temporal_server, proxy_factory, channel_factory):
    """The same against the Temporal frontend itself (grpc-go): with 200 long polls held open on the proxy's one
    upstream connection, a plain unary call still goes straight through."""
    from plugin_build import GET_SYSTEM_INFO
    from protowire import field_bytes

    poll_method = "/temporal.api.workflowservice.v1.WorkflowService/PollActivityTaskQueue"
    proxy = proxy_factory.to(temporal_server.address, extra_args=ONE_THREAD)
    channel = channel_factory(proxy.outbound())
    poll = channel.unary_unary(poll_method)
    request = field_bytes(1, "default") + field_bytes(2, field_bytes(1, "isolation-idle-queue")) + field_bytes(3, "itest")
    polls = [poll.future(request, timeout=30) for _ in range(200)]
    try:
        time.sleep(2.0)
        assert not any(p.done() for p in polls), "a long poll ended early: it no longer proves anything"
        info = channel_factory(proxy.outbound()).unary_unary(GET_SYSTEM_INFO)
        for _ in range(3):
            info(b"", timeout=5)
    finally:
        for p in polls:
            p.cancel()


def raw_frame(frame_type: int, flags: int, stream: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([frame_type, flags]) + stream.to_bytes(4, "big") + payload


def literal_header(name: str, value: str) -> bytes:
    """HPACK "literal without indexing, new name": leaves both sides' dynamic tables as they are."""
    return bytes([0, len(name)]) + name.encode() + bytes([len(value)]) + value.encode()


def test_frames_a_client_sends_after_its_call_ended_early_never_end_other_calls(backend, proxy_factory):
    """A call the proxy ends while its client is still sending (here: a request over limits.maxMessageBytes) is
    answered with its status and RST_STREAM(NO_ERROR). DATA and trailers the client had already sent, or sends
    after that, must be ignored (RFC 9113 5.1, 6.4), even 40 resets later; they used to close the whole connection
    with every healthy call on it."""
    proxy = proxy_factory.to(backend.address, max_message_bytes=1024, extra_args=ONE_THREAD)
    sock = socket.create_connection(split_address(proxy.outbound()), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    request_headers = lambda path: [  # noqa: E731
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "proxy"),
        ("content-type", "application/grpc"), ("te", "trailers"),
    ]  # fmt: skip
    conn.send_headers(1, request_headers(method("Hold")) + [("x-itest-call-id", "healthy-hold")])
    conn.send_data(1, b"\x00\x00\x00\x00\x00", end_stream=True)
    early = list(range(3, 3 + 2 * 41, 2))
    for stream in early:
        conn.send_headers(stream, request_headers(method("Collect")))
        conn.send_data(stream, b"\x00" + (1 << 20).to_bytes(4, "big") + b"x" * 100)
    sock.sendall(conn.data_to_send())

    ended: set[int] = set()
    healthy: list = []

    def pump(until, seconds: float = 10) -> None:
        end = time.monotonic() + seconds
        while not until() and time.monotonic() < end:
            sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                data = sock.recv(65536)
            except socket.timeout:
                break
            assert data, "the proxy closed the connection"
            for event in conn.receive_data(data):
                if isinstance(event, (h2.events.StreamReset, h2.events.StreamEnded)) and event.stream_id != 1:
                    ended.add(event.stream_id)
                if getattr(event, "stream_id", None) == 1:
                    healthy.append(event)
                if isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            sock.sendall(conn.data_to_send())

    pump(lambda: set(early) <= ended)
    assert set(early) <= ended, f"the proxy did not end the oversized calls: {sorted(set(early) - ended)}"
    assert backend.wait_started("healthy-hold")
    # What the client of each ended call still had in flight: more DATA, then its trailers. The first ended call's
    # frames come last, after 40 other streams were reset.
    late = b""
    for stream in reversed(early):
        late += raw_frame(0, 0, stream, b"y" * 100)
        late += raw_frame(1, 0x5, stream, literal_header("x-late", "1"))
    sock.sendall(late)
    # The healthy call still gets its answer and its status, and the connection no GOAWAY: the late frames are
    # ignored, not a connection error (NIOHTTP2, the proxy's former HTTP/2 layer, answered the trailers with GOAWAY
    # and let the connection's calls finish). Frames are read by hand from here on, so that a GOAWAY is seen and
    # reported rather than ending h2's connection state.
    backend.release_held.set()
    buffer, trailers, goaway = b"", None, None
    end = time.monotonic() + 10
    while trailers is None and time.monotonic() < end:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        if not data:
            break
        buffer += data
        while len(buffer) >= 9 and len(buffer) >= 9 + int.from_bytes(buffer[:3], "big"):
            length, kind, flags, stream = int.from_bytes(buffer[:3], "big"), buffer[3], buffer[4], int.from_bytes(buffer[5:9], "big")
            payload, buffer = buffer[9:9 + length], buffer[9 + length:]
            if kind == 1:  # HEADERS: decoded for every stream, so the HPACK table stays in step
                decoded = dict(conn.decoder.decode(payload))
                if stream == 1 and flags & 0x1:
                    trailers = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                                for k, v in decoded.items()}
            elif kind == 7:
                goaway = int.from_bytes(payload[4:8], "big")
    sock.close()
    assert trailers is not None, f"the healthy call never ended (GOAWAY code {goaway})"
    assert trailers.get("grpc-status") == "0", trailers
    assert goaway is None, f"the late frames got the connection GOAWAY (code {goaway})"
