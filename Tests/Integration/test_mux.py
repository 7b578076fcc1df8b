"""The mux tunnel (`remote.connectionType: mux-client | mux-server`) with real Temporal traffic in both directions:
two of our proxies as a pair, and each of our modes against hashicorp/yamux itself (Tests/Mux/yamux-peer), the
library the Go s2s-proxy multiplexes with, playing the Go proxy's end: streams it accepts are piped to a Temporal
frontend, connections on its -listen port are piped into new streams, one HTTP/2 connection per stream.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from itest_workflows import ChildGreetingWorkflow, ParentGreetingWorkflow, compose_greeting
from mux_peer import YamuxPeer
from netutil import free_address
from plugin_build import GET_SYSTEM_INFO, wait_for_plugin_schema
from proxy_process import DIRECT, ClusterConnection
from temporal_server import running_dev_server
from test_tls import Certificates, certs  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(DIRECT, reason="the mux tunnel is the proxy's")


@pytest.fixture
def peers(tmp_path):
    started = []

    def start(*args: str) -> YamuxPeer:
        peer = YamuxPeer(list(args), tmp_path / f"yamux-peer-{len(started)}.log")
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()


def describe_default(temporal_server, address: str) -> None:
    """A real client's call through `address`; fails the test if it does not reach the dev server."""
    described = temporal_server.cli_json(["operator", "namespace", "describe", "-n", "default"], address, timeout=60)
    assert described["namespaceInfo"]["name"] == "default", described


