"""The proxy as a program: command line, configuration checks, several cluster connections, graceful shutdown."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time

import grpc
import pytest

from backend import method
from netutil import free_address, port_accepts
from proxy_process import DIRECT, ClusterConnection, proxy_binary, render_config, run_cli

needs_binary = pytest.mark.skipif(DIRECT, reason="needs the proxy binary (S2S_ITEST_DIRECT is set)")


# Command line and configuration ---------------------------------------------------------------------------------


@needs_binary
def test_version_prints_a_version_and_exits_zero():
    result = run_cli(["--version"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "--version printed nothing"


@needs_binary
def test_validate_accepts_a_good_config_with_a_one_line_summary(tmp_path):
    config = tmp_path / "good.yaml"
    connections = [
        ClusterConnection("alpha", free_address(), free_address()),
        ClusterConnection("beta", free_address(), free_address()),
    ]
    config.write_text(render_config(connections, max_message_bytes=1048576, drain_timeout_seconds=5))
    result = run_cli(["validate", "--config", str(config)])
    assert result.returncode == 0, f"validate refused a good config:\n{result.stdout}{result.stderr}"
    summary = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(summary) == 1, f"expected a one-line summary, got:\n{result.stdout}"


BROKEN_CONFIGS = {
    "unknown-key": (
        "clusterConnections:\n"
        "  - name: itest\n"
        "    local:\n"
        "      connectionType: tcp\n"
        "      tcpClient:\n"
        "        address: 127.0.0.1:7233\n"
        "        adress: 127.0.0.1:7234\n"  # line 7: misspelt key
        "      tcpServer:\n"
        "        address: 127.0.0.1:6233\n"
        "    remote:\n"
        "      connectionType: tcp\n"
        "      tcpClient:\n"
        "        address: 127.0.0.1:6334\n"
        "      tcpServer:\n"
        "        address: 127.0.0.1:6234\n",
        "adress",
        7,
    ),
    "bad-connection-type": (
        "clusterConnections:\n"
        "  - name: itest\n"
        "    local:\n"
        "      connectionType: tcp\n"
        "      tcpClient: { address: 127.0.0.1:7233 }\n"
        "      tcpServer: { address: 127.0.0.1:6233 }\n"
        "    remote:\n"
        "      connectionType: carrier-pigeon\n"  # line 8
        "      tcpClient: { address: 127.0.0.1:6334 }\n"
        "      tcpServer: { address: 127.0.0.1:6234 }\n",
        "connectionType",
        8,
    ),
    "bad-limit-type": (
        "clusterConnections:\n"
        "  - name: itest\n"
        "    local:\n"
        "      connectionType: tcp\n"
        "      tcpClient: { address: 127.0.0.1:7233 }\n"
        "      tcpServer: { address: 127.0.0.1:6233 }\n"
        "    remote:\n"
        "      connectionType: tcp\n"
        "      tcpClient: { address: 127.0.0.1:6334 }\n"
        "      tcpServer: { address: 127.0.0.1:6234 }\n"
        "limits:\n"
        "  maxMessageBytes: lots\n",  # line 12
        "maxMessageBytes",
        12,
    ),
}


@needs_binary
@pytest.mark.parametrize("case", BROKEN_CONFIGS, ids=list(BROKEN_CONFIGS))
def test_validate_rejects_a_broken_config_naming_key_and_line(tmp_path, case):
    text, key, line = BROKEN_CONFIGS[case]
    config = tmp_path / "broken.yaml"
    config.write_text(text)
    result = run_cli(["validate", "--config", str(config)])
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"validate accepted a broken config:\n{output}"
    assert key in output, f"error does not name {key!r}:\n{output}"
    assert re.search(rf"(:{line}:|line {line}\b)", output), f"error does not name line {line}:\n{output}"


def minimal_connection_yaml(extra: str = "", remote_override: str | None = None) -> str:
    remote = remote_override or (
        "    remote:\n"
        "      connectionType: tcp\n"
        f"      tcpClient: {{ address: {free_address()} }}\n"
        f"      tcpServer: {{ address: {free_address()} }}\n"
    )
    return (
        "clusterConnections:\n"
        "  - name: itest\n"
        "    local:\n"
        "      connectionType: tcp\n"
        f"      tcpClient: {{ address: {free_address()} }}\n"
        f"      tcpServer: {{ address: {free_address()} }}\n" + remote + extra
    )


UNSUPPORTED = {
    "connectionType": minimal_connection_yaml().replace(
        "    local:\n      connectionType: tcp\n",
        f"    local:\n      connectionType: mux-server\n      muxAddressInfo: {{ address: {free_address()} }}\n", 1,
    ),
}


@needs_binary
@pytest.mark.parametrize("key", UNSUPPORTED, ids=list(UNSUPPORTED))
def test_start_refuses_features_it_does_not_support_yet_naming_the_key(tmp_path, key):
    config = tmp_path / "unsupported.yaml"
    config.write_text(UNSUPPORTED[key])
    try:
        result = subprocess.run(
            [str(proxy_binary()), "start", "--config", str(config)],
            capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"start did not refuse a config with {key}; it kept running:\n{expired.stderr}")
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"start accepted {key}:\n{output}"
    assert key in output, f"refusal does not name {key!r}:\n{output}"
    assert "not supported" in output.lower(), output


# Several cluster connections --------------------------------------------------------------------------------------


def test_two_cluster_connections_in_one_config_each_forward_both_ways(proxy_factory, backend_factory, channel_factory):
    names = ["alpha-local", "alpha-remote", "beta-local", "beta-remote"]
    backends = {name: backend_factory(name) for name in names}
    proxy = proxy_factory.start(
        [
            ClusterConnection("alpha", backends["alpha-local"].address, backends["alpha-remote"].address),
            ClusterConnection("beta", backends["beta-local"].address, backends["beta-remote"].address),
        ]
    )
    expected = {
        proxy.outbound("alpha"): "alpha-remote",  # local.tcpServer -> remote.tcpClient
        proxy.inbound("alpha"): "alpha-local",  # remote.tcpServer -> local.tcpClient
        proxy.outbound("beta"): "beta-remote",
        proxy.inbound("beta"): "beta-local",
    }
    for address, backend_name in expected.items():
        who = channel_factory(address).unary_unary(method("Who"))
        assert who(b"", timeout=30).decode() == backend_name, f"listener {address}"


# Graceful shutdown -----------------------------------------------------------------------------------------------


def test_sigterm_lets_an_in_flight_call_finish_then_exits_zero(backend, proxy_factory, channel_factory):
    proxy = proxy_factory.to(backend.address, drain_timeout_seconds=30)
    proxy.require_process()
    sleep = channel_factory(proxy.outbound()).unary_unary(method("Sleep"))
    future = sleep.future(json.dumps({"seconds": 3}).encode(), metadata=[("x-itest-call-id", "drain")], timeout=60)
    backend.wait_started("drain")
    signalled_at = time.monotonic()
    proxy.send_signal(signal.SIGTERM)
    assert future.result(timeout=30) == b"done", "the in-flight call did not complete during the drain"
    code = proxy.wait_exit(15)
    exited_after = time.monotonic() - signalled_at
    assert code == 0, f"exit code {code!r} (None = still running 15s after the call finished)"
    print(f"proxy exited {exited_after:.2f}s after SIGTERM")
    assert exited_after < 15, "the drain waited for its full timeout although no call was left"


def test_drain_is_bounded_by_the_drain_timeout(backend, proxy_factory, channel_factory):
    proxy = proxy_factory.to(backend.address, drain_timeout_seconds=2)
    proxy.require_process()
    sleep = channel_factory(proxy.outbound()).unary_unary(method("Sleep"))
    future = sleep.future(json.dumps({"seconds": 120}).encode(), metadata=[("x-itest-call-id", "stuck")], timeout=180)
    backend.wait_started("stuck")
    signalled_at = time.monotonic()
    proxy.send_signal(signal.SIGTERM)
    code = proxy.wait_exit(12)
    assert code == 0, f"exit code {code!r} (None = still running 12s after SIGTERM with drainTimeoutSeconds=2)"
    assert time.monotonic() - signalled_at >= 1.5, "the proxy did not wait for the in-flight call at all"
    with pytest.raises(grpc.RpcError) as caught:
        future.result(timeout=10)
    assert caught.value.code() != grpc.StatusCode.DEADLINE_EXCEEDED


def test_sigint_stops_an_idle_proxy_with_exit_code_zero(backend, proxy_factory):
    proxy = proxy_factory.to(backend.address)
    proxy.require_process()
    proxy.send_signal(signal.SIGINT)
    assert proxy.wait_exit(15) == 0
    assert not port_accepts(proxy.outbound()), "the listener is still open after the proxy exited"
