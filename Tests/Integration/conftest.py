"""Fixtures for the integration tests: a real Temporal dev server, real gRPC backends, the real proxy binary.

Every test talks to the proxy over loopback TCP with real clients (grpcio, the `temporal` CLI, the Temporal
Python SDK). When a test fails, the logs of the proxies it started are attached to its report.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from backend import Backend  # noqa: E402
from proxy_process import DIRECT, ClusterConnection, ProxyProcess, proxy_binary  # noqa: E402
from temporal_server import running_dev_server  # noqa: E402

# Loopback only: make sure no proxy settings of the environment route test traffic elsewhere.
for _var in ("http_proxy", "https_proxy", "grpc_proxy", "HTTP_PROXY", "HTTPS_PROXY", "GRPC_PROXY", "all_proxy"):
    os.environ.pop(_var, None)

CHANNEL_OPTIONS = [
    ("grpc.enable_http_proxy", 0),
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.max_send_message_length", -1),
    # One channel per test; never share a subchannel with another test's channel to the same address.
    ("grpc.use_local_subchannel_pool", 1),
]


def pytest_report_header(config):
    mode = "DIRECT (no proxy process; listeners map to upstreams)" if DIRECT else f"proxy binary {proxy_binary()}"
    return [f"s2s-proxy integration tests: {mode}"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        for proxy in getattr(item, "itest_proxies", []):
            report.sections.append((f"{proxy.label} log ({proxy.log_path})", proxy.log()))
    return report


# Temporal ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory):
    """One real Temporal dev server for the whole session; killed at the end whatever happens."""
    with running_dev_server(tmp_path_factory.mktemp("temporal")) as server:
        yield server


# gRPC backends -----------------------------------------------------------------------------------------------------


@pytest.fixture
def backend():
    """An in-process grpcio backend serving `itest.Backend` on a free port."""
    server = Backend("backend").start()
    yield server
    server.stop()


@pytest.fixture
def backend_factory():
    servers = []

    def make(name: str) -> Backend:
        server = Backend(name).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def channel_factory():
    """Opens grpcio channels (closed at teardown) with proxies disabled and generous message limits."""
    channels = []

    def make(address: str, compression=None, options=()) -> grpc.Channel:
        channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS + list(options), compression=compression)
        channels.append(channel)
        return channel

    yield make
    for channel in channels:
        channel.close()


# The proxy -------------------------------------------------------------------------------------------------------


class ProxyFactory:
    """Starts proxies for one test and stops each with SIGTERM afterwards, asserting exit code 0."""

    def __init__(self, request, workdir: Path):
        self.request = request
        self.workdir = workdir
        self.proxies: list[ProxyProcess] = []
        request.node.itest_proxies = self.proxies

    def start(self, connections: list[ClusterConnection], **options) -> ProxyProcess:
        proxy = ProxyProcess(self.workdir, connections, label=f"proxy{len(self.proxies) + 1}", **options)
        self.proxies.append(proxy)
        return proxy.start()

    def to(self, upstream: str, **options) -> ProxyProcess:
        """A proxy with one cluster connection `itest` whose two listeners both forward to `upstream`."""
        return self.start([ClusterConnection("itest", local_upstream=upstream, remote_upstream=upstream)], **options)

    def stop_all(self) -> None:
        errors = []
        for proxy in self.proxies:
            try:
                proxy.stop()
            except AssertionError as error:
                errors.append(str(error))
        assert not errors, "\n\n".join(errors)


@pytest.fixture
def proxy_factory(request, tmp_path):
    factory = ProxyFactory(request, tmp_path)
    yield factory
    factory.stop_all()


@pytest.fixture(params=["outbound", "inbound"])
def listener(request):
    """Which of a cluster connection's two listeners a test goes through: each must forward the same way."""
    return request.param


@pytest.fixture
def via(backend, proxy_factory, listener):
    """Address of a proxy listener (per `listener`) that forwards to the `backend` fixture."""
    proxy = proxy_factory.to(backend.address)
    return proxy.outbound() if listener == "outbound" else proxy.inbound()


# Temporal through the proxy ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def temporal_proxy(temporal_server, tmp_path_factory):
    """One proxy for the session whose two listeners both forward to the real Temporal dev server."""
    proxy = ProxyProcess(
        tmp_path_factory.mktemp("session-proxy"),
        [ClusterConnection("temporal", local_upstream=temporal_server.address, remote_upstream=temporal_server.address)],
        drain_timeout_seconds=5,
        label="session-proxy",
    )
    try:
        yield proxy.start()
    finally:
        proxy.stop()


@pytest.fixture
def temporal_via(request, temporal_proxy):
    """The session's Temporal proxy, with its log attached to this test's report if the test fails."""
    request.node.itest_proxies = [temporal_proxy]
    if temporal_proxy.process is not None and not temporal_proxy.alive():
        pytest.fail(
            f"the session's Temporal proxy exited earlier (code {temporal_proxy.process.returncode}); "
            f"log:\n{temporal_proxy.log()}"
        )
    return temporal_proxy


# Plugins -----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def probe_plugins(tmp_path_factory):
    """The probe test plugin (Tests/Plugins/probe_plugin.c) in each build variant, by variant name."""
    from plugin_build import build_probe_plugins

    return build_probe_plugins(tmp_path_factory.mktemp("plugins"))
