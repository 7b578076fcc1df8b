"""The Go proxy's cluster adapters (the bundled cluster-adapter plugin), configured by their Go keys.

* DescribeCluster against the real dev server (1 history shard, failover version increment 10): through the inbound
  listener it shows `failoverVersionIncrementTranslation.local`, through the outbound one `.remote`, and on both
  LCM(local, remote) shards; with `s2s-request-translation: false`, or directly, the server's own values.
* AddOrUpdateRemoteCluster against a dev server of its own: the server checks the address it is given by calling
  DescribeCluster there, so a request naming an address where nothing listens succeeds only when the proxy wrote
  `replicationEndpoint` (a small fake cluster that answers DescribeCluster) into it; ListClusters then shows it.
* Replication streams in lcm mode: a recording upstream shows the shard-id metadata the proxy forwards (no real
  second cluster can show it here).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from netutil import free_address
from protowire import decode, field_bytes, field_varint
from proxy_process import DIRECT, REPO_ROOT, ClusterConnection, render_config, run_cli
from temporal_server import running_dev_server

pytestmark = pytest.mark.skipif(DIRECT, reason="the adaptation happens in the proxy")

SCHEMA = REPO_ROOT / "Tests" / "Fixtures" / "temporal-dev-schema.binpb"
ADMIN = "/temporal.server.api.adminservice.v1.AdminService/"
OPERATOR = "/temporal.api.operatorservice.v1.OperatorService/"
TRANSLATION_OFF = (("s2s-request-translation", "false"),)

# DescribeClusterResponse, AddOrUpdateRemoteClusterRequest (both services), ListClustersResponse and the admin
# ClusterMetadata, as numbered in Tests/Fixtures/temporal-dev-schema.binpb.
MEMBERSHIP_INFO, CLUSTER_NAME, HISTORY_SHARD_COUNT, FAILOVER_VERSION_INCREMENT = 3, 5, 6, 10
FRONTEND_ADDRESS, ENABLE_REMOTE_CLUSTER_CONNECTION = 1, 2
LISTED_CLUSTERS, LISTED_NAME, LISTED_ADDRESS = 1, 1, 6

INCREMENTS = {"local": 100, "remote": 1000}
DEV_SERVER_SHARDS, DEV_SERVER_INCREMENT = 1, 10


def wait_until_adapting(address: str, path: str, request: bytes = b"", timeout: float = 30) -> None:
    """Calls `path` until the proxy stops answering "waiting for the Temporal schema": until the plugin has the
    schema, the calls it wants are refused that way (GetSystemInfo, which it does not want, passes sooner)."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        while True:
            try:
                channel.unary_unary(path)(request, timeout=10)
                return
            except grpc.RpcError as error:
                if "waiting for the Temporal schema" not in (error.details() or ""):
                    return
                assert time.monotonic() < deadline, f"the schema did not reach the plugin within {timeout:.0f}s"
                time.sleep(0.2)


def describe_cluster(address: str, metadata=()) -> dict[int, list]:
    with grpc.insecure_channel(address) as channel:
        return decode(channel.unary_unary(ADMIN + "DescribeCluster")(b"", metadata=metadata, timeout=30))


@pytest.fixture
def describing_proxy(temporal_server, proxy_factory):
    connection = ClusterConnection("itest", local_upstream=temporal_server.address,
                                   remote_upstream=temporal_server.address,
                                   extra={"failoverVersionIncrementTranslation": INCREMENTS,
                                          "shardCount": {"mode": "lcm", "localShardCount": DEV_SERVER_SHARDS,
                                                         "remoteShardCount": 3}})
    proxy = proxy_factory.start([connection])
    for address in (proxy.inbound(), proxy.outbound()):
        wait_until_adapting(address, ADMIN + "DescribeCluster")
    return proxy


