"""RFC 9113 conformance of the proxy's downstream listener, frame by frame over a real socket.

The cases are those of the h2spec "http2" suite that apply to a server which only carries gRPC, each written here
from the RFC; every test names the section it checks. The client is hand-made (`H2Wire`): it sends exactly the bytes
a case needs, however wrong, and reads the proxy's answer frame by frame, so that a stream error (RST_STREAM) and a
connection error (GOAWAY, then close) are told apart. Where the RFC lets the receiver choose between the two, both
are accepted; where it names one, only that one is.

One proxy serves the whole module, with three cluster connections: `grpc` forwards to a grpcio backend (calls that
get answered), `silent` to an HTTP/2 server that accepts every stream and never answers (streams that stay open as
long as a case needs), `stingy` to one that also never grants flow-control window. Every test opens connections of
its own, and ends by checking that the proxy still runs.

Where the RFC allows a stream or a connection error, either passes, as in h2spec.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Callable, NamedTuple

import hpack
import pytest

from backend import Backend, method
from netutil import split_address
from proxy_process import ClusterConnection, ProxyProcess

# How long an answer that must come may take, and how long silence must last to count as "nothing came".
ANSWER_SECONDS = 3.0
QUIET_SECONDS = 0.3

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
FRAME_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY",
               "WINDOW_UPDATE", "CONTINUATION"]  # fmt: skip
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 0x5, 0x6, 0x7, 0x8, 0x9
ERROR_NAMES = {0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR", 0x3: "FLOW_CONTROL_ERROR",
               0x4: "SETTINGS_TIMEOUT", 0x5: "STREAM_CLOSED", 0x6: "FRAME_SIZE_ERROR", 0x7: "REFUSED_STREAM",
               0x8: "CANCEL", 0x9: "COMPRESSION_ERROR", 0xB: "ENHANCE_YOUR_CALM"}  # fmt: skip

HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE = 0x1, 0x2, 0x3, 0x4, 0x5

MAX_WINDOW = 2**31 - 1
DEFAULT_MAX_FRAME = 16_384


# Encoding -----------------------------------------------------------------------------------------------------------


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def settings_frame(settings: list[tuple[int, int]] | None = None) -> bytes:
    return frame(SETTINGS, 0, 0, b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in settings or []))


def window_update(stream: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream, increment.to_bytes(4, "big"))


def rst_stream(stream: int, code: int) -> bytes:
    return frame(RST_STREAM, 0, stream, code.to_bytes(4, "big"))


def priority(stream: int, depends_on: int, weight: int = 15) -> bytes:
    return frame(PRIORITY, 0, stream, depends_on.to_bytes(4, "big") + bytes([weight]))


def hpack_integer(value: int, prefix_bits: int, first_byte: int = 0) -> bytes:
    """An HPACK integer (RFC 7541 5.1) whose first byte carries `first_byte`'s high bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = [first_byte | limit]
    value -= limit
    while value >= 128:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name: str | bytes, value: str | bytes) -> bytes:
    """HPACK "literal without indexing, new name": neither side's dynamic table changes, so a block the proxy drops
    halfway leaves nothing out of step, and any name (upper case, pseudo, empty) goes on the wire as it is."""
    name = name.encode() if isinstance(name, str) else name
    value = value.encode() if isinstance(value, str) else value
    return b"\x00" + hpack_integer(len(name), 7) + name + hpack_integer(len(value), 7) + value


def header_block(fields: list[tuple[str, str]]) -> bytes:
    return b"".join(literal(name, value) for name, value in fields)


