"""What a client sees when the proxy's upstream is down, unreachable, or dies mid-call."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from backend import method
from netutil import BlackholeListener, free_address, split_address, wait_for_port
from processes import bound_to_test_run

ERRORS_FOR_A_DEAD_UPSTREAM = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.ABORTED,
}


class SubprocessBackend:
    """The test backend in its own process, so a test can SIGKILL it mid-call."""

    def __init__(self, address: str):
        self.address = address
        _, port = split_address(address)
        self.process = subprocess.Popen(
            bound_to_test_run([sys.executable, str(Path(__file__).with_name("backend.py")), "--port", str(port)]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        assert line.startswith("READY"), f"subprocess backend did not start: {line!r}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def subprocess_backends():
    started: list[SubprocessBackend] = []

    def start(address: str) -> SubprocessBackend:
        started.append(SubprocessBackend(address))
        return started[-1]

    yield start
    for backend in started:
        backend.kill()


def test_unreachable_upstream_gives_unavailable_promptly_naming_the_upstream(proxy_factory, channel_factory, listener):
    down = free_address()  # nothing listens here
    proxy = proxy_factory.to(down)
    address = proxy.outbound() if listener == "outbound" else proxy.inbound()
    echo = channel_factory(address).unary_unary(method("Echo"))
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        echo(b"hello", timeout=30)
    elapsed = time.monotonic() - started
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
    assert elapsed < 3.0, f"UNAVAILABLE took {elapsed:.1f}s (deadline was 30s)"
    assert down in caught.value.details(), f"message does not name {down}: {caught.value.details()!r}"


def test_upstream_that_never_accepts_gives_unavailable_after_the_connect_timeout(proxy_factory, channel_factory):
    blackhole = BlackholeListener()
    try:
        assert blackhole.connect_hangs(), "test setup: connects to the blackhole listener should hang"
        proxy = proxy_factory.to(blackhole.address, connect_timeout_seconds=1)
        proxy.require_process()
        echo = channel_factory(proxy.outbound()).unary_unary(method("Echo"))
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            echo(b"hello", timeout=30)
        elapsed = time.monotonic() - started
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
        assert elapsed < 5.0, f"UNAVAILABLE took {elapsed:.1f}s with upstream.connectTimeoutSeconds=1"
        assert blackhole.address in caught.value.details(), caught.value.details()
    finally:
        blackhole.close()


def test_backend_killed_mid_stream_gives_the_client_an_error_promptly(
    proxy_factory, channel_factory, subprocess_backends
):
    backend = subprocess_backends(free_address())
    proxy = proxy_factory.to(backend.address)
    call = channel_factory(proxy.outbound()).unary_stream(method("Forever"))(b"", timeout=60)
    for _ in range(5):
        next(call)
    killed_at = time.monotonic()
    backend.kill()
    with pytest.raises(grpc.RpcError) as caught:
        for _ in call:
            pass
    elapsed = time.monotonic() - killed_at
    print(f"client saw {caught.value.code()} ({caught.value.details()!r}) {elapsed:.3f}s after the kill")
    assert caught.value.code() in ERRORS_FOR_A_DEAD_UPSTREAM
    assert elapsed < 5.0, f"client learnt of the dead upstream only after {elapsed:.1f}s"


def test_proxy_reaches_a_restarted_upstream(proxy_factory, channel_factory, subprocess_backends):
    address = free_address()
    first = subprocess_backends(address)
    proxy = proxy_factory.to(address)
    echo = channel_factory(proxy.outbound()).unary_unary(method("Echo"))
    assert echo(b"before", timeout=30) == b"before"
    first.kill()
    with pytest.raises(grpc.RpcError):
        echo(b"while down", timeout=10)
    subprocess_backends(address)
    assert wait_for_port(address, 10)
    # The proxy may back off before reconnecting; a healthy one gets there within a few seconds.
    deadline = time.monotonic() + 15
    while True:
        try:
            assert echo(b"after", timeout=10) == b"after"
            break
        except grpc.RpcError as error:
            if time.monotonic() > deadline:
                raise AssertionError(f"proxy never reached the restarted upstream: {error.code()} {error.details()}")
            time.sleep(0.2)


def test_a_busy_grpc_go_upstream_keeps_its_connection(temporal_server, proxy_factory, channel_factory):
    """grpc-go (the Temporal server) sends a BDP PING for nearly every burst of data it receives: hundreds a second
    under load. HTTP/2 flood heuristics tuned for strangers (NIOHTTP2's default: 200 PING/SETTINGS in 30 s) would
    close the connection every second or so, failing the calls on it; the proxy must keep it."""
    from concurrent.futures import ThreadPoolExecutor
    from plugin_build import GET_SYSTEM_INFO
    from proxy_process import ClusterConnection

    proxy = proxy_factory.start([ClusterConnection("busy", local_upstream=temporal_server.address,
                                                   remote_upstream=temporal_server.address)])  # fmt: skip
    channels = [channel_factory(proxy.outbound()) for _ in range(4)]
    outcomes: list[str] = []
    deadline = time.monotonic() + 4

    def load(channel) -> None:
        call = channel.unary_unary(GET_SYSTEM_INFO)
        while time.monotonic() < deadline:
            try:
                call(b"", timeout=10)
                outcomes.append("ok")
            except grpc.RpcError as error:
                outcomes.append(error.code().name)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(load, channels * 2))
    failures = [o for o in outcomes if o != "ok"]
    assert len(outcomes) > 500, f"too little load to prove anything: {len(outcomes)} calls"
    assert not failures, f"{len(failures)} of {len(outcomes)} calls failed: {set(failures)}"
    assert "upstream connection lost" not in proxy.log(None), proxy.log()


def test_calls_find_an_upstream_that_comes_back_within_a_second(proxy_factory, channel_factory, subprocess_backends):
    """While the upstream is down calls fail at once; once it accepts again, calls reach it within a second, not
    when the reconnect back-off (1 s, x1.6 per failure) next fires."""
    address = free_address()
    first = subprocess_backends(address)
    proxy = proxy_factory.to(address)
    echo = channel_factory(proxy.outbound()).unary_unary(method("Echo"))
    assert echo(b"before", timeout=10) == b"before"
    first.kill()
    outage_end = time.monotonic() + 3
    while time.monotonic() < outage_end:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as failed:
            echo(b"while down", timeout=10)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - started < 1, "a call to a refusing upstream did not fail at once"
        time.sleep(0.05)
    subprocess_backends(address)  # returns once the backend accepts
    back = time.monotonic()
    while True:
        try:
            assert echo(b"after", timeout=10) == b"after"
            break
        except grpc.RpcError as error:
            assert time.monotonic() - back < 10, f"the proxy never reached the upstream again: {error.details()}"
            time.sleep(0.02)
    recovery = time.monotonic() - back
    print(f"\ncalls reached the restarted upstream {recovery * 1000:.0f} ms after it accepted again")
    assert recovery < 1.0, f"calls found the restarted upstream only after {recovery:.2f}s"
