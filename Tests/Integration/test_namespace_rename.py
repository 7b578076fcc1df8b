"""namespaceTranslation (the bundled namespace-rename plugin) with the real dev server and the Temporal Python SDK.

The dev server has the namespace `orders` only. A client and a worker use `orders.remote` through the proxy's
inbound listener (remote -> local), whose connection maps `orders` <-> `orders.remote`: every request is renamed to
`orders`, every response back. A parent workflow starts a child, signals it as an external workflow, and the child
runs an activity. Read through the proxy, the history says `orders.remote`; read directly, `orders`.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from itest_workflows import ChildGreetingWorkflow, ParentGreetingWorkflow, compose_greeting
from plugin_build import wait_for_plugin_schema
from proxy_process import DIRECT, ClusterConnection

pytestmark = pytest.mark.skipif(DIRECT, reason="the renaming happens in the proxy")

MAPPING = {"mappings": [{"local": "orders", "remote": "orders.remote"}]}
NAMESPACE_FIELDS = ("namespace", "parent_workflow_namespace", "workflow_namespace")


@pytest.fixture
def renaming_proxy(temporal_server, proxy_factory, channel_factory):
    connection = ClusterConnection("itest", local_upstream=temporal_server.address,
                                   remote_upstream=temporal_server.address,
                                   extra={"namespaceTranslation": MAPPING})
    proxy = proxy_factory.start([connection])
    # The plugin needs the schema, pulled from the dev server by reflection: wait until calls pass.
    wait_for_plugin_schema(channel_factory(proxy.inbound()))
    return proxy


def namespace_values(events) -> set[str]:
    """Every namespace name in the events' attributes (one level down, where Temporal puts them)."""
    found = set()
    for event in events:
        attributes = getattr(event, event.WhichOneof("attributes"))
        for field in NAMESPACE_FIELDS:
            if field in attributes.DESCRIPTOR.fields_by_name and getattr(attributes, field):
                found.add(getattr(attributes, field))
    return found


async def run_family(proxy_address: str, direct_address: str) -> None:
    client = await Client.connect(proxy_address, namespace="orders.remote")
    task_queue = f"itest-rename-{uuid.uuid4().hex[:8]}"
    workflow_id = f"itest-rename-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=task_queue, workflows=[ParentGreetingWorkflow, ChildGreetingWorkflow],
                      activities=[compose_greeting], workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await client.start_workflow(ParentGreetingWorkflow.run, "renamed", id=workflow_id,
                                             task_queue=task_queue)
        assert await asyncio.wait_for(handle.result(), 90) == "Hello, renamed!"
        through_proxy = [e async for e in client.get_workflow_handle(workflow_id).fetch_history_events()]
        child_through_proxy = [e async for e in
                               client.get_workflow_handle(f"{workflow_id}-child").fetch_history_events()]

    direct = await Client.connect(direct_address, namespace="orders")
    assert (await direct.get_workflow_handle(workflow_id).describe()).status == WorkflowExecutionStatus.COMPLETED
    directly = [e async for e in direct.get_workflow_handle(workflow_id).fetch_history_events()]
    child_directly = [e async for e in direct.get_workflow_handle(f"{workflow_id}-child").fetch_history_events()]

    kinds = {event.WhichOneof("attributes") for event in directly}
    assert {"start_child_workflow_execution_initiated_event_attributes",
            "signal_external_workflow_execution_initiated_event_attributes",
            "child_workflow_execution_completed_event_attributes"} <= kinds
    assert namespace_values(directly) == {"orders"}
    assert namespace_values(through_proxy) == {"orders.remote"}
    # The child's start event names its parent's namespace.
    assert namespace_values(child_directly) == {"orders"}
    assert namespace_values(child_through_proxy) == {"orders.remote"}
    # Apart from the names, the proxy's view is the server's.
    assert len(through_proxy) == len(directly)


def test_sdk_on_a_renamed_namespace_runs_child_signal_and_activity(temporal_server, renaming_proxy):
    asyncio.run(asyncio.wait_for(run_family(renaming_proxy.inbound(), temporal_server.address), 150))


def test_a_name_outside_the_mapping_passes_unchanged(temporal_server, renaming_proxy):
    async def describe_default():
        client = await Client.connect(renaming_proxy.inbound(), namespace="default")
        return await client.workflow_service.describe_namespace(
            __import__("temporalio.api.workflowservice.v1", fromlist=["x"]).DescribeNamespaceRequest(
                namespace="default"))

    response = asyncio.run(describe_default())
    assert response.namespace_info.name == "default"


def test_error_details_name_the_callers_namespace(temporal_server, proxy_factory, channel_factory):
    # The remote side asks for its name of a namespace the local Temporal does not have: Temporal answers NOT_FOUND
    # with a NamespaceNotFoundFailure in grpc-status-details-bin naming the local name, and the proxy renames it
    # back, so the caller sees the name it used (the message text is Temporal's own and is left alone).
    from temporalio.api.errordetails.v1 import NamespaceNotFoundFailure
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeNamespaceResponse

    import grpc
    from protowire import decode

    mapping = {"mappings": [{"local": "missing-locally", "remote": "missing.remote"}]}
    connection = ClusterConnection("itest", local_upstream=temporal_server.address,
                                   remote_upstream=temporal_server.address, extra={"namespaceTranslation": mapping})
    proxy = proxy_factory.start([connection])
    channel = channel_factory(proxy.inbound())
    wait_for_plugin_schema(channel)
    describe = channel.unary_unary("/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace",
                                   request_serializer=DescribeNamespaceRequest.SerializeToString,
                                   response_deserializer=DescribeNamespaceResponse.FromString)
    with pytest.raises(grpc.RpcError) as missing:
        describe(DescribeNamespaceRequest(namespace="missing.remote"), timeout=10)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND, missing.value
    details = dict(missing.value.trailing_metadata())["grpc-status-details-bin"]
    status = decode(details)
    [any_bytes] = status[3]
    any_fields = decode(any_bytes)
    assert any_fields[1][0].endswith(b"temporal.api.errordetails.v1.NamespaceNotFoundFailure"), any_fields
    failure = NamespaceNotFoundFailure.FromString(any_fields[2][0])
    assert failure.namespace == "missing.remote", failure