def grpc_request(path: str = method("Echo"), extra: list[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    return [
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "conformance"),
        ("content-type", "application/grpc"), ("te", "trailers"), *extra,
    ]  # fmt: skip


def grpc_message(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def headers_frame(stream: int, fields: list[tuple[str, str]], end_stream: bool = False) -> bytes:
    return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream, header_block(fields))


def data_frame(stream: int, payload: bytes, end_stream: bool = False) -> bytes:
    return frame(DATA, END_STREAM if end_stream else 0, stream, payload)


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while not predicate() and time.monotonic() < end:
        time.sleep(0.02)
    return predicate()


def error_name(code: int) -> str:
    return ERROR_NAMES.get(code, f"0x{code:x}")


# The client ---------------------------------------------------------------------------------------------------------


class Frame(NamedTuple):
    kind: int
    flags: int
    stream: int
    payload: bytes
    # A header block's fields (HEADERS, joined with its CONTINUATION frames), decoded.
    fields: list | None = None

    @property
    def code(self) -> int:
        """The error code of RST_STREAM or GOAWAY."""
        return int.from_bytes(self.payload[:4] if self.kind == RST_STREAM else self.payload[4:8], "big")

    def __repr__(self) -> str:
        name = FRAME_NAMES[self.kind] if self.kind < len(FRAME_NAMES) else f"type 0x{self.kind:x}"
        detail = ""
        if self.kind in (RST_STREAM, GOAWAY):
            detail = f" {error_name(self.code)}"
            if self.kind == GOAWAY and len(self.payload) > 8:
                detail += f" {self.payload[8:].decode(errors='replace')!r}"
        elif self.fields is not None:
            detail = f" {self.fields}"
        return f"{name}(stream {self.stream}, flags 0x{self.flags:x}, {len(self.payload)} bytes{detail})"


CLOSED = Frame(-1, 0, 0, b"")


class H2Wire:
    """A raw HTTP/2 client connection: writes whatever bytes it is given, reads the proxy's frames one at a time.

    It acknowledges the proxy's SETTINGS by itself and keeps an HPACK decoder in step with every header block the
    proxy sends; everything else is up to the test.
    """

    def __init__(self, address: str, settings: list[tuple[int, int]] | None = None, handshake: bool = True):
        self.sock = socket.create_connection(split_address(address), timeout=ANSWER_SECONDS)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.inbox = b""
        self.decoder = hpack.Decoder()
        self.server_settings: dict[int, int] = {}
        self.settings_acks = 0
        self.received: list[Frame] = []
        self.closed = False
        self._block: tuple[int, int, bytearray] | None = None
        if handshake:
            self.send(PREFACE + settings_frame(settings))
            first = self.next_frame(ANSWER_SECONDS)
            # RFC 9113 3.4: the server's preface is a SETTINGS frame, the first frame it sends.
            assert first is not None and first is not CLOSED, f"no server preface: {first}"
            assert first.kind == SETTINGS and not first.flags & ACK, f"the server's first frame is {first}"

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, *chunks: bytes) -> None:
        try:
            self.sock.sendall(b"".join(chunks))
        except OSError:
            # The proxy may have closed the connection already (that is what some cases expect); reading says so.
            pass

    # Reading --------------------------------------------------------------------------------------------------

    def next_frame(self, timeout: float) -> Frame | None:
        """The next frame, CLOSED once the connection ended and every frame before was read, None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            taken = self._take()
            if taken is not None:
                noted = self._note(taken)
                if noted is not None:
                    return noted
                continue
            if self.closed:
                return CLOSED
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                return None
            except OSError:
                data = b""
            if not data:
                self.closed = True
            self.inbox += data

    def _take(self) -> Frame | None:
        if len(self.inbox) < 9:
            return None
        length = int.from_bytes(self.inbox[:3], "big")
        if len(self.inbox) < 9 + length:
            return None
        head, payload = self.inbox[:9], self.inbox[9 : 9 + length]
        self.inbox = self.inbox[9 + length :]
        return Frame(head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFF_FFFF, payload)

    def _note(self, f: Frame) -> Frame | None:
        """Bookkeeping of a frame read; None for a header block fragment that more CONTINUATION frames complete."""
        if f.kind == SETTINGS:
            if f.flags & ACK:
                self.settings_acks += 1
            else:
                for i in range(0, len(f.payload), 6):
                    self.server_settings[int.from_bytes(f.payload[i : i + 2], "big")] = int.from_bytes(
                        f.payload[i + 2 : i + 6], "big"
                    )
                self.send(frame(SETTINGS, ACK, 0))
        elif f.kind in (HEADERS, CONTINUATION):
            if f.kind == HEADERS:
                fragment = f.payload
                if f.flags & PADDED:
                    fragment = fragment[1 : len(fragment) - fragment[0]]
                if f.flags & PRIORITY_FLAG:
                    fragment = fragment[5:]
                self._block = (f.stream, f.flags, bytearray(fragment))
            else:
                assert self._block is not None, f"the proxy sent CONTINUATION without HEADERS: {f}"
                self._block[2].extend(f.payload)
            if not f.flags & END_HEADERS:
                return None
            stream, flags, block = self._block
            self._block = None
            f = Frame(HEADERS, flags | END_HEADERS, stream, bytes(block), self.decoder.decode(bytes(block)))
        self.received.append(f)
        return f

    def wait_for(self, match: Callable[[Frame], bool], what: str, timeout: float = ANSWER_SECONDS) -> Frame:
        """Reads until a frame `match`es and returns it. Fails on a GOAWAY `match` does not take, on the connection's
        end and on timeout, naming what came meanwhile."""
        deadline = time.monotonic() + timeout
        seen: list[Frame] = []
        while True:
            f = self.next_frame(max(0.0, deadline - time.monotonic()))
            if f is None:
                pytest.fail(f"no {what} within {timeout}s; the proxy sent {seen}")
            if f is CLOSED:
                pytest.fail(f"the proxy closed the connection before {what}; it sent {seen}")
            if match(f):
                return f
            seen.append(f)
            if f.kind == GOAWAY:
                pytest.fail(f"GOAWAY instead of {what}: {f}; before it: {seen[:-1]}")

    # What the RFC says the proxy answers -----------------------------------------------------------------------

    def expect_connection_error(self, *codes: int) -> None:
        """A connection error (RFC 9113 5.4.1): GOAWAY with one of `codes`, then the connection closes."""
        goaway = self.wait_for(lambda f: f.kind == GOAWAY, f"GOAWAY({'/'.join(map(error_name, codes))})")
        assert goaway.code in codes, f"GOAWAY {error_name(goaway.code)}, expected {'/'.join(map(error_name, codes))}"
        self.expect_closed()

    def expect_closed(self) -> None:
        deadline = time.monotonic() + ANSWER_SECONDS
        while (f := self.next_frame(max(0.0, deadline - time.monotonic()))) is not CLOSED:
            assert f is not None, "the proxy did not close the connection"

    def expect_stream_error(self, stream: int, *codes: int, or_connection_error: bool = False) -> str:
        """A stream error (RFC 9113 5.4.2): RST_STREAM on `stream` with one of `codes`. With `or_connection_error`,
        where the RFC leaves the choice to the receiver, a GOAWAY with one of them passes too. Returns which."""
        wanted = "/".join(map(error_name, codes))
        f = self.wait_for(
            lambda f: (f.kind == RST_STREAM and f.stream == stream) or (f.kind == GOAWAY and or_connection_error),
            f"RST_STREAM({wanted}) on stream {stream}",
        )
        if f.kind == GOAWAY:
            assert f.code in codes, f"GOAWAY {error_name(f.code)}, expected {wanted}"
            self.expect_closed()
            return "connection"
        assert f.code in codes, f"RST_STREAM {error_name(f.code)} on stream {stream}, expected {wanted}"
        return "stream"

    def expect_alive(self) -> None:
        """The connection still works: a PING is answered with its payload (RFC 9113 6.7), and no GOAWAY came."""
        opaque = os.urandom(8)
        self.send(frame(PING, 0, 0, opaque))
        self.wait_for(lambda f: f.kind == PING and f.flags & ACK and f.payload == opaque, "the PING's answer")
        assert not [f for f in self.received if f.kind == GOAWAY], f"GOAWAY: {self.received}"

    def expect_quiet_on(self, stream: int, seconds: float = QUIET_SECONDS) -> None:
        """Nothing ends `stream` and no GOAWAY comes for `seconds`."""
        deadline = time.monotonic() + seconds
        while (f := self.next_frame(max(0.0, deadline - time.monotonic()))) is not None:
            assert f is not CLOSED, "the proxy closed the connection"
            assert f.kind != GOAWAY, f"GOAWAY: {f}"
            assert not (f.kind == RST_STREAM and f.stream == stream), f"stream {stream} was reset: {f}"

    def wait_settings_ack(self, count: int = 1) -> None:
        """Waits until the proxy acknowledged `count` SETTINGS frames of ours in all."""
        if self.settings_acks < count:
            self.wait_for(lambda f: f.kind == SETTINGS and f.flags & ACK and self.settings_acks >= count,
                          "SETTINGS ACK")  # fmt: skip

    # Calls ------------------------------------------------------------------------------------------------------

    def echo(self, stream: int, payload: bytes = b"hello") -> None:
        """Sends a whole `Echo` call on `stream`."""
        self.send(headers_frame(stream, grpc_request()), data_frame(stream, grpc_message(payload), end_stream=True))

    def response(self, stream: int, grant_window: bool = True) -> "Response":
        """Reads `stream`'s response to its end (END_STREAM or RST_STREAM). With `grant_window` every DATA frame's
        bytes are given back to the proxy at once."""
        result = Response()
        while True:
            f = self.wait_for(lambda f: f.stream == stream and f.kind in (HEADERS, DATA, RST_STREAM),
                              f"the response on stream {stream}")  # fmt: skip
            if f.kind == RST_STREAM:
                result.reset = f.code
                return result
            if f.kind == HEADERS:
                if result.headers is None:
                    result.headers = dict(f.fields)
                else:
                    result.trailers = dict(f.fields)
            else:
                result.data += f.payload
                result.data_frames.append(len(f.payload))
                if grant_window and f.payload:
                    self.send(window_update(0, len(f.payload)), window_update(stream, len(f.payload)))
            if f.flags & END_STREAM:
                return result

    def expect_echo(self, stream: int, payload: bytes = b"hello") -> None:
        answer = self.response(stream)
        assert answer.reset is None, f"stream {stream} was reset: {error_name(answer.reset)}"
        assert answer.status == "0", f"stream {stream}: {answer}"
        assert answer.data == grpc_message(payload), f"stream {stream}: {answer}"


class Response:
    def __init__(self):
        self.headers: dict | None = None
        self.trailers: dict | None = None
        self.data = b""
        self.data_frames: list[int] = []
        self.reset: int | None = None

    @property
    def status(self) -> str | None:
        """grpc-status, from the trailers (or from a trailers-only response's headers)."""
        return (self.trailers or self.headers or {}).get("grpc-status")

    def __repr__(self) -> str:
        return (f"Response(headers={self.headers}, data={self.data[:40]!r}, trailers={self.trailers}, "
                f"reset={self.reset})")


# An upstream that never answers ----------------------------------------------------------------------------------


class SilentUpstream:
    """An HTTP/2 server that takes every stream and answers none: the proxy's streams to it stay open.

    It speaks only as much HTTP/2 as keeps the proxy's connection to it healthy: an empty SETTINGS (no stream limit),
    acknowledgements of SETTINGS and PING, and (with `grant_window`) window for every DATA byte.
    """

    def __init__(self, grant_window: bool = True):
        self.grant_window = grant_window
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._headers_received = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def headers_received(self) -> int:
        """HEADERS frames received so far, over all connections: each opens one forwarded stream."""
        with self._lock:
            return self._headers_received

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        buffer = b""
        preface_left = len(PREFACE)
        try:
            connection.sendall(settings_frame())
            while data := connection.recv(1 << 16):
                buffer += data
                if preface_left:
                    cut = min(preface_left, len(buffer))
                    buffer, preface_left = buffer[cut:], preface_left - cut
                answers = b""
                offset = 0
                while len(buffer) - offset >= 9:
                    length = int.from_bytes(buffer[offset : offset + 3], "big")
                    if len(buffer) - offset < 9 + length:
                        break
                    kind, flags = buffer[offset + 3], buffer[offset + 4]
                    stream = int.from_bytes(buffer[offset + 5 : offset + 9], "big")
                    payload = buffer[offset + 9 : offset + 9 + length]
                    offset += 9 + length
                    if kind == SETTINGS and not flags & ACK:
                        answers += frame(SETTINGS, ACK, 0)
                    elif kind == PING and not flags & ACK:
                        answers += frame(PING, ACK, 0, payload)
                    elif kind == DATA and length and self.grant_window:
                        answers += window_update(0, length) + window_update(stream, length)
                    elif kind == HEADERS:
                        with self._lock:
                            self._headers_received += 1
                buffer = buffer[offset:]
                if answers:
                    connection.sendall(answers)
        except OSError:
            pass
        finally:
            connection.close()

    def close(self) -> None:
        self._listener.close()
        for connection in list(self._connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# Fixtures: one proxy for the module -------------------------------------------------------------------------------

# Requests above this size end their call in the proxy (RESOURCE_EXHAUSTED, then RST_STREAM(NO_ERROR)).
MAX_MESSAGE_BYTES = 1 << 20


@pytest.fixture(scope="module")
def conformance_backend():
    server = Backend("conformance", max_workers=32).start()
    yield server
    server.release_held.set()
    server.stop()


@pytest.fixture(scope="module")
def silent_upstream():
    upstream = SilentUpstream()
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def stingy_upstream():
    upstream = SilentUpstream(grant_window=False)
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def conformance_proxy(conformance_backend, silent_upstream, stingy_upstream, tmp_path_factory):
    proxy = ProxyProcess(
        tmp_path_factory.mktemp("h2-conformance"),
        [
            ClusterConnection("grpc", conformance_backend.address, conformance_backend.address),
            ClusterConnection("silent", silent_upstream.address, silent_upstream.address),
            ClusterConnection("stingy", stingy_upstream.address, stingy_upstream.address),
        ],
        max_message_bytes=MAX_MESSAGE_BYTES,
        drain_timeout_seconds=1,
        label="conformance-proxy",
    )
    proxy.require_process()
    try:
        yield proxy.start()
    finally:
        proxy.stop()


@pytest.fixture
def proxy(request, conformance_proxy):
    """The module's proxy, its log attached to a failing test's report; it must outlive every test."""
    request.node.itest_proxies = [conformance_proxy]
    assert conformance_proxy.alive(), "the proxy exited during an earlier test"
    yield conformance_proxy
    assert conformance_proxy.alive(), "the proxy exited during this test"


@pytest.fixture
def wires(proxy):
    """Opens client connections to a listener (`grpc`, `silent` or `stingy`), closed at teardown."""
    opened: list[H2Wire] = []

    def connect(listener: str = "grpc", **options) -> H2Wire:
        wire = H2Wire(proxy.outbound(listener), **options)
        opened.append(wire)
        return wire

    yield connect
    for wire in opened:
        wire.close()


@pytest.fixture
def grpc(wires) -> H2Wire:
    """A connection to the listener that forwards to the backend, past its handshake."""
    return wires("grpc")


@pytest.fixture
def silent(wires) -> H2Wire:
    """A connection to the listener whose upstream never answers, past its handshake."""
    return wires("silent")


# 3.4 Connection preface -------------------------------------------------------------------------------------------


def test_the_server_preface_is_a_settings_frame_and_acknowledges_the_clients(grpc):
    """RFC 9113 3.4, 6.5.3: the server's first frame is SETTINGS (checked by the handshake); it acknowledges the
    client's SETTINGS, and announces no push and its stream limit."""
    grpc.wait_settings_ack()
    assert grpc.server_settings.get(ENABLE_PUSH) == 0
    assert grpc.server_settings.get(MAX_CONCURRENT_STREAMS, 0) > 0
    grpc.expect_alive()


def test_an_invalid_connection_preface_ends_the_connection(wires):
    """RFC 9113 3.4: a preface that is not the client preface is a connection error PROTOCOL_ERROR (the GOAWAY may
    be left out, 5.4.1, but the connection must close)."""
    wire = wires(handshake=False)
    wire.send(b"INVALID CONNECTION PREFACE\r\n\r\n")
    frames = []
    while (f := wire.next_frame(ANSWER_SECONDS)) is not CLOSED:
        assert f is not None, f"the connection stayed open; the proxy sent {frames}"
        frames.append(f)
    goaways = [f for f in frames if f.kind == GOAWAY]
    assert all(f.code == PROTOCOL_ERROR for f in goaways), frames


def test_a_first_frame_other_than_settings_ends_the_connection(wires):
    """RFC 9113 3.4: the client preface is the magic string followed by a SETTINGS frame; anything else there is a
    connection error PROTOCOL_ERROR."""
    wire = wires(handshake=False)
    wire.send(PREFACE + frame(PING, 0, 0, bytes(8)))
    wire.expect_connection_error(PROTOCOL_ERROR)


# 4.1 Frame format, 5.5 Extending HTTP/2 ------------------------------------------------------------------------------


def test_frames_of_unknown_type_are_ignored(grpc):
    """RFC 9113 4.1, 5.5: a frame of an unknown type is ignored and discarded, on the connection or on a stream."""
    grpc.send(frame(0x16, 0, 0, bytes(8)), frame(0xFA, 0xFF, 1, b"extension"))
    grpc.expect_alive()
    grpc.echo(1)
    grpc.expect_echo(1)


def test_an_unknown_frame_inside_a_header_block_is_a_connection_error(grpc):
    """RFC 9113 5.5, 6.10: a header block must be contiguous; not even an extension frame may come between HEADERS
    and its CONTINUATION: connection error PROTOCOL_ERROR."""
    block = header_block(grpc_request())
    grpc.send(frame(HEADERS, 0, 1, block[:10]), frame(0x16, 0, 0, bytes(8)),
              frame(CONTINUATION, END_HEADERS, 1, block[10:]))  # fmt: skip
    grpc.expect_connection_error(PROTOCOL_ERROR)


def test_undefined_flags_are_ignored(grpc):
    """RFC 9113 4.1: flags a frame type does not define are ignored (here on PING, DATA and HEADERS)."""
    opaque = b"flags!!!"
    grpc.send(frame(PING, 0x16 | 0xC0, 0, opaque))
    grpc.wait_for(lambda f: f.kind == PING and f.flags & ACK and f.payload == opaque, "the PING's answer")
    grpc.send(frame(HEADERS, END_HEADERS | 0x2 | 0x40, 1, header_block(grpc_request())),
              frame(DATA, END_STREAM | 0x2 | 0x4 | 0x40, 1, grpc_message(b"hello")))  # fmt: skip
    grpc.expect_echo(1)


def test_the_reserved_bit_of_the_stream_id_is_ignored(grpc):
    """RFC 9113 4.1: the reserved bit of the stream identifier is ignored: a PING with it set is still on stream 0."""
    opaque = b"reserved"
    grpc.send(b"\x00\x00\x08\x06\x00\x80\x00\x00\x00" + opaque)
    grpc.wait_for(lambda f: f.kind == PING and f.flags & ACK and f.payload == opaque, "the PING's answer")


# 4.2 Frame size --------------------------------------------------------------------------------------------------


def test_a_data_frame_of_the_full_default_size_is_accepted(grpc):
    """RFC 9113 4.2: every endpoint takes frames of up to 2^14 octets."""
    payload = b"x" * (DEFAULT_MAX_FRAME - 5)
    grpc.send(headers_frame(1, grpc_request()), data_frame(1, grpc_message(payload), end_stream=True))
    grpc.expect_echo(1, payload)


def test_a_data_frame_larger_than_max_frame_size_is_a_frame_size_error(grpc):
    """RFC 9113 4.2: a frame above SETTINGS_MAX_FRAME_SIZE is FRAME_SIZE_ERROR (of the stream or the connection)."""
    grpc.send(headers_frame(1, grpc_request()), data_frame(1, b"x" * (DEFAULT_MAX_FRAME + 1), end_stream=True))
    grpc.expect_stream_error(1, FRAME_SIZE_ERROR, or_connection_error=True)


def test_a_headers_frame_larger_than_max_frame_size_is_a_connection_error(grpc):
    """RFC 9113 4.2: a frame that can change the connection's state (a header block, which HPACK reads) above
    SETTINGS_MAX_FRAME_SIZE is a connection error FRAME_SIZE_ERROR."""
    fields = grpc_request() + [(f"x-filler-{i}", "v" * 100) for i in range(160)]
    block = header_block(fields)
    assert len(block) > DEFAULT_MAX_FRAME
    grpc.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
    grpc.expect_connection_error(FRAME_SIZE_ERROR)


def test_the_proxy_sends_no_frame_above_the_clients_max_frame_size(grpc):
    """RFC 9113 4.2: an endpoint never sends a frame larger than the peer's SETTINGS_MAX_FRAME_SIZE (the default
    here): a 40 000-byte response arrives in DATA frames of at most 2^14 octets."""
    grpc.send(headers_frame(1, grpc_request(method("Big"))),
              data_frame(1, grpc_message(b'{"size": 40000}'), end_stream=True))  # fmt: skip
    answer = grpc.response(1)
    assert answer.status == "0", answer
    assert len(answer.data) == 40_005
    assert max(answer.data_frames) <= DEFAULT_MAX_FRAME, answer.data_frames


# 4.3 Field section compression --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(b"\x40", id="truncated-literal"),
        pytest.param(b"\xbe", id="index-beyond-the-tables"),
        pytest.param(b"\x3f\xe1\x26", id="table-size-above-the-setting"),
    ],
)
def test_a_header_block_hpack_cannot_decode_is_a_compression_error(grpc, block):
    """RFC 9113 4.3 (RFC 7541 2.3.3, 4.2, 6.3): a header block that does not decode - cut short, referring to an index
    beyond both tables, or resizing the dynamic table above SETTINGS_HEADER_TABLE_SIZE - is a connection error
    COMPRESSION_ERROR."""
    grpc.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
    grpc.expect_connection_error(COMPRESSION_ERROR)


