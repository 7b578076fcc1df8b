"""Volume and flow control: a gigabyte through one stream, a stalled reader stalls the writer, memory stays bounded.

Figures (throughput, how far the writer got while the reader stalled, the proxy's peak RSS) are printed;
run pytest with `-s` or look at a failure report to see them.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid

from backend import method, pattern

MIB = 1024 * 1024
TOTAL_BYTES = int(os.environ.get("S2S_ITEST_VOLUME_BYTES", str(1024 * MIB)))
CHUNK = 256 * 1024
STALL_SECONDS = 3.0
# How far a writer may run ahead of a reader that stopped: the sum of the HTTP/2 windows and socket buffers on
# the way (client, proxy downstream, proxy upstream, backend) is a few MiB; anything near this means buffering.
MAX_RUN_AHEAD = 64 * MIB
MAX_PROXY_PEAK_RSS = 300 * MIB


class MemorySampler:
    """Samples the proxy's VmRSS every 100 ms in the background (nothing in direct mode)."""

    def __init__(self, proxy):
        self.proxy = proxy if proxy.alive() else None
        self.max_rss_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while self.proxy and not self._stop.wait(0.1):
            try:
                self.max_rss_kib = max(self.max_rss_kib, self.proxy.memory_kib()["VmRSS"])
            except (OSError, KeyError):
                return

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join(2)
        return self.proxy.memory_kib() if self.proxy else {}


def test_gigabyte_server_stream_with_stalled_then_slow_reader_keeps_proxy_memory_bounded(
    backend, proxy_factory, channel_factory
):
    proxy = proxy_factory.to(backend.address)
    sampler = MemorySampler(proxy)
    cid = str(uuid.uuid4())
    volume = channel_factory(proxy.outbound()).unary_stream(method("Volume"))
    started = time.monotonic()
    stream = iter(volume(json.dumps({"total": TOTAL_BYTES, "chunk": CHUNK}).encode(),
                         metadata=[("x-itest-call-id", cid)], timeout=280))  # fmt: skip
    record = backend.record(cid)
    expected = pattern(0, CHUNK)
    received = 0

    def read(messages: int, pause: float = 0.0) -> None:
        nonlocal received
        for _ in range(messages):
            message = next(stream)
            assert message == expected[: len(message)], f"corrupt message at offset {received}"
            received += len(message)
            if pause:
                time.sleep(pause)

    read(8)
    # The reader stops: the backend must stop soon after, held back by flow control through the proxy.
    time.sleep(0.5)
    sent_at_stall = record.sent_bytes
    time.sleep(STALL_SECONDS)
    run_ahead_during_stall = record.sent_bytes - sent_at_stall
    run_ahead_of_reader = record.sent_bytes - received
    rss_during_stall = sampler.max_rss_kib

    read(100, pause=0.02)  # a slow reader for a while
    run_ahead_while_slow = record.sent_bytes - received

    while True:
        try:
            read(1)
        except StopIteration:
            break
    elapsed = time.monotonic() - started
    memory = sampler.stop()

    print(
        f"\n{received / MIB:.0f} MiB in {elapsed:.1f}s ({received / MIB / elapsed:.0f} MiB/s incl. "
        f"{STALL_SECONDS + 2:.0f}s of stalled/slow reading)\n"
        f"backend progress while the reader stalled {STALL_SECONDS:.0f}s: {run_ahead_during_stall / MIB:.1f} MiB; "
        f"writer ahead of reader: {run_ahead_of_reader / MIB:.1f} MiB at the stall, "
        f"{run_ahead_while_slow / MIB:.1f} MiB while slow\n"
        f"proxy memory: peak RSS (VmHWM) {memory.get('VmHWM', 0) / 1024:.1f} MiB, "
        f"max sampled RSS {sampler.max_rss_kib / 1024:.1f} MiB (during stall {rss_during_stall / 1024:.1f} MiB)"
    )
    assert received == TOTAL_BYTES
    assert record.completed
    assert run_ahead_of_reader < MAX_RUN_AHEAD, "a stalled reader did not stall the writer: something buffers"
    assert run_ahead_while_slow < MAX_RUN_AHEAD, "a slow reader did not slow the writer: something buffers"
    if memory:
        assert memory["VmHWM"] * 1024 < MAX_PROXY_PEAK_RSS, f"proxy peak RSS {memory['VmHWM'] / 1024:.0f} MiB"


def test_upload_to_a_stalled_backend_holds_the_client_back_then_arrives_intact(
    backend, proxy_factory, channel_factory
):
    proxy = proxy_factory.to(backend.address)
    sampler = MemorySampler(proxy)
    total = 256 * MIB
    pulled = 0
    digest = hashlib.sha256()

    def upload():
        nonlocal pulled
        for i in range(total // CHUNK):
            chunk = pattern(i % 16, CHUNK)
            digest.update(chunk)
            pulled += len(chunk)
            yield chunk

    collect = channel_factory(proxy.inbound()).stream_unary(method("Collect"))
    future = collect.future(upload(), metadata=[("x-itest-stall-seconds", str(STALL_SECONDS))], timeout=280)
    time.sleep(STALL_SECONDS - 0.5)
    pulled_during_stall = pulled
    summary = json.loads(future.result(timeout=280))
    memory = sampler.stop()
    print(
        f"\nclient had handed over {pulled_during_stall / MIB:.1f} MiB while the backend did not read; "
        f"proxy peak RSS {memory.get('VmHWM', 0) / 1024:.1f} MiB"
    )
    assert pulled_during_stall < MAX_RUN_AHEAD, "a backend that does not read did not hold the client back"
    assert summary == {"count": total // CHUNK, "bytes": total, "sha256": digest.hexdigest()}
    if memory:
        assert memory["VmHWM"] * 1024 < MAX_PROXY_PEAK_RSS, f"proxy peak RSS {memory['VmHWM'] / 1024:.0f} MiB"
