"""Log output: `--log-format json` (one JSON object per line) and `logging.throttleMaxRPS` (the Go proxy's root
throttle: lines beyond the rate are dropped and counted; errors never are)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from proxy_process import DIRECT, ClusterConnection

pytestmark = pytest.mark.skipif(DIRECT, reason="the proxy's own log")


def connect_and_leave(address: str, times: int) -> None:
    """Connections that say nothing and leave: one info line each when opened and closed."""
    host, port = address.rsplit(":", 1)
    for _ in range(times):
        with socket.create_connection((host, int(port))):
            pass


def wait_for(predicate, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_json_log_lines_parse_and_carry_the_metadata(proxy_factory, backend):
    proxy = proxy_factory.start([ClusterConnection("itest", local_upstream=backend.address,
                                                   remote_upstream=backend.address)],
                                extra_args=("--log-format", "json"), log_level="info")
    connect_and_leave(proxy.outbound(), 1)
    wait_for(lambda: "connection closed" in proxy.log(None))
    lines = [json.loads(line) for line in proxy.log(None).splitlines() if line.startswith("{")]
    assert lines, proxy.log()
    for line in lines:
        assert {"time", "level", "logger", "message", "source"} <= line.keys(), line
    # (The start-up readiness probe opens connections too, to both listeners.)
    opened = [line for line in lines if line["message"] == "connection opened" and line.get("direction") == "outbound"]
    assert opened and all(line["connection"] == "itest" for line in opened), opened
    assert all(line["peer"].startswith("127.0.0.1:") for line in opened), opened


def test_throttle_drops_lines_beyond_the_rate_and_says_how_many(proxy_factory, backend):
    proxy = proxy_factory.start([ClusterConnection("itest", local_upstream=backend.address,
                                                   remote_upstream=backend.address)],
                                extra_yaml="logging:\n  throttleMaxRPS: 2\n", log_level="info")
    time.sleep(1.5)  # the bucket refills after the start-up lines
    connect_and_leave(proxy.outbound(), 40)
    time.sleep(1.2)
    connect_and_leave(proxy.outbound(), 1)  # the next line that passes reports the drops
    wait_for(lambda: "log lines dropped by logging.throttleMaxRPS" in proxy.log(None))
    assert proxy.log(None).count("connection opened") < 20, proxy.log()


def test_the_config_sets_the_level_when_the_command_line_does_not(proxy_factory, backend):
    proxy = proxy_factory.start([ClusterConnection("itest", local_upstream=backend.address,
                                                   remote_upstream=backend.address)],
                                extra_yaml="logging:\n  level: warn\n", log_level=None)
    connect_and_leave(proxy.outbound(), 3)
    time.sleep(0.5)
    assert "connection opened" not in proxy.log(None), "info lines must be filtered out at warn"


def test_an_unknown_level_in_the_config_is_an_error_naming_the_key(tmp_path, backend):
    import subprocess

    from proxy_process import proxy_binary, render_config

    config = tmp_path / "level.yaml"
    config.write_text(render_config([ClusterConnection("itest", local_upstream=backend.address,
                                                       remote_upstream=backend.address)]) + "logging:\n  level: loud\n")
    result = subprocess.run([str(proxy_binary()), "validate", "--config", str(config)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode != 0
    assert "logging.level" in result.stderr and "unknown log level" in result.stderr, result.stderr