def test_a_priority_frame_inside_a_header_block_is_a_connection_error(grpc):
    """RFC 9113 4.3, 6.2: a header block is a contiguous sequence of HEADERS and CONTINUATION frames; a PRIORITY
    frame between them is a connection error PROTOCOL_ERROR."""
    block = header_block(grpc_request())
    grpc.send(frame(HEADERS, END_STREAM, 1, block[:10]), priority(1, 0),
              frame(CONTINUATION, END_HEADERS, 1, block[10:]))  # fmt: skip
    grpc.expect_connection_error(PROTOCOL_ERROR)


def test_headers_of_another_stream_inside_a_header_block_is_a_connection_error(grpc):
    """RFC 9113 4.3, 6.2: HEADERS for another stream between HEADERS and its CONTINUATION is a connection error
    PROTOCOL_ERROR."""
    block = header_block(grpc_request())
    grpc.send(frame(HEADERS, END_STREAM, 1, block[:10]), headers_frame(3, grpc_request(), end_stream=True),
              frame(CONTINUATION, END_HEADERS, 1, block[10:]))  # fmt: skip
    grpc.expect_connection_error(PROTOCOL_ERROR)


# 5.1.1 Stream identifiers --------------------------------------------------------------------------------------------


def test_a_client_stream_with_an_even_id_is_a_connection_error(grpc):
    """RFC 9113 5.1.1: clients open odd-numbered streams; HEADERS on stream 2 is a connection error PROTOCOL_ERROR."""
    grpc.send(headers_frame(2, grpc_request(), end_stream=True))
    grpc.expect_connection_error(PROTOCOL_ERROR)


def test_a_stream_id_below_an_earlier_one_is_a_connection_error(silent):
    """RFC 9113 5.1.1: a new stream's id must be larger than every id the client opened before: stream 3 after
    stream 5 is a connection error PROTOCOL_ERROR."""
    silent.send(headers_frame(5, grpc_request()))
    silent.expect_quiet_on(5)
    silent.send(headers_frame(3, grpc_request()))
    silent.expect_connection_error(PROTOCOL_ERROR)


def test_streams_left_idle_below_a_new_stream_are_closed(silent):
    """RFC 9113 5.1.1: opening stream 5 closes the idle streams 1 and 3; HEADERS on them later is a connection
    error (PROTOCOL_ERROR or STREAM_CLOSED)."""
    silent.send(headers_frame(5, grpc_request()))
    silent.expect_quiet_on(5)
    silent.send(headers_frame(1, grpc_request()))
    silent.expect_connection_error(PROTOCOL_ERROR, STREAM_CLOSED)


