"""The mux tunnel (`remote.connectionType: mux-client | mux-server`) with real Temporal traffic in both directions:
two of our proxies as a pair, and each of our modes against hashicorp/yamux itself (Tests/Mux/yamux-peer), the
library the Go s2s-proxy multiplexes with, playing the Go proxy's end: streams it accepts are piped to a Temporal
frontend, connections on its -listen port are piped into new streams, one HTTP/2 connection per stream.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from itest_workflows import ChildGreetingWorkflow, ParentGreetingWorkflow, compose_greeting
from mux_peer import YamuxPeer
from netutil import free_address
from plugin_build import wait_for_plugin_schema
from proxy_process import DIRECT, ClusterConnection

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
    while "mux connection refused: all sessions are up" not in server_side.log(None):
        assert time.monotonic() < deadline, server_side.log()
        time.sleep(0.1)
    go.stop()
    # Its session gone, the server accepts a new one: our client gets in and calls pass.
    client_side = proxy_factory.start([ClusterConnection("pair", local_upstream=temporal_server.address,
                                                         remote_upstream="", mux="mux-client",
                                                         mux_address=mux_address, mux_count=1)])
    describe_default(temporal_server, client_side.outbound())
