"""Builds the test plugins from C with `cc`, against the real ABI header, the way a third party would.

Owns: compiling `Tests/Plugins/probe_plugin.c` in its build variants into a directory of shared objects.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HEADER_DIR = REPO_ROOT / "s2s-plugin-sdk" / "Sources" / "PluginABI" / "include"
PROBE_SOURCE = REPO_ROOT / "Tests" / "Plugins" / "probe_plugin.c"

PROBE_VARIANTS = {
    "probe": [],
    "probe-schema": ["-DPROBE_NEEDS_SCHEMA"],
    "probe-abi2": ["-DPROBE_ABI_MAJOR=2"],
    "probe-no-entry": ["-DPROBE_NO_ENTRY"],
    "probe-refuse-entry": ["-DPROBE_REFUSE_ENTRY"],
}


def build_c_plugin(source: Path, output: Path, defines: list[str] = ()) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    assert compiler, "a C compiler (cc) is needed to build the test plugins"
    command = [compiler, "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-O1",
               f"-I{HEADER_DIR}", *defines, "-o", str(output), str(source)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr}"
    return output


def build_probe_plugins(directory: Path) -> dict[str, Path]:
    """Every probe variant, as `lib<variant>.so` in `directory` (so each is also loadable by bundled name)."""
    directory.mkdir(parents=True, exist_ok=True)
    return {name: build_c_plugin(PROBE_SOURCE, directory / f"lib{name}.so", defines)
            for name, defines in PROBE_VARIANTS.items()}


GET_SYSTEM_INFO = "/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo"


def wait_for_plugin_schema(channel, timeout: float = 30, call=None):
    """Makes a call through a proxy whose plugins need the Temporal schema until one passes: until the schema is
    pulled, such calls are answered UNAVAILABLE ("waiting for the Temporal schema"). The call is GetSystemInfo, or
    `call(channel)` for plugins that do not want that method. Returns the response.
    """
    import time

    import grpc

    if call is None:
        system_info = channel.unary_unary(GET_SYSTEM_INFO)
        call = lambda _: system_info(b"", timeout=10)  # noqa: E731
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call(channel)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error
            assert "waiting for the Temporal schema" in error.details(), error.details()
            assert time.monotonic() < deadline, f"the schema did not arrive within {timeout:.0f}s"
            time.sleep(0.2)
