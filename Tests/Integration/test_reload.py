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


def test_a_plugin_rebuilt_at_the_same_path_is_loaded_by_the_next_reload(backend, proxy_factory, channel_factory,
                                                                         tmp_path):
    # As an author iterates: `cc -o` rewrites the very file the proxy loaded (in place, same inode). The proxy runs
    # a private copy, so the rebuild cannot disturb it; SIGHUP loads the new build for new calls while a stream that
    # started on the old build goes on with it, and the log and /debug/connections name the build by its SHA-256.
    import hashlib
    import json
    import urllib.request

    from netutil import free_address
    from plugin_build import PROBE_SOURCE, build_c_plugin

    plugin = tmp_path / "libprobe-iterated.so"
    build_c_plugin(PROBE_SOURCE, plugin, ['-DPROBE_BUILD="one"'])
    first_sha = hashlib.sha256(plugin.read_bytes()).hexdigest()
    health = free_address()
    connection = ClusterConnection(
        "itest", local_upstream=backend.address, remote_upstream=backend.address,
        plugins=[{"path": str(plugin)}], extra={"localClusterHealthCheck": {"protocol": "http", "listenAddress": health}})
    proxy = proxy_factory.start([connection])
    channel = channel_factory(proxy.outbound())

    def build_seen() -> str | None:
        call_id = str(uuid.uuid4())
        channel.unary_unary(method("Inspect"))(b"", timeout=TIMEOUT, metadata=[(CALL_ID_HEADER, call_id)])
        return dict(backend.record(call_id).metadata).get("x-probe-build")

    def debug_sha() -> str:
        with urllib.request.urlopen(f"http://{health}/debug/connections", timeout=5) as answer:
            report = json.loads(answer.read())
        [entry] = report["connections"][0]["plugins"]["outbound"]
        assert entry["path"] == str(plugin), entry
        return entry["sha256"]

    assert build_seen() == "one"
    assert debug_sha() == first_sha
    assert f"sha256 {first_sha[:12]}" in proxy.log(None), proxy.log()

    outgoing: queue.Queue = queue.Queue()
    stream = channel.stream_stream(method("EchoStream"))(iter(outgoing.get, None), timeout=60)
    answers: list[bytes] = []
    reader = threading.Thread(target=lambda: answers.extend(stream), daemon=True)
    reader.start()
    outgoing.put(b"before")

    build_c_plugin(PROBE_SOURCE, plugin, ['-DPROBE_BUILD="two"'])
    second_sha = hashlib.sha256(plugin.read_bytes()).hexdigest()
    assert second_sha != first_sha
    outgoing.put(b"during")  # the old build keeps serving this stream although its file was rewritten
    proxy.process.send_signal(signal.SIGHUP)
    wait_for_log(proxy, "reload done")
    log = proxy.log(None)
    assert f"holds a new build of probe (two, sha256 {second_sha[:12]}" in log, log
    assert f"was sha256 {first_sha[:12]}" in log, log
    assert build_seen() == "two"
    assert debug_sha() == second_sha

    # A reload with the file unchanged keeps the build it has and says nothing about a new one.
    proxy.process.send_signal(signal.SIGHUP)
    wait_for_log(proxy, "reload done", count=2)
    assert proxy.log(None).count("holds a new build") == 1, proxy.log()
    assert build_seen() == "two"

    outgoing.put(b"after")
    outgoing.put(None)
    reader.join(timeout=TIMEOUT)
    assert answers == [b"before", b"during", b"after"], answers
    assert proxy.alive()


def test_plugin_copies_are_private_and_removed_at_exit(backend, proxy_factory, tmp_path):
    # The copies live in a directory of the proxy's own under TMPDIR while it runs, and are gone after it stops;
    # a directory left by a process that no longer exists is removed by the next proxy.
    from plugin_build import PROBE_SOURCE, build_c_plugin

    plugin = build_c_plugin(PROBE_SOURCE, tmp_path / "libprobe-copied.so")
    temp = tmp_path / "tmpdir"
    temp.mkdir()
    stale = temp / "s2s-proxy-plugins.999999999.AbCdEf"  # no such process (above the kernel's pid limit)
    stale.mkdir()
    (stale / "1-libold.so").write_bytes(b"old")
    proxy = proxy_factory.start([ClusterConnection("itest", local_upstream=backend.address,
                                                   remote_upstream=backend.address, plugins=[{"path": str(plugin)}])],
                                env={"TMPDIR": str(temp)})
    [directory] = list(temp.iterdir())
    assert directory.name.startswith(f"s2s-proxy-plugins.{proxy.process.pid}."), directory
    assert [p.name for p in directory.iterdir()] == ["1-libprobe-copied.so"]
    maps = open(f"/proc/{proxy.process.pid}/maps").read()
    assert str(directory / "1-libprobe-copied.so") in maps and str(plugin) not in maps
    proxy.send_signal(signal.SIGTERM)
    assert proxy.wait_exit(15) == 0
    assert list(temp.iterdir()) == [], list(temp.iterdir())
