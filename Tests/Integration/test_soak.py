"""A bounded load-and-fault run: mixed traffic through a mux pair in mutual TLS while the upstream is killed and
restarted and a mux session is cut, with a slow reader and a flooding client beside the healthy callers.

It reports, per fault, the calls that failed, how many of them were not in flight when it struck, and how long
calls took to succeed again; and the descriptors and resident memory of both proxies at the start and the end.
It fails when a call that started after a fault was over failed, when healthy traffic failed outside the faults,
or when descriptors or memory did not come back (a leak).

The suite runs it for S2S_SOAK_SECONDS (default 40 s); `scripts/soak [SECONDS]` runs it longer (default 180 s).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import threading
import time
from dataclasses import dataclass, field

import grpc
import h2.config
import h2.connection
import h2.exceptions
import pytest

from backend import method, pattern
from netutil import free_address, split_address, wait_for_port
from proxy_process import DIRECT, ClusterConnection
from test_mux import Relay, open_descriptors, wait_for_log
from test_tls import Certificates, certs  # noqa: F401 (a fixture)
from test_upstream_failures import SubprocessBackend

pytestmark = pytest.mark.skipif(DIRECT, reason="the soak run measures the proxy")

SOAK_SECONDS = float(os.environ.get("S2S_SOAK_SECONDS", "40"))
OUTAGE_SECONDS = 3.0


@dataclass
class Outcomes:
    """Every finished call or stream: (kind, started, ended, status name)."""

    records: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, started: float, status: str) -> None:
        with self.lock:
            self.records.append((kind, started, time.monotonic(), status))

    def between(self, start: float, end: float, kinds=("unary", "stream")) -> list:
        with self.lock:
            return [r for r in self.records if r[0] in kinds and start <= r[1] < end]


def unary_load(address: str, outcomes: Outcomes, stop: threading.Event) -> None:
    with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        echo = channel.unary_unary(method("Echo"))
        payload = pattern(1, 100)
        while not stop.is_set():
            started = time.monotonic()
            try:
                assert echo(payload, timeout=5) == payload
                outcomes.add("unary", started, "OK")
            except grpc.RpcError as error:
                outcomes.add("unary", started, error.code().name)
                time.sleep(0.05)


def stream_load(address: str, outcomes: Outcomes, stop: threading.Event) -> None:
    """Bidi streams of 200 messages of 1 KiB each, every echo checked."""
    with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        echo_stream = channel.stream_stream(method("EchoStream"))
        while not stop.is_set():
            started = time.monotonic()
            messages = [pattern(i, 1024) for i in range(200)]
            try:
                replies = list(echo_stream(iter(messages), timeout=10))
                outcomes.add("stream", started, "OK" if replies == messages else "CORRUPT")
            except grpc.RpcError as error:
                outcomes.add("stream", started, error.code().name)
                time.sleep(0.05)


def slow_reader(address: str, outcomes: Outcomes, stop: threading.Event) -> None:
    """Streams of 16 MiB read slowly: it may only slow itself."""
    with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        volume = channel.unary_stream(method("Volume"))
        while not stop.is_set():
            started = time.monotonic()
            try:
                for _ in volume(json.dumps({"total": 16 << 20, "chunk": 64 << 10}).encode(), timeout=120):
                    if stop.is_set():
                        break
                    time.sleep(0.01)
                outcomes.add("slow", started, "OK")
            except grpc.RpcError as error:
                outcomes.add("slow", started, error.code().name)
                time.sleep(0.2)


def flood_client(address: str, stop, counter) -> None:
    """Opens streams and resets them at once (the "rapid reset" pattern), reconnecting whenever the proxy closes
    the connection; reads and drops whatever comes back. Runs in a process of its own (`stop` and `counter` are
    multiprocessing objects), so that it competes with the healthy callers for the proxy, not for this process."""
    headers = [(":method", "POST"), (":scheme", "http"), (":path", method("Echo")), (":authority", "flood"),
               ("content-type", "application/grpc"), ("te", "trailers")]  # fmt: skip
    while not stop.is_set():
        try:
            sock = socket.create_connection(split_address(address), timeout=5)
        except OSError:
            time.sleep(0.1)
            continue
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        closed = threading.Event()

        def drain() -> None:
            try:
                while sock.recv(65536):
                    pass
            except OSError:
                pass
            closed.set()

        threading.Thread(target=drain, daemon=True).start()
        try:
            sock.sendall(conn.data_to_send())
            while not stop.is_set() and not closed.is_set():
                for _ in range(50):
                    stream = conn.get_next_available_stream_id()
                    conn.send_headers(stream, headers)
                    conn.reset_stream(stream)
                sock.sendall(conn.data_to_send())
                with counter.get_lock():
                    counter.value += 50
                time.sleep(0.005)
        except (OSError, h2.exceptions.H2Error):
            pass
        finally:
            sock.close()


def rss_kib(proxy) -> int:
    return proxy.memory_kib()["VmRSS"]


def test_soak_mixed_traffic_through_a_tls_mux_pair_survives_faults_without_loss_or_leak(proxy_factory, certs):
    backend_address = free_address()
    backend = SubprocessBackend(backend_address)
    mux_address = free_address()
    server_side = proxy_factory.start([ClusterConnection(
        "soak", local_upstream=backend_address, remote_upstream="", mux="mux-server", mux_address=mux_address,
        mux_count=4, mux_tls=certs.server_block(),
    )], log_level=os.environ.get("S2S_SOAK_SERVER_LOG", "warning"))  # fmt: skip
    relay = Relay(mux_address)
    client_side = proxy_factory.start([ClusterConnection(
        "soak", local_upstream=backend_address, remote_upstream="", mux="mux-client", mux_address=relay.address,
        mux_count=4, mux_tls=certs.client_block(),
    )], log_level="info")  # fmt: skip
    wait_for_log(client_side, "mux session established", 4)
    address = client_side.outbound()
    warm = grpc.insecure_channel(address).unary_unary(method("Echo"))
    assert warm(b"warm", timeout=30) == b"warm"
    time.sleep(1)
    start = {"client fds": open_descriptors(client_side), "server fds": open_descriptors(server_side),
             "client RSS MiB": rss_kib(client_side) // 1024, "server RSS MiB": rss_kib(server_side) // 1024}

    outcomes = Outcomes()
    stop = threading.Event()
    spawn = multiprocessing.get_context("spawn")
    flood_stop, flooded = spawn.Event(), spawn.Value("l", 0)
    flood = spawn.Process(target=flood_client, args=(address, flood_stop, flooded), daemon=True)
    threads = [threading.Thread(target=unary_load, args=(address, outcomes, stop)) for _ in range(6)]
    threads += [threading.Thread(target=stream_load, args=(address, outcomes, stop)) for _ in range(2)]
    threads += [threading.Thread(target=slow_reader, args=(address, outcomes, stop))]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    if os.environ.get("S2S_SOAK_FLOOD", "1") == "1":
        flood.start()
    faults = {}
    try:
        # Fault 1: the upstream dies and comes back on the same address.
        time.sleep(SOAK_SECONDS * 0.25)
        killed = time.monotonic()
        backend.kill()
        time.sleep(OUTAGE_SECONDS)
        backend = SubprocessBackend(backend_address)
        assert wait_for_port(backend_address, 10)
        faults["upstream restart"] = (killed, time.monotonic())
        # Fault 2: one mux session's TCP connection is reset.
        time.sleep(max(1.0, SOAK_SECONDS * 0.6 - (time.monotonic() - began)))
        cut = time.monotonic()
        relay.cut_one()
        faults["mux session cut"] = (cut, cut)
        time.sleep(max(2.0, SOAK_SECONDS - (time.monotonic() - began)))
    finally:
        stop.set()
        flood_stop.set()
        for thread in threads:
            thread.join(30)
        if flood.is_alive() or flood.exitcode is not None:
            flood.join(10)
    ended = time.monotonic()

    lines = [f"\nsoak: {ended - began:.0f} s, {len(outcomes.records)} calls and streams, "
             f"{flooded.value} flood streams opened and reset, "
             f"{client_side.log(None).count('a rapid-reset flood')} flood connections closed"]  # fmt: skip
    problems = []
    fault_list = list(faults.items())
    for index, (name, (struck, repaired)) in enumerate(fault_list):
        # Each fault's account ends where the next fault begins.
        until = fault_list[index + 1][1][0] if index + 1 < len(fault_list) else ended + 60
        during = outcomes.between(struck - 10, until)
        failed = [r for r in during if r[3] != "OK" and struck <= r[2] < until]
        # In flight when it struck: started before, ended after. Started while the upstream was down: expected to
        # fail (at once). Started after the repair: must not fail.
        in_flight = [r for r in failed if r[1] < struck]
        while_down = [r for r in failed if struck <= r[1] < repaired]
        recovering = [r for r in failed if repaired <= r[1] < repaired + 1.0]
        after = [r for r in failed if r[1] >= repaired + 1.0]
        successes = sorted(r[2] for r in outcomes.between(repaired, until) if r[3] == "OK")
        recovery = (successes[0] - repaired) if successes else float("inf")
        lines.append(f"  {name}: {len(failed)} failed ({len(in_flight)} in flight, {len(while_down)} started while "
                     f"down, {len(recovering)} in the second after, {len(after)} later), first success {recovery * 1000:.0f} ms after the repair, "
                     f"statuses {sorted({r[3] for r in failed})}")  # fmt: skip
        for kind, started, finished, status in after:
            lines.append(f"    after: {kind} started {started - repaired:.2f}s after the repair, {status} after "
                         f"{finished - started:.2f}s")  # fmt: skip
        # A call that starts after a fault is over should not fail; a stray one right after a fault is reported,
        # more than that fails the run.
        window = outcomes.between(repaired + 1.0, until)
        if len(after) > max(2, len(window) // 100):
            problems.append(f"{name}: {len(after)} calls that started after it was over failed: {after[:5]}")
        if recovery > 2:
            problems.append(f"{name}: calls succeeded again only {recovery:.1f}s after the repair")
    fault_windows = [(struck - 0.5, repaired + 1.0) for struck, repaired in faults.values()]
    calm = [r for r in outcomes.between(began, ended) if not any(a <= r[1] <= b or a <= r[2] <= b for a, b in fault_windows)]
    calm_failures = [r for r in calm if r[3] != "OK"]
    slow = [r for r in outcomes.records if r[0] == "slow"]
    lines.append(f"  outside the faults: {len(calm)} calls and streams, {len(calm_failures)} failed; slow reader: "
                 f"{sum(1 for r in slow if r[3] == 'OK')} of {len(slow)} 16 MiB streams read")  # fmt: skip
    if calm_failures:
        problems.append(f"{len(calm_failures)} calls failed outside the faults: {calm_failures[:5]}")
    if len([r for r in calm if r[3] == "OK"]) < 100:
        problems.append("too little traffic went through to prove anything")

    # Leaks: once the load is gone, descriptors and memory come back.
    def settled() -> dict:
        return {"client fds": open_descriptors(client_side), "server fds": open_descriptors(server_side),
                "client RSS MiB": rss_kib(client_side) // 1024, "server RSS MiB": rss_kib(server_side) // 1024}

    deadline = time.monotonic() + 20
    end = settled()
    # Descriptors: the cut session was replaced; upstream connections are per event loop (one of slack each side).
    while not (end["client fds"] <= start["client fds"] + 1 and end["server fds"] <= start["server fds"] + 2
               and end["client RSS MiB"] <= start["client RSS MiB"] + 48
               and end["server RSS MiB"] <= start["server RSS MiB"] + 48) and time.monotonic() < deadline:  # fmt: skip
        time.sleep(0.5)
        end = settled()
    lines.append("  " + ", ".join(f"{key} {start[key]} -> {end[key]}" for key in start))
    print("\n".join(lines))
    if end["client fds"] > start["client fds"] + 1 or end["server fds"] > start["server fds"] + 2:
        problems.append(f"descriptors leaked: {start} -> {end}")
    if end["client RSS MiB"] > start["client RSS MiB"] + 48 or end["server RSS MiB"] > start["server RSS MiB"] + 48:
        problems.append(f"memory did not come back: {start} -> {end}")
    relay.close()
    backend.kill()
    assert not problems, "\n".join(problems) + "\n" + "\n".join(lines)
