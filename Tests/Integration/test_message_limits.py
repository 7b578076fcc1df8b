"""`limits.maxMessageBytes`: one message over the limit fails the call with RESOURCE_EXHAUSTED naming the limit.

The backend and the clients here accept up to 256 MiB, so any RESOURCE_EXHAUSTED comes from the proxy.
"""

from __future__ import annotations

import json
import os
import uuid

import grpc
import pytest

from backend import method, pattern

MIB = 1024 * 1024
LIMIT = 1 * MIB


def names_the_limit(message: str, limit: int) -> bool:
    spellings = [str(limit), f"{limit:,}", f"{limit // MIB} MiB", f"{limit // MIB}MiB", f"{limit // MIB} MB"]
    return any(s in message for s in spellings)


@pytest.fixture
def limited(backend, proxy_factory):
    proxy = proxy_factory.to(backend.address, max_message_bytes=LIMIT)
    proxy.require_process()
    return proxy


def test_request_over_the_limit_is_rejected_and_never_completes_upstream(limited, backend, channel_factory):
    cid = str(uuid.uuid4())
    echo = channel_factory(limited.outbound()).unary_unary(method("Echo"))
    with pytest.raises(grpc.RpcError) as caught:
        echo(os.urandom(2 * MIB), metadata=[("x-itest-call-id", cid)], timeout=30)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, caught.value.details()
    assert names_the_limit(caught.value.details(), LIMIT), caught.value.details()
    assert not backend.record(cid).completed, "the over-limit request reached the backend's handler"


def test_response_over_the_limit_is_replaced_by_resource_exhausted(limited, channel_factory):
    big = channel_factory(limited.inbound()).unary_unary(method("Big"))
    with pytest.raises(grpc.RpcError) as caught:
        big(json.dumps({"size": 2 * MIB}).encode(), timeout=30)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, caught.value.details()
    assert names_the_limit(caught.value.details(), LIMIT), caught.value.details()


def test_one_over_limit_message_in_a_client_stream_fails_the_call(limited, channel_factory):
    messages = [b"small"] * 5 + [os.urandom(2 * MIB)] + [b"never sent"]
    collect = channel_factory(limited.outbound()).stream_unary(method("Collect"))
    with pytest.raises(grpc.RpcError) as caught:
        collect(iter(messages), timeout=30)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, caught.value.details()


def test_messages_under_the_limit_pass_even_when_the_stream_carries_more_than_the_limit(limited, channel_factory):
    channel = channel_factory(limited.outbound())
    just_under = os.urandom(LIMIT - 64 * 1024)
    assert channel.unary_unary(method("Echo"))(just_under, timeout=30) == just_under
    spec = {"count": 8, "size": LIMIT // 2}
    received = list(channel.unary_stream(method("Repeat"))(json.dumps(spec).encode(), timeout=30))
    assert received == [pattern(i, LIMIT // 2) for i in range(8)]


def test_default_limit_allows_messages_far_above_grpcs_usual_4_mib(backend, proxy_factory, channel_factory):
    proxy = proxy_factory.to(backend.address)
    payload = os.urandom(20 * MIB)
    assert channel_factory(proxy.outbound()).unary_unary(method("Echo"))(payload, timeout=60) == payload
