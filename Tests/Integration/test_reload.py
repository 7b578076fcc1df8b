"""SIGHUP: the plugin chains (and their options) are swapped for new calls; connections and a bidirectional stream
running across the reload are untouched; a bad new config is refused and the old chain keeps working."""

from __future__ import annotations

import queue
import signal
import threading
import time
import uuid

import grpc
import pytest

from backend import CALL_ID_HEADER, method
from proxy_process import DIRECT, ClusterConnection, render_config

pytestmark = pytest.mark.skipif(DIRECT, reason="reloading is the proxy's")
TIMEOUT = 10


def stamp(value: str) -> list[dict]:
    return [{"name": "example-header-stamp", "options": {"header": "x-stamp", "value": value}}]


def stamped(channel, backend) -> str | None:
    """The x-stamp header the backend saw on a new call."""
    call_id = str(uuid.uuid4())
    channel.unary_unary(method("Inspect"))(b"", timeout=TIMEOUT, metadata=[(CALL_ID_HEADER, call_id)])
    return dict(backend.record(call_id).metadata).get("x-stamp")


def wait_for_log(proxy, text: str, count: int = 1, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while proxy.log(None).count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{proxy.log()}"
        time.sleep(0.1)


def test_sighup_swaps_the_chain_for_new_calls_without_breaking_a_running_stream(backend, proxy_factory,
                                                                                  channel_factory):
    connection = ClusterConnection("itest", local_upstream=backend.address, remote_upstream=backend.address,
                                   plugins=stamp("before"))
    proxy = proxy_factory.start([connection])
    channel = channel_factory(proxy.outbound())
    assert stamped(channel, backend) == "before"

    # A bidirectional stream that runs across the reload.
    outgoing: queue.Queue = queue.Queue()
    stream = channel.stream_stream(method("EchoStream"))(iter(outgoing.get, None), timeout=60)
    answers: list[bytes] = []
    reader = threading.Thread(target=lambda: answers.extend(stream), daemon=True)
    reader.start()
    outgoing.put(b"one")

    connection.plugins = stamp("after")
    proxy.config_path.write_text(proxy.config_path.read_text().replace('"before"', '"after"'))
    proxy.process.send_signal(signal.SIGHUP)
    wait_for_log(proxy, "reload done")
    assert stamped(channel, backend) == "after"

    outgoing.put(b"two")
    outgoing.put(None)
    reader.join(timeout=TIMEOUT)
    assert answers == [b"one", b"two"], answers
    assert proxy.alive()


def test_a_bad_new_config_is_refused_and_the_old_chain_stays(backend, proxy_factory, channel_factory):
    proxy = proxy_factory.start([ClusterConnection("itest", local_upstream=backend.address,
                                                   remote_upstream=backend.address, plugins=stamp("kept"))])
    channel = channel_factory(proxy.outbound())
    good = proxy.config_path.read_text()
    for attempt, broken in enumerate((good.replace("example-header-stamp", "no-such-plugin"),
                                       good + "clusterConnectionz: []\n")):
        proxy.config_path.write_text(broken)
        proxy.process.send_signal(signal.SIGHUP)
        wait_for_log(proxy, "reload refused", count=attempt + 1)
        assert stamped(channel, backend) == "kept"
        proxy.config_path.write_text(good)
    assert proxy.alive()


def test_sighup_applies_new_log_limits_and_names_a_new_level_as_needing_a_restart(backend, proxy_factory):
    import socket

    proxy = proxy_factory.start([ClusterConnection("itest", local_upstream=backend.address,
                                                   remote_upstream=backend.address)],
                                extra_yaml="logConfigs:\n  tcpServer: {disabled: true}\n", log_level="info")

    def connect_and_leave() -> None:
        host, port = proxy.outbound().rsplit(":", 1)
        with socket.create_connection((host, int(port))):
            pass

    connect_and_leave()
    time.sleep(0.5)
    assert "connection opened" not in proxy.log(None), "tcpServer is disabled"

    text = proxy.config_path.read_text().replace("logConfigs:\n  tcpServer: {disabled: true}\n", "")
    proxy.config_path.write_text(text + "logging:\n  level: debug\n")
    proxy.process.send_signal(signal.SIGHUP)
    wait_for_log(proxy, "reload done")
    assert "take effect only at the next start: logging.level" in proxy.log(None), proxy.log()
    connect_and_leave()
    wait_for_log(proxy, "connection opened")


def test_sigterm_during_a_reload_waiting_for_the_schema_stops_the_proxy_at_once(backend, proxy_factory):
    # The new chain needs the Temporal schema, which the grpcio backend never serves: the reload waits for it (up to a
    # minute). SIGTERM meanwhile abandons the reload and shuts down as usual instead of waiting for it.
    connection = ClusterConnection("itest", local_upstream=backend.address, remote_upstream=backend.address,
                                   plugins=stamp("before"))
    proxy = proxy_factory.start([connection])
    connection.plugins = None
    connection.extra = {"namespaceTranslation": {"mappings": [{"local": "a", "remote": "b"}]}}
    proxy.config_path.write_text(render_config([connection], drain_timeout_seconds=proxy.drain_timeout_seconds))
    proxy.process.send_signal(signal.SIGHUP)
    wait_for_log(proxy, "SIGHUP: reloading")
    time.sleep(1)
    assert "reload done" not in proxy.log(None) and "reload refused" not in proxy.log(None), proxy.log()
    signalled_at = time.monotonic()
    proxy.send_signal(signal.SIGTERM)
    code = proxy.wait_exit(10)
    assert code == 0, f"exit code {code!r} (None = still running 10 s after SIGTERM):\n{proxy.log()}"
    assert time.monotonic() - signalled_at < 5, proxy.log()
    assert "reload abandoned" in proxy.log(None), proxy.log()
