"""The hashicorp/yamux peer (Tests/Mux/yamux-peer, Go) for the mux tests: built once per run, started per test.

Owns: building the peer in GOPATH mode from Debian's golang-github-hashicorp-yamux-dev, and starting it with the
READY/LISTENING lines parsed. See the peer's header comment for its flags.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import pytest

from plugin_build import REPO_ROOT

SOURCE = REPO_ROOT / "Tests" / "Mux" / "yamux-peer"
LIBRARY = Path("/usr/share/gocode/src/github.com/hashicorp/yamux")


@lru_cache(maxsize=1)
def peer_binary() -> Path:
    go = shutil.which("go")
    if go is None or not LIBRARY.exists():
        message = "needs golang-go and golang-github-hashicorp-yamux-dev (.ci/run installs them)"
        if os.environ.get("CI"):
            raise AssertionError(message)
        pytest.skip(message)
    out = Path(tempfile.mkdtemp(prefix="yamux-peer-")) / "yamux-peer"
    env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off",
               GOCACHE=str(Path(tempfile.gettempdir()) / "yamux-peer-gocache"))
    subprocess.run([go, "build", "-o", str(out), "main.go"], cwd=SOURCE, env=env, check=True, timeout=300)
    return out


class YamuxPeer:
    def __init__(self, args: list[str], log_path: Path):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen([str(peer_binary()), *args], stdout=subprocess.PIPE, stderr=self.log,
                                        stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        self.address = self._line("READY ")
        self._listening: str | None = None

    @property
    def listening(self) -> str:
        """The -listen address; printed once every session is up, so this waits for them."""
        if self._listening is None:
            self._listening = self._line("LISTENING ")
        return self._listening

    def _line(self, prefix: str) -> str:
        line = self.process.stdout.readline().strip()
        assert line.startswith(prefix), f"yamux-peer printed {line!r}; log:\n{self.log_path.read_text()}"
        return line[len(prefix):]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()
