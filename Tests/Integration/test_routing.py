"""Shard-count mode `routing` through the real binary (docs/design/routing.md), against the replication peer
(replication_peer.py) playing both clusters.

The proxy terminates the streams the target shards open, opens one stream per source shard toward the source
cluster, and moves each task to the target shard Temporal's function names (computed here with Google's farmhash,
independently). Checked: every task arrives at that shard exactly once, in source order per source shard; each
source's ACK level reaches its last watermark; DescribeCluster-free (the peer pairs shards 1:1 as a cluster that
learned its peer's count through the proxy would).
"""

from __future__ import annotations

import signal
import time

import grpc
import pytest

from netutil import free_address
from plugin_build import REPO_ROOT
from proxy_process import DIRECT, ClusterConnection
from replication_peer import ADMIN, SourceCluster, TargetShard, history_shard
from test_metrics import scrape, value
from test_replication_streams import debug_connection
from test_tls import certs  # noqa: F401  (the fixture)

pytestmark = pytest.mark.skipif(DIRECT, reason="routing is the proxy's")

SCHEMA = str(REPO_ROOT / "Tests/Fixtures/temporal-dev-schema.binpb")
# Every routing line in the proxy's log (the Go proxy's default for this component is 3 lines a minute).
ROUTING_LOGS = "logConfigs:\n  shardRouting: { throttleMaxRPS: 1000 }\n"


class Peers:
    """The clusters, target shards and raw streams a test makes; all stopped and closed after it."""

    def __init__(self):
        self.sources: list[SourceCluster] = []
        self.targets: list[TargetShard] = []
        self.channels: list[grpc.Channel] = []

    def source(self, *args, **options) -> SourceCluster:
        cluster = SourceCluster(*args, **options).start()
        self.sources.append(cluster)
        return cluster

    def target(self, *args, **options) -> TargetShard:
        shard = TargetShard(*args, **options)
        self.targets.append(shard)
        return shard

    def raw_stream(self, address: str, metadata, requests):
        """A replication stream whose requests are raw bytes; the call (iterate it for responses)."""
        channel = grpc.insecure_channel(address)
        self.channels.append(channel)
        call = channel.stream_stream(f"/{ADMIN}/StreamWorkflowReplicationMessages",
                                     request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw)
        return call(iter(requests), metadata=metadata)

    def close(self):
        for target in self.targets:
            target.close()
        for channel in self.channels:
            channel.close()
        for source in self.sources:
            source.stop()


@pytest.fixture
def peers():
    made = Peers()
    yield made
    made.close()


def routing_connection(local: SourceCluster, remote: SourceCluster, **extra) -> ClusterConnection:
    return ClusterConnection("routing", local_upstream=local.address, remote_upstream=remote.address, extra={
        "shardCount": {"mode": "routing", "localShardCount": local.shard_count, "remoteShardCount": remote.shard_count},
        "schema": {"file": SCHEMA}, **extra,
    })


