"""searchAttributeTranslation (the bundled search-attribute-rename plugin) with the real dev server.

The dev server has namespaces `orders` and `billing` with the custom search attribute `CustomerId`, which its SQL
visibility stores in a per-namespace field such as `Keyword01` (the name mutable state and history carry). The
proxy's connection maps that field per namespace, keyed by namespace id: `orders` to `Keyword10`, `billing` to
`Text03` (or a neighbour, when the server's own field is that name). Calls of
the remote side through the inbound listener see the remote names in AdminService responses (mutable state, raw
history); read directly, the server's. WorkflowService calls are not translated (the Go proxy's default), and a
call with `s2s-request-translation: false` is left alone.
"""

from __future__ import annotations

import uuid

import grpc
import pytest
from temporalio.api.history.v1 import History

from admin_calls import admin_call
from plugin_build import wait_for_plugin_schema
from proxy_process import DIRECT, ClusterConnection

pytestmark = pytest.mark.skipif(DIRECT, reason="the renaming happens in the proxy")

# The remote side's field for CustomerId per namespace: the first of these that is not the dev server's own field
# for it (the server picks its field at start-up, so a fixed remote name could coincide with it).
REMOTE_FIELD_CHOICES = {"orders": ("Keyword10", "Keyword11"), "billing": ("Text03", "Text02")}


@pytest.fixture
def workflows(temporal_server, channel_factory):
    """One running workflow with CustomerId set in each namespace: namespace -> workflow id."""
    started = {}
    for namespace in REMOTE_FIELD_CHOICES:
        workflow_id = f"itest-sa-{namespace}-{uuid.uuid4().hex[:8]}"
        temporal_server.cli(["workflow", "start", "-n", namespace, "--type", "Unpolled", "--task-queue",
                             "itest-sa-nobody", "--workflow-id", workflow_id,
                             "--search-attribute", 'CustomerId="customer-7"'], temporal_server.address)
        started[namespace] = workflow_id
    return started


@pytest.fixture
def fields(temporal_server, workflows, channel_factory):
    """namespace -> the field the dev server keeps CustomerId in (read directly)."""
    direct = channel_factory(temporal_server.address)
    found = {}
    for namespace, workflow_id in workflows.items():
        names = attribute_names(mutable_state(direct, namespace, workflow_id))
        assert len(names[0]) == 1 and names[0] == names[1], names
        found[namespace] = names[0][0]
    return found


@pytest.fixture
def remote_fields(fields):
    """namespace -> the name the remote side sees for the server's field (never the server's field itself)."""
    return {namespace: next(name for name in choices if name != fields[namespace])
            for namespace, choices in REMOTE_FIELD_CHOICES.items()}


@pytest.fixture
def renaming_proxy(temporal_server, proxy_factory, channel_factory, workflows, fields, remote_fields):
    translation = {"namespaceMappings": [
        {"name": namespace, "namespaceId": namespace_id(temporal_server, namespace),
         "mappings": [{"localFieldName": fields[namespace], "remoteFieldName": remote_fields[namespace]}]}
        for namespace in REMOTE_FIELD_CHOICES
    ]}
    connection = ClusterConnection("itest", local_upstream=temporal_server.address,
                                   remote_upstream=temporal_server.address,
                                   extra={"searchAttributeTranslation": translation})
    proxy = proxy_factory.start([connection])
    channel = channel_factory(proxy.inbound())
    wait_for_plugin_schema(channel, call=lambda ch: mutable_state(ch, "orders", workflows["orders"]))
    return proxy


def namespace_id(temporal_server, namespace: str) -> str:
    described = temporal_server.cli_json(["operator", "namespace", "describe", "-n", namespace], temporal_server.address)
    return described["namespaceInfo"]["id"]


def mutable_state(channel, namespace: str, workflow_id: str, metadata=()):
    return admin_call(channel, "DescribeMutableState",
                      {"namespace": namespace, "execution": {"workflow_id": workflow_id}}, metadata=metadata)


def attribute_names(response) -> tuple[list[str], list[str]]:
    return (sorted(response.database_mutable_state.execution_info.search_attributes),
            sorted(response.cache_mutable_state.execution_info.search_attributes))


def started_event_attribute_names(channel, state) -> list[str]:
    """The search attribute names of the WorkflowExecutionStarted event, read with GetWorkflowExecutionRawHistoryV2."""
    info = state.database_mutable_state.execution_info
    last = info.version_histories.histories[0].items[-1]
    response = admin_call(channel, "GetWorkflowExecutionRawHistoryV2", {
        "namespace_id": info.namespace_id,
        "execution": {"workflow_id": info.workflow_id, "run_id": state.database_mutable_state.execution_state.run_id},
        "maximum_page_size": 100, "end_event_id": last.event_id + 1, "end_event_version": last.version,
    })  # fmt: skip
    history = History()
    history.ParseFromString(response.history_batches[0].data)
    return sorted(history.events[0].workflow_execution_started_event_attributes.search_attributes.indexed_fields)


def test_admin_responses_carry_each_namespaces_remote_names(temporal_server, renaming_proxy, workflows, fields,
                                                            remote_fields, channel_factory):
    direct = channel_factory(temporal_server.address)
    remote = channel_factory(renaming_proxy.inbound())
    for namespace, workflow_id in workflows.items():
        field = fields[namespace]
        server_view = mutable_state(direct, namespace, workflow_id)
        remote_view = mutable_state(remote, namespace, workflow_id)
        assert attribute_names(server_view) == ([field], [field])
        assert attribute_names(remote_view) == ([remote_fields[namespace]], [remote_fields[namespace]]), namespace
        # Nothing but the name changed: the value and the memo-shaped neighbours are the server's.
        server_state = server_view.database_mutable_state
        remote_state = remote_view.database_mutable_state
        assert (remote_state.execution_info.search_attributes[remote_fields[namespace]]
                == server_state.execution_info.search_attributes[field])
        attributes = remote_state.execution_info.search_attributes
        attributes[field].CopyFrom(attributes[remote_fields[namespace]])
        del attributes[remote_fields[namespace]]
        assert remote_state == server_state, namespace

        # Inside the history blob the raw-history call returns (whose response names no namespace: the request's
        # namespace_id decides).
        assert started_event_attribute_names(direct, server_view) == [field]
        assert started_event_attribute_names(remote, server_view) == [remote_fields[namespace]], namespace


def test_requests_toward_the_server_are_renamed_back(renaming_proxy, workflows, fields, channel_factory):
    # The outbound listener is where the local server's own calls to the remote go out; a response coming back
    # through it is renamed remote -> local. Here the "remote" is the same dev server, so the response carries
    # local names, and renaming them from remote to local must change nothing.
    local_side = channel_factory(renaming_proxy.outbound())
    view = mutable_state(local_side, "orders", workflows["orders"])
    assert attribute_names(view) == ([fields["orders"]], [fields["orders"]])


def test_the_opt_out_header_and_workflow_service_pass_untouched(temporal_server, renaming_proxy, workflows, fields,
                                                                remote_fields, channel_factory):
    remote = channel_factory(renaming_proxy.inbound())
    opted_out = mutable_state(remote, "orders", workflows["orders"], metadata=(("s2s-request-translation", "false"),))
    assert attribute_names(opted_out) == ([fields["orders"]], [fields["orders"]])
    # A real client on WorkflowService: the server speaks aliases there, and the proxy leaves them.
    described = temporal_server.cli_json(["workflow", "describe", "-n", "orders", "-w", workflows["orders"]],
                                         renaming_proxy.inbound())
    assert "CustomerId" in str(described), described
    assert remote_fields["orders"] not in str(described), described
