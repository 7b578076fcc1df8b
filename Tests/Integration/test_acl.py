"""aclPolicy (the bundled acl plugin) on the inbound side, against the real dev server, with the Temporal SDK."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from proxy_process import DIRECT, ClusterConnection, proxy_binary, render_config

pytestmark = pytest.mark.skipif(DIRECT, reason="access control happens in the proxy")

POLICY = {"allowedMethods": {"adminService": ["DescribeCluster"]}, "allowedNamespaces": ["orders"]}


def connection(temporal_server):
    return ClusterConnection("itest", local_upstream=temporal_server.address, remote_upstream=temporal_server.address,
                             extra={"aclPolicy": POLICY})


async def describe(address: str, namespace: str):
    client = await Client.connect(address, namespace="orders")
    return await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))


def eventually(call, timeout=30):
    """Calls wait UNAVAILABLE until the schema is pulled; retry those."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except (RPCError, RuntimeError) as error:
            waiting = (error.status == RPCStatusCode.UNAVAILABLE if isinstance(error, RPCError)
                       else "waiting for the Temporal schema" in str(error))
            if not waiting or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_inbound_calls_are_limited_to_the_allowed_namespaces(temporal_server, proxy_factory):
    proxy = proxy_factory.start([connection(temporal_server)])
    allowed = eventually(lambda: asyncio.run(describe(proxy.inbound(), "orders")))
    assert allowed.namespace_info.name == "orders"
    with pytest.raises(RPCError) as error:
        eventually(lambda: asyncio.run(describe(proxy.inbound(), "default")))
    assert error.value.status == RPCStatusCode.PERMISSION_DENIED
    assert "not allowed by namespace access control" in error.value.message
    # The outbound side (calls the local cluster makes) is not subject to the remote side's policy.
    assert asyncio.run(describe(proxy.outbound(), "default")).namespace_info.name == "default"


def test_validate_shows_the_acl_entry_on_the_inbound_side(temporal_server, tmp_path):
    config = tmp_path / "acl.yaml"
    config.write_text(render_config([connection(temporal_server)]))
    result = subprocess.run([str(proxy_binary()), "validate", "--config", str(config)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "plugins itest/inbound: acl" in result.stdout
    assert "plugins itest/outbound" not in result.stdout