def wait_for(condition, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def expected_arrivals(source: SourceCluster, target_count: int) -> dict[int, list[str]]:
    """target shard -> identities of the source's tasks it must apply, in source order per source shard."""
    arrivals: dict[int, list[str]] = {shard: [] for shard in range(1, target_count + 1)}
    for shard, task_id, namespace_id, workflow_id in source.all_tasks():
        arrivals[history_shard(namespace_id, workflow_id, target_count)].append(source.identity(shard, task_id))
    return arrivals


def check_delivery(source: SourceCluster, targets: list[TargetShard]):
    expected = expected_arrivals(source, len(targets))
    total = sum(len(tasks) for tasks in expected.values())
    wait_for(lambda: sum(len(target.received()) for target in targets) >= total, what=f"{total} tasks of {source.name}")
    time.sleep(0.3)  # nothing more may come
    for target in targets:
        assert not target.errors, target.errors
        got = target.received()
        assert sorted(got) == sorted(expected[target.shard]), f"target shard {target.shard}"
        assert len(got) == len(set(got)), f"target shard {target.shard} got a task twice"
        for shard in range(1, source.shard_count + 1):
            prefix = f"{source.name}/{shard}/"
            order = [int(item[len(prefix):]) for item in got if item.startswith(prefix)]
            assert order == sorted(order), f"target shard {target.shard}, source shard {shard}: out of order"
    wait_for(lambda: all(source.acks.get(shard) == source.final_watermark(shard)
                         for shard in range(1, source.shard_count + 1)),
             what=f"{source.name}'s ACKs to reach the last watermarks (now {source.acks})")


def check_delivery_at_least_once(source: SourceCluster, targets: dict[int, TargetShard], expected: dict[int, list[str]],
                                 final=None):
    """Every task at its shard (duplicates allowed), and the source's ACKs at its last watermarks (or at `final(shard)`)."""
    final = final or source.final_watermark
    def complete():
        return all(set(expected[shard]) <= set(target.received()) for shard, target in targets.items())
    wait_for(complete, what=f"every task of {source.name} at its shard")
    for shard, target in targets.items():
        assert not target.errors, target.errors
        assert set(target.received()) <= set(expected[shard]), f"shard {shard} got another shard's task"
    wait_for(lambda: all(source.acks.get(shard) == final(shard)
                         for shard in range(1, source.shard_count + 1)),
             what=f"{source.name}'s ACKs to reach the last watermarks (now {source.acks})")


@pytest.mark.parametrize("local_shards, remote_shards", [(4, 2), (2, 4), (2, 3), (3, 2)])
def test_every_task_reaches_the_shard_temporal_names(proxy_factory, peers, local_shards, remote_shards):
    local = peers.source("cluster-l", local_shards, seed=local_shards * 10 + remote_shards)
    remote = peers.source("cluster-r", remote_shards, seed=remote_shards * 10 + local_shards + 1)
    proxy = proxy_factory.start([routing_connection(local, remote)], extra_yaml=ROUTING_LOGS)
    # The remote cluster's shards pull the local cluster's tasks through the inbound listener, and the other way.
    remote_targets = [peers.target("cluster-r", "cluster-l", shard, proxy.inbound()) for shard in range(1, remote_shards + 1)]
    local_targets = [peers.target("cluster-l", "cluster-r", shard, proxy.outbound()) for shard in range(1, local_shards + 1)]
    check_delivery(local, remote_targets)
    check_delivery(remote, local_targets)
    # One stream per source shard: the proxy's receivers, claiming the target cluster and the same shard id.
    for source, target_cluster in ((local, "cluster-r"), (remote, "cluster-l")):
        pairs = sorted((stream["temporal-client-cluster-id"], stream["temporal-server-shard-id"])
                       for stream in source.streams)
        assert pairs == [(target_cluster, str(shard)) for shard in range(1, source.shard_count + 1)]


def test_a_target_that_goes_away_unacknowledged_gets_its_tasks_again(proxy_factory, peers):
    local = peers.source("cluster-l", 2, seed=5)
    remote = peers.source("cluster-r", 3, seed=6, batches=0)
    proxy = proxy_factory.start([routing_connection(local, remote)], extra_yaml=ROUTING_LOGS)
    expected = expected_arrivals(local, 3)
    # Shard 1 applies what it is sent but never acknowledges it, then goes away.
    silent = peers.target("cluster-r", "cluster-l", 1, proxy.inbound(), acknowledge=False)
    others = [peers.target("cluster-r", "cluster-l", shard, proxy.inbound()) for shard in (2, 3)]
    wait_for(lambda: len(silent.received()) == len(expected[1]), what="shard 1's tasks")
    assert all(local.acks.get(shard, 0) < local.final_watermark(shard) for shard in (1, 2)
               if any(item.startswith(f"cluster-l/{shard}/") for item in expected[1])), local.acks
    silent.close()
    # Its successor gets every one of them again; the sources' ACKs complete; the other shards lose nothing.
    successor = peers.target("cluster-r", "cluster-l", 1, proxy.inbound())
    check_delivery_at_least_once(local, {1: successor, 2: others[0], 3: others[1]}, expected)


def test_a_source_that_restarts_is_read_again_from_its_last_ack(proxy_factory, peers):
    local = peers.source("cluster-l", 3, seed=7)
    remote = peers.source("cluster-r", 2, seed=8, batches=0)
    proxy = proxy_factory.start([routing_connection(local, remote)], extra_yaml=ROUTING_LOGS)
    targets = [peers.target("cluster-r", "cluster-l", shard, proxy.inbound()) for shard in (1, 2)]
    check_delivery(local, targets)
    local.stop()
    local.extend(5)
    local.start()
    check_delivery_at_least_once(local, dict(enumerate(targets, start=1)), expected_arrivals(local, 2))
    # Nothing was sent twice: the source resumed from what the targets had acknowledged.
    for target in targets:
        assert len(target.received()) == len(set(target.received())), f"shard {target.shard}"


def test_metrics_and_debug_connections_show_shards_streams_and_acks(proxy_factory, peers):
    local = peers.source("cluster-l", 3, seed=11)
    remote = peers.source("cluster-r", 2, seed=12, batches=0)
    metrics_address, health_address = free_address(), free_address()
    health = {"protocol": "http", "listenAddress": health_address}
    proxy = proxy_factory.start([routing_connection(local, remote, remoteClusterHealthCheck=health)],
                                metrics_address=metrics_address, extra_yaml=ROUTING_LOGS)
    targets = [peers.target("cluster-r", "cluster-l", shard, proxy.inbound()) for shard in (1, 2)]
    check_delivery(local, targets)
    tasks = sum(1 for _ in local.all_tasks())
    families = scrape(metrics_address)
    labels = {"connection": "routing", "direction": "inbound"}
    assert value(families, "s2s_proxy_routing_tasks", "s2s_proxy_routing_tasks_total", **labels) == tasks
    assert value(families, "s2s_proxy_routing_streams", "s2s_proxy_routing_streams", role="target", **labels) == 2
    assert value(families, "s2s_proxy_routing_streams", "s2s_proxy_routing_streams", role="source", **labels) == 3
    assert value(families, "s2s_proxy_routing_receiver_restarts", "s2s_proxy_routing_receiver_restarts_total",
                 **labels) == 0
    routing = {entry["direction"]: entry for entry in debug_connection(health_address)["routing"]}
    inbound = routing["inbound"]
    assert (inbound["target_shard_count"], inbound["source_shard_count"]) == (2, 3)
    assert [target["shard"] for target in inbound["targets"]] == [1, 2]
    assert all(target["unacknowledged_batches"] == 0 for target in inbound["targets"])
    assert [(source["shard"], source["connected"], source["ack_level"]) for source in inbound["sources"]] == [
        (shard, True, local.final_watermark(shard)) for shard in (1, 2, 3)]
    assert inbound["tasks_routed"] == tasks
    # Nothing opened on the outbound side: no local shard asked for the remote's tasks.
    assert routing["outbound"]["targets"] == [] and routing["outbound"]["sources"] == []


def test_routing_on_the_mux_server_side_of_a_pair_as_in_the_go_examples(proxy_factory, peers):
    # The Go proxy's two-replica examples: routing on the mux-server side, local 3 shards, remote 2. Cluster L sits
    # behind the mux-server proxy (routing), cluster R behind the mux-client one (plain forwarding).
    local = peers.source("cluster-l", 3, seed=21)
    remote = peers.source("cluster-r", 2, seed=22)
    mux_address = free_address()
    server_side = proxy_factory.start([ClusterConnection(
        "pair", local_upstream=local.address, remote_upstream="", mux="mux-server", mux_address=mux_address,
        extra={"shardCount": {"mode": "routing", "localShardCount": 3, "remoteShardCount": 2},
               "schema": {"file": SCHEMA}})], extra_yaml=ROUTING_LOGS)
    client_side = proxy_factory.start([ClusterConnection(
        "pair", local_upstream=remote.address, remote_upstream="", mux="mux-client", mux_address=mux_address)])
    # R's shards reach L through their own proxy and the tunnel; L's reach R through theirs, and the routing
    # proxy's own streams toward R cross the tunnel the other way.
    remote_targets = [peers.target("cluster-r", "cluster-l", shard, client_side.outbound()) for shard in (1, 2)]
    local_targets = [peers.target("cluster-l", "cluster-r", shard, server_side.outbound()) for shard in (1, 2, 3)]
    check_delivery(local, remote_targets)
    check_delivery(remote, local_targets)


def shard_ids(client: str, server: str):
    return (("temporal-client-cluster-id", "cluster-r"), ("temporal-client-shard-id", client),
            ("temporal-server-cluster-id", "cluster-l"), ("temporal-server-shard-id", server))


def test_bad_target_streams_are_refused_saying_why_and_cost_the_others_nothing(proxy_factory, peers):
    local = peers.source("cluster-l", 2, seed=31)
    remote = peers.source("cluster-r", 2, seed=32, batches=0)
    proxy = proxy_factory.start([routing_connection(local, remote)], extra_yaml=ROUTING_LOGS)
    refusals = {
        "not paired 1:1": (shard_ids("1", "2"), "pairs target shard n with source shard n"),
        "beyond the count": (shard_ids("3", "3"), "1...2"),
        "not a number": (shard_ids("x", "1"), "malformed shard ID metadata"),
        "no metadata": ((), "missing cluster & shard ID metadata"),
    }
    for case, (metadata, complaint) in refusals.items():
        with pytest.raises(grpc.RpcError) as raised:
            list(peers.raw_stream(proxy.inbound(), metadata, []))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, case
        assert complaint in raised.value.details(), (case, raised.value.details())
    # A registered shard whose ACK is not a SyncReplicationState message ends its own stream only.
    good = peers.target("cluster-r", "cluster-l", 2, proxy.inbound())
    with pytest.raises(grpc.RpcError) as raised:
        list(peers.raw_stream(proxy.inbound(), shard_ids("1", "1"), [b"\x0a\x05\x08"]))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value
    assert "malformed SyncReplicationState" in raised.value.details()
    # Shard 1 comes back well-behaved: both get everything.
    successor = peers.target("cluster-r", "cluster-l", 1, proxy.inbound())
    check_delivery_at_least_once(local, {1: successor, 2: good}, expected_arrivals(local, 2))


def test_routing_over_mutual_tls_to_the_source_and_from_the_target(proxy_factory, peers, certs):  # noqa: F811
    # The local cluster serves TLS and requires client certificates; the remote cluster's shards reach the inbound
    # listener over TLS with theirs. The proxy's own streams toward the source shards use the listener's upstream
    # TLS (local.tcpClient.tls).
    credentials = grpc.ssl_server_credentials([(certs.read("server.key"), certs.read("server.pem"))],
                                              root_certificates=certs.read("ca.pem"), require_client_auth=True)
    local = peers.source("cluster-l", 3, seed=41, credentials=credentials)
    remote = peers.source("cluster-r", 2, seed=42, batches=0)
    connection = routing_connection(local, remote)
    connection.tls = {"local.tcpClient": certs.client_block(), "remote.tcpServer": certs.server_block()}
    proxy = proxy_factory.start([connection], extra_yaml=ROUTING_LOGS)
    targets = [peers.target("cluster-r", "cluster-l", shard, proxy.inbound(), credentials=certs.channel_credentials())
               for shard in (1, 2)]
    check_delivery(local, targets)


def test_high_and_low_priority_batches_are_acknowledged_each_at_its_own_level(proxy_factory, peers):
    # Temporal's source runs a high- and a low-priority reader per shard over one stream, each with its own
    # watermarks; the proxy's ACK names both, and the overall level is the lower.
    local = peers.source("cluster-l", 2, seed=51, priorities=True)
    remote = peers.source("cluster-r", 3, seed=52, batches=0)
    proxy = proxy_factory.start([routing_connection(local, remote)], extra_yaml=ROUTING_LOGS)
    targets = [peers.target("cluster-r", "cluster-l", shard, proxy.inbound()) for shard in (1, 2, 3)]
    check_delivery_at_least_once(local, {target.shard: target for target in targets}, expected_arrivals(local, 3),
                                 final=lambda shard: min(local.final_watermark_of_priority(shard, 1),
                                                         local.final_watermark_of_priority(shard, 10)))
    for shard in (1, 2):
        wait_for(lambda: local.priority_acks.get(shard) == {
            priority: local.final_watermark_of_priority(shard, priority) for priority in (1, 10)},
            what=f"shard {shard}'s ACKs per priority (now {local.priority_acks.get(shard)})")


def replica_connections(local: SourceCluster, remote: SourceCluster, names: list[str]) -> list[ClusterConnection]:
    """One routing connection per replica, each with `memberlist` naming all of them at their outbound listeners."""
    connections = [routing_connection(local, remote, remoteClusterHealthCheck={"protocol": "http", "listenAddress": free_address()})
                   for _ in names]
    addresses = {name: connection.outbound_listen for name, connection in zip(names, connections)}
    for name, connection in zip(names, connections):
        connection.extra["memberlist"] = {"nodeName": name, "proxyAddresses": addresses}
    return connections


def test_two_replicas_share_the_target_shards_and_survive_losing_one(proxy_factory, peers):
    local = peers.source("cluster-l", 3, seed=61, batches=20)
    remote = peers.source("cluster-r", 2, seed=62, batches=0)
    first, second = (proxy_factory.start([connection], extra_yaml=ROUTING_LOGS)
                     for connection in replica_connections(local, remote, ["r1", "r2"]))
    # The remote cluster's two shards reach different replicas (as behind a load balancer).
    shard_one = peers.target("cluster-r", "cluster-l", 1, first.inbound())
    shard_two = peers.target("cluster-r", "cluster-l", 2, second.inbound())
    # While the replicas learn of each other, source streams may move between them (their sources send again from
    # the last ACK): at least once, nothing lost.
    check_delivery_at_least_once(local, {1: shard_one, 2: shard_two}, expected_arrivals(local, 2))
    assert {stream["temporal-server-shard-id"] for stream in local.streams} == {"1", "2", "3"}
    # Each replica knows who holds what.
    for proxy, other in ((first, "r2"), (second, "r1")):
        health = proxy.connections["routing"].extra["remoteClusterHealthCheck"]["listenAddress"]
        inbound = {entry["direction"]: entry for entry in debug_connection(health)["routing"]}["inbound"]
        assert inbound["owners"] == {"1": "r1", "2": "r2"} and inbound["members"] == [other], inbound
    assert {stream.get("x-s2s-intra-proxy") for stream in local.streams} == {None}

    # The second replica goes; shard 2 reconnects to the first; the sources send more. What the lost replica read
    # comes again from the last ACK through the survivor.
    second.send_signal(signal.SIGKILL)
    second.wait_exit(10)
    local.extend(10)
    successor = peers.target("cluster-r", "cluster-l", 2, first.inbound())
    check_delivery_at_least_once(local, {1: shard_one, 2: Together(shard_two, successor)}, expected_arrivals(local, 2))


class Together:
    """Two streams of one target shard, one after the other: what the shard applied over both."""

    def __init__(self, *streams: TargetShard):
        self.streams = streams

    @property
    def errors(self) -> list[str]:
        return [error for stream in self.streams for error in stream.errors if "UNAVAILABLE" not in error]

    def received(self) -> list[str]:
        return [item for stream in self.streams for item in stream.received()]


def test_two_replicas_talk_to_each_other_over_mutual_tls(proxy_factory, peers, certs):  # noqa: F811
    # Replicas reach each other's outbound listener (local.tcpServer, TLS, client certificates required) with the
    # local side's client TLS (local.tcpClient), which the local cluster, behind the same settings, requires too.
    credentials = grpc.ssl_server_credentials([(certs.read("server.key"), certs.read("server.pem"))],
                                              root_certificates=certs.read("ca.pem"), require_client_auth=True)
    local = peers.source("cluster-l", 3, seed=71, credentials=credentials)
    remote = peers.source("cluster-r", 2, seed=72, batches=0)
    connections = replica_connections(local, remote, ["r1", "r2"])
    for connection in connections:
        connection.tls = {"local.tcpClient": certs.client_block(), "local.tcpServer": certs.server_block()}
    first, second = (proxy_factory.start([connection], extra_yaml=ROUTING_LOGS) for connection in connections)
    shard_one = peers.target("cluster-r", "cluster-l", 1, first.inbound())
    shard_two = peers.target("cluster-r", "cluster-l", 2, second.inbound())
    check_delivery_at_least_once(local, {1: shard_one, 2: shard_two}, expected_arrivals(local, 2))
    # Both replicas carried tasks for the other's shard: the link between them worked.
    assert "intra-proxy link up" in first.log(None) and "intra-proxy link up" in second.log(None)


def test_a_stream_that_claims_to_be_a_replica_it_is_not_is_refused(proxy_factory, peers):
    local = peers.source("cluster-l", 2, seed=81, batches=0)
    remote = peers.source("cluster-r", 2, seed=82, batches=0)
    first, _ = (proxy_factory.start([connection], extra_yaml=ROUTING_LOGS)
                for connection in replica_connections(local, remote, ["r1", "r2"]))
    for claimed in (("x-s2s-origin-proxy-id", "intruder"), ("x-s2s-origin-proxy-id", "r1")):
        channel = grpc.insecure_channel(first.outbound())
        peers.channels.append(channel)
        call = channel.stream_stream("/s2sproxy.intra.v1.Routing/Exchange",
                                     request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw)
        with pytest.raises(grpc.RpcError) as raised:
            list(call(iter([]), metadata=(claimed,)))
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED, claimed
        assert "routing replicas" in raised.value.details()
