"""TLS on the proxy's listeners (`tcpServer.tls`) and upstream dials (`tcpClient.tls`), against real TLS peers.

Clients are grpcio channels with `grpc.ssl_channel_credentials` and the `temporal` CLI with its --tls-* flags;
upstreams are grpcio TLS servers (client certificates required) and a second proxy. Certificates come from
Tests/Fixtures/tls/generate.sh. Every refused handshake must be logged with its peer and reason, and the proxy
must go on serving the clients that are allowed.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from backend import Backend, method
from conftest import CHANNEL_OPTIONS
from netutil import free_address
from plugin_build import wait_for_plugin_schema
from proxy_process import DIRECT, REPO_ROOT, ClusterConnection, render_config, run_cli

pytestmark = pytest.mark.skipif(DIRECT, reason="TLS is the proxy's; there is no proxy in direct mode")

GENERATE = REPO_ROOT / "Tests" / "Fixtures" / "tls" / "generate.sh"


@dataclass
class Certificates:
    directory: Path

    def path(self, name: str) -> str:
        return str(self.directory / name)

    def read(self, name: str) -> bytes:
        return (self.directory / name).read_bytes()

    def server_block(self, verify_clients: bool = True) -> dict:
        """A listener's `tls:` block: the server certificate, client certificates required from `ca`."""
        block = {"certificatePath": self.path("server.pem"), "keyPath": self.path("server.key")}
        if verify_clients:
            block["remoteCAPath"] = self.path("ca.pem")
        else:
            block["skipCAVerification"] = True
        return block

    def client_block(self, ca: str = "ca.pem") -> dict:
        """An upstream's `tls:` block: the client certificate, the server verified as `localhost` against `ca`."""
        return {
            "certificatePath": self.path("client.pem"),
            "keyPath": self.path("client.key"),
            "remoteCAPath": self.path(ca),
            "caServerName": "localhost",
        }

    def channel_credentials(self, ca: str = "ca.pem", client: str | None = "client") -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.read(ca),
            private_key=self.read(f"{client}.key") if client else None,
            certificate_chain=self.read(f"{client}.pem") if client else None,
        )


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certificates:
    directory = tmp_path_factory.mktemp("tls")
    result = subprocess.run(["bash", str(GENERATE), str(directory)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"generate.sh failed:\n{result.stdout}{result.stderr}"
    return Certificates(directory)


@pytest.fixture
def tls_channel():
    """Opens grpcio TLS channels (closed at teardown)."""
    channels = []

    def make(address: str, credentials: grpc.ChannelCredentials) -> grpc.Channel:
        channel = grpc.secure_channel(address, credentials, options=CHANNEL_OPTIONS)
        channels.append(channel)
        return channel

    yield make
    for channel in channels:
        channel.close()


def who(channel: grpc.Channel) -> str:
    return channel.unary_unary(method("Who"))(b"", timeout=15).decode()


def refused(channel: grpc.Channel) -> grpc.RpcError:
    """The error of a call that must not get through."""
    with pytest.raises(grpc.RpcError) as failure:
        who(channel)
    return failure.value


def wait_for_log(proxy, *parts: str, timeout: float = 10) -> str:
    """The first line of the proxy's log containing every one of `parts`; fails with the log when none appears in
    time. (Log lines put metadata, sorted by key, before the message.)"""
    deadline = time.monotonic() + timeout
    while True:
        for line in proxy.log(tail_lines=None).splitlines():
            if all(part in line for part in parts):
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"no log line containing {parts!r}; log:\n{proxy.log()}")
        time.sleep(0.1)


@pytest.fixture
def tls_listener(certs, backend, proxy_factory):
    """A proxy whose inbound listener (`remote.tcpServer`) requires client certificates issued by `ca`."""
    return proxy_factory.start(
        [
            ClusterConnection(
                "itest", local_upstream=backend.address, remote_upstream=backend.address,
                tls={"remote.tcpServer": certs.server_block()},
            )
        ]
    )  # fmt: skip


# Listener ---------------------------------------------------------------------------------------------------------


def test_tls_listener_forwards_calls_of_a_client_with_a_certificate_from_its_ca(certs, tls_listener, tls_channel):
    channel = tls_channel(tls_listener.inbound(), certs.channel_credentials())
    assert who(channel) == "backend"
    echo = channel.unary_unary(method("Echo"))
    payload = bytes(range(256)) * 4096
    assert echo(payload, timeout=15) == payload


def test_tls_listener_refuses_a_client_without_certificate_and_logs_the_peer(certs, tls_listener, tls_channel):
    error = refused(tls_channel(tls_listener.inbound(), certs.channel_credentials(client=None)))
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    line = wait_for_log(tls_listener, "TLS handshake failed", "sent no certificate")
    assert "peer=127.0.0.1:" in line, line
    assert "warning" in line, line
    assert who(tls_channel(tls_listener.inbound(), certs.channel_credentials())) == "backend"


def test_tls_listener_refuses_a_client_certificate_of_another_ca(certs, tls_listener, tls_channel):
    error = refused(tls_channel(tls_listener.inbound(), certs.channel_credentials(client="other-client")))
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    line = wait_for_log(tls_listener, "TLS handshake failed", "not issued by a trusted CA")
    assert "peer=127.0.0.1:" in line, line
    assert who(tls_channel(tls_listener.inbound(), certs.channel_credentials())) == "backend"


def test_client_that_does_not_trust_the_listener_is_refused_and_the_proxy_logs_it(certs, tls_listener, tls_channel):
    error = refused(tls_channel(tls_listener.inbound(), certs.channel_credentials(ca="other-ca.pem")))
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    # grpcio leaves without a TLS alert when it distrusts the server, so all the proxy can see is the peer leaving.
    wait_for_log(tls_listener, "TLS handshake failed", "closed the connection before the TLS handshake finished")
    assert who(tls_channel(tls_listener.inbound(), certs.channel_credentials())) == "backend"


def test_plain_http2_on_a_tls_listener_is_refused_and_logged(certs, tls_listener, tls_channel, channel_factory):
    error = refused(channel_factory(tls_listener.inbound()))
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    wait_for_log(tls_listener, "TLS handshake failed", "does not speak TLS")
    assert who(tls_channel(tls_listener.inbound(), certs.channel_credentials())) == "backend"


def test_the_other_listener_of_the_connection_stays_plain(tls_listener, channel_factory):
    assert who(channel_factory(tls_listener.outbound())) == "backend"


def test_listener_with_skip_ca_verification_accepts_clients_without_certificate(
    certs, backend, proxy_factory, tls_channel
):
    proxy = proxy_factory.start(
        [
            ClusterConnection(
                "itest", local_upstream=backend.address, remote_upstream=backend.address,
                tls={"remote.tcpServer": certs.server_block(verify_clients=False)},
            )
        ]
    )  # fmt: skip
    assert who(tls_channel(proxy.inbound(), certs.channel_credentials(client=None))) == "backend"


# Upstream ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def tls_backend(certs):
    """A grpcio backend that serves TLS as `localhost`/127.0.0.1 and requires client certificates from `ca`."""
    credentials = grpc.ssl_server_credentials(
        [(certs.read("server.key"), certs.read("server.pem"))],
        root_certificates=certs.read("ca.pem"),
        require_client_auth=True,
    )
    server = Backend("tls-backend", credentials=credentials).start()
    yield server
    server.stop()


def test_upstream_dial_with_tls_reaches_a_server_that_requires_client_certificates(
    certs, tls_backend, backend, proxy_factory, channel_factory
):
    proxy = proxy_factory.start(
        [
            ClusterConnection(
                "itest", local_upstream=tls_backend.address, remote_upstream=backend.address,
                tls={"local.tcpClient": certs.client_block()},
            )
        ]
    )  # fmt: skip
    assert who(channel_factory(proxy.inbound())) == "tls-backend"
    assert who(channel_factory(proxy.outbound())) == "backend", "the other upstream stays plain"


def test_upstream_with_a_certificate_from_an_untrusted_ca_fails_calls_with_the_reason(
    certs, tls_backend, proxy_factory, channel_factory
):
    proxy = proxy_factory.start(
        [
            ClusterConnection(
                "itest", local_upstream=tls_backend.address, remote_upstream=tls_backend.address,
                tls={"local.tcpClient": certs.client_block(ca="other-ca.pem")},
            )
        ]
    )  # fmt: skip
    error = refused(channel_factory(proxy.inbound()))
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    assert "not issued by a trusted CA" in error.details(), error.details()
    line = wait_for_log(proxy, "TLS handshake failed", "not issued by a trusted CA")
    assert f"peer={tls_backend.address}" in line, line


def test_upstream_that_requires_a_client_certificate_the_proxy_does_not_send_fails_calls(
    certs, tls_backend, proxy_factory, channel_factory
):
    without_certificate = {"remoteCAPath": certs.path("ca.pem"), "caServerName": "localhost"}
    proxy = proxy_factory.start(
        [
            ClusterConnection(
                "itest", local_upstream=tls_backend.address, remote_upstream=tls_backend.address,
                tls={"local.tcpClient": without_certificate},
            )
        ]
    )  # fmt: skip
    # Under TLS 1.3 the server judges the client certificate after the proxy's side of the handshake has ended, and
    # grpc-core closes without an alert: the proxy must not take that connection for established.
    error = refused(channel_factory(proxy.inbound()))
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    assert "closed the connection right after the TLS handshake" in error.details(), error.details()
    wait_for_log(proxy, "upstream unavailable", "client certificate")


# Health of a TLS upstream ----------------------------------------------------------------------------------------


def tls_upstream_with_health(proxy_factory, upstream: str, tls_block: dict) -> str:
    """A proxy whose local Temporal is `upstream`, dialled with `tls_block`; the local health check's address."""
    from test_health import health_checks

    health = free_address()
    proxy_factory.start(
        [
            ClusterConnection(
                "itest", local_upstream=upstream, remote_upstream=upstream,
                tls={"local.tcpClient": tls_block}, extra=health_checks(local=health),
            )
        ]
    )  # fmt: skip
    return health


def test_health_is_ok_when_a_tls_upstream_completes_the_handshake(certs, tls_backend, proxy_factory):
    from test_health import wait_for_status

    health = tls_upstream_with_health(proxy_factory, tls_backend.address, certs.client_block())
    # No call has gone out, so the probe's own handshake decides.
    assert wait_for_status(health, 200) == "OK\n"


def test_health_reports_a_tls_upstream_whose_certificate_the_proxy_does_not_trust(certs, tls_backend, proxy_factory):
    from test_health import wait_for_status

    health = tls_upstream_with_health(proxy_factory, tls_backend.address, certs.client_block(ca="other-ca.pem"))
    body = wait_for_status(health, 503)
    assert f"TLS handshake with {tls_backend.address} failed: " in body, body
    assert "not issued by a trusted CA" in body, body


def test_health_reports_a_tls_upstream_whose_certificate_names_another_server(certs, proxy_factory):
    from test_health import wait_for_status

    # named-server.pem names only `localhost` (a certificate with the dialled IP would pass under any name, as calls
    # do: see the TLS section of docs/ARCHITECTURE.md).
    credentials = grpc.ssl_server_credentials([(certs.read("named-server.key"), certs.read("named-server.pem"))])
    named = Backend("named-backend", credentials=credentials).start()
    try:
        block = {**certs.client_block(), "caServerName": "elsewhere.example"}
        health = tls_upstream_with_health(proxy_factory, named.address, block)
        body = wait_for_status(health, 503)
        assert f"TLS handshake with {named.address} failed: " in body, body
        assert "not issued for the expected name" in body, body
    finally:
        named.stop()


def test_health_reports_a_plain_tcp_upstream_where_tls_is_expected(certs, backend, proxy_factory):
    from test_health import wait_for_status

    health = tls_upstream_with_health(proxy_factory, backend.address, certs.client_block())
    body = wait_for_status(health, 503)
    assert f"TLS handshake with {backend.address} failed: the peer does not speak TLS" in body, body


def test_two_proxies_speak_mutual_tls_to_each_other(certs, backend_factory, proxy_factory, channel_factory):
    """The s2s shape: proxy A's remote.tcpClient dials proxy B's remote.tcpServer, both sides authenticated."""
    a_local, b_local = backend_factory("a-local"), backend_factory("b-local")
    b_inbound = free_address()
    proxy_factory.start(
        [
            ClusterConnection(
                "b", local_upstream=b_local.address, remote_upstream=free_address(), inbound_listen=b_inbound,
                tls={"remote.tcpServer": certs.server_block()},
            )
        ]
    )  # fmt: skip
    proxy_a = proxy_factory.start(
        [
            ClusterConnection(
                "a", local_upstream=a_local.address, remote_upstream=b_inbound,
                tls={"remote.tcpClient": certs.client_block()},
            )
        ]
    )  # fmt: skip
    assert who(channel_factory(proxy_a.outbound())) == "b-local"
    stream = channel_factory(proxy_a.outbound()).stream_stream(method("EchoStream"))
    messages = [bytes([i]) * 70_000 for i in range(20)]
    assert list(stream(iter(messages), timeout=30)) == messages


# Start-up ---------------------------------------------------------------------------------------------------------


def test_validate_names_the_tls_key_of_a_missing_file(tmp_path, certs):
    connection = ClusterConnection(
        "itest", free_address(), free_address(),
        tls={"remote.tcpServer": {**certs.server_block(), "certificatePath": "/nonexistent/server.pem"}},
    )  # fmt: skip
    config = tmp_path / "missing.yaml"
    config.write_text(render_config([connection]))
    for command in (["validate"], ["start"]):
        result = run_cli([*command, "--config", str(config)])
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert "remote.tcpServer.tls.certificatePath" in output, output
        assert "no such file" in output, output


def test_validate_refuses_a_ca_bundle_without_a_ca(tmp_path, certs):
    connection = ClusterConnection(
        "itest", free_address(), free_address(),
        tls={"remote.tcpServer": {**certs.server_block(), "remoteCAPath": certs.path("client.pem")}},
    )  # fmt: skip
    config = tmp_path / "leaf-bundle.yaml"
    config.write_text(render_config([connection]))
    result = run_cli(["validate", "--config", str(config)])
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "remote.tcpServer.tls.remoteCAPath" in output, output
    assert "no usable CA certificates found in bundle" in output, output


def test_validate_warns_that_a_listener_block_with_only_a_ca_leaves_tls_off(tmp_path, certs):
    connection = ClusterConnection(
        "itest", free_address(), free_address(), tls={"remote.tcpServer": {"remoteCAPath": certs.path("ca.pem")}}
    )
    config = tmp_path / "ca-only.yaml"
    config.write_text(render_config([connection]))
    result = run_cli(["validate", "--config", str(config)])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "TLS stays off" in output, output


# Temporal ---------------------------------------------------------------------------------------------------------


def test_temporal_cli_reaches_the_dev_server_through_a_tls_listener(certs, temporal_server, proxy_factory):
    proxy = proxy_factory.start(
        [
            ClusterConnection(
                "itest", local_upstream=temporal_server.address, remote_upstream=temporal_server.address,
                tls={"remote.tcpServer": certs.server_block()},
            )
        ]
    )  # fmt: skip
    tls_flags = [
        "--tls-ca-path", certs.path("ca.pem"),
        "--tls-cert-path", certs.path("client.pem"),
        "--tls-key-path", certs.path("client.key"),
        "--tls-server-name", "localhost",
    ]  # fmt: skip
    described = temporal_server.cli_json(["operator", "namespace", "describe", "default", *tls_flags], proxy.inbound())
    assert described["namespaceInfo"]["name"] == "default"
    without_certificate = temporal_server.cli(
        ["operator", "namespace", "describe", "default", "--tls-ca-path", certs.path("ca.pem"),
         "--tls-server-name", "localhost"],
        proxy.inbound(), check=False, timeout=60,
    )  # fmt: skip
    assert without_certificate.returncode != 0, without_certificate.stdout


def test_schema_is_pulled_over_tls_when_the_local_temporal_is_reached_over_tls(
    certs, temporal_server, proxy_factory, channel_factory
):
    """namespace-rename needs the schema, pulled by reflection from local.tcpClient: here a TLS listener (a second
    proxy in front of the dev server), so the pull must speak TLS with local.tcpClient's block."""
    front_inbound = free_address()
    proxy_factory.start(
        [
            ClusterConnection(
                "front", local_upstream=temporal_server.address, remote_upstream=free_address(),
                inbound_listen=front_inbound, tls={"remote.tcpServer": certs.server_block()},
            )
        ]
    )  # fmt: skip
    renaming = proxy_factory.start(
        [
            ClusterConnection(
                "renaming", local_upstream=front_inbound, remote_upstream=free_address(),
                tls={"local.tcpClient": certs.client_block()},
                extra={"namespaceTranslation": {"mappings": [{"local": "default", "remote": "default.remote"}]}},
            )
        ]
    )  # fmt: skip
    wait_for_plugin_schema(channel_factory(renaming.inbound()))
    described = temporal_server.cli_json(["operator", "namespace", "describe", "default.remote"], renaming.inbound())
    assert described["namespaceInfo"]["name"] == "default.remote"