def test_describe_cluster_shows_the_configured_increment_per_side_and_the_lcm_shard_count(
    temporal_server, describing_proxy
):
    direct = describe_cluster(temporal_server.address)
    assert direct[HISTORY_SHARD_COUNT] == [DEV_SERVER_SHARDS]
    assert direct[FAILOVER_VERSION_INCREMENT] == [DEV_SERVER_INCREMENT]
    for address, increment in [(describing_proxy.inbound(), INCREMENTS["local"]),
                               (describing_proxy.outbound(), INCREMENTS["remote"])]:
        adapted = describe_cluster(address)
        assert adapted[FAILOVER_VERSION_INCREMENT] == [increment], address
        assert adapted[HISTORY_SHARD_COUNT] == [3], "LCM(1, 3)"
        # The rest is the server's (map entries such as supported_clients come in varying order).
        for number in set(adapted) | set(direct):
            if number not in (FAILOVER_VERSION_INCREMENT, HISTORY_SHARD_COUNT, MEMBERSHIP_INFO):
                assert sorted(adapted.get(number, [])) == sorted(direct.get(number, [])), f"field {number}"


def test_describe_cluster_in_routing_mode_shows_each_cluster_its_own_count(temporal_server, proxy_factory):
    # Local 3 shards, remote 2 (both sides are the dev server here): through the outbound listener the local cluster
    # asks about the remote one and is told 3, its own count; through the inbound listener the remote one is told 2.
    connection = ClusterConnection("itest", local_upstream=temporal_server.address,
                                   remote_upstream=temporal_server.address,
                                   extra={"shardCount": {"mode": "routing", "localShardCount": 3, "remoteShardCount": 2}})
    proxy = proxy_factory.start([connection])
    for address in (proxy.inbound(), proxy.outbound()):
        wait_until_adapting(address, ADMIN + "DescribeCluster")
    assert describe_cluster(proxy.outbound())[HISTORY_SHARD_COUNT] == [3]
    assert describe_cluster(proxy.inbound())[HISTORY_SHARD_COUNT] == [2]
    assert describe_cluster(temporal_server.address)[HISTORY_SHARD_COUNT] == [DEV_SERVER_SHARDS]


def test_describe_cluster_with_translation_turned_off_is_the_servers_own(describing_proxy):
    for address in (describing_proxy.inbound(), describing_proxy.outbound()):
        untouched = describe_cluster(address, metadata=TRANSLATION_OFF)
        assert untouched[FAILOVER_VERSION_INCREMENT] == [DEV_SERVER_INCREMENT], address
        assert untouched[HISTORY_SHARD_COUNT] == [DEV_SERVER_SHARDS], address