# 5.1.2 Stream concurrency ------------------------------------------------------------------------------------------


def test_streams_beyond_max_concurrent_streams_are_refused_and_the_connection_goes_on(silent, silent_upstream):
    """RFC 9113 5.1.2: a HEADERS frame that would take the client above the SETTINGS_MAX_CONCURRENT_STREAMS the proxy
    announced is a stream error, PROTOCOL_ERROR or REFUSED_STREAM; the streams within the limit and the connection
    go on, and once a stream ends there is room for a new one. (The listener's limit comes from HTTP2Tuning; no config
    key lowers it, so the whole limit is opened.)"""
    limit = silent.server_settings[MAX_CONCURRENT_STREAMS]
    assert 0 < limit <= 10_000, f"SETTINGS_MAX_CONCURRENT_STREAMS {limit}"
    forwarded_before = silent_upstream.headers_received
    block = header_block(grpc_request(method("Hold")))
    streams = [1 + 2 * i for i in range(limit + 1)]
    silent.send(b"".join(frame(HEADERS, END_HEADERS, stream, block) for stream in streams))
    over = streams[-1]
    refused = silent.wait_for(lambda f: f.kind == RST_STREAM, "a refused stream", timeout=20)
    assert refused.stream == over, f"stream {refused.stream} of the first {limit} was reset: {refused}"
    assert refused.code in (REFUSED_STREAM, PROTOCOL_ERROR), refused
    silent.expect_alive()
    # The client ends one of its streams: the next new stream fits again.
    silent.send(rst_stream(streams[0], CANCEL), headers_frame(over + 2, grpc_request(method("Hold"))))
    silent.expect_quiet_on(over + 2, seconds=0.5)
    silent.expect_alive()
    # The refused stream never reached the upstream; the one opened after the reset did.
    assert wait_until(lambda: silent_upstream.headers_received - forwarded_before >= limit + 1, ANSWER_SECONDS)
    time.sleep(QUIET_SECONDS)
    assert silent_upstream.headers_received - forwarded_before == limit + 1


# 5.1 Stream states --------------------------------------------------------------------------------------------------


def test_data_on_an_idle_stream_is_an_error(grpc):
    """RFC 9113 5.1 (idle): DATA on a stream the client never opened is a connection error PROTOCOL_ERROR (h2spec
    also takes a stream error PROTOCOL_ERROR or STREAM_CLOSED)."""
    grpc.send(data_frame(1, b"test", end_stream=True))
    grpc.expect_stream_error(1, PROTOCOL_ERROR, STREAM_CLOSED, or_connection_error=True)


@pytest.mark.parametrize(
    "bad_frame",
    [
        pytest.param(rst_stream(1, CANCEL), id="RST_STREAM"),
        pytest.param(window_update(1, 100), id="WINDOW_UPDATE"),
        pytest.param(frame(CONTINUATION, END_HEADERS, 1, literal("x-a", "b")), id="CONTINUATION"),
    ],
)
def test_frames_on_an_idle_stream_are_connection_errors(grpc, bad_frame):
    """RFC 9113 5.1 (idle), 6.4, 6.9, 6.10: RST_STREAM, WINDOW_UPDATE or CONTINUATION on an idle stream is a
    connection error PROTOCOL_ERROR."""
    grpc.send(bad_frame)
    grpc.expect_connection_error(PROTOCOL_ERROR)


def test_priority_on_idle_streams_is_accepted_and_they_can_still_be_opened(grpc):
    """RFC 9113 5.1 (idle), 5.3.2, 6.3: PRIORITY may be sent on any stream, idle ones included; it neither opens nor
    closes them, and the proxy (which does not prioritise) ignores it. Streams 1 and 3 are then opened in turn."""
    grpc.send(priority(3, 0), priority(1, 3, weight=200), priority(101, 1))
    grpc.expect_alive()
    grpc.echo(1)
    grpc.expect_echo(1)
    grpc.send(priority(3, 1))
    grpc.echo(3, b"after priority")
    grpc.expect_echo(3, b"after priority")


def test_priority_on_open_streams_and_in_headers_is_accepted(grpc):
    """RFC 9113 5.3.2, 6.2, 6.3: a valid dependency in HEADERS (PRIORITY flag) or in a PRIORITY frame on an open
    stream is accepted and changes nothing."""
    grpc.send(frame(HEADERS, END_HEADERS | PRIORITY_FLAG, 1,
                    (0x8000_0000).to_bytes(4, "big") + b"\x20" + header_block(grpc_request())),
              priority(1, 0),
              data_frame(1, grpc_message(b"prioritised"), end_stream=True))  # fmt: skip
    grpc.expect_echo(1, b"prioritised")


def test_data_on_a_half_closed_remote_stream_is_stream_closed(silent):
    """RFC 9113 5.1 (half-closed (remote)), 6.1: after the client's END_STREAM, DATA on the stream is a stream error
    STREAM_CLOSED; the connection goes on."""
    silent.send(headers_frame(1, grpc_request(), end_stream=True))
    silent.expect_quiet_on(1)
    silent.send(data_frame(1, b"test", end_stream=True))
    silent.expect_stream_error(1, STREAM_CLOSED)
    silent.expect_alive()


def test_headers_on_a_half_closed_remote_stream_is_stream_closed(silent):
    """RFC 9113 5.1 (half-closed (remote)): after the client's END_STREAM, another HEADERS frame on the stream is a
    stream error STREAM_CLOSED; the connection goes on."""
    silent.send(headers_frame(1, grpc_request(), end_stream=True))
    silent.expect_quiet_on(1)
    silent.send(headers_frame(1, [("x-more", "1")], end_stream=True))
    silent.expect_stream_error(1, STREAM_CLOSED)
    silent.expect_alive()


def test_continuation_on_a_half_closed_remote_stream_is_an_error(silent):
    """RFC 9113 5.1 (half-closed (remote)), 6.10: a CONTINUATION that continues no header block, on a stream the
    client ended, is STREAM_CLOSED or PROTOCOL_ERROR (of the stream or the connection)."""
    silent.send(headers_frame(1, grpc_request(), end_stream=True))
    silent.expect_quiet_on(1)
    silent.send(frame(CONTINUATION, END_HEADERS, 1, literal("x-more", "1")))
    silent.expect_stream_error(1, STREAM_CLOSED, PROTOCOL_ERROR, or_connection_error=True)


def test_window_update_and_priority_on_a_half_closed_remote_stream_are_allowed(silent):
    """RFC 9113 5.1 (half-closed (remote)): WINDOW_UPDATE, PRIORITY and RST_STREAM may still come on it."""
    silent.send(headers_frame(1, grpc_request(), end_stream=True))
    silent.send(window_update(1, 1000), priority(1, 0))
    silent.expect_quiet_on(1)
    silent.send(rst_stream(1, CANCEL))
    silent.expect_alive()


def test_data_after_the_client_reset_a_stream_is_stream_closed(silent):
    """RFC 9113 5.1 (closed): a frame other than PRIORITY after the client's own RST_STREAM is a stream error
    STREAM_CLOSED (h2spec also takes GOAWAY with STREAM_CLOSED)."""
    silent.send(headers_frame(1, grpc_request()), rst_stream(1, CANCEL), data_frame(1, b"test", end_stream=True))
    silent.expect_stream_error(1, STREAM_CLOSED, or_connection_error=True)


def test_headers_after_the_client_reset_a_stream_is_stream_closed(silent):
    """RFC 9113 5.1 (closed): HEADERS after the client's own RST_STREAM is a stream error STREAM_CLOSED (h2spec also
    takes GOAWAY with STREAM_CLOSED), not the PROTOCOL_ERROR of a stream opened out of order."""
    silent.send(headers_frame(1, grpc_request()), rst_stream(1, CANCEL),
                headers_frame(1, [("x-late", "1")], end_stream=True))  # fmt: skip
    silent.expect_stream_error(1, STREAM_CLOSED, or_connection_error=True)


def test_continuation_after_the_client_reset_a_stream_is_an_error(silent):
    """RFC 9113 5.1 (closed), 6.10: a CONTINUATION after the client's RST_STREAM continues no header block:
    STREAM_CLOSED or PROTOCOL_ERROR."""
    silent.send(headers_frame(1, grpc_request()), rst_stream(1, CANCEL),
                frame(CONTINUATION, END_HEADERS, 1, literal("x", "y")))  # fmt: skip
    silent.expect_stream_error(1, STREAM_CLOSED, PROTOCOL_ERROR, or_connection_error=True)


def test_data_on_a_closed_stream_is_stream_closed(grpc):
    """RFC 9113 5.1 (closed), 6.1: DATA on a stream both sides ended is STREAM_CLOSED (of the stream or the
    connection)."""
    grpc.echo(1)
    grpc.expect_echo(1)
    grpc.send(data_frame(1, b"test", end_stream=True))
    grpc.expect_stream_error(1, STREAM_CLOSED, or_connection_error=True)


def test_headers_on_a_closed_stream_is_a_connection_error(grpc):
    """RFC 9113 5.1 (closed): frames after the client's END_STREAM on a stream that is now closed are a connection
    error STREAM_CLOSED."""
    grpc.echo(1)
    grpc.expect_echo(1)
    grpc.send(headers_frame(1, [("x-late", "1")], end_stream=True))
    grpc.expect_connection_error(STREAM_CLOSED)


