"""Log output: `--log-format json` (one JSON object per line), the component of every line, `logging.throttleMaxRPS`
(the Go proxy's root throttle: lines beyond the rate are dropped and counted; errors never are) and
`logConfigs.<component>` (a component's own limit, or `disabled`)."""

from __future__ import annotations

import json
import socket
import time

import pytest

import urllib.request

import grpc

from backend import method
from netutil import free_address
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
    assert all(line["component"] == "tcpServer" for line in opened), opened
    started = [line for line in lines if line["message"] == "s2s-proxy started"]
    assert started and started[0]["component"] == "init", started
    assert all(line["peer"].startswith("127.0.0.1:") for line in opened), opened


def test_throttle_drops_lines_beyond_the_rate_and_says_how_many(proxy_factory, backend):
    proxy = proxy_factory.start([ClusterConnection("itest", local_upstream=backend.address,
                                                   remote_upstream=backend.address)],
                                extra_yaml="logging:\n  throttleMaxRPS: 2\n", log_level="info")
    time.sleep(1.5)  # the bucket refills after the start-up lines
    connect_and_leave(proxy.outbound(), 40)
    time.sleep(1.2)
    connect_and_leave(proxy.outbound(), 1)  # the next line that passes reports the drops
    wait_for(lambda: "log lines of tcpServer dropped by logging.throttleMaxRPS (2/s)" in proxy.log(None))
    assert proxy.log(None).count("connection opened") < 20, proxy.log()


WORKFLOW_CALL = "/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo"


def test_log_configs_limit_one_component_and_silence_another_while_a_third_logs_every_line(
    proxy_factory, backend, channel_factory
):
    # The backend's own methods are `otherServices` calls; a WorkflowService path is `workflowService` (the backend
    # answers it UNIMPLEMENTED, which the proxy forwards like any status).
    metrics_address = free_address()
    proxy = proxy_factory.start(
        [ClusterConnection("itest", local_upstream=backend.address, remote_upstream=backend.address)],
        extra_yaml="logConfigs:\n  tcpServer: {disabled: true}\n  otherServices: {throttleMaxRPS: 1}\n",
        log_level="debug", metrics_address=metrics_address,
    )  # fmt: skip
    channel = channel_factory(proxy.outbound())
    who = channel.unary_unary(method("Who"))
    for _ in range(20):
        who(b"", timeout=15)
    workflow = channel.unary_unary(WORKFLOW_CALL)
    for _ in range(3):
        with pytest.raises(grpc.RpcError):
            workflow(b"", timeout=15)
    def finished(component: str) -> int:
        return sum(1 for line in proxy.log(None).splitlines()
                   if f"s2s-proxy[{component}]" in line and line.endswith("call finished"))

    wait_for(lambda: finished("workflowService") >= 3)
    log = proxy.log(None)
    assert "[tcpServer]" not in log and "connection opened" not in log, "tcpServer is disabled"
    assert finished("workflowService") == 3, log
    limited = finished("otherServices")
    assert 1 <= limited <= 5, f"otherServices at 1 line/s wrote {limited} lines for 20 calls:\n{log}"
    # The drops are reported by the next line of the component that passes, or by the periodic report.
    time.sleep(1.1)
    who(b"", timeout=15)
    wait_for(lambda: "log lines of otherServices dropped by logConfigs.otherServices.throttleMaxRPS (1/s)"
             in proxy.log(None))
    with urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    assert 's2s_proxy_log_lines_dropped_total{component="otherServices",reason="rate_limit"}' in metrics, metrics
    assert 's2s_proxy_log_lines_dropped_total{component="tcpServer",reason="disabled"}' in metrics, metrics


def test_an_unknown_component_in_log_configs_is_a_warning_listing_the_known_names(tmp_path, backend):
    import subprocess

    from proxy_process import proxy_binary, render_config

    config = tmp_path / "components.yaml"
    config.write_text(render_config([ClusterConnection("itest", local_upstream=backend.address,
                                                       remote_upstream=backend.address)])
                      + "logConfigs:\n  tcpServers: {disabled: true}\n")
    result = subprocess.run([str(proxy_binary()), "validate", "--config", str(config)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "logConfigs.tcpServers" in output and 'did you mean "tcpServer"' in output, output
    assert "adminService, workflowService, replicationStreams" in output, output


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
