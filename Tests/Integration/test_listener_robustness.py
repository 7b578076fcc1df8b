"""A listener that is fed garbage closes that one connection and goes on serving everyone else."""

from __future__ import annotations

import os
import socket

import pytest

from backend import method
from netutil import read_until_closed, split_address

HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def raw_connection(address: str) -> socket.socket:
    return socket.create_connection(split_address(address), timeout=5)


@pytest.fixture
def proxy(backend, proxy_factory):
    return proxy_factory.to(backend.address)


@pytest.mark.parametrize(
    "junk",
    [
        pytest.param(b"\x00\xffthis is not HTTP/2 at all\r\n" * 64, id="binary-junk"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n", id="http1-request"),
        pytest.param(HTTP2_PREFACE + b"\x00\x00\x04\x09\x00\x00\x00\x00\x00garbage-frame", id="preface-then-bad-frame"),
    ],
)
def test_garbage_closes_that_connection_and_other_connections_keep_working(proxy, channel_factory, junk):
    healthy = channel_factory(proxy.outbound())
    echo = healthy.unary_unary(method("Echo"))
    assert echo(b"before", timeout=30) == b"before"

    bad = raw_connection(proxy.outbound())
    try:
        bad.sendall(junk)
        closed, answer = read_until_closed(bad, timeout=10)
        assert closed, f"proxy kept the garbage connection open (it answered {answer[:200]!r})"
    finally:
        bad.close()

    assert echo(b"same connection", timeout=30) == b"same connection"
    fresh = channel_factory(proxy.outbound()).unary_unary(method("Echo"))
    assert fresh(b"new connection", timeout=30) == b"new connection"


def test_many_garbage_and_abandoned_connections_do_not_break_either_listener(proxy, channel_factory):
    sockets = []
    for i in range(40):
        address = proxy.outbound() if i % 2 else proxy.inbound()
        s = raw_connection(address)
        if i % 4 == 0:
            s.sendall(os.urandom(4096))
        elif i % 4 == 1:
            s.sendall(HTTP2_PREFACE[:10])  # a half preface, then silence
        sockets.append(s)
    try:
        for address in (proxy.outbound(), proxy.inbound()):
            echo = channel_factory(address).unary_unary(method("Echo"))
            assert echo(b"still serving", timeout=30) == b"still serving"
    finally:
        for s in sockets:
            s.close()
    for address in (proxy.outbound(), proxy.inbound()):
        echo = channel_factory(address).unary_unary(method("Echo"))
        assert echo(b"after the junk went away", timeout=30) == b"after the junk went away"