def test_continuation_on_a_closed_stream_is_a_connection_error(grpc):
    """RFC 9113 5.1 (closed), 6.10: a CONTINUATION on a closed stream is a connection error STREAM_CLOSED or
    PROTOCOL_ERROR."""
    grpc.echo(1)
    grpc.expect_echo(1)
    grpc.send(frame(CONTINUATION, END_HEADERS, 1, literal("x-late", "1")))
    grpc.expect_connection_error(STREAM_CLOSED, PROTOCOL_ERROR)


def test_window_update_rst_stream_and_priority_on_a_closed_stream_are_ignored(grpc):
    """RFC 9113 5.1 (closed): WINDOW_UPDATE and RST_STREAM can arrive for a short while after a stream closed, and
    PRIORITY at any time: ignored."""
    grpc.echo(1)
    grpc.expect_echo(1)
    grpc.send(window_update(1, 100), rst_stream(1, CANCEL), priority(1, 0))
    grpc.expect_alive()
    grpc.echo(3)
    grpc.expect_echo(3)


# 5.3 Priority (deprecated in RFC 9113, the self-dependency rule stays) ----------------------------------------------


def test_headers_that_depend_on_their_own_stream_are_a_stream_error(grpc):
    """RFC 9113 5.3.1 (RFC 7540 5.3.1): a stream cannot depend on itself: HEADERS with that priority is a stream
    error PROTOCOL_ERROR."""
    grpc.send(frame(HEADERS, END_HEADERS | END_STREAM | PRIORITY_FLAG, 1,
                    (1).to_bytes(4, "big") + b"\x10" + header_block(grpc_request())))  # fmt: skip
    grpc.expect_stream_error(1, PROTOCOL_ERROR)
    grpc.expect_alive()


def test_priority_that_depends_on_its_own_stream_is_a_stream_error(grpc):
    """RFC 9113 5.3.1 (RFC 7540 5.3.1), 6.3: a PRIORITY frame making a stream depend on itself is a stream error
    PROTOCOL_ERROR."""
    grpc.send(priority(1, 1))
    grpc.expect_stream_error(1, PROTOCOL_ERROR)
    grpc.expect_alive()


# 5.4 Error handling -------------------------------------------------------------------------------------------------


def test_a_connection_error_sends_goaway_then_closes_the_connection(grpc):
    """RFC 9113 5.4.1: after a connection error (here a PING on stream 3) the endpoint sends GOAWAY with the error
    and closes the TCP connection."""
    grpc.send(frame(PING, 0, 3, bytes(8)))
    goaway = grpc.wait_for(lambda f: f.kind == GOAWAY, "GOAWAY")
    assert goaway.code == PROTOCOL_ERROR, goaway
    assert goaway.stream == 0
    grpc.expect_closed()


# 6.1 DATA ----------------------------------------------------------------------------------------------------------


def test_data_on_stream_zero_is_a_connection_error(grpc):
    """RFC 9113 6.1: DATA on stream 0 is a connection error PROTOCOL_ERROR."""
    grpc.send(data_frame(0, b"test", end_stream=True))
    grpc.expect_connection_error(PROTOCOL_ERROR)


def test_data_with_padding_longer_than_its_payload_is_a_connection_error(grpc):
    """RFC 9113 6.1: a pad length that reaches past the payload is a connection error PROTOCOL_ERROR."""
    grpc.send(headers_frame(1, grpc_request()), frame(DATA, PADDED | END_STREAM, 1, b"\x06Test"))
    grpc.expect_connection_error(PROTOCOL_ERROR)


def test_padded_data_is_delivered_without_its_padding(grpc):
    """RFC 9113 6.1: the padding of DATA is dropped, only the data goes on (the padding still counts for flow
    control)."""
    message = grpc_message(b"padded")
    grpc.send(headers_frame(1, grpc_request()), frame(DATA, PADDED | END_STREAM, 1, b"\x20" + message + bytes(0x20)))
    grpc.expect_echo(1, b"padded")


# 6.2 HEADERS -------------------------------------------------------------------------------------------------------


def test_headers_on_stream_zero_is_a_connection_error(grpc):
    """RFC 9113 6.2: HEADERS on stream 0 is a connection error PROTOCOL_ERROR."""
    grpc.send(headers_frame(0, grpc_request(), end_stream=True))
    grpc.expect_connection_error(PROTOCOL_ERROR)


def test_headers_with_padding_longer_than_its_payload_is_an_error(grpc):
    """RFC 9113 6.2: a pad length of HEADERS that reaches past the payload is PROTOCOL_ERROR (the RFC says a
    connection error; h2spec also takes a stream error)."""
    block = header_block(grpc_request())
    grpc.send(frame(HEADERS, PADDED | END_HEADERS | END_STREAM, 1, bytes([len(block) + 2]) + block))
    grpc.expect_stream_error(1, PROTOCOL_ERROR, or_connection_error=True)


def test_padded_headers_with_priority_are_accepted(grpc):
    """RFC 9113 6.2: HEADERS with both padding and priority fields carries the same request."""
    block = header_block(grpc_request())
    grpc.send(frame(HEADERS, PADDED | PRIORITY_FLAG | END_HEADERS, 1, b"\x07" + bytes(4) + b"\x10" + block + bytes(7)),
              data_frame(1, grpc_message(b"padded headers"), end_stream=True))  # fmt: skip
    grpc.expect_echo(1, b"padded headers")


# 6.3 PRIORITY -----------------------------------------------------------------------------------------------------


def test_priority_on_stream_zero_is_a_connection_error(grpc):
    """RFC 9113 6.3: PRIORITY on stream 0 is a connection error PROTOCOL_ERROR."""
    grpc.send(priority(0, 1))
    grpc.expect_connection_error(PROTOCOL_ERROR)


def test_priority_of_a_length_other_than_five_is_a_frame_size_error(grpc):
    """RFC 9113 6.3: PRIORITY whose length is not 5 is a stream error FRAME_SIZE_ERROR."""
    grpc.send(headers_frame(1, grpc_request()), frame(PRIORITY, 0, 1, b"\x80\x00\x00\x01"))
    grpc.expect_stream_error(1, FRAME_SIZE_ERROR, or_connection_error=True)


# 6.4 RST_STREAM ----------------------------------------------------------------------------------------------------


def test_rst_stream_on_stream_zero_is_a_connection_error(grpc):
    """RFC 9113 6.4: RST_STREAM on stream 0 is a connection error PROTOCOL_ERROR."""
    grpc.send(rst_stream(0, CANCEL))
    grpc.expect_connection_error(PROTOCOL_ERROR)


def test_rst_stream_of_a_length_other_than_four_is_a_frame_size_error(grpc):
    """RFC 9113 6.4: RST_STREAM whose length is not 4 is a connection error FRAME_SIZE_ERROR (h2spec also takes a
    stream error)."""
    grpc.send(headers_frame(1, grpc_request()), frame(RST_STREAM, 0, 1, b"\x00\x00\x00"))
    grpc.expect_stream_error(1, FRAME_SIZE_ERROR, or_connection_error=True)


def test_a_client_reset_ends_only_its_stream(silent):
    """RFC 9113 6.4: RST_STREAM ends its stream at once; the other streams and the connection go on."""
    silent.send(headers_frame(1, grpc_request()), headers_frame(3, grpc_request()), rst_stream(1, CANCEL))
    silent.expect_quiet_on(3)
    silent.expect_alive()


# 6.5 SETTINGS -------------------------------------------------------------------------------------------------------


def test_settings_are_acknowledged(grpc):
    """RFC 9113 6.5.3: every SETTINGS frame without ACK is answered with an empty SETTINGS ACK."""
    grpc.wait_settings_ack(1)
    grpc.send(settings_frame([(INITIAL_WINDOW_SIZE, 100_000)]), settings_frame())
    grpc.wait_settings_ack(3)


def test_settings_ack_with_a_payload_is_a_frame_size_error(grpc):
    """RFC 9113 6.5: a SETTINGS ACK with a payload is a connection error FRAME_SIZE_ERROR."""
    grpc.send(frame(SETTINGS, ACK, 0, b"\x00"))
    grpc.expect_connection_error(FRAME_SIZE_ERROR)


def test_settings_on_a_stream_is_a_connection_error(grpc):
    """RFC 9113 6.5: SETTINGS on a stream other than 0 is a connection error PROTOCOL_ERROR."""
    grpc.send(frame(SETTINGS, 0, 1, b"\x00\x03\x00\x00\x00\x64"))
    grpc.expect_connection_error(PROTOCOL_ERROR)


def test_settings_of_a_length_not_a_multiple_of_six_is_a_frame_size_error(grpc):
    """RFC 9113 6.5: a SETTINGS payload that is not a multiple of 6 octets is a connection error FRAME_SIZE_ERROR."""
    grpc.send(frame(SETTINGS, 0, 0, b"\x00\x03\x00"))
    grpc.expect_connection_error(FRAME_SIZE_ERROR, PROTOCOL_ERROR)


