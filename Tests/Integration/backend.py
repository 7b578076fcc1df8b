"""A real gRPC test backend (grpcio, generic handlers over raw bytes; no protos).

Owns: the service `itest.Backend` whose methods exercise every gRPC call kind and the edge cases the proxy must
carry (metadata, trailers, error details, compression, deadlines, cancellation, large and slow streams), plus a
per-call record of what the backend observed, keyed by the `x-itest-call-id` request header.

Runs in-process (`Backend(...).start()`) or as a subprocess that tests can kill mid-stream:
`python backend.py --port P --name N` prints `READY <address>` once it serves.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
import time
import uuid
from concurrent import futures
from dataclasses import dataclass, field

import grpc

SERVICE = "itest.Backend"
CALL_ID_HEADER = "x-itest-call-id"
RESPONSE_COMPRESSION_HEADER = "x-itest-response-compression"
# Asks a handler with a request stream to find out whether that stream ended cleanly (client half-close) or
# because the call was cancelled; grpcio's request iterator ends quietly in both cases.
DETECT_HALF_CLOSE_HEADER = "x-itest-detect-half-close"
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.max_send_message_length", -1),
]
INITIAL_METADATA = (("x-itest-initial", "hello"), ("x-itest-initial-bin", b"\x00\x01\xfe\xff"))
TRAILING_METADATA = (("x-itest-trailer", "bye"), ("x-itest-trailer-bin", b"\xff\x00\x7f"))


def method(name: str) -> str:
    """The `:path` of a backend method."""
    return f"/{SERVICE}/{name}"


def pattern(index: int, size: int) -> bytes:
    """Deterministic message content: recognisable, and different per index so reordering is caught."""
    seed = f"msg{index:08d}|".encode()
    return (seed * (size // len(seed) + 1))[:size]


@dataclass
class CallRecord:
    """What the backend saw of one call."""

    call_id: str
    started: threading.Event = field(default_factory=threading.Event)
    terminated: threading.Event = field(default_factory=threading.Event)
    started_at: float = 0.0
    terminated_at: float = 0.0
    completed: bool = False
    metadata: list = field(default_factory=list)
    time_remaining: float | None = None
    sent_messages: int = 0
    sent_bytes: int = 0
    received_messages: int = 0
    received_bytes: int = 0
    request_half_closed: bool | None = None

    @property
    def cancelled(self) -> bool:
        """Terminated before the handler finished: the client cancelled, reset or timed out."""
        return self.terminated.is_set() and not self.completed


class Backend:
    """The in-process backend: a grpcio server on a free loopback port with the `itest.Backend` service."""

    def __init__(
        self,
        name: str = "backend",
        port: int = 0,
        max_workers: int = 64,
        credentials: grpc.ServerCredentials | None = None,
        options: tuple = (),
    ):
        """`credentials` (e.g. `grpc.ssl_server_credentials`) serve TLS instead of plain HTTP/2; `options` are more
        grpcio server options (e.g. `("grpc.max_concurrent_streams", 10)`). `max_workers` bounds the calls the
        backend runs at once: a held call (`Hold`) occupies a worker."""
        self.name = name
        self._records: dict[str, CallRecord] = {}
        self._lock = threading.Lock()
        # Set to let every `Hold` call finish.
        self.release_held = threading.Event()
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers), options=SERVER_OPTIONS + list(options)
        )
        self._server.add_generic_rpc_handlers((self._handlers(),))
        if credentials is None:
            bound = self._server.add_insecure_port(f"127.0.0.1:{port}")
        else:
            bound = self._server.add_secure_port(f"127.0.0.1:{port}", credentials)
        self.address = f"127.0.0.1:{bound}"
        self.call_count = 0

    # lifecycle ----------------------------------------------------------------------------------------------------

    def start(self) -> "Backend":
        self._server.start()
        return self

    def stop(self, grace: float | None = 0) -> None:
        self._server.stop(grace).wait(5)

    # records -----------------------------------------------------------------------------------------------------

    def record(self, call_id: str) -> CallRecord:
        with self._lock:
            if call_id not in self._records:
                self._records[call_id] = CallRecord(call_id)
            return self._records[call_id]

    def wait_started(self, call_id: str, timeout: float = 10) -> CallRecord:
        record = self.record(call_id)
        assert record.started.wait(timeout), f"backend never saw call {call_id} start"
        return record

    def _begin(self, context: grpc.ServicerContext) -> CallRecord:
        metadata = list(context.invocation_metadata())
        call_id = next((v for k, v in metadata if k == CALL_ID_HEADER), None) or str(uuid.uuid4())
        record = self.record(call_id)
        record.metadata = metadata
        record.time_remaining = context.time_remaining()
        record.started_at = time.monotonic()
        with self._lock:
            self.call_count += 1

        def on_termination():
            record.terminated_at = time.monotonic()
            record.terminated.set()

        context.add_callback(on_termination)
        if dict(metadata).get(RESPONSE_COMPRESSION_HEADER) == "gzip":
            context.set_compression(grpc.Compression.Gzip)
        record.started.set()
        return record

    def _note_end_of_requests(self, record: CallRecord, context) -> None:
        """With `x-itest-detect-half-close`: a call still active a second after its requests ended was half-closed."""
        if dict(record.metadata).get(DETECT_HALF_CLOSE_HEADER) != "1":
            return
        end = time.monotonic() + 1.0
        while context.is_active() and time.monotonic() < end:
            time.sleep(0.01)
        record.request_half_closed = context.is_active()

    # handlers ----------------------------------------------------------------------------------------------------

    def _handlers(self) -> grpc.GenericRpcHandler:
        unary = grpc.unary_unary_rpc_method_handler
        server_stream = grpc.unary_stream_rpc_method_handler
        client_stream = grpc.stream_unary_rpc_method_handler
        bidi = grpc.stream_stream_rpc_method_handler
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Echo": unary(self.echo),
                "Who": unary(self.who),
                "Inspect": unary(self.inspect),
                "Fail": unary(self.fail),
                "Sleep": unary(self.sleep),
                "Big": unary(self.big),
                "Repeat": server_stream(self.repeat),
                "FailStream": server_stream(self.fail_stream),
                "Forever": server_stream(self.forever),
                "Hold": server_stream(self.hold),
                "Volume": server_stream(self.volume),
                "Collect": client_stream(self.collect),
                "EchoStream": bidi(self.echo_stream),
            },
        )

    def echo(self, request: bytes, context) -> bytes:
        record = self._begin(context)
        record.received_messages, record.received_bytes = 1, len(request)
        record.completed = True
        return request

    def who(self, request: bytes, context) -> bytes:
        record = self._begin(context)
        record.completed = True
        return self.name.encode()

    def inspect(self, request: bytes, context) -> bytes:
        """Answers with the request metadata and deadline it saw; sends fixed initial metadata and trailers."""
        record = self._begin(context)
        context.send_initial_metadata(INITIAL_METADATA)
        context.set_trailing_metadata(TRAILING_METADATA)
        seen = [[k, v.hex() if isinstance(v, bytes) else v, isinstance(v, bytes)] for k, v in record.metadata]
        record.completed = True
        return json.dumps({"metadata": seen, "time_remaining": record.time_remaining}).encode()

    def fail(self, request: bytes, context) -> bytes:
        """Ends with the status, message, trailers and `grpc-status-details-bin` that the request names."""
        record = self._begin(context)
        spec = json.loads(request)
        trailers = [(k, bytes.fromhex(v) if k.endswith("-bin") else v) for k, v in spec.get("trailers", [])]
        if "details_hex" in spec:
            trailers.append(("grpc-status-details-bin", bytes.fromhex(spec["details_hex"])))
        context.set_trailing_metadata(trailers)
        context.set_code(getattr(grpc.StatusCode, spec["code"]))
        context.set_details(spec["message"])
        record.completed = True
        return b""

    def sleep(self, request: bytes, context) -> bytes:
        """Waits `seconds` (or until the call ends early), then answers `done`."""
        record = self._begin(context)
        seconds = json.loads(request)["seconds"]
        end = time.monotonic() + seconds
        while time.monotonic() < end and context.is_active():
            time.sleep(0.02)
        record.completed = context.is_active()
        return b"done"

    def big(self, request: bytes, context) -> bytes:
        record = self._begin(context)
        size = json.loads(request)["size"]
        record.completed = True
        return pattern(0, size)

    def repeat(self, request: bytes, context):
        """Server stream of `count` messages of `size` bytes each."""
        record = self._begin(context)
        spec = json.loads(request)
        for i in range(spec["count"]):
            if spec.get("interval"):
                time.sleep(spec["interval"])
            yield pattern(i, spec["size"])
            record.sent_messages += 1
        record.completed = True

    def fail_stream(self, request: bytes, context):
        """Sends `count` messages, then ends the stream with an error status and custom trailers."""
        record = self._begin(context)
        spec = json.loads(request)
        for i in range(spec["count"]):
            yield pattern(i, 100)
        context.set_trailing_metadata((("x-itest-trailer", "stream-failed"),))
        context.set_code(getattr(grpc.StatusCode, spec["code"]))
        context.set_details(spec["message"])
        record.completed = True

    def forever(self, request: bytes, context):
        """Streams a small message every 50 ms until the call is cancelled."""
        record = self._begin(context)
        i = 0
        while context.is_active():
            yield pattern(i, 64)
            record.sent_messages += 1
            i += 1
            time.sleep(0.05)

    def hold(self, request: bytes, context):
        """A long-lived call (a long poll, a replication stream): one message at once, so the client knows it is
        running, then nothing until `release_held` is set, then one more message and status OK."""
        record = self._begin(context)
        yield b"started"
        while not self.release_held.wait(0.05):
            if not context.is_active():
                return
        yield b"released"
        record.completed = True

    def volume(self, request: bytes, context):
        """Streams `total` bytes in `chunk`-sized messages; `sent_bytes` counts what the transport accepted."""
        record = self._begin(context)
        spec = json.loads(request)
        chunk = pattern(0, spec["chunk"])
        remaining = spec["total"]
        while remaining > 0 and context.is_active():
            piece = chunk if remaining >= len(chunk) else chunk[:remaining]
            yield piece
            record.sent_messages += 1
            record.sent_bytes += len(piece)
            remaining -= len(piece)
        record.completed = remaining == 0

    def collect(self, request_iterator, context) -> bytes:
        """Client stream: answers count, byte total and SHA-256 of everything received.

        Header `x-itest-stall-seconds` makes it wait before reading, to test backpressure towards the client.
        """
        record = self._begin(context)
        stall = float(dict(record.metadata).get("x-itest-stall-seconds", "0"))
        if stall:
            time.sleep(stall)
        digest = hashlib.sha256()
        for message in request_iterator:
            digest.update(message)
            record.received_messages += 1
            record.received_bytes += len(message)
        self._note_end_of_requests(record, context)
        record.completed = True
        return json.dumps(
            {"count": record.received_messages, "bytes": record.received_bytes, "sha256": digest.hexdigest()}
        ).encode()

    def echo_stream(self, request_iterator, context):
        record = self._begin(context)
        for message in request_iterator:
            record.received_messages += 1
            record.received_bytes += len(message)
            yield message
            record.sent_messages += 1
        self._note_end_of_requests(record, context)
        record.completed = True


def main() -> None:
    parser = argparse.ArgumentParser(description="itest gRPC backend")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default="subprocess-backend")
    args = parser.parse_args()
    backend = Backend(args.name, args.port).start()
    print(f"READY {backend.address}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
