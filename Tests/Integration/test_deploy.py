"""The files in deploy/, checked as far as this machine can run them: the systemd unit passes `systemd-analyze
verify`, the install layout the unit and the Dockerfile describe works (a binary in bin/, the bundled plugins in
lib/s2s-proxy/plugins found by `name:`), and the Dockerfile copies every bundled plugin Package.swift builds.
(No Docker daemon or systemd runs here: the image is not built and the unit not started.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from proxy_process import REPO_ROOT, proxy_binary

DEPLOY = REPO_ROOT / "deploy"
# Plugins built from Package.swift that are examples, not shipped.
EXAMPLES = {"example-header-stamp"}


def bundled_plugins() -> set[str]:
    """The dynamic library products of Package.swift, less the examples."""
    text = (REPO_ROOT / "Package.swift").read_text()
    names = set(re.findall(r'\.library\(name: "([^"]+)", type: \.dynamic', text))
    return names - EXAMPLES


def install(tmp_path: Path) -> Path:
    """The layout of deploy/: <prefix>/bin/s2s-proxy and <prefix>/lib/s2s-proxy/plugins/lib<name>.so."""
    prefix = tmp_path / "usr-local"
    (prefix / "bin").mkdir(parents=True)
    plugins = prefix / "lib" / "s2s-proxy" / "plugins"
    plugins.mkdir(parents=True)
    shutil.copy2(proxy_binary(), prefix / "bin" / "s2s-proxy")
    for name in bundled_plugins():
        shutil.copy2(proxy_binary().parent / f"lib{name}.so", plugins)
    return prefix


def test_the_dockerfile_ships_every_bundled_plugin():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    shipped = set(re.findall(r"\.build/release/lib([\w-]+)\.so", dockerfile))
    assert bundled_plugins(), "no bundled plugins found in Package.swift"
    assert shipped == bundled_plugins(), f"Dockerfile copies {sorted(shipped)}, Package.swift builds {sorted(bundled_plugins())}"


def test_the_systemd_unit_verifies_cleanly(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    prefix = install(tmp_path)
    unit = (DEPLOY / "s2s-proxy.service").read_text().replace("/usr/local/bin/s2s-proxy", str(prefix / "bin" / "s2s-proxy"))
    unit_path = tmp_path / "s2s-proxy.service"
    unit_path.write_text(unit)
    result = subprocess.run([analyze, "verify", str(unit_path)], capture_output=True, text=True, timeout=60)
    # Unknown keys and bad values are warnings with exit status 0: the output must be empty too.
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "s2s-proxy.service" in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


def test_the_installed_layout_finds_the_bundled_plugins_by_name(tmp_path):
    prefix = install(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(
        "clusterConnections:\n"
        "  - name: dev\n"
        "    local: {connectionType: tcp, tcpClient: {address: 127.0.0.1:7233}, tcpServer: {address: 127.0.0.1:0}}\n"
        "    remote: {connectionType: tcp, tcpClient: {address: 127.0.0.1:7233}, tcpServer: {address: 127.0.0.1:0}}\n"
        "    plugins:\n"
        "      - name: namespace-rename\n"
        "        options: {mappings: [{local: orders, remote: orders-prod}]}\n"
    )
    # The unit's ExecStartPre, run from the installed binary.
    result = subprocess.run([str(prefix / "bin" / "s2s-proxy"), "validate", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "plugins dev/outbound: namespace-rename" in output, output
    # Without the plugins directory the same config is refused, naming where it looked.
    shutil.rmtree(prefix / "lib")
    result = subprocess.run([str(prefix / "bin" / "s2s-proxy"), "validate", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "no bundled plugin named namespace-rename" in result.stdout + result.stderr, result.stdout + result.stderr
