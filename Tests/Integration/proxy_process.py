"""The s2s-proxy under test, run as a real process from its built binary.

Owns: rendering a Go-format config file for one or more cluster connections, starting `s2s-proxy start`,
waiting for its listeners, handing out listener addresses, reading its memory figures from /proc, and stopping
it with SIGTERM while checking that it exits 0 in time.

With `S2S_ITEST_DIRECT=1` no process is started and each listener address is the upstream it would forward to,
so the test logic can be checked against the backends alone; tests of proxy-only behaviour skip in that mode.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from netutil import free_address, wait_for_port
from processes import bound_to_test_run

REPO_ROOT = Path(__file__).resolve().parents[2]
DIRECT = os.environ.get("S2S_ITEST_DIRECT", "") not in ("", "0", "false")
START_TIMEOUT = float(os.environ.get("S2S_ITEST_START_TIMEOUT", "60"))
LOG_LEVEL = os.environ.get("S2S_ITEST_PROXY_LOG_LEVEL", "info")


def proxy_binary() -> Path:
    return Path(os.environ.get("S2S_PROXY_BIN", REPO_ROOT / ".build" / "debug" / "s2s-proxy"))


def q(value: str) -> str:
    """A YAML scalar for `value` (JSON strings are valid YAML)."""
    return json.dumps(value)


@dataclass
class ClusterConnection:
    """One `clusterConnections[]` entry over plain TCP.

    `outbound_listen` is `local.tcpServer` and forwards to `remote_upstream` (`remote.tcpClient`);
    `inbound_listen` is `remote.tcpServer` and forwards to `local_upstream` (`local.tcpClient`).
    """

    name: str
    local_upstream: str
    remote_upstream: str
    outbound_listen: str = field(default_factory=free_address)
    inbound_listen: str = field(default_factory=free_address)
    # `plugins:` entries (dicts as in the YAML: name/path, side, onError, options), in chain order.
    plugins: list = field(default_factory=list)
    # Extra keys of the connection, as a dict rendered into YAML (e.g. {"schema": {"file": "..."}}).
    extra: dict = field(default_factory=dict)
    # The remote side as a mux tunnel instead of TCP: "mux-client" (dials `mux_address`) or "mux-server" (listens
    # there); `remote_upstream` and `inbound_listen` are then unused.
    mux: str | None = None
    mux_address: str = field(default_factory=free_address)
    mux_count: int = 2
    # `muxAddressInfo.tls` (a dict as in the YAML), or None for plain TCP.
    mux_tls: dict | None = None
    # `tls:` blocks by endpoint ("local.tcpClient", "local.tcpServer", "remote.tcpClient", "remote.tcpServer").
    tls: dict = field(default_factory=dict)

    def _tls(self, endpoint: str) -> str:
        block = self.tls.get(endpoint)
        return f"        tls: {json.dumps(block)}\n" if block is not None else ""

    def remote_yaml(self) -> str:
        if self.mux:
            return (
                f"    remote:\n"
                f"      connectionType: {self.mux}\n"
                f"      muxCount: {self.mux_count}\n"
                f"      muxAddressInfo:\n"
                f"        address: {q(self.mux_address)}\n"
                + (f"        tls: {json.dumps(self.mux_tls)}\n" if self.mux_tls else "")
            )
        return (
            f"    remote:\n"
            f"      connectionType: tcp\n"
            f"      tcpClient:\n"
            f"        address: {q(self.remote_upstream)}\n" + self._tls("remote.tcpClient") +
            f"      tcpServer:\n"
            f"        address: {q(self.inbound_listen)}\n" + self._tls("remote.tcpServer")
        )

    def listen_addresses(self) -> list[str]:
        if self.mux == "mux-client":
            return [self.outbound_listen]
        if self.mux == "mux-server":
            return [self.outbound_listen, self.mux_address]
        return [self.outbound_listen, self.inbound_listen]

    def yaml(self) -> str:
        return (
            f"  - name: {q(self.name)}\n"
            f"    local:\n"
            f"      connectionType: tcp\n"
            f"      tcpClient:\n"
            f"        address: {q(self.local_upstream)}\n" + self._tls("local.tcpClient") +
            f"      tcpServer:\n"
            f"        address: {q(self.outbound_listen)}\n" + self._tls("local.tcpServer")
            + self.remote_yaml()
            + (f"    plugins: {json.dumps(self.plugins)}\n" if self.plugins else "")
            + "".join(f"    {key}: {json.dumps(value)}\n" for key, value in self.extra.items())
        )


def render_config(
    connections: list[ClusterConnection],
    max_message_bytes: int | None = None,
    drain_timeout_seconds: float | None = None,
    connect_timeout_seconds: float | None = None,
    metrics_address: str | None = None,
) -> str:
    text = "clusterConnections:\n" + "".join(c.yaml() for c in connections)
    if max_message_bytes is not None:
        text += f"limits:\n  maxMessageBytes: {max_message_bytes}\n"
    if drain_timeout_seconds is not None:
        text += f"shutdown:\n  drainTimeoutSeconds: {drain_timeout_seconds}\n"
    if connect_timeout_seconds is not None:
        text += f"upstream:\n  connectTimeoutSeconds: {connect_timeout_seconds}\n"
    if metrics_address is not None:
        text += f"metrics:\n  prometheus:\n    listenAddress: {q(metrics_address)}\n"
    return text


class ProxyProcess:
    """One running `s2s-proxy start` (or, in direct mode, a stand-in that only maps addresses)."""

    def __init__(
        self,
        workdir: Path,
        connections: list[ClusterConnection],
        max_message_bytes: int | None = None,
        drain_timeout_seconds: float | None = 10,
        connect_timeout_seconds: float | None = None,
        metrics_address: str | None = None,
        log_level: str | None = LOG_LEVEL,
        label: str = "proxy",
        extra_args: tuple[str, ...] = (),
        extra_yaml: str = "",
        max_open_files: int | None = None,
        env: dict[str, str] | None = None,
    ):
        self.connections = {c.name: c for c in connections}
        # `metrics.prometheus.listenAddress`, served at http://<address>/metrics; None: no metrics endpoint.
        self.metrics_address = metrics_address
        self.drain_timeout_seconds = drain_timeout_seconds if drain_timeout_seconds is not None else 30
        self.label = label
        self.config_path = workdir / f"{label}.yaml"
        self.log_path = workdir / f"{label}.stderr.log"
        self.config_path.write_text(
            render_config(
                connections, max_message_bytes, drain_timeout_seconds, connect_timeout_seconds, metrics_address
            )
            + extra_yaml
        )
        self.log_level = log_level
        self.extra_args = extra_args
        # RLIMIT_NOFILE of the proxy process (soft and hard), to run it out of file descriptors on purpose.
        self.max_open_files = max_open_files
        # Environment variables set for the proxy process on top of the test run's.
        self.env = env
        self.process: subprocess.Popen | None = None
        self.exit_code: int | None = None
        self.signalled_by_test = False

    # lifecycle ----------------------------------------------------------------------------------------------------

    def start(self) -> "ProxyProcess":
        if DIRECT:
            return self
        binary = proxy_binary()
        if not binary.exists():
            pytest.fail(f"proxy binary {binary} does not exist: run `swift build` first (or set S2S_PROXY_BIN)")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                bound_to_test_run(
                    [str(binary), "start", "--config", str(self.config_path),
                     *(("--log-level", self.log_level) if self.log_level else ()), *self.extra_args]
                ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.config_path.parent,
                preexec_fn=self._limit_open_files if self.max_open_files else None,
                env={**os.environ, **self.env} if self.env else None,
            )
        deadline = time.monotonic() + START_TIMEOUT
        for address in self.listen_addresses():
            ready = wait_for_port(address, max(0.1, deadline - time.monotonic()), alive=self.alive)
            if not ready:
                code = self.process.poll()
                self.kill()
                pytest.fail(
                    f"{self.label} did not listen on {address} within {START_TIMEOUT:.0f}s "
                    f"(exit code {code}); log:\n{self.log()}"
                )
        return self

    def _limit_open_files(self) -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (self.max_open_files, self.max_open_files))

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def require_process(self) -> None:
        """Skips the calling test in direct mode, where there is no proxy process."""
        if DIRECT:
            pytest.skip("needs the proxy process (S2S_ITEST_DIRECT is set)")

    def send_signal(self, signum: int) -> None:
        assert self.alive(), f"{self.label} is not running (exit code {self.process and self.process.poll()})"
        self.signalled_by_test = True
        self.process.send_signal(signum)

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None if the process is still running after `timeout` seconds."""
        try:
            self.exit_code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
            self.process.wait(10)

    def stop(self, signum: int = signal.SIGTERM, slack: float = 15) -> None:
        """Sends `signum` and asserts a clean exit (code 0) within the drain timeout plus `slack` seconds.

        A proxy that is already gone although no test signalled it exited by itself: that fails too.
        """
        if self.process is None:
            return
        if self.process.poll() is not None:
            assert self.signalled_by_test, (
                f"{self.label} exited by itself (code {self.process.returncode}) before it was stopped; "
                f"log:\n{self.log()}"
            )
            return
        self.process.send_signal(signum)
        bound = self.drain_timeout_seconds + slack
        code = self.wait_exit(bound)
        if code is None:
            signal_state = self.signal_state()
            self.kill()
            raise AssertionError(
                f"{self.label} still running {bound:.0f}s after signal {signum}\n"
                f"signal masks per thread:\n{signal_state}\nlog:\n{self.log()}"
            )
        assert code == 0, f"{self.label} exited with {code} after signal {signum}; log:\n{self.log()}"

    # addresses ---------------------------------------------------------------------------------------------------

    def listen_addresses(self) -> list[str]:
        listeners = [a for c in self.connections.values() for a in c.listen_addresses()]
        return listeners + ([self.metrics_address] if self.metrics_address else [])

    def outbound(self, name: str | None = None) -> str:
        """Address of `local.tcpServer` (forwards to `remote.tcpClient`)."""
        c = self._connection(name)
        return c.remote_upstream if DIRECT else c.outbound_listen

    def inbound(self, name: str | None = None) -> str:
        """Address of `remote.tcpServer` (forwards to `local.tcpClient`)."""
        c = self._connection(name)
        return c.local_upstream if DIRECT else c.inbound_listen

    def _connection(self, name: str | None) -> ClusterConnection:
        if name is None:
            assert len(self.connections) == 1, "name the cluster connection"
            return next(iter(self.connections.values()))
        return self.connections[name]

    # observation -------------------------------------------------------------------------------------------------

    def log(self, tail_lines: int | None = 80) -> str:
        try:
            lines = collapse_repeats(self.log_path.read_text(errors="replace").splitlines())
        except FileNotFoundError:
            return "(no log)"
        if tail_lines is not None and len(lines) > tail_lines:
            lines = [f"... ({len(lines) - tail_lines} earlier lines cut)"] + lines[-tail_lines:]
        return "\n".join(lines)

    def signal_state(self) -> str:
        """Each thread's name and pending/blocked/ignored/caught signal masks (to diagnose a lost signal)."""
        lines = []
        for task in sorted(Path(f"/proc/{self.process.pid}/task").iterdir()):
            try:
                fields = dict(line.split(":\t", 1) for line in (task / "status").read_text().splitlines() if ":\t" in line)
            except OSError:
                continue
            masks = " ".join(f"{k}={fields.get(k, '?').strip()}" for k in ("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt"))
            lines.append(f"  tid {task.name} {fields.get('Name', '?').strip()}: {masks}")
        return "\n".join(lines)

    def memory_kib(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak RSS) of the proxy process, in KiB."""
        figures = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = int(value.split()[0])
        return figures


def collapse_repeats(lines: list[str]) -> list[str]:
    """Folds runs of log lines that differ only in their leading timestamp into one line with a count."""
    out: list[str] = []
    previous_body, repeats = None, 0
    for line in lines:
        body = line.split(" ", 1)[1] if " " in line else line
        if body == previous_body:
            repeats += 1
            continue
        if repeats:
            out.append(f"    (last line repeated {repeats} more times)")
        out.append(line)
        previous_body, repeats = body, 0
    if repeats:
        out.append(f"    (last line repeated {repeats} more times)")
    return out


def run_cli(args: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    """Runs the proxy binary with `args` (e.g. `validate --config F`), capturing its output."""
    return subprocess.run(
        [str(proxy_binary()), *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
