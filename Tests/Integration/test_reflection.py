"""gRPC server reflection (a bidi stream) of the real Temporal frontend, through the proxy.

The requests are hand-encoded `ServerReflectionRequest`s; the descriptors that come back are parsed with
protobuf's own `FileDescriptorProto`, so a corrupted byte anywhere would show.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2

from protowire import decode, field_bytes

WORKFLOW_SERVICE = "temporal.api.workflowservice.v1.WorkflowService"
ADMIN_SERVICE = "temporal.server.api.adminservice.v1.AdminService"

LIST_SERVICES = field_bytes(7, "*")  # ServerReflectionRequest.list_services
FILE_CONTAINING_WORKFLOW_SERVICE = field_bytes(4, WORKFLOW_SERVICE)  # .file_containing_symbol


def reflect(address: str, version: str, requests: list[bytes]) -> list[dict[int, list]]:
    with grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)]) as channel:
        info = channel.stream_stream(f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo")
        return [decode(response) for response in info(iter(requests), timeout=30)]


def listed_services(response: dict[int, list]) -> list[str]:
    assert 7 not in response, f"reflection error: {decode(response[7][0])}"
    listing = decode(response[6][0])  # ServerReflectionResponse.list_services_response
    return [decode(service)[1][0].decode() for service in listing.get(1, [])]


def raw_file_descriptors(response: dict[int, list]) -> list[bytes]:
    assert 7 not in response, f"reflection error: {decode(response[7][0])}"
    return decode(response[4][0])[1]  # ServerReflectionResponse.file_descriptor_response.file_descriptor_proto


@pytest.fixture(params=["outbound", "inbound"])
def address(request, temporal_via):
    return temporal_via.outbound() if request.param == "outbound" else temporal_via.inbound()


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_lists_temporal_services_and_serves_their_descriptors(temporal_server, address, version):
    responses = reflect(address, version, [LIST_SERVICES, FILE_CONTAINING_WORKFLOW_SERVICE])
    assert len(responses) == 2, "one response per request on the bidi stream"
    listing, descriptor = responses

    services = listed_services(listing)
    assert WORKFLOW_SERVICE in services and ADMIN_SERVICE in services, services
    assert decode(listing[2][0]) == decode(LIST_SERVICES), "original_request was not echoed back intact"

    raw_files = raw_file_descriptors(descriptor)
    files = [descriptor_pb2.FileDescriptorProto.FromString(raw) for raw in raw_files]
    workflow_service = [
        service for f in files if f.package == "temporal.api.workflowservice.v1"
        for service in f.service if service.name == "WorkflowService"
    ]  # fmt: skip
    assert workflow_service, [f.name for f in files]
    methods = {m.name for m in workflow_service[0].method}
    assert {"StartWorkflowExecution", "DescribeNamespace", "PollWorkflowTaskQueue"} <= methods

    direct = reflect(temporal_server.address, version, [LIST_SERVICES, FILE_CONTAINING_WORKFLOW_SERVICE])
    assert sorted(services) == sorted(listed_services(direct[0]))
    assert sorted(raw_files) == sorted(raw_file_descriptors(direct[1])), "descriptor bytes differ from direct"


def test_reflection_error_for_an_unknown_symbol_comes_back_in_stream(address):
    (response,) = reflect(address, "v1", [field_bytes(4, "no.such.Symbol")])
    error = decode(response[7][0])  # ErrorResponse{error_code=1, error_message=2}
    assert error[1][0] == grpc.StatusCode.NOT_FOUND.value[0]
