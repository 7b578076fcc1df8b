"""What an idle or silent client may cost: connections that never finish the HTTP/2 handshake are closed after
`limits.handshakeTimeoutSeconds`, connections without calls after `limits.idleTimeoutSeconds`, and a proxy out of
file descriptors says so and serves again once they are freed."""

from __future__ import annotations

import os
import socket
import time

import h2.config
import h2.connection
import h2.events
import pytest

from backend import method
from netutil import split_address
from test_call_isolation import hold_calls, wait_until

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def connect(address: str) -> socket.socket:
    return socket.create_connection(split_address(address), timeout=10)


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the peer closes `sock` within `seconds` (anything it sends meanwhile is read and dropped)."""
    sock.settimeout(0.2)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if sock.recv(65536) == b"":
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def proxy_fds(proxy) -> int:
    return len(os.listdir(f"/proc/{proxy.process.pid}/fd"))


def test_connections_that_never_finish_the_handshake_are_closed(backend, proxy_factory, channel_factory):
    proxy = proxy_factory.to(backend.address, extra_yaml="limits:\n  handshakeTimeoutSeconds: 1\n")
    silent, half, preface_only = connect(proxy.outbound()), connect(proxy.outbound()), connect(proxy.inbound())
    half.sendall(PREFACE[:10])
    preface_only.sendall(PREFACE)
    started = time.monotonic()
    for name, sock in [("silent", silent), ("half a preface", half), ("preface without SETTINGS", preface_only)]:
        assert closed_within(sock, 5), f"the proxy kept a connection that sent {name}"
        sock.close()
    elapsed = time.monotonic() - started
    assert elapsed >= 0.8, f"closed after {elapsed:.1f}s, before the 1 s handshake timeout"
    assert "no HTTP/2 preface and SETTINGS within 1 s" in proxy.log(None)
    # A real client is not affected, before or after.
    echo = channel_factory(proxy.outbound()).unary_unary(method("Echo"))
    assert echo(b"fine", timeout=10) == b"fine"


class RawClient:
    """A raw HTTP/2 client that can make one unary call and then watch what the proxy sends."""

    def __init__(self, address: str):
        self.sock = connect(address)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.events: list = []

    def echo(self, payload: bytes) -> bytes:
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, [
            (":method", "POST"), (":scheme", "http"), (":path", method("Echo")), (":authority", "proxy"),
            ("content-type", "application/grpc"), ("te", "trailers"),
        ])  # fmt: skip
        self.conn.send_data(stream, b"\x00" + len(payload).to_bytes(4, "big") + payload, end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        body = b""
        while not any(isinstance(e, h2.events.StreamEnded) and e.stream_id == stream for e in self.events):
            data = self.sock.recv(65536)
            assert data, "the proxy closed the connection during the call"
            for event in self.conn.receive_data(data):
                self.events.append(event)
                if isinstance(event, h2.events.DataReceived):
                    body += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            self.sock.sendall(self.conn.data_to_send())
        return body[5:]

    def wait_for_goaway_and_close(self, seconds: float):
        """The GOAWAY the proxy sends within `seconds` (None if none), and whether it then closed."""
        self.sock.settimeout(0.2)
        goaway = None
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                return goaway, True
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.ConnectionTerminated):
                    goaway = event
        return goaway, False


def test_a_connection_without_calls_gets_goaway_and_is_closed_one_with_a_call_stays(
    backend, proxy_factory, channel_factory
):
    proxy = proxy_factory.to(backend.address, extra_yaml="limits:\n  idleTimeoutSeconds: 1\n")
    idle = RawClient(proxy.outbound())
    assert idle.echo(b"one call, then nothing") == b"one call, then nothing"
    # A connection with a long call open is not idle, however long the call lasts.
    busy_channel = channel_factory(proxy.outbound())
    [held] = hold_calls(backend, busy_channel, 1, timeout=30)
    assert next(held) == b"started"

    goaway, closed = idle.wait_for_goaway_and_close(5)
    assert goaway is not None, "no GOAWAY before the idle connection was closed"
    assert goaway.error_code == 0 and goaway.last_stream_id == 1, goaway
    assert closed, "the proxy did not close the idle connection"
    assert "closing idle connection: no call for 1 s" in proxy.log(None)

    time.sleep(1.5)
    backend.release_held.set()
    assert next(held) == b"released", "the connection with a call open was closed as idle"
    # The grpcio client whose connection was idle reconnects by itself.
    echo = channel_factory(proxy.outbound()).unary_unary(method("Echo"))
    assert echo(b"again", timeout=10) == b"again"


def test_a_proxy_out_of_file_descriptors_says_so_and_serves_again_once_they_are_freed(
    backend, proxy_factory, channel_factory
):
    proxy = proxy_factory.to(
        backend.address, max_open_files=96, extra_yaml="limits:\n  handshakeTimeoutSeconds: 2\n"
    )
    echo = channel_factory(proxy.outbound()).unary_unary(method("Echo"))
    assert echo(b"before", timeout=10) == b"before"
    baseline = proxy_fds(proxy)
    assert baseline < 96, f"the proxy already uses {baseline} descriptors"
    flood = [connect(proxy.outbound()) for _ in range(160)]
    try:
        assert wait_until(lambda: "no file descriptors left" in proxy.log(None), timeout=10), (
            "running out of descriptors was not logged\n" + proxy.log()
        )
    finally:
        for sock in flood:
            sock.close()
    # The flood's connections close (theirs, and the proxy's handshake timeout for those it accepted late).
    assert wait_until(lambda: proxy_fds(proxy) <= baseline + 4, timeout=15), f"{proxy_fds(proxy)} descriptors"
    assert echo(b"after", timeout=10) == b"after"
    fresh = channel_factory(proxy.outbound()).unary_unary(method("Echo"))
    assert fresh(b"new connection", timeout=10) == b"new connection"


def test_memory_a_wave_of_connections_took_is_returned_once_they_are_gone(backend, proxy_factory):
    """glibc keeps what a thread freed in its arena: after three waves of 2000 connections the proxy stayed at
    about 255 MiB with none open. It must come back near where it started. (On the proxy's own HTTP/2 engine a
    connection costs about 9 KiB, so a wave is 3000 connections, which take about twice what may stay.)"""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 and (hard == resource.RLIM_INFINITY or hard >= 4096):
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
    proxy = proxy_factory.to(backend.address, log_level="warning")
    start = proxy.memory_kib()["VmRSS"]
    peak = start
    for _ in range(2):
        wave = [connect(proxy.outbound()) for _ in range(3000)]
        for sock in wave:
            sock.sendall(PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        time.sleep(0.5)
        peak = max(peak, proxy.memory_kib()["VmRSS"])
        for sock in wave:
            sock.close()
    returned = wait_until(lambda: proxy.memory_kib()["VmRSS"] < start + 12 * 1024, timeout=30, interval=0.5)
    end = proxy.memory_kib()["VmRSS"]
    print(f"\nproxy RSS: {start // 1024} MiB at start, {peak // 1024} MiB at the peak, {end // 1024} MiB after")
    assert peak > start + 24 * 1024, "the waves took too little memory to prove anything"
    assert returned, f"RSS stayed at {end // 1024} MiB (from {start // 1024} MiB) with no connection open"
