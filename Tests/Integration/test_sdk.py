"""The plugin SDK as an author meets it, from docs/PLUGINS.md alone: the package manifest and the plugin under
"Writing a plugin in Swift" are taken from the guide as written, built out of tree against s2s-plugin-sdk by path
(whatever the checkout's folder is called), loaded into a real proxy and sent real calls; and the SDK published with
scripts/sdk-publish resolves by URL and version.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path

import grpc
import pytest

from backend import CALL_ID_HEADER, method
from proxy_process import DIRECT, REPO_ROOT, ClusterConnection, proxy_binary

pytestmark = pytest.mark.skipif(DIRECT, reason="plugins are the proxy's")
GUIDE = REPO_ROOT / "docs" / "PLUGINS.md"
SDK = REPO_ROOT / "s2s-plugin-sdk"


def guide_block(after_heading: str, language: str, index: int = 0) -> str:
    """The `index`-th ```language block below the heading `after_heading` in docs/PLUGINS.md."""
    text = GUIDE.read_text()
    section = text[text.index(after_heading):]
    blocks = re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)
    return blocks[index]


def swift() -> str:
    found = shutil.which("swift")
    if not found:
        pytest.skip("no swift toolchain on PATH")
    return found


def run(command: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def team_header(tmp_path_factory) -> Path:
    """The guide's Swift plugin, built as the guide says, in a package beside a checkout named unlike the repo."""
    root = tmp_path_factory.mktemp("author")
    checkout = root / "proxy-checkout-with-another-name"
    checkout.mkdir()
    # The SDK folder as a checkout holds it (a symlink keeps the test from copying; SwiftPM resolves it).
    (checkout / "s2s-plugin-sdk").symlink_to(SDK, target_is_directory=True)
    package = root / "team-header"
    (package / "Sources" / "TeamHeader").mkdir(parents=True)
    manifest = guide_block("### The package", "swift")
    assert '.package(path: "../s2s-proxy/s2s-plugin-sdk")' in manifest, manifest
    (package / "Package.swift").write_text(
        manifest.replace("../s2s-proxy/s2s-plugin-sdk", f"../{checkout.name}/s2s-plugin-sdk"))
    (package / "Sources" / "TeamHeader" / "TeamHeader.swift").write_text(guide_block("### The plugin", "swift"))
    (package / "Tests" / "TeamHeaderTests").mkdir(parents=True)
    (package / "Tests" / "TeamHeaderTests" / "TeamHeaderTests.swift").write_text(
        guide_block("### In your own test suite", "swift"))
    build = guide_block("### Building", "sh").splitlines()[0].split()
    assert build[:2] == ["swift", "build"], build
    run([swift(), *build[1:]], cwd=package)
    built = package / ".build" / "release" / "libteam-header.so"
    assert built.exists(), list((package / ".build" / "release").iterdir())
    # Only the SDK was resolved: no dependency of the proxy came along.
    resolved = package / "Package.resolved"
    assert not resolved.exists() or "swift-nio" not in resolved.read_text()
    return built


def test_the_guides_plugin_tests_pass_with_plugin_kit_testing(team_header):
    # The guide's test, run with `swift test` in the author's package: PluginTestHost drives the plugin.
    package = team_header.parents[2]
    result = run([swift(), "test"], cwd=package)
    assert "copiesTheTeamAndRejectsCallsWithoutIt" in result.stdout + result.stderr, result.stdout[-3000:]


def test_the_guides_swift_plugin_builds_out_of_tree_and_serves_calls(team_header, backend, proxy_factory,
                                                                   channel_factory):
    proxy = proxy_factory.start([ClusterConnection(
        "itest", local_upstream=backend.address, remote_upstream=backend.address,
        plugins=[{"path": str(team_header), "side": "inbound"}])])
    channel = channel_factory(proxy.inbound())
    call_id = str(uuid.uuid4())
    channel.unary_unary(method("Inspect"))(b"", timeout=10, metadata=[(CALL_ID_HEADER, call_id), ("x-team", "ops")])
    assert dict(backend.record(call_id).metadata).get("x-forwarded-team") == "ops"
    with pytest.raises(grpc.RpcError) as refused:
        channel.unary_unary(method("Inspect"))(b"", timeout=10)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "x-team is required" in refused.value.details()
    inspected = subprocess.run([str(proxy_binary()), "plugin", "inspect", str(team_header)],
                               capture_output=True, text=True)
    assert "name:         team-header" in inspected.stdout, inspected
    assert "built with:   Swift " in inspected.stdout and "not Swift" not in inspected.stdout, inspected.stdout


def test_the_published_sdk_resolves_by_url_and_version(tmp_path):
    # SwiftPM names a URL dependency after the last part of its URL: the repository is called s2s-plugin-sdk.
    published = tmp_path / "served" / "s2s-plugin-sdk.git"
    result = run([str(REPO_ROOT / "scripts" / "sdk-publish"), str(published)], cwd=REPO_ROOT)
    header = (SDK / "Sources" / "PluginABI" / "include" / "s2s_plugin.h").read_text()
    major = re.search(r"#define S2S_PLUGIN_ABI_MAJOR (\d+)", header).group(1)
    minor = re.search(r"#define S2S_PLUGIN_ABI_MINOR (\d+)", header).group(1)
    version = f"{major}.{minor}.0"
    assert f"is s2s-plugin-sdk {version}" in result.stdout, result.stdout
    tags = run(["git", "tag"], cwd=published).stdout.split()
    assert tags == [version], tags
    assert (published / "Package.swift").exists() and (published / "Sources" / "PluginKit").is_dir()
    # Publishing the same content again changes nothing.
    again = run([str(REPO_ROOT / "scripts" / "sdk-publish"), str(published)], cwd=REPO_ROOT)
    assert "already published" in again.stdout, again.stdout

    author = tmp_path / "by-url"
    author.mkdir()
    url_line = guide_block("or by URL and version", "swift").strip()
    assert url_line.startswith(".package(url:"), url_line
    manifest = guide_block("### The package", "swift").replace(
        '.package(path: "../s2s-proxy/s2s-plugin-sdk")',
        re.sub(r'url: "[^"]*"', f'url: "file://{published}"', url_line).rstrip(",").replace(
            f'from: "1.1.0"', f'from: "{version}"'))
    (author / "Package.swift").write_text(manifest)
    (author / "Sources" / "TeamHeader").mkdir(parents=True)
    (author / "Sources" / "TeamHeader" / "TeamHeader.swift").write_text(guide_block("### The plugin", "swift"))
    run([swift(), "package", "resolve"], cwd=author)
    resolved = (author / "Package.resolved").read_text()
    assert '"identity" : "s2s-plugin-sdk"' in resolved and f'"version" : "{version}"' in resolved, resolved