@pytest.mark.parametrize(
    "setting, value, code",
    [
        pytest.param(ENABLE_PUSH, 2, PROTOCOL_ERROR, id="ENABLE_PUSH-2"),
        pytest.param(INITIAL_WINDOW_SIZE, MAX_WINDOW + 1, FLOW_CONTROL_ERROR, id="INITIAL_WINDOW_SIZE-2^31"),
        pytest.param(INITIAL_WINDOW_SIZE, 0xFFFF_FFFF, FLOW_CONTROL_ERROR, id="INITIAL_WINDOW_SIZE-2^32-1"),
        pytest.param(MAX_FRAME_SIZE, DEFAULT_MAX_FRAME - 1, PROTOCOL_ERROR, id="MAX_FRAME_SIZE-below-2^14"),
        pytest.param(MAX_FRAME_SIZE, 1 << 24, PROTOCOL_ERROR, id="MAX_FRAME_SIZE-above-2^24-1"),
    ],
)
def test_a_setting_out_of_its_range_is_a_connection_error(grpc, setting, value, code):
    """RFC 9113 6.5.2: SETTINGS_ENABLE_PUSH other than 0 or 1 and SETTINGS_MAX_FRAME_SIZE outside 2^14..2^24-1 are
    PROTOCOL_ERROR, SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1 is FLOW_CONTROL_ERROR; connection errors all."""
    grpc.send(settings_frame([(setting, value)]))
    grpc.expect_connection_error(code)


def test_the_boundary_values_of_settings_are_accepted(grpc):
    """RFC 9113 6.5.2: the extremes of each range are valid: ENABLE_PUSH 0 and 1 (from a client), INITIAL_WINDOW_SIZE
    2^31-1, MAX_FRAME_SIZE 2^14 and 2^24-1."""
    grpc.send(settings_frame([(ENABLE_PUSH, 1), (ENABLE_PUSH, 0), (INITIAL_WINDOW_SIZE, MAX_WINDOW),
                              (MAX_FRAME_SIZE, (1 << 24) - 1), (MAX_FRAME_SIZE, DEFAULT_MAX_FRAME)]))  # fmt: skip
    grpc.wait_settings_ack(2)
    grpc.echo(1)
    grpc.expect_echo(1)


def test_a_header_table_size_of_zero_keeps_the_proxys_header_blocks_off_the_dynamic_table(wires):
    """RFC 9113 4.3, 6.5.2 (RFC 7541 4.2): with SETTINGS_HEADER_TABLE_SIZE 0 from the client, the proxy's header
    blocks may not add to or refer to a dynamic table (a decoder with no table must read them all)."""
    wire = wires(settings=[(HEADER_TABLE_SIZE, 0)])
    wire.decoder.max_allowed_table_size = 0
    wire.wait_settings_ack()
    for stream in (1, 3, 5):
        wire.echo(stream)
        wire.expect_echo(stream)
    assert not wire.decoder.header_table.dynamic_entries, list(wire.decoder.header_table.dynamic_entries)


def test_unknown_settings_are_ignored(grpc):
    """RFC 9113 6.5.2: a setting of unknown identifier is ignored."""
    grpc.send(settings_frame([(0xFF, 1), (0x9999, 0xFFFF_FFFF)]))
    grpc.wait_settings_ack(2)
    grpc.expect_alive()


def test_settings_values_take_effect_in_the_order_they_appear(grpc):
    """RFC 9113 6.5.3: the values of a SETTINGS frame are processed in order, the last one of a parameter wins: with
    INITIAL_WINDOW_SIZE 100 then 1, a response's first DATA frame carries 1 octet."""
    grpc.send(settings_frame([(INITIAL_WINDOW_SIZE, 100), (INITIAL_WINDOW_SIZE, 1)]))
    grpc.wait_settings_ack(2)
    grpc.echo(1)
    first = grpc.wait_for(lambda f: f.kind == DATA and f.stream == 1, "DATA on stream 1")
    assert len(first.payload) == 1, first


# 6.7 PING ---------------------------------------------------------------------------------------------------------


def test_ping_is_answered_with_ack_and_the_same_payload(grpc):
    """RFC 9113 6.7: a PING is answered by a PING with ACK and the identical 8-octet payload."""
    grpc.send(frame(PING, 0, 0, b"h2-ping!"))
    answer = grpc.wait_for(lambda f: f.kind == PING, "PING ACK")
    assert answer.flags & ACK and answer.payload == b"h2-ping!" and answer.stream == 0, answer


def test_a_ping_ack_is_not_answered(grpc):
    """RFC 9113 6.7: a PING with ACK gets no answer: the first PING that comes back answers the later plain PING."""
    grpc.send(frame(PING, ACK, 0, b"unexpect"), frame(PING, 0, 0, b"expected"))
    answer = grpc.wait_for(lambda f: f.kind == PING, "PING ACK")
    assert answer.flags & ACK and answer.payload == b"expected", answer


def test_ping_on_a_stream_is_a_connection_error(grpc):
    """RFC 9113 6.7: PING on a stream other than 0 is a connection error PROTOCOL_ERROR."""
    grpc.send(frame(PING, 0, 1, bytes(8)))
    grpc.expect_connection_error(PROTOCOL_ERROR)


def test_ping_of_a_length_other_than_eight_is_a_frame_size_error(grpc):
    """RFC 9113 6.7: PING whose length is not 8 is a connection error FRAME_SIZE_ERROR."""
    grpc.send(frame(PING, 0, 0, bytes(6)))
    grpc.expect_connection_error(FRAME_SIZE_ERROR)


# 6.8 GOAWAY -------------------------------------------------------------------------------------------------------


def test_goaway_on_a_stream_is_a_connection_error(grpc):
    """RFC 9113 6.8: GOAWAY on a stream other than 0 is a connection error PROTOCOL_ERROR."""
    grpc.send(frame(GOAWAY, 0, 1, bytes(8)))
    grpc.expect_connection_error(PROTOCOL_ERROR)


def test_after_the_clients_goaway_its_open_calls_still_finish(grpc):
    """RFC 9113 6.8: GOAWAY from the client says it opens no more streams; those already open run to their end."""
    grpc.send(headers_frame(1, grpc_request()), frame(GOAWAY, 0, 0, bytes(8)),
              data_frame(1, grpc_message(b"after goaway"), end_stream=True))  # fmt: skip
    grpc.expect_echo(1, b"after goaway")


# 6.9 WINDOW_UPDATE and flow control -------------------------------------------------------------------------------


def test_window_update_of_zero_on_the_connection_is_a_connection_error(grpc):
    """RFC 9113 6.9: a WINDOW_UPDATE of 0 for the connection is a connection error PROTOCOL_ERROR."""
    grpc.send(window_update(0, 0))
    grpc.expect_connection_error(PROTOCOL_ERROR)


def test_window_update_of_zero_on_a_stream_resets_only_that_stream(silent):
    """RFC 9113 6.9: a WINDOW_UPDATE of 0 for a stream is a stream error PROTOCOL_ERROR; the other streams and the
    connection go on."""
    silent.send(headers_frame(1, grpc_request()), headers_frame(3, grpc_request()), window_update(1, 0))
    silent.expect_stream_error(1, PROTOCOL_ERROR)
    silent.expect_quiet_on(3)
    silent.expect_alive()


