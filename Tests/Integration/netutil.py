"""Loopback networking helpers for the integration tests.

Owns: picking free 127.0.0.1 ports, waiting for a port to accept connections, a counting TCP relay, and a
listener that never accepts (to make connects hang). Everything here binds to 127.0.0.1 only.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"


_issued_ports: set[int] = set()
_issued_lock = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the usual bind-to-0 trick).

    The kernel may hand out the same ephemeral port again as soon as the probe socket is closed, so a port is
    never issued twice in one test run: two listeners of one config must not collide.
    """
    with _issued_lock:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((LOOPBACK, 0))
                port = s.getsockname()[1]
            if port not in _issued_ports:
                _issued_ports.add(port)
                return port


def free_address() -> str:
    return f"{LOOPBACK}:{free_port()}"


def split_address(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def port_accepts(address: str, timeout: float = 0.5) -> bool:
    """True when a TCP connect to `address` succeeds."""
    try:
        with socket.create_connection(split_address(address), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(address: str, timeout: float, alive=lambda: True) -> bool:
    """Poll until `address` accepts a TCP connection; gives up early when `alive()` turns false."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_accepts(address):
            return True
        if not alive():
            return False
        time.sleep(0.05)
    return False


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bool, bytes]:
    """Read from `sock` until the peer closes it (EOF or reset) or `timeout` passes.

    Returns (closed_by_peer, bytes_received). A reset counts as closed.
    """
    sock.settimeout(0.2)
    received = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True, bytes(received)
        if not chunk:
            return True, bytes(received)
        received.extend(chunk)
    return False, bytes(received)


@dataclass
class RelayCounters:
    """Bytes a `TcpRelay` moved, per direction."""

    client_to_server: int = 0
    server_to_client: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, direction: str, n: int) -> None:
        with self.lock:
            setattr(self, direction, getattr(self, direction) + n)


class TcpRelay:
    """A byte-for-byte TCP forwarder on a free loopback port that counts what crosses it.

    Put between the proxy and a backend, it shows what the proxy really sent upstream (e.g. that gzip
    messages stayed compressed).
    """

    def __init__(self, target: str):
        self.target = target
        self.counters = RelayCounters()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((LOOPBACK, 0))
        self._listener.listen(16)
        self.address = f"{LOOPBACK}:{self._listener.getsockname()[1]}"
        self._closed = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept_loop, name="relay-accept", daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(split_address(self.target), timeout=5)
                upstream.settimeout(None)
            except OSError:
                downstream.close()
                continue
            self._sockets += [downstream, upstream]
            threading.Thread(target=self._pump, args=(downstream, upstream, "client_to_server"), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, downstream, "server_to_client"), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str) -> None:
        try:
            while True:
                chunk = source.recv(262144)
                if not chunk:
                    break
                self.counters.add(direction, len(chunk))
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass


class BlackholeListener:
    """A loopback listener whose accept queue is full, so further TCP connects hang (SYNs are dropped).

    Stands in for an unreachable-but-not-refusing upstream (a firewalled host) without leaving loopback.
    """

    def __init__(self):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((LOOPBACK, 0))
        self._listener.listen(0)
        self.address = f"{LOOPBACK}:{self._listener.getsockname()[1]}"
        self._fillers: list[socket.socket] = []
        # With backlog 0 Linux queues one connection (sometimes two); fill the queue until a connect hangs.
        for _ in range(8):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(0.3)
            try:
                s.connect(split_address(self.address))
                self._fillers.append(s)
            except (socket.timeout, BlockingIOError, OSError):
                s.close()
                break

    def connect_hangs(self, timeout: float = 0.5) -> bool:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(split_address(self.address))
            return False
        except (socket.timeout, OSError):
            return True
        finally:
            s.close()

    def close(self) -> None:
        for s in self._fillers:
            s.close()
        self._listener.close()
