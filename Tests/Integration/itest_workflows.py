"""A workflow and an activity for the Temporal SDK tests (module level, as the SDK requires)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def compose_greeting(name: str) -> str:
    return f"Hello, {name}!"


@workflow.defn
class GreetingWorkflow:
    """Waits for a name by signal, then greets it through an activity; `stage` is queryable throughout."""

    def __init__(self) -> None:
        self._name: str | None = None
        self._stage = "waiting for name"

    @workflow.run
    async def run(self, prefix: str) -> str:
        await workflow.wait_condition(lambda: self._name is not None)
        self._stage = "greeting"
        greeting = await workflow.execute_activity(
            compose_greeting, self._name, start_to_close_timeout=timedelta(seconds=30)
        )
        self._stage = "done"
        return f"{prefix} {greeting}"

    @workflow.signal
    def set_name(self, name: str) -> None:
        self._name = name

    @workflow.query
    def stage(self) -> str:
        return self._stage


@workflow.defn
class ChildGreetingWorkflow:
    """The child of `ParentGreetingWorkflow`: waits for a name sent by signal from its parent, greets it."""

    def __init__(self) -> None:
        self._name: str | None = None

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self._name is not None)
        return await workflow.execute_activity(
            compose_greeting, self._name, start_to_close_timeout=timedelta(seconds=30)
        )

    @workflow.signal
    def set_name(self, name: str) -> None:
        self._name = name


@workflow.defn
class ParentGreetingWorkflow:
    """Starts a child workflow, signals it as an external workflow, and returns what the child returns."""

    @workflow.run
    async def run(self, name: str) -> str:
        child_id = f"{workflow.info().workflow_id}-child"
        child = await workflow.start_child_workflow(ChildGreetingWorkflow.run, id=child_id)
        await workflow.get_external_workflow_handle(child_id).signal(ChildGreetingWorkflow.set_name, name)
        return await child