async def run_family(client_address: str, worker_address: str, namespace: str = "default") -> None:
    """The client starts a parent workflow through one address; the worker polls through the other."""
    client = await Client.connect(client_address, namespace=namespace)
    worker_client = await Client.connect(worker_address, namespace=namespace)
    task_queue = f"itest-mux-{uuid.uuid4().hex[:8]}"
    async with Worker(worker_client, task_queue=task_queue, workflows=[ParentGreetingWorkflow, ChildGreetingWorkflow],
                      activities=[compose_greeting], workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await client.start_workflow(ParentGreetingWorkflow.run, "mux", id=f"itest-mux-{uuid.uuid4().hex[:8]}",
                                             task_queue=task_queue)
        assert await asyncio.wait_for(handle.result(), 90) == "Hello, mux!"


def test_a_mux_pair_of_our_proxies_carries_workflows_both_ways(temporal_server, proxy_factory):
    mux_address = free_address()
    server_side = proxy_factory.start([ClusterConnection("pair", local_upstream=temporal_server.address,
                                                         remote_upstream="", mux="mux-server",
                                                         mux_address=mux_address, mux_count=3)])
    client_side = proxy_factory.start([ClusterConnection("pair", local_upstream=temporal_server.address,
                                                         remote_upstream="", mux="mux-client",
                                                         mux_address=mux_address, mux_count=3)])
    # Calls made at once wait for the sessions rather than fail.
    describe_default(temporal_server, client_side.outbound())
    describe_default(temporal_server, server_side.outbound())
    # A workflow whose client sits behind one proxy and whose worker behind the other.
    asyncio.run(run_family(client_side.outbound(), server_side.outbound()))
    assert "mux session established" in client_side.log(None)
    assert server_side.log(None).count("mux session established") == 3


def test_renaming_on_one_side_of_a_mux_pair(temporal_server, proxy_factory, channel_factory):
    mux_address = free_address()
    proxy_factory.start([ClusterConnection(
        "pair", local_upstream=temporal_server.address, remote_upstream="", mux="mux-server", mux_address=mux_address,
        extra={"namespaceTranslation": {"mappings": [{"local": "orders", "remote": "orders.remote"}]}},
    )])  # fmt: skip
    client_side = proxy_factory.start([ClusterConnection("pair", local_upstream=temporal_server.address,
                                                         remote_upstream="", mux="mux-client",
                                                         mux_address=mux_address)])
    # The renaming plugin waits for the schema, pulled by reflection from the dev server.
    wait_for_plugin_schema(channel_factory(client_side.outbound()))
    # `orders.remote` exists only as the server side's renaming of the dev server's `orders`.
    asyncio.run(run_family(client_side.outbound(), client_side.outbound(), namespace="orders.remote"))


@pytest.fixture(scope="module")
def second_temporal_server(tmp_path_factory):
    """A second, independent dev server: the other cluster of a pair."""
    with running_dev_server(tmp_path_factory.mktemp("temporal-b")) as server:
        yield server


def test_a_mux_pair_between_two_dev_servers_with_renaming_on_one_side(temporal_server, second_temporal_server,
                                                                       proxy_factory, channel_factory):
    # Cluster A (temporal_server) behind a mux-server proxy that shows its `orders` to the other side as `orders.b`;
    # cluster B (second_temporal_server) behind a mux-client proxy.
    mux_address = free_address()
    proxy_a = proxy_factory.start([ClusterConnection(
        "a", local_upstream=temporal_server.address, remote_upstream="", mux="mux-server", mux_address=mux_address,
        extra={"namespaceTranslation": {"mappings": [{"local": "orders", "remote": "orders.b"}]}},
    )])  # fmt: skip
    proxy_b = proxy_factory.start([ClusterConnection("b", local_upstream=second_temporal_server.address,
                                                     remote_upstream="", mux="mux-client", mux_address=mux_address)])
    # A's renaming (both sides) needs the schema, pulled from cluster A.
    wait_for_plugin_schema(channel_factory(proxy_a.outbound()))
    # A namespace only cluster B has: cluster A's side reaches it through the tunnel.
    second_temporal_server.cli(["operator", "namespace", "create", "-n", "only-on-b"], second_temporal_server.address)
    described = temporal_server.cli_json(["operator", "namespace", "describe", "-n", "only-on-b"], proxy_a.outbound())
    assert described["namespaceInfo"]["name"] == "only-on-b"
    assert temporal_server.cli(["operator", "namespace", "describe", "-n", "only-on-b"], temporal_server.address,
                               check=False).returncode != 0
    # Cluster B's side runs workflows on cluster A's `orders`, under the name A's proxy gives it.
    wait_for_plugin_schema(channel_factory(proxy_b.outbound()))
    asyncio.run(run_family(proxy_b.outbound(), proxy_b.outbound(), namespace="orders.b"))


def test_our_mux_client_with_a_hashicorp_mux_server(temporal_server, proxy_factory, peers):
    go = peers("-accept", "127.0.0.1:0", "-sessions", "2", "-forward", temporal_server.address,
               "-listen", "127.0.0.1:0")
    proxy = proxy_factory.start([ClusterConnection("go", local_upstream=temporal_server.address, remote_upstream="",
                                                   mux="mux-client", mux_address=go.address)])
    # Ours -> Go: streams we open, piped by the Go side to the dev server.
    describe_default(temporal_server, proxy.outbound())
    # Go -> ours: streams the Go side opens, served by our inbound side.
    describe_default(temporal_server, go.listening)
    asyncio.run(run_family(proxy.outbound(), go.listening))


def test_our_mux_server_with_a_hashicorp_mux_client(temporal_server, proxy_factory, peers):
    mux_address = free_address()
    proxy = proxy_factory.start([ClusterConnection("go", local_upstream=temporal_server.address, remote_upstream="",
                                                   mux="mux-server", mux_address=mux_address)])
    go = peers("-dial", mux_address, "-sessions", "2", "-forward", temporal_server.address, "-listen", "127.0.0.1:0")
    describe_default(temporal_server, go.listening)
    describe_default(temporal_server, proxy.outbound())
    asyncio.run(run_family(go.listening, proxy.outbound()))


def test_sessions_beyond_mux_count_are_refused_and_lost_sessions_are_redialed(temporal_server, proxy_factory, peers):
    mux_address = free_address()
    server_side = proxy_factory.start([ClusterConnection("pair", local_upstream=temporal_server.address,
                                                         remote_upstream="", mux="mux-server",
                                                         mux_address=mux_address, mux_count=1)])
    # A Go client dialing two sessions: the second is refused.
    go = peers("-dial", mux_address, "-sessions", "2", "-forward", temporal_server.address)
    deadline = time.monotonic() + 10
    while "refused: all sessions are up" not in server_side.log(None):
        assert time.monotonic() < deadline, server_side.log()
        time.sleep(0.1)
    go.stop()
    # Its session gone, the server accepts a new one: our client gets in and calls pass.
    client_side = proxy_factory.start([ClusterConnection("pair", local_upstream=temporal_server.address,
                                                         remote_upstream="", mux="mux-client",
                                                         mux_address=mux_address, mux_count=1)])
    describe_default(temporal_server, client_side.outbound())


class Relay:
    """A TCP relay between a mux client and its server, whose connections a test can cut."""

    def __init__(self, target: str):
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()  # the target is gone (the test is ending): so is this connection
                continue
            with self.lock:
                self.pairs.append((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut_one(self) -> None:
        """Resets one relayed connection, as a network failure would."""
        with self.lock:
            client, server = self.pairs.pop(0)
        for s in (client, server):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # Wakes the pump threads blocked on it, so that the close really happens (and sends RST) now.
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.listener.close()


def open_descriptors(proxy) -> int:
    return len(os.listdir(f"/proc/{proxy.process.pid}/fd"))


def test_a_cut_session_fails_only_its_calls_and_is_replaced(temporal_server, proxy_factory, channel_factory):
    mux_address = free_address()
    server_side = proxy_factory.start([ClusterConnection("pair", local_upstream=temporal_server.address,
                                                         remote_upstream="", mux="mux-server",
                                                         mux_address=mux_address, mux_count=3)])
    relay = Relay(mux_address)
    client_side = proxy_factory.start([ClusterConnection("pair", local_upstream=temporal_server.address,
                                                         remote_upstream="", mux="mux-client",
                                                         mux_address=relay.address, mux_count=3)])
    system_info = channel_factory(client_side.outbound()).unary_unary(GET_SYSTEM_INFO)
    wait_for_log(client_side, "mux session established", 3)
    system_info(b"", timeout=30)
    descriptors_before = open_descriptors(client_side), open_descriptors(server_side)

    outcomes: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                system_info(b"", timeout=10)
                outcomes.append("ok")
            except grpc.RpcError as error:
                outcomes.append(error.code().name)

    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(8):
            pool.submit(load)
        try:
            time.sleep(1)
            before_cut = len(outcomes)
            relay.cut_one()
            time.sleep(2)
        finally:
            stop.set()
    failures = [o for o in outcomes if o != "ok"]
    after_cut = outcomes[before_cut:]
    assert before_cut > 50 and after_cut.count("ok") > 50, outcomes[-20:]
    # Calls in flight on the cut session fail, as UNAVAILABLE: at most one per load thread. The others go on.
    assert set(failures) <= {"UNAVAILABLE"}, failures
    assert len(failures) <= 8, (len(failures), len(outcomes))
    # The client redials (the first retry is immediate after a session that lived... or 1 s after one that did not).
    wait_for_log(client_side, "mux session established", 4)
    wait_for_log(server_side, "mux session established", 4)
    system_info(b"", timeout=10)
    # Nothing leaked: the replacement takes the cut session's descriptors, and both proxies keep their connections
    # to the dev server. (Upstream connections are per event loop: if the replacement session lands on a loop that
    # had none, the server side opens one more to the dev server: one descriptor of slack there.)
    assert "upstream connection lost" not in server_side.log(None) + client_side.log(None)
    deadline = time.monotonic() + 10
    while True:
        now = open_descriptors(client_side), open_descriptors(server_side)
        if now[0] == descriptors_before[0] and now[1] <= descriptors_before[1] + 1:
            break
        assert time.monotonic() < deadline, (descriptors_before, now)
        time.sleep(0.2)
    relay.close()


def wait_for_log(proxy, text: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while proxy.log(None).count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} not logged {count} times:\n{proxy.log()}"
        time.sleep(0.1)


# Over TLS (muxAddressInfo.tls) -----------------------------------------------------------------------------------


def test_a_mux_pair_over_mutual_tls(temporal_server, proxy_factory, certs: Certificates):
    mux_address = free_address()
    server_side = proxy_factory.start([ClusterConnection(
        "pair", local_upstream=temporal_server.address, remote_upstream="", mux="mux-server", mux_address=mux_address,
        mux_tls=certs.server_block(verify_clients=True),
    )])  # fmt: skip
    client_side = proxy_factory.start([ClusterConnection(
        "pair", local_upstream=temporal_server.address, remote_upstream="", mux="mux-client", mux_address=mux_address,
        mux_tls=certs.client_block(),
    )])  # fmt: skip
    describe_default(temporal_server, client_side.outbound())
    describe_default(temporal_server, server_side.outbound())
    wait_for_log(server_side, "mux session established", 2)


def test_our_mux_client_over_tls_with_a_hashicorp_server_that_verifies_it(temporal_server, proxy_factory, peers,
                                                                          certs: Certificates):
    go = peers("-accept", "127.0.0.1:0", "-sessions", "2", "-forward", temporal_server.address,
               "-listen", "127.0.0.1:0", "-cert", certs.path("server.pem"), "-key", certs.path("server.key"),
               "-ca", certs.path("ca.pem"))
    proxy = proxy_factory.start([ClusterConnection("go", local_upstream=temporal_server.address, remote_upstream="",
                                                   mux="mux-client", mux_address=go.address,
                                                   mux_tls=certs.client_block())])
    describe_default(temporal_server, proxy.outbound())
    describe_default(temporal_server, go.listening)
    asyncio.run(run_family(proxy.outbound(), go.listening))


def test_our_mux_server_over_tls_with_a_hashicorp_client_it_verifies(temporal_server, proxy_factory, peers,
                                                                      certs: Certificates):
    mux_address = free_address()
    proxy = proxy_factory.start([ClusterConnection("go", local_upstream=temporal_server.address, remote_upstream="",
                                                   mux="mux-server", mux_address=mux_address,
                                                   mux_tls=certs.server_block(verify_clients=True))])
    go = peers("-dial", mux_address, "-sessions", "2", "-forward", temporal_server.address, "-listen", "127.0.0.1:0",
               "-cert", certs.path("client.pem"), "-key", certs.path("client.key"), "-ca", certs.path("ca.pem"),
               "-server-name", "localhost")
    # Real SDK traffic both ways: the client behind the Go end, the worker behind ours.
    asyncio.run(run_family(go.listening, proxy.outbound()))


def test_a_mux_client_with_another_cas_certificate_gets_no_session(temporal_server, proxy_factory,
                                                                    certs: Certificates):
    mux_address = free_address()
    server_side = proxy_factory.start([ClusterConnection(
        "pair", local_upstream=temporal_server.address, remote_upstream="", mux="mux-server", mux_address=mux_address,
        mux_tls=certs.server_block(verify_clients=True),
    )])  # fmt: skip
    stranger = certs.client_block()
    stranger.update(certificatePath=certs.path("other-client.pem"), keyPath=certs.path("other-client.key"))
    proxy_factory.start([ClusterConnection(
        "pair", local_upstream=temporal_server.address, remote_upstream="", mux="mux-client", mux_address=mux_address,
        mux_tls=stranger,
    )])  # fmt: skip
    deadline = time.monotonic() + 15
    while "TLS handshake failed" not in server_side.log(None):
        assert time.monotonic() < deadline, server_side.log()
        time.sleep(0.1)
    assert "mux session established" not in server_side.log(None)


def test_garbage_on_the_mux_port_ends_that_connection_with_a_log_line(temporal_server, proxy_factory):
    mux_address = free_address()
    server_side = proxy_factory.start([ClusterConnection("pair", local_upstream=temporal_server.address,
                                                         remote_upstream="", mux="mux-server",
                                                         mux_address=mux_address, mux_count=1)])
    host, port = mux_address.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as stranger:
        stranger.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        stranger.settimeout(10)
        received = b""
        while chunk := stranger.recv(4096):
            received += chunk
    # The session's first ping, then a go-away with the protocol-error code, then the connection closes.
    assert received.endswith(bytes([0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])), received
    wait_for_log(server_side, "unsupported yamux version 71", 1)
    # The proxy goes on: a real client still gets the only session.
    client_side = proxy_factory.start([ClusterConnection("pair", local_upstream=temporal_server.address,
                                                         remote_upstream="", mux="mux-client",
                                                         mux_address=mux_address, mux_count=1)])
    describe_default(temporal_server, client_side.outbound())
    assert server_side.alive()


def test_a_peer_that_floods_pings_without_reading_is_cut_off_and_memory_stays_bounded(temporal_server, proxy_factory):
    """A yamux peer may ping; one that sends pings by the hundred thousand and never reads the answers made the proxy
    queue every answer (1.6 GB for 10 million). The session ends instead, and the proxy serves the real peer."""
    mux_address = free_address()
    server_side = proxy_factory.start([ClusterConnection("pair", local_upstream=temporal_server.address,
                                                         remote_upstream="", mux="mux-server",
                                                         mux_address=mux_address, mux_count=1)])
    rss_before = server_side.memory_kib()["VmRSS"]
    host, port = mux_address.rsplit(":", 1)
    flooder = socket.create_connection((host, int(port)))
    flooder.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # Version 0, type ping (2), flag SYN (1), stream 0, the ping id in the length field.
    batch = b"".join(struct.pack(">BBHII", 0, 2, 1, 0, i) for i in range(10_000))
    sent = 0
    flooder.settimeout(10)
    try:
        for _ in range(200):  # at most 2 million pings, 24 MB
            flooder.sendall(batch)
            sent += 10_000
    except OSError:
        pass  # the proxy ended the session
    finally:
        flooder.close()
    wait_for_log(server_side, "pings without reading the answers", 1)
    rss_after = server_side.memory_kib()["VmRSS"]
    print(f"\n{sent} pings sent before the proxy cut the session off; RSS {rss_before // 1024} -> {rss_after // 1024} MiB")
    assert rss_after - rss_before < 64 * 1024, f"the proxy grew by {(rss_after - rss_before) // 1024} MiB"
    client_side = proxy_factory.start([ClusterConnection("pair", local_upstream=temporal_server.address,
                                                         remote_upstream="", mux="mux-client",
                                                         mux_address=mux_address, mux_count=1)])
    describe_default(temporal_server, client_side.outbound())


class NonServingYamuxPeer:
    """Connects to a mux-server and keeps the session: it answers pings, and never accepts a stream."""

    def __init__(self, address: str):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        buffer = b""
        try:
            while data := self.sock.recv(65536):
                buffer += data
                while len(buffer) >= 12:
                    _, kind, flags, _, length = struct.unpack(">BBHII", buffer[:12])
                    size = 12 + (length if kind == 0 else 0)
                    if len(buffer) < size:
                        break
                    buffer = buffer[size:]
                    if kind == 2 and flags & 1:
                        self.sock.sendall(struct.pack(">BBHII", 0, 2, 2, 0, length))
        except OSError:
            return

    def close(self) -> None:
        self.sock.close()


def test_a_session_that_never_serves_its_streams_loses_its_slot_to_the_real_peer(temporal_server, proxy_factory):
    """On a mux-server without client certificates anyone who connects first can take the sessions. One that answers
    pings but never serves a stream must not lock the real peer out: the first call that finds out ends it."""
    mux_address = free_address()
    server_side = proxy_factory.start([ClusterConnection("pair", local_upstream=temporal_server.address,
                                                         remote_upstream="", mux="mux-server",
                                                         mux_address=mux_address, mux_count=1)])
    stranger = NonServingYamuxPeer(mux_address)
    try:
        wait_for_log(server_side, "mux session established", 1)
        client_side = proxy_factory.start([ClusterConnection("pair", local_upstream=temporal_server.address,
                                                             remote_upstream="", mux="mux-client",
                                                             mux_address=mux_address, mux_count=1)])
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as failed:
            grpc.insecure_channel(server_side.outbound()).unary_unary(GET_SYSTEM_INFO)(b"", timeout=30)
        waited = time.monotonic() - started
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value
        assert waited < 15, f"the call waited {waited:.1f}s on a session that does not serve"
        wait_for_log(server_side, "never started HTTP/2 on it", 1)
        # The real peer's session takes the freed slot, and calls cross again.
        deadline = time.monotonic() + 60
        while True:
            try:
                describe_default(temporal_server, server_side.outbound())
                break
            except AssertionError:
                assert time.monotonic() < deadline, "the real peer never got the slot back\n" + client_side.log()
                time.sleep(1)
    finally:
        stranger.close()


def test_shutdown_ends_each_session_with_a_normal_go_away_and_exits_zero(temporal_server, proxy_factory):
    """A raw yamux client (12-byte headers: version, type, flags, stream id, length) takes the only session, answers
    the proxy's first ping, and then sees SIGTERM end the session with go-away(normal) before the connection
    closes."""
    mux_address = free_address()
    server_side = proxy_factory.start([ClusterConnection("pair", local_upstream=temporal_server.address,
                                                         remote_upstream="", mux="mux-server",
                                                         mux_address=mux_address, mux_count=1)])
    host, port = mux_address.rsplit(":", 1)
    ping, go_away, syn, ack = 2, 3, 1, 2
    with socket.create_connection((host, int(port))) as peer:
        peer.settimeout(10)
        header = peer.recv(12, socket.MSG_WAITALL)
        version, kind, flags, stream, opaque = struct.unpack(">BBHII", header)
        assert (version, kind, flags, stream) == (0, ping, syn, 0), header
        peer.sendall(struct.pack(">BBHII", 0, ping, ack, 0, opaque))
        wait_for_log(server_side, "mux session established", 1)

        server_side.send_signal(signal.SIGTERM)
        received = b""
        while chunk := peer.recv(4096):
            received += chunk
    frames = [struct.unpack(">BBHII", received[i:i + 12]) for i in range(0, len(received) - len(received) % 12, 12)]
    assert (0, go_away, 0, 0, 0) in frames, frames  # code 0: normal termination
    assert server_side.wait_exit(30) == 0, server_side.log()
