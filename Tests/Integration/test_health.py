"""The health endpoints (`localClusterHealthCheck`, `remoteClusterHealthCheck`) and `/debug/connections`.

Unlike the Go proxy, whose endpoints answer 200 whatever happens and exist for the first cluster connection only,
each connection's endpoints answer 200 only while its side is usable and 503 with what is missing otherwise:
local — the local Temporal (local.tcpClient) is reachable; remote — the remote upstream is reachable (tcp) or at
least one mux session is up (mux).
"""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request

import pytest

from backend import Backend
from netutil import free_address
from proxy_process import DIRECT, ClusterConnection, render_config

pytestmark = pytest.mark.skipif(DIRECT, reason="the health endpoints are the proxy's")


def get(address: str, path: str) -> tuple[int, str]:
    """Status and body of `GET http://address/path` (no proxies; errors give their status too)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{address}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for_status(address: str, expected: int, timeout: float = 30) -> str:
    """Polls `/health` until it answers `expected`; the body. Fails with the last answer otherwise."""
    deadline = time.monotonic() + timeout
    last: tuple[int, str] | None = None
    while time.monotonic() < deadline:
        try:
            last = get(address, "/health")
        except OSError as error:
            last = (0, f"{error}")
        if last[0] == expected:
            return last[1]
        time.sleep(0.2)
    raise AssertionError(f"/health on {address} did not answer {expected} within {timeout}s; last answer: {last}")


def health_checks(local: str | None = None, remote: str | None = None) -> dict:
    blocks = {}
    if local:
        blocks["localClusterHealthCheck"] = {"protocol": "http", "listenAddress": local}
    if remote:
        blocks["remoteClusterHealthCheck"] = {"protocol": "http", "listenAddress": remote}
    return blocks


def test_health_follows_the_upstreams_going_away_and_coming_back(proxy_factory, backend_factory):
    local_backend = backend_factory("local")
    remote_backend = backend_factory("remote")
    local_health, remote_health = free_address(), free_address()
    proxy_factory.start([ClusterConnection("itest", local_backend.address, remote_backend.address,
                                           extra=health_checks(local_health, remote_health))])
    assert wait_for_status(local_health, 200) == "OK\n"
    assert wait_for_status(remote_health, 200) == "OK\n"

    remote_port = int(remote_backend.address.rsplit(":", 1)[1])
    remote_backend.stop()
    body = wait_for_status(remote_health, 503)
    assert "remote" in body and remote_backend.address in body, body
    assert get(local_health, "/health")[0] == 200, "the local side is still there"

    restarted = Backend("remote-again", port=remote_port).start()
    try:
        wait_for_status(remote_health, 200)
    finally:
        restarted.stop()

    local_port = int(local_backend.address.rsplit(":", 1)[1])
    local_backend.stop()
    body = wait_for_status(local_health, 503)
    assert "local Temporal" in body and local_backend.address in body, body
    restarted = Backend("local-again", port=local_port).start()
    try:
        wait_for_status(local_health, 200)
    finally:
        restarted.stop()


def test_two_cluster_connections_each_answer_for_themselves(proxy_factory, backend_factory):
    alpha_local, beta_local = backend_factory("alpha-local"), backend_factory("beta-local")
    remote = backend_factory("remote")
    alpha_health, beta_health = free_address(), free_address()
    proxy_factory.start([
        ClusterConnection("alpha", alpha_local.address, remote.address, extra=health_checks(local=alpha_health)),
        ClusterConnection("beta", beta_local.address, remote.address, extra=health_checks(local=beta_health)),
    ])
    wait_for_status(alpha_health, 200)
    wait_for_status(beta_health, 200)
    beta_local.stop()
    body = wait_for_status(beta_health, 503)
    assert "connection beta" in body, body
    assert get(alpha_health, "/health") == (200, "OK\n")


def test_mux_remote_health_needs_a_session_and_debug_lists_them(proxy_factory, backend_factory):
    local = backend_factory("local")
    mux_address = free_address()
    client_health = free_address()
    client_side = proxy_factory.start([ClusterConnection(
        "pair", local.address, remote_upstream="", mux="mux-client", mux_address=mux_address, mux_count=2,
        extra=health_checks(remote=client_health),
    )])
    body = wait_for_status(client_health, 503, timeout=10)
    assert "no mux session" in body and mux_address in body, body

    server_health = free_address()
    server_connection = ClusterConnection("pair", local.address, remote_upstream="", mux="mux-server",
                                          mux_address=mux_address, mux_count=2,
                                          extra=health_checks(remote=server_health))
    server_side = proxy_factory.start([server_connection])
    wait_for_status(client_health, 200)
    wait_for_status(server_health, 200)  # the accepting side counts its sessions too

    status, text = get(client_health, "/debug/connections")
    assert status == 200, text
    report = json.loads(text)
    [connection] = report["connections"]
    assert connection["name"] == "pair"
    assert connection["mux"]["mode"] == "mux-client"
    assert connection["mux"]["address"] == mux_address
    deadline = time.monotonic() + 10
    while len(connection["mux"]["sessions"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        connection = json.loads(get(client_health, "/debug/connections")[1])["connections"][0]
    sessions = connection["mux"]["sessions"]
    assert len(sessions) == 2, connection
    assert all(session["streams"] >= 0 and session["canOpenStreams"] for session in sessions), sessions
    assert [u["role"] for u in connection["upstreams"]] == ["local"], connection
    assert {"role": "outbound", "address": client_side.outbound()} in connection["listeners"], connection

    server_side.send_signal(signal.SIGTERM)
    assert server_side.wait_exit(30) == 0, server_side.log()
    body = wait_for_status(client_health, 503)
    assert "no mux session" in body, body
    proxy_factory.start([server_connection])
    wait_for_status(client_health, 200, timeout=45)


def test_unknown_paths_get_404(proxy_factory, backend_factory):
    local = backend_factory("local")
    health = free_address()
    proxy_factory.start([ClusterConnection("itest", local.address, local.address, extra=health_checks(local=health))])
    wait_for_status(health, 200)
    assert get(health, "/nothing-here")[0] == 404


def test_local_health_waits_for_the_schema_a_plugin_needs(proxy_factory, backend_factory):
    # namespace-rename needs the Temporal schema; the grpcio backend serves no reflection, so it never arrives.
    local = backend_factory("local")
    health = free_address()
    proxy_factory.start([ClusterConnection(
        "renaming", local.address, local.address,
        extra={**health_checks(local=health), "namespaceTranslation": {"mappings": [{"local": "a", "remote": "b"}]}},
    )])
    body = wait_for_status(health, 503, timeout=10)
    assert "Temporal schema" in body and "namespace-rename" in body, body
    assert "not reachable" not in body, body
    report = json.loads(get(health, "/debug/connections")[1])
    [connection] = report["connections"]
    # utf8-repair comes with renaming, as in the Go proxy.
    assert [p["name"] for p in connection["plugins"]["inbound"]] == ["namespace-rename", "utf8-repair"], connection
    assert {s["state"] for s in connection["schema"]} == {"pending"}, connection


def test_health_and_debug_follow_the_chains_a_reload_puts_in_place(proxy_factory, backend_factory):
    # A chain whose schema never arrives keeps the local check at 503; once a reload replaces it with a chain that
    # needs no schema, the check and /debug/connections speak of the new chain, not of the retired one.
    local = backend_factory("local")
    health = free_address()
    connection = ClusterConnection(
        "renaming", local.address, local.address,
        extra={**health_checks(local=health), "namespaceTranslation": {"mappings": [{"local": "a", "remote": "b"}]}},
    )
    proxy = proxy_factory.start([connection])
    assert "Temporal schema" in wait_for_status(health, 503, timeout=10)

    connection.extra = health_checks(local=health)
    connection.plugins = [{"name": "example-header-stamp", "options": {"header": "x-stamp", "value": "reloaded"}}]
    proxy.config_path.write_text(render_config([connection], drain_timeout_seconds=proxy.drain_timeout_seconds))
    proxy.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while "reload done" not in proxy.log(None):
        assert time.monotonic() < deadline, f"the reload did not finish:\n{proxy.log()}"
        time.sleep(0.1)
    assert wait_for_status(health, 200, timeout=10) == "OK\n"
    report = json.loads(get(health, "/debug/connections")[1])
    [entry] = report["connections"]
    assert [p["name"] for p in entry["plugins"]["inbound"]] == ["example-header-stamp"], entry
    assert entry["schema"] == [], entry


def test_local_health_turns_200_once_the_schema_is_pulled_from_temporal(proxy_factory, temporal_server):
    health = free_address()
    proxy_factory.start([ClusterConnection(
        "renaming", temporal_server.address, temporal_server.address,
        extra={**health_checks(local=health), "namespaceTranslation": {"mappings": [{"local": "a", "remote": "b"}]}},
    )])
    assert wait_for_status(health, 200, timeout=60) == "OK\n"
    report = json.loads(get(health, "/debug/connections")[1])
    assert {s["state"] for s in report["connections"][0]["schema"]} == {"ready"}, report


def test_health_answers_are_counted_under_the_go_proxys_names(proxy_factory, backend_factory):
    from prometheus_client.parser import text_string_to_metric_families

    local_backend = backend_factory("local")
    nowhere = free_address()  # the remote upstream: nothing listens there
    local_health, remote_health, metrics_address = free_address(), free_address(), free_address()
    proxy_factory.start([ClusterConnection("itest", local_backend.address, nowhere,
                                           extra=health_checks(local_health, remote_health))],
                        metrics_address=metrics_address)  # fmt: skip
    wait_for_status(local_health, 200)
    for _ in range(3):
        assert get(local_health, "/health")[0] == 200
    for _ in range(2):
        assert get(remote_health, "/health")[0] == 503

    families = {f.name: f for f in text_string_to_metric_families(get(metrics_address, "/metrics")[1])}

    def counted(family: str, direction: str) -> float:
        [sample] = [s for s in families[family].samples
                    if s.labels == {"direction": direction, "config_name": "itest"}]  # fmt: skip
        return sample.value

    every, healthy = "temporal_s2s_proxy_health_check_success_count", "temporal_s2s_proxy_health_check_success"
    # inbound: the local check (wait_for_status may have seen a 503 before its 200).
    assert counted(healthy, "inbound") >= 4 and counted(every, "inbound") >= counted(healthy, "inbound")
    assert counted(every, "outbound") == 2 and counted(healthy, "outbound") == 0
    [start] = families["temporal_s2s_proxy_proxy_start_count"].samples
    assert start.value == 1