def test_window_update_of_a_length_other_than_four_is_a_frame_size_error(grpc):
    """RFC 9113 6.9: WINDOW_UPDATE whose length is not 4 is a connection error FRAME_SIZE_ERROR."""
    grpc.send(frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x01"))
    grpc.expect_connection_error(FRAME_SIZE_ERROR)


def test_a_connection_window_past_the_maximum_is_a_flow_control_error(grpc):
    """RFC 9113 6.9.1: WINDOW_UPDATEs that take the connection's window above 2^31-1 are a connection error
    FLOW_CONTROL_ERROR (GOAWAY)."""
    grpc.send(window_update(0, MAX_WINDOW), window_update(0, MAX_WINDOW))
    grpc.expect_connection_error(FLOW_CONTROL_ERROR)


def test_a_stream_window_past_the_maximum_resets_only_that_stream(silent):
    """RFC 9113 6.9.1: WINDOW_UPDATEs that take a stream's window above 2^31-1 are a stream error FLOW_CONTROL_ERROR
    (RST_STREAM); the other streams and the connection go on."""
    silent.send(headers_frame(1, grpc_request()), headers_frame(3, grpc_request()),
                window_update(1, MAX_WINDOW), window_update(1, MAX_WINDOW))  # fmt: skip
    silent.expect_stream_error(1, FLOW_CONTROL_ERROR)
    silent.expect_quiet_on(3)
    silent.expect_alive()


def test_data_beyond_the_stream_window_the_proxy_granted_resets_only_that_stream(wires):
    """RFC 9113 6.9.1: DATA beyond the stream window the receiver announced is a flow-control error of that stream
    (RST_STREAM FLOW_CONTROL_ERROR); the connection and its other streams go on. The upstream here grants no window,
    so the proxy forwards no more than 64 KiB and gives none of the client's stream window back."""
    wire = wires("stingy")
    window = wire.server_settings.get(INITIAL_WINDOW_SIZE, 65_535)
    chunk = grpc_message(b"w" * (DEFAULT_MAX_FRAME - 5))
    frames = window // len(chunk) + 1
    wire.send(headers_frame(1, grpc_request(method("Collect"))), headers_frame(3, grpc_request(method("Collect"))),
              *[data_frame(3, chunk) for _ in range(frames)])  # fmt: skip
    wire.expect_stream_error(3, FLOW_CONTROL_ERROR)
    wire.expect_quiet_on(1)
    wire.expect_alive()


def test_the_proxy_sends_no_more_data_than_the_clients_window(grpc):
    """RFC 9113 6.9.1: with SETTINGS_INITIAL_WINDOW_SIZE 1, a response's DATA comes one octet at a time, each after
    the client granted one more; the call still completes."""
    grpc.send(settings_frame([(INITIAL_WINDOW_SIZE, 1)]))
    grpc.wait_settings_ack(2)
    grpc.echo(1, b"ab")
    first = grpc.wait_for(lambda f: f.kind == DATA and f.stream == 1, "DATA on stream 1")
    assert len(first.payload) == 1, first
    grpc.expect_quiet_on(1)
    assert not [f for f in grpc.received if f.kind == DATA and f is not first], "DATA beyond the window"
    grpc.send(window_update(1, 100))
    rest = grpc.response(1)
    assert first.payload + rest.data == grpc_message(b"ab") and rest.status == "0", rest


def test_a_new_initial_window_size_applies_to_open_streams(grpc):
    """RFC 9113 6.9.2: a change of SETTINGS_INITIAL_WINDOW_SIZE moves the window of every open stream: from 0, a
    response waits; raised to 1, one octet goes out."""
    grpc.send(settings_frame([(INITIAL_WINDOW_SIZE, 0)]))
    grpc.wait_settings_ack(2)
    grpc.echo(1)
    grpc.wait_for(lambda f: f.kind == HEADERS and f.stream == 1, "the response's headers")
    grpc.expect_quiet_on(1)
    grpc.send(settings_frame([(INITIAL_WINDOW_SIZE, 1)]))
    first = grpc.wait_for(lambda f: f.kind == DATA and f.stream == 1, "DATA on stream 1")
    assert len(first.payload) == 1, first


def test_a_stream_window_made_negative_by_settings_is_tracked(grpc):
    """RFC 9113 6.9.2: SETTINGS can make a stream's window negative; the sender then waits until WINDOW_UPDATEs
    bring it above zero. Window 3, three octets sent, window lowered to 2 (-1), +2: exactly one more octet."""
    grpc.send(settings_frame([(INITIAL_WINDOW_SIZE, 3)]))
    grpc.wait_settings_ack(2)
    grpc.echo(1, b"negative")
    first = grpc.wait_for(lambda f: f.kind == DATA and f.stream == 1, "DATA on stream 1")
    assert len(first.payload) == 3, first
    grpc.send(settings_frame([(INITIAL_WINDOW_SIZE, 2)]))
    grpc.wait_settings_ack(3)
    grpc.send(window_update(1, 2))
    second = grpc.wait_for(lambda f: f.kind == DATA and f.stream == 1, "more DATA on stream 1")
    assert len(second.payload) == 1, second


def test_an_initial_window_size_that_overflows_an_open_stream_is_a_flow_control_error(grpc):
    """RFC 9113 6.9.2: a SETTINGS_INITIAL_WINDOW_SIZE change that takes an open stream's window above 2^31-1 is a
    connection error FLOW_CONTROL_ERROR."""
    grpc.send(headers_frame(1, grpc_request()), window_update(1, MAX_WINDOW - 65_535))
    grpc.expect_alive()
    grpc.send(settings_frame([(INITIAL_WINDOW_SIZE, 65_536)]))
    grpc.expect_connection_error(FLOW_CONTROL_ERROR)


# 6.10 CONTINUATION ------------------------------------------------------------------------------------------------


def test_a_header_block_in_headers_and_continuation_frames_is_accepted(grpc):
    """RFC 9113 6.10: a header block may go on in any number of CONTINUATION frames until END_HEADERS."""
    block = header_block(grpc_request())
    grpc.send(frame(HEADERS, 0, 1, block[:7]), frame(CONTINUATION, 0, 1, block[7:30]),
              frame(CONTINUATION, 0, 1, b""), frame(CONTINUATION, END_HEADERS, 1, block[30:]),
              data_frame(1, grpc_message(b"continued"), end_stream=True))  # fmt: skip
    grpc.expect_echo(1, b"continued")


def test_a_header_block_interrupted_by_data_is_a_connection_error(grpc):
    """RFC 9113 6.10: after a CONTINUATION without END_HEADERS, only a CONTINUATION of the same stream may follow;
    DATA is a connection error PROTOCOL_ERROR."""
    block = header_block(grpc_request())
    grpc.send(frame(HEADERS, 0, 1, block[:7]), frame(CONTINUATION, 0, 1, block[7:20]),
              data_frame(1, b"test", end_stream=True))  # fmt: skip
    grpc.expect_connection_error(PROTOCOL_ERROR)


def test_a_continuation_on_stream_zero_is_a_connection_error(grpc):
    """RFC 9113 6.10: CONTINUATION on stream 0 is a connection error PROTOCOL_ERROR."""
    block = header_block(grpc_request())
    grpc.send(frame(HEADERS, 0, 1, block[:7]), frame(CONTINUATION, END_HEADERS, 0, block[7:]))
    grpc.expect_connection_error(PROTOCOL_ERROR)


def test_a_continuation_on_another_stream_is_a_connection_error(grpc):
    """RFC 9113 6.10: a CONTINUATION of stream 3 inside stream 1's header block is a connection error
    PROTOCOL_ERROR."""
    block = header_block(grpc_request())
    grpc.send(frame(HEADERS, 0, 1, block[:7]), frame(CONTINUATION, END_HEADERS, 3, block[7:]))
    grpc.expect_connection_error(PROTOCOL_ERROR)


@pytest.mark.parametrize("after", ["HEADERS", "CONTINUATION"])
def test_a_continuation_after_end_headers_is_a_connection_error(grpc, after):
    """RFC 9113 6.10: a CONTINUATION must follow HEADERS or CONTINUATION without END_HEADERS; one after a block
    ended (by HEADERS or by CONTINUATION) is a connection error PROTOCOL_ERROR."""
    block = header_block(grpc_request())
    if after == "HEADERS":
        start = frame(HEADERS, END_HEADERS, 1, block)
    else:
        start = frame(HEADERS, 0, 1, block[:7]) + frame(CONTINUATION, END_HEADERS, 1, block[7:])
    grpc.send(start, frame(CONTINUATION, END_HEADERS, 1, literal("x-extra", "1")))
    grpc.expect_connection_error(PROTOCOL_ERROR)


def test_a_continuation_after_data_is_a_connection_error(grpc):
    """RFC 9113 6.10: a CONTINUATION after DATA continues no header block: connection error PROTOCOL_ERROR."""
    grpc.send(headers_frame(1, grpc_request()), data_frame(1, b"test"),
              frame(CONTINUATION, 0, 1, literal("x-extra", "1")))  # fmt: skip
    grpc.expect_connection_error(PROTOCOL_ERROR)


# 7 Error codes ----------------------------------------------------------------------------------------------------


def test_an_unknown_error_code_in_goaway_triggers_nothing_special(grpc):
    """RFC 9113 7: unknown error codes are not special; a GOAWAY carrying one may end the connection (h2spec takes
    a PING answer or a close) but nothing else."""
    grpc.send(frame(GOAWAY, 0, 0, bytes(4) + (0xFF).to_bytes(4, "big")), frame(PING, 0, 0, b"goaway!!"))
    f = grpc.next_frame(ANSWER_SECONDS)
    while f is not None and f is not CLOSED and f.kind != PING:
        assert f.kind != GOAWAY or f.code == NO_ERROR, f
        f = grpc.next_frame(ANSWER_SECONDS)
    assert f is not None, "neither the PING's answer nor a close"
    if f is not CLOSED:
        assert f.flags & ACK and f.payload == b"goaway!!", f


def test_an_unknown_error_code_in_rst_stream_ends_only_that_stream(silent):
    """RFC 9113 7: an RST_STREAM with an unknown error code ends its stream like any other code."""
    silent.send(headers_frame(1, grpc_request()), rst_stream(1, 0xFF))
    silent.expect_alive()


# 8.1 HTTP message framing -------------------------------------------------------------------------------------------


def malformed_request_is_refused(wire: H2Wire, backend: Backend, fields: list[tuple[str, str]]):
    """Sends a malformed request on stream 3 beside a call in progress on stream 1: stream 3 alone is reset with
    PROTOCOL_ERROR (RFC 9113 8.1.1), the request never reaches the backend (an intermediary must not forward it),
    and the call on stream 1 completes."""
    calls_before = backend.call_count
    wire.send(headers_frame(1, grpc_request()), data_frame(1, grpc_message(b"beside")[:4]))
    wire.send(headers_frame(3, fields, end_stream=True))
    wire.expect_stream_error(3, PROTOCOL_ERROR)
    wire.send(data_frame(1, grpc_message(b"beside")[4:], end_stream=True))
    wire.expect_echo(1, b"beside")
    wire.expect_alive()
    assert backend.call_count == calls_before + 1, "the malformed request reached the backend"


def request_without(name: str) -> list[tuple[str, str]]:
    return [(n, v) for n, v in grpc_request() if n != name]


def request_with(field: tuple[str, str], before_regular: bool = False) -> list[tuple[str, str]]:
    fields = grpc_request()
    if before_regular:
        return fields[:4] + [field] + fields[4:]
    return fields + [field]


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(request_with(("X-Upper", "1")), id="uppercase-name"),
        pytest.param(request_with((":unknown", "1"), before_regular=True), id="unknown-pseudo-header"),
        pytest.param(request_with((":status", "200"), before_regular=True), id="response-pseudo-header"),
        pytest.param(request_with((":authority", "again"), before_regular=True), id="duplicate-authority"),
        pytest.param(grpc_request()[1:4] + grpc_request()[4:] + [(":method", "POST")], id="pseudo-after-regular"),
        pytest.param(request_with(("connection", "keep-alive")), id="connection"),
        pytest.param(request_with(("keep-alive", "timeout=5")), id="keep-alive"),
        pytest.param(request_with(("proxy-connection", "keep-alive")), id="proxy-connection"),
        pytest.param(request_with(("transfer-encoding", "chunked")), id="transfer-encoding"),
        pytest.param(request_with(("upgrade", "h2c")), id="upgrade"),
        pytest.param([(n, "trailers, deflate" if n == "te" else v) for n, v in grpc_request()], id="te-not-trailers"),
        pytest.param([(n, "" if n == ":path" else v) for n, v in grpc_request()], id="empty-path"),
        pytest.param(request_without(":method"), id="no-method"),
        pytest.param(request_without(":scheme"), id="no-scheme"),
        pytest.param(request_without(":path"), id="no-path"),
        pytest.param(request_with((":method", "POST"), before_regular=True), id="duplicate-method"),
        pytest.param(request_with((":scheme", "https"), before_regular=True), id="duplicate-scheme"),
        pytest.param(request_with((":path", method("Echo")), before_regular=True), id="duplicate-path"),
        pytest.param(request_with(("x-bad", "a\r\nb")), id="value-with-crlf"),
        pytest.param(request_with(("x-bad", "a\x00b")), id="value-with-nul"),
        pytest.param(request_with(("x-bad", " padded")), id="value-with-leading-space"),
        pytest.param(request_with(("x bad", "1")), id="name-with-space"),
        # The block is decoded to its end (its dynamic table entries too), so only the stream is lost.
        pytest.param(request_with(("", "nameless")), id="empty-name"),
    ],
)
def test_a_malformed_request_header_block_resets_only_its_stream(grpc, conformance_backend, fields):
    """RFC 9113 8.2.1 (non-empty lowercase names, no CR/LF/NUL, no surrounding whitespace), 8.2.2 (no
    connection-specific fields, te only "trailers"), 8.3 and 8.3.1 (:method, :scheme and a non-empty :path exactly
    once, no other or response pseudo-header, pseudo-headers before every regular field): a request that breaks one
    is malformed, a stream error PROTOCOL_ERROR that leaves the other streams and the connection alone."""
    malformed_request_is_refused(grpc, conformance_backend, fields)


