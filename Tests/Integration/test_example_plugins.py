"""The example plugins that ship with the project, loaded into the real proxy and driven with real gRPC calls:
`examples/plugins/c-method-guard` (plain C, built here with `cc` exactly as its README says) and
`examples/plugins/swift-header-stamp` (Swift with PluginKit, built by `swift build` next to the `s2s-proxy` binary
and found by its bundled name).
"""

from __future__ import annotations

import uuid

import grpc
import pytest

from backend import CALL_ID_HEADER, method
from plugin_build import REPO_ROOT, build_c_plugin
from proxy_process import DIRECT, ClusterConnection, proxy_binary

TIMEOUT = 30

pytestmark = pytest.mark.skipif(DIRECT, reason="plugins run inside the proxy process")


@pytest.fixture(scope="module")
def method_guard(tmp_path_factory):
    source = REPO_ROOT / "examples" / "plugins" / "c-method-guard" / "method_guard.c"
    return build_c_plugin(source, tmp_path_factory.mktemp("method-guard") / "libmethod-guard.so")


def start(proxy_factory, backend, plugins):
    return proxy_factory.start([ClusterConnection("itest", local_upstream=backend.address,
                                                  remote_upstream=backend.address, plugins=plugins)])


def seen(backend, cid):
    return dict(backend.record(cid).metadata)


def test_c_method_guard_denies_configured_methods_and_stamps_the_rest(method_guard, backend, proxy_factory,
                                                                      channel_factory):
    proxy = start(proxy_factory, backend, [{
        "path": str(method_guard), "side": "inbound",
        "options": {"deny": [method("Echo")], "header": "x-guard", "value": "checked"},
    }])
    channel = channel_factory(proxy.inbound())
    cid = str(uuid.uuid4())
    with pytest.raises(grpc.RpcError) as error:
        channel.unary_unary(method("Echo"))(b"x", timeout=TIMEOUT, metadata=[(CALL_ID_HEADER, cid)])
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert method("Echo") in error.value.details()
    assert not backend.record(cid).started.is_set()
    cid = str(uuid.uuid4())
    channel.unary_unary(method("Inspect"))(b"", timeout=TIMEOUT, metadata=[(CALL_ID_HEADER, cid)])
    assert seen(backend, cid).get("x-guard") == "checked"
    # side: inbound — the outbound listener lets the denied method through.
    echo = channel_factory(proxy.outbound()).unary_unary(method("Echo"))
    assert echo(b"through", timeout=TIMEOUT) == b"through"


def test_swift_header_stamp_found_by_bundled_name(backend, proxy_factory, channel_factory):
    bundled = proxy_binary().resolve().parent / "libexample-header-stamp.so"
    assert bundled.exists(), f"{bundled} is missing: `swift build` builds the example-header-stamp product"
    proxy = start(proxy_factory, backend, [{
        "name": "example-header-stamp",
        "options": {"header": "x-stamp", "value": "cluster-a", "rejectMethods": [method("Who")]},
    }])
    channel = channel_factory(proxy.outbound())
    cid = str(uuid.uuid4())
    channel.unary_unary(method("Inspect"))(b"", timeout=TIMEOUT, metadata=[(CALL_ID_HEADER, cid)])
    assert seen(backend, cid).get("x-stamp") == "cluster-a"
    with pytest.raises(grpc.RpcError) as error:
        channel.unary_unary(method("Who"))(b"", timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    payload = bytes(range(256)) * 1000
    assert channel.unary_unary(method("Echo"))(payload, timeout=TIMEOUT) == payload


def test_swift_plugin_options_it_does_not_know_refuse_the_config(backend, tmp_path):
    import subprocess

    from proxy_process import render_config

    connection = ClusterConnection("itest", local_upstream=backend.address, remote_upstream=backend.address,
                                   plugins=[{"name": "example-header-stamp", "options": {"value": "a", "vaule": 1}}])
    config = tmp_path / "c.yaml"
    config.write_text(render_config([connection]))
    result = subprocess.run([str(proxy_binary()), "validate", "--config", str(config)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2, result.stdout
    assert "clusterConnections[0].plugins[0]: plugin example-header-stamp refused its options" in result.stderr
    assert "vaule" in result.stderr
