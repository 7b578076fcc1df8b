"""Deadlines (grpc-timeout) and cancellation propagate through the proxy in both directions."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import grpc
import pytest

from backend import DETECT_HALF_CLOSE_HEADER, method, pattern
from processes import bound_to_test_run

# How long the backend may take to notice that the client gave up: "promptly", with room for a loaded machine.
PROMPT = 2.5


def call_id() -> str:
    return str(uuid.uuid4())


def test_backend_sees_a_deadline_close_to_the_clients_timeout(via, channel_factory):
    inspect = channel_factory(via).unary_unary(method("Inspect"))
    seen = json.loads(inspect(b"", timeout=10))
    assert seen["time_remaining"] is not None, "backend saw no deadline: grpc-timeout was not forwarded"
    assert 8.0 < seen["time_remaining"] <= 10.0, f"backend saw {seen['time_remaining']:.2f}s of a 10s deadline"


def test_call_without_deadline_reaches_backend_without_one(via, channel_factory):
    inspect = channel_factory(via).unary_unary(method("Inspect"))
    seen = json.loads(inspect(b""))
    assert seen["time_remaining"] is None or seen["time_remaining"] > 3600, seen["time_remaining"]


def test_slow_backend_gives_client_deadline_exceeded_and_backend_sees_the_call_end(via, backend, channel_factory):
    cid = call_id()
    sleep = channel_factory(via).unary_unary(method("Sleep"))
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        sleep(json.dumps({"seconds": 20}).encode(), metadata=[("x-itest-call-id", cid)], timeout=1.0)
    elapsed = time.monotonic() - started
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, caught.value.details()
    assert elapsed < 1.0 + PROMPT, f"client waited {elapsed:.1f}s for a 1s deadline"
    record = backend.record(cid)
    assert record.terminated.wait(PROMPT), "backend call still running after the client's deadline passed"
    assert record.cancelled


def test_client_cancelling_a_stream_cancels_the_backend_call(via, backend, channel_factory):
    cid = call_id()
    forever = channel_factory(via).unary_stream(method("Forever"))
    call = forever(b"", metadata=[("x-itest-call-id", cid)], timeout=60)
    for _ in range(3):
        next(call)
    record = backend.record(cid)
    assert not record.terminated.is_set()
    cancelled_at = time.monotonic()
    call.cancel()
    assert record.terminated.wait(PROMPT), f"backend did not see the cancellation within {PROMPT}s"
    print(f"backend saw the cancellation after {record.terminated_at - cancelled_at:.3f}s")
    assert record.cancelled


def test_client_cancelling_a_unary_call_cancels_the_backend_call(via, backend, channel_factory):
    cid = call_id()
    sleep = channel_factory(via).unary_unary(method("Sleep"))
    future = sleep.future(json.dumps({"seconds": 30}).encode(), metadata=[("x-itest-call-id", cid)], timeout=60)
    record = backend.wait_started(cid)
    future.cancel()
    assert record.terminated.wait(PROMPT), f"backend did not see the cancellation within {PROMPT}s"
    assert record.cancelled


def test_client_closing_its_connection_cancels_the_backend_call(via, backend, channel_factory):
    cid = call_id()
    channel = channel_factory(via)
    call = channel.unary_stream(method("Forever"))(b"", metadata=[("x-itest-call-id", cid)], timeout=60)
    next(call)
    record = backend.record(cid)
    channel.close()
    assert record.terminated.wait(PROMPT), f"backend call still running {PROMPT}s after the client disconnected"
    assert record.cancelled


def test_client_process_killed_mid_stream_cancels_the_backend_call(via, backend):
    """No RST_STREAM, no GOAWAY: the client's kernel just closes the TCP connection."""
    cid = call_id()
    client = textwrap.dedent(f"""
        import sys, grpc
        channel = grpc.insecure_channel({via!r}, options=[("grpc.enable_http_proxy", 0)])
        call = channel.unary_stream("/itest.Backend/Forever")(b"", metadata=[("x-itest-call-id", {cid!r})], timeout=60)
        next(call)
        print("STREAMING", flush=True)
        sys.stdin.read()
    """)
    process = subprocess.Popen(
        bound_to_test_run([sys.executable, "-c", client]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent,
    )
    try:
        assert process.stdout.readline().strip() == "STREAMING", "client subprocess did not start streaming"
        record = backend.record(cid)
        assert not record.terminated.is_set()
        process.kill()
        assert record.terminated.wait(PROMPT), f"backend call still running {PROMPT}s after the client process died"
        assert record.cancelled
    finally:
        process.kill()
        process.wait(10)


def test_client_cancelling_a_bidi_stream_cancels_the_backend_call_without_a_clean_end(via, backend, channel_factory):
    cid = call_id()
    done = threading.Event()

    def requests():
        yield b"first"
        done.wait(60)  # keep the request side open: the end must come from the client's cancellation

    call = channel_factory(via).stream_stream(method("EchoStream"))(
        requests(), metadata=[("x-itest-call-id", cid), (DETECT_HALF_CLOSE_HEADER, "1")], timeout=60
    )
    assert next(call) == b"first"
    record = backend.record(cid)
    call.cancel()
    try:
        assert record.terminated.wait(PROMPT), f"backend did not see the cancellation within {PROMPT}s"
        assert not record.request_half_closed, "the cancellation reached the backend as a clean end of the requests"
    finally:
        done.set()


def test_client_cancelling_an_upload_never_looks_like_a_complete_upload(via, backend, channel_factory):
    """A half-close would tell the backend the upload is complete: a cancelled one must arrive as a cancellation."""
    cid = call_id()
    done = threading.Event()

    def upload():
        for i in range(3):
            yield pattern(i, 1000)
        done.wait(60)

    collect = channel_factory(via).stream_unary(method("Collect"))
    future = collect.future(upload(), metadata=[("x-itest-call-id", cid), (DETECT_HALF_CLOSE_HEADER, "1")], timeout=60)
    record = backend.wait_started(cid)
    deadline = time.monotonic() + 10
    while record.received_messages < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert record.received_messages == 3
    future.cancel()
    try:
        assert record.terminated.wait(PROMPT), f"backend did not see the cancellation within {PROMPT}s"
        assert not record.request_half_closed, "the cancelled upload reached the backend as a complete one"
    finally:
        done.set()