def test_trailers_with_a_pseudo_header_reset_only_their_stream(grpc):
    """RFC 9113 8.1, 8.3: trailers carry no pseudo-header field; trailers with one are a stream error
    PROTOCOL_ERROR."""
    grpc.send(headers_frame(1, grpc_request()), data_frame(1, grpc_message(b"x")),
              headers_frame(1, [(":path", "/trailer")], end_stream=True))  # fmt: skip
    grpc.expect_stream_error(1, PROTOCOL_ERROR)
    grpc.echo(3)
    grpc.expect_echo(3)


def test_a_second_header_block_without_end_stream_resets_only_its_stream(silent):
    """RFC 9113 8.1: after the request's header block, another one must be trailers and end the stream; one without
    END_STREAM is a stream error PROTOCOL_ERROR."""
    silent.send(headers_frame(1, grpc_request()), headers_frame(3, grpc_request()), data_frame(1, b"test"),
                headers_frame(1, [("x-trailer", "1")]))  # fmt: skip
    silent.expect_stream_error(1, PROTOCOL_ERROR)
    silent.expect_quiet_on(3)
    silent.expect_alive()


def test_trailers_end_a_request(grpc):
    """RFC 9113 8.1: a request may end with trailers (a header block with END_STREAM) instead of DATA."""
    grpc.send(headers_frame(1, grpc_request()), data_frame(1, grpc_message(b"with trailers")),
              headers_frame(1, [("x-request-trailer", "1")], end_stream=True))  # fmt: skip
    grpc.expect_echo(1, b"with trailers")


@pytest.mark.skip(
    reason="h2spec 8.1.2.6 sends requests that are not gRPC; this listener answers those itself with HTTP 415 and "
    "RST_STREAM(NO_ERROR) as soon as their HEADERS arrive, so the DATA after them is ignored (RFC 9113 5.1), not a "
    "PROTOCOL_ERROR. Right for a proxy that carries only gRPC."
)
@pytest.mark.parametrize("chunks", [[b"test"], [b"test", b"test"]], ids=["one-data-frame", "two-data-frames"])
def test_a_non_grpc_request_whose_content_length_is_not_its_data_length_resets_its_stream(grpc, chunks):
    """RFC 9113 8.1.1: a content-length other than the sum of the DATA payloads makes the request malformed: stream
    error PROTOCOL_ERROR (h2spec's two cases, with a request that is not gRPC)."""
    fields = [(":method", "POST"), (":scheme", "http"), (":path", "/"), (":authority", "conformance"),
              ("content-length", "1")]  # fmt: skip
    last = len(chunks) - 1
    grpc.send(headers_frame(1, fields), *[data_frame(1, chunk, end_stream=i == last) for i, chunk in enumerate(chunks)])
    grpc.expect_stream_error(1, PROTOCOL_ERROR, or_connection_error=True)


@pytest.mark.parametrize("chunks", [[b"test"], [b"te", b"st"]], ids=["one-data-frame", "two-data-frames"])
def test_a_grpc_request_whose_content_length_is_not_its_data_length_resets_its_stream(
    grpc, conformance_backend, chunks
):
    """RFC 9113 8.1.1: a content-length other than the sum of the DATA payloads makes a request malformed, a stream
    error PROTOCOL_ERROR, and an intermediary must not forward it. gRPC clients send no content-length; this is
    h2spec 8.1.2.6 with a gRPC request."""
    message = grpc_message(b"".join(chunks))
    calls_before = conformance_backend.call_count
    grpc.send(headers_frame(1, grpc_request(extra=[("content-length", "1")])),
              data_frame(1, message[: 5 + len(chunks[0])]),
              data_frame(1, message[5 + len(chunks[0]) :], end_stream=True))  # fmt: skip
    answer = grpc.response(1)
    assert answer.reset == PROTOCOL_ERROR, f"expected RST_STREAM(PROTOCOL_ERROR): {answer}"
    assert conformance_backend.call_count == calls_before, "the malformed request reached the backend"


# 8.4 Server push --------------------------------------------------------------------------------------------------


def test_push_promise_from_a_client_is_a_connection_error(grpc):
    """RFC 9113 8.4, 6.6: a client cannot push; PUSH_PROMISE from one is a connection error PROTOCOL_ERROR."""
    grpc.send(headers_frame(1, grpc_request()),
              frame(PUSH_PROMISE, END_HEADERS, 1, (2).to_bytes(4, "big") + header_block(grpc_request())))  # fmt: skip
    grpc.expect_connection_error(PROTOCOL_ERROR)


# What the old HTTP/2 layer got wrong ------------------------------------------------------------------------------


def late_frames_are_ignored(wire: H2Wire, stream: int, request: bytes, check_answer: Callable[[Response], None]):
    """Sends `request` on `stream`, which the proxy answers at once and resets with NO_ERROR while the client is still
    sending, beside a call in progress on stream 1; then the DATA and trailers the client had in flight for `stream`.
    They must be ignored: no answer to them, no GOAWAY, the call on stream 1 and a new one complete."""
    wire.send(headers_frame(1, grpc_request()), data_frame(1, grpc_message(b"beside")[:4]))
    wire.send(request)
    check_answer(wire.response(stream))
    reset = wire.wait_for(lambda f: f.kind == RST_STREAM and f.stream == stream, f"RST_STREAM(NO_ERROR) on {stream}")
    assert reset.code == NO_ERROR, reset
    wire.send(data_frame(stream, b"y" * 100), headers_frame(stream, [("x-late-trailer", "1")], end_stream=True))
    wire.expect_quiet_on(stream)
    wire.send(data_frame(1, grpc_message(b"beside")[4:], end_stream=True))
    wire.expect_echo(1, b"beside")
    wire.echo(stream + 2)
    wire.expect_echo(stream + 2)
    wire.expect_alive()


def test_trailers_after_the_proxy_ended_an_oversized_call_are_ignored(grpc):
    """RFC 9113 5.1 (closed), 6.4: the proxy ends a call whose request is over its message limit with a status and
    RST_STREAM(NO_ERROR) while the client is still sending. The client's DATA and trailers that follow were sent
    before it saw the reset: they are ignored, the connection gets no GOAWAY and its other calls go on."""

    def resource_exhausted(answer: Response) -> None:
        assert answer.status == "8", f"expected RESOURCE_EXHAUSTED: {answer}"

    late_frames_are_ignored(
        grpc, 3,
        headers_frame(3, grpc_request(method("Collect")))
        + data_frame(3, b"\x00" + (16 * MAX_MESSAGE_BYTES).to_bytes(4, "big") + b"x" * 100),
        resource_exhausted,
    )  # fmt: skip


def test_trailers_after_the_proxy_refused_a_non_grpc_request_are_ignored(grpc):
    """RFC 9113 5.1 (closed), 6.4: a POST that is not gRPC is answered at once (HTTP 415) and its stream reset with
    NO_ERROR; the body and trailers the client goes on to send are ignored, and the connection lives on."""

    def unsupported_media_type(answer: Response) -> None:
        assert answer.headers and answer.headers.get(":status") == "415", answer

    late_frames_are_ignored(
        grpc, 3,
        headers_frame(3, [(":method", "POST"), (":scheme", "http"), (":path", "/upload"), (":authority", "conformance"),
                          ("content-type", "text/plain")]),
        unsupported_media_type,
    )  # fmt: skip