def test_validate_shows_one_cluster_adapter_entry_on_each_side(tmp_path):
    connection = ClusterConnection("itest", local_upstream=free_address(), remote_upstream=free_address(),
                                   extra={"replicationEndpoint": "proxy-a.example:7233",
                                          "failoverVersionIncrementTranslation": INCREMENTS,
                                          "shardCount": {"mode": "lcm", "localShardCount": 4,
                                                         "remoteShardCount": 2},
                                          "schema": {"file": str(SCHEMA)}})
    config = tmp_path / "adapter.yaml"
    config.write_text(render_config([connection]))
    result = run_cli(["validate", "--config", str(config)], timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plugins itest/outbound: cluster-adapter 1.0.0 [needs schema]" in result.stdout, result.stdout
    assert "plugins itest/inbound: cluster-adapter 1.0.0 [needs schema]" in result.stdout, result.stdout
    assert "not supported" not in result.stdout + result.stderr


def test_validate_explains_routing_mode(tmp_path):
    connection = ClusterConnection("itest", local_upstream=free_address(), remote_upstream=free_address(),
                                   extra={"shardCount": {"mode": "routing", "localShardCount": 3, "remoteShardCount": 2},
                                          "schema": {"file": str(SCHEMA)}})
    config = tmp_path / "routing.yaml"
    config.write_text(render_config([connection]))
    result = run_cli(["validate", "--config", str(config)], timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("note: itest: shard-count mode routing: the local cluster is told the remote has 3 shards and the remote "
            "that the local has 2") in result.stdout, result.stdout
    assert "not supported" not in result.stdout + result.stderr


def test_validate_refuses_a_plugin_option_the_go_keys_cannot_express(tmp_path):
    connection = ClusterConnection("itest", local_upstream=free_address(), remote_upstream=free_address(),
                                   plugins=[{"name": "cluster-adapter",
                                             "options": {"shardCount": {"mode": "lcm", "localShardCount": 4}}}])
    config = tmp_path / "adapter.yaml"
    config.write_text(render_config([connection]))
    result = run_cli(["validate", "--config", str(config)], timeout=60)
    assert result.returncode != 0
    assert "remoteShardCount" in result.stdout + result.stderr


# AddOrUpdateRemoteCluster against a real server -----------------------------------------------------------------


class FakeRemoteCluster:
    """Answers AdminService DescribeCluster as a Temporal cluster named `fake-remote` whose settings a dev server
    accepts as a remote cluster (same shard count and failover version increment, another initial version)."""

    def __init__(self):
        self.address = free_address()
        self.describe_calls = 0
        handler = grpc.method_handlers_generic_handler(
            "temporal.server.api.adminservice.v1.AdminService",
            {"DescribeCluster": grpc.unary_unary_rpc_method_handler(self._describe)},
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((handler,))
        self.server.add_insecure_port(self.address)

    def _describe(self, request: bytes, context) -> bytes:
        self.describe_calls += 1
        return (field_bytes(2, "1.29.1") + field_bytes(4, str(uuid.uuid4())) + field_bytes(CLUSTER_NAME, "fake-remote")
                + field_varint(HISTORY_SHARD_COUNT, DEV_SERVER_SHARDS)
                + field_varint(FAILOVER_VERSION_INCREMENT, DEV_SERVER_INCREMENT)
                + field_varint(11, 2) + field_varint(12, 1))


@pytest.fixture(scope="module")
def registering_setup():
    """A dev server of its own (its cluster list changes), a fake remote cluster, and a proxy in front of the dev
    server whose replicationEndpoint is the fake's address."""
    fake = FakeRemoteCluster()
    fake.server.start()
    try:
        with running_dev_server(Path(tempfile.mkdtemp(prefix="itest-adapter-"))) as server:
            yield server, fake
    finally:
        fake.server.stop(0)


@pytest.fixture
def registering_proxy(registering_setup, proxy_factory):
    server, fake = registering_setup
    connection = ClusterConnection("itest", local_upstream=server.address, remote_upstream=server.address,
                                   extra={"replicationEndpoint": fake.address})
    proxy = proxy_factory.start([connection])
    # A truncated request: the plugin, once it has the schema, fails it before the server sees anything.
    wait_until_adapting(proxy.inbound(), ADMIN + "AddOrUpdateRemoteCluster", request=b"\x0a\x05")
    yield proxy
    if "fake-remote" in listed_addresses(server.address):
        with grpc.insecure_channel(server.address) as channel:
            channel.unary_unary(ADMIN + "RemoveRemoteCluster")(field_bytes(1, "fake-remote"), timeout=30)


def listed_addresses(address: str) -> dict[str, str]:
    with grpc.insecure_channel(address) as channel:
        response = decode(channel.unary_unary(ADMIN + "ListClusters")(b"", timeout=30))
    clusters = [decode(entry) for entry in response.get(LISTED_CLUSTERS, [])]
    return {c[LISTED_NAME][0].decode(): c[LISTED_ADDRESS][0].decode() for c in clusters}


def add_remote_cluster(address: str, path: str, frontend: str, metadata=()) -> None:
    request = field_bytes(FRONTEND_ADDRESS, frontend) + field_varint(ENABLE_REMOTE_CLUSTER_CONNECTION, 0)
    with grpc.insecure_channel(address) as channel:
        channel.unary_unary(path)(request, metadata=metadata, timeout=60)


@pytest.mark.parametrize("path", [ADMIN + "AddOrUpdateRemoteCluster", OPERATOR + "AddOrUpdateRemoteCluster"],
                         ids=["admin", "operator"])
def test_inbound_add_remote_cluster_registers_the_replication_endpoint(registering_setup, registering_proxy, path):
    server, fake = registering_setup
    nowhere = free_address()
    add_remote_cluster(registering_proxy.inbound(), path, nowhere)
    assert listed_addresses(server.address).get("fake-remote") == fake.address
    assert fake.describe_calls > 0, "the dev server did not check the address it was given"


@pytest.mark.parametrize("via, metadata", [("outbound", ()), ("inbound", TRANSLATION_OFF)],
                         ids=["outbound", "translation-off"])
def test_add_remote_cluster_passes_unchanged_outbound_and_with_translation_off(
    registering_setup, registering_proxy, via, metadata
):
    server, fake = registering_setup
    address = registering_proxy.outbound() if via == "outbound" else registering_proxy.inbound()
    checks_before = fake.describe_calls
    with pytest.raises(grpc.RpcError):
        # The server tries the address it was given, where nothing listens.
        add_remote_cluster(address, ADMIN + "AddOrUpdateRemoteCluster", free_address(), metadata=metadata)
    assert fake.describe_calls == checks_before
    assert "fake-remote" not in listed_addresses(server.address)


# Replication stream shard ids -------------------------------------------------------------------------------------


class StreamRecorder:
    """Serves StreamWorkflowReplicationMessages by recording the call's metadata and ending it at once."""

    def __init__(self):
        self.address = free_address()
        self.metadata: list[dict[str, str]] = []
        handler = grpc.method_handlers_generic_handler(
            "temporal.server.api.adminservice.v1.AdminService",
            {"StreamWorkflowReplicationMessages": grpc.stream_stream_rpc_method_handler(self._stream)},
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((handler,))
        self.server.add_insecure_port(self.address)

    def _stream(self, requests, context):
        self.metadata.append(dict(context.invocation_metadata()))
        return iter(())


@pytest.fixture
def stream_proxy(proxy_factory):
    recorder = StreamRecorder()
    recorder.server.start()
    connection = ClusterConnection("itest", local_upstream=recorder.address, remote_upstream=recorder.address,
                                   extra={"shardCount": {"mode": "lcm", "localShardCount": 4, "remoteShardCount": 2},
                                          "schema": {"file": str(SCHEMA)}})
    proxy = proxy_factory.start([connection])
    # The plugin wants DescribeCluster responses too; the recorder answers them UNIMPLEMENTED.
    for address in (proxy.inbound(), proxy.outbound()):
        wait_until_adapting(address, ADMIN + "DescribeCluster")
    yield proxy, recorder
    recorder.server.stop(0)


def open_stream(address: str, metadata) -> None:
    with grpc.insecure_channel(address) as channel:
        responses = channel.stream_stream(ADMIN + "StreamWorkflowReplicationMessages")(
            iter(()), metadata=metadata, timeout=30)
        assert list(responses) == []


def shard_metadata(client: int, server: int) -> tuple:
    return (("temporal-client-cluster-id", "target"), ("temporal-client-shard-id", str(client)),
            ("temporal-server-cluster-id", "source"), ("temporal-server-shard-id", str(server)))


@pytest.mark.parametrize("via, client, server, expected", [
    # The remote cluster (2 shards) opens streams to our 4 local shards: LCM 4, ids already real.
    ("inbound", 1, 3, ("3", "3")),
    # Our 4 shards open streams to the remote cluster's LCM shards, which fold onto its 2 real ones.
    ("outbound", 3, 3, ("3", "1")),
    ("outbound", 4, 4, ("4", "2")),
])
def test_replication_stream_shard_ids_are_remapped(stream_proxy, via, client, server, expected):
    proxy, recorder = stream_proxy
    open_stream(proxy.inbound() if via == "inbound" else proxy.outbound(), shard_metadata(client, server))
    seen = recorder.metadata[-1]
    assert (seen["temporal-client-shard-id"], seen["temporal-server-shard-id"]) == expected
    assert (seen["temporal-client-cluster-id"], seen["temporal-server-cluster-id"]) == ("target", "source")


def test_replication_stream_without_shard_metadata_is_refused(stream_proxy):
    proxy, recorder = stream_proxy
    with pytest.raises(grpc.RpcError) as error:
        open_stream(proxy.inbound(), (("temporal-client-shard-id", "1"),))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "missing cluster & shard ID metadata" in error.value.details()
    assert recorder.metadata == [], "the upstream was contacted"


def test_replication_stream_with_translation_off_keeps_its_shard_ids(stream_proxy):
    proxy, recorder = stream_proxy
    open_stream(proxy.outbound(), shard_metadata(3, 3) + TRANSLATION_OFF)
    seen = recorder.metadata[-1]
    assert (seen["temporal-client-shard-id"], seen["temporal-server-shard-id"]) == ("3", "3")

