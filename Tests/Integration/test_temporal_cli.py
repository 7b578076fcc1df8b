"""The real `temporal` CLI (grpc-go) against a real Temporal dev server, through the proxy.

Most answers are compared with the same call made directly to the server: the proxy must be invisible.
"""

from __future__ import annotations

import time
import uuid

import pytest


@pytest.fixture(params=["outbound", "inbound"])
def address(request, temporal_via):
    return temporal_via.outbound() if request.param == "outbound" else temporal_via.inbound()


def test_namespace_list_through_proxy_matches_direct(temporal_server, address):
    def names(target):
        return sorted(n["namespaceInfo"]["name"] for n in temporal_server.cli_json(["operator", "namespace", "list"], target))

    through_proxy = names(address)
    assert "default" in through_proxy
    assert through_proxy == names(temporal_server.address)


def test_namespace_describe_through_proxy_matches_direct(temporal_server, address):
    args = ["operator", "namespace", "describe", "-n", "default"]
    through_proxy = temporal_server.cli_json(args, address)
    assert through_proxy["namespaceInfo"]["name"] == "default"
    assert through_proxy == temporal_server.cli_json(args, temporal_server.address)


def test_namespace_create_through_proxy_registers_it_on_the_server(temporal_server, temporal_via):
    name = f"itest-{uuid.uuid4().hex[:10]}"
    temporal_server.cli(["operator", "namespace", "create", "-n", name, "--retention", "3d"], temporal_via.outbound())
    described = temporal_server.cli_json(["operator", "namespace", "describe", "-n", name], temporal_server.address)
    assert described["namespaceInfo"]["name"] == name
    assert described["config"]["workflowExecutionRetentionTtl"] in ("259200s", "72h0m0s", "3d")
    listed = temporal_server.cli_json(["operator", "namespace", "list"], temporal_via.inbound())
    assert name in [n["namespaceInfo"]["name"] for n in listed]


def test_cluster_describe_through_proxy_matches_direct(temporal_server, address):
    args = ["operator", "cluster", "describe"]
    through_proxy = temporal_server.cli_json(args, address)
    assert through_proxy["clusterName"] and through_proxy["serverVersion"]
    assert through_proxy == temporal_server.cli_json(args, temporal_server.address)


def test_cluster_system_through_proxy_matches_direct(temporal_server, address):
    args = ["operator", "cluster", "system"]
    assert temporal_server.cli_json(args, address) == temporal_server.cli_json(args, temporal_server.address)


def test_cluster_health_check_through_proxy_is_serving(temporal_server, address):
    """Uses grpc.health.v1.Health: a service the proxy knows nothing about must pass too."""
    result = temporal_server.cli(["operator", "cluster", "health"], address)
    assert "SERVING" in result.stdout


def test_search_attribute_list_through_proxy_matches_direct(temporal_server, address):
    args = ["operator", "search-attribute", "list"]
    through_proxy = temporal_server.cli_json(args, address)
    assert "WorkflowId" in str(through_proxy)
    assert through_proxy == temporal_server.cli_json(args, temporal_server.address)


def test_workflow_start_describe_list_terminate_through_proxy(temporal_server, temporal_via):
    outbound, inbound = temporal_via.outbound(), temporal_via.inbound()
    workflow_id = f"itest-cli-{uuid.uuid4().hex[:10]}"
    started = temporal_server.cli_json(
        ["workflow", "start", "--type", "ItestCliWorkflow", "--task-queue", "itest-cli-no-worker",
         "--workflow-id", workflow_id, "--input", '{"hello": "proxy"}'],
        outbound,
    )  # fmt: skip
    assert started["workflowId"] == workflow_id and started["runId"]

    described = temporal_server.cli_json(["workflow", "describe", "-w", workflow_id], inbound)
    info = described["workflowExecutionInfo"]
    assert info["execution"]["runId"] == started["runId"]
    assert info["status"] == "WORKFLOW_EXECUTION_STATUS_RUNNING"
    assert info["type"]["name"] == "ItestCliWorkflow"

    query = f"WorkflowId = '{workflow_id}'"
    deadline = time.monotonic() + 20  # visibility is updated asynchronously
    while True:
        listed = temporal_server.cli_json(["workflow", "list", "--query", query], outbound)
        if listed or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [w["execution"]["runId"] for w in listed] == [started["runId"]]

    temporal_server.cli(["workflow", "terminate", "-w", workflow_id, "--reason", "itest done"], outbound)
    direct = temporal_server.cli_json(["workflow", "describe", "-w", workflow_id], temporal_server.address)
    assert direct["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_TERMINATED"
