"""The Temporal Python SDK (Rust core, tonic/hyper gRPC) runs a worker and a workflow entirely through the proxy."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from itest_workflows import GreetingWorkflow, compose_greeting


async def run_greeting_workflow(proxy_address: str, direct_address: str) -> None:
    client = await Client.connect(proxy_address, namespace="default")
    task_queue = f"itest-sdk-{uuid.uuid4().hex[:8]}"
    workflow_id = f"itest-sdk-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[GreetingWorkflow],
        activities=[compose_greeting],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await client.start_workflow(GreetingWorkflow.run, "Proxy says:", id=workflow_id, task_queue=task_queue)
        assert await asyncio.wait_for(handle.query(GreetingWorkflow.stage), 30) == "waiting for name"
        await handle.signal(GreetingWorkflow.set_name, "s2s-proxy")
        result = await asyncio.wait_for(handle.result(), 60)
        assert result == "Proxy says: Hello, s2s-proxy!"
        assert await asyncio.wait_for(handle.query(GreetingWorkflow.stage), 30) == "done"

    # The workflow really ran on the server: ask it directly.
    direct = await Client.connect(direct_address, namespace="default")
    description = await direct.get_workflow_handle(workflow_id).describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED
    events = [event async for event in direct.get_workflow_handle(workflow_id).fetch_history_events()]
    kinds = {event.WhichOneof("attributes") for event in events}
    assert "activity_task_completed_event_attributes" in kinds
    assert "workflow_execution_signaled_event_attributes" in kinds


@pytest.mark.parametrize("side", ["outbound", "inbound"])
def test_worker_and_workflow_with_activity_signal_and_query_run_through_proxy(temporal_server, temporal_via, side):
    proxy_address = temporal_via.outbound() if side == "outbound" else temporal_via.inbound()
    asyncio.run(asyncio.wait_for(run_greeting_workflow(proxy_address, temporal_server.address), 150))
