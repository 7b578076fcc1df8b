"""The operator's first hour, run as a newcomer would: `scripts/run-dev` itself (two Temporal dev servers, proxy A as
mux-client and proxy B as mux-server over mutual TLS, namespace renaming and an ACL on B), then every command it
prints, then Ctrl-C. Against the metrics of that running pair, the shipped Grafana dashboard and Prometheus rules
(deploy/) must name only metrics the proxies export, and the rules must pass promtool (installed by .ci/run).

The script runs with its ports moved by an offset where all of them are free, the test's proxy binary, and a
private work directory; everything else is what a user gets."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from proxy_process import REPO_ROOT, proxy_binary
from temporal_server import cli_env, temporal_binary

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "s2s-proxy.json"
RULES = REPO_ROOT / "deploy" / "prometheus" / "s2s-proxy-alerts.yaml"
RULE_TESTS = REPO_ROOT / "deploy" / "prometheus" / "s2s-proxy-alerts.test.yaml"
PROMETHEUS_DEMO = REPO_ROOT / "deploy" / "prometheus" / "prometheus-demo.yml"
# Every port of examples/two-clusters and the dev servers run-dev starts (each Temporal port + 10 and + 20).
EXAMPLE_PORTS = [7233, 7243, 7253, 8233, 8243, 8253, 6233, 8333, 6334, 6240, 6241, 6290, 8340, 8341, 8390]
UP_TIMEOUT = 300
METRIC = re.compile(r"\b((?:temporal_s2s_proxy|s2s_proxy|s2s_plugin)_[a-z0-9_]+)")


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_offset() -> int:
    """An offset that moves every example port onto a free one (not a guarantee against a race; good enough)."""
    for offset in range(21000, 40000, 137):
        if all(port_free(p + offset) for p in EXAMPLE_PORTS):
            return offset
    raise RuntimeError("no free range of ports for the demo")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class Demo:
    """`scripts/run-dev` running until `ctrl_c()`; `output` is what it printed."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.offset = free_offset()
        self.log = workdir / "run-dev.out"
        env = cli_env(workdir)
        env.update({
            "S2S_PROXY_BIN": str(proxy_binary()),
            "S2S_DEV_DIR": str(workdir / "dev"),
            "S2S_DEV_PORT_OFFSET": str(self.offset),
            "TEMPORAL": temporal_binary(),
        })  # fmt: skip
        with open(self.log, "wb") as out:
            # A session of its own, as in a terminal: Ctrl-C reaches the script and everything it started.
            self.process = subprocess.Popen(
                [str(REPO_ROOT / "scripts" / "run-dev")], cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + UP_TIMEOUT
        while "s2s-proxy demo is up" not in self.output:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"scripts/run-dev did not come up:\n{self.output}\n{self.logs()}")
            time.sleep(1)

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def port(self, example_port: int) -> int:
        return example_port + self.offset

    def logs(self) -> str:
        parts = []
        for path in sorted((self.workdir / "dev" / "logs").glob("*.log")):
            parts.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-30:]))
        return "\n".join(parts)

    def printed_commands(self) -> list[str]:
        """The command lines run-dev printed for the user to try (temporal and curl)."""
        return [line.strip() for line in self.output.splitlines() if re.match(r"\s+(\S*temporal |curl )", line)]

    def ctrl_c(self) -> int | None:
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    running = Demo(tmp_path_factory.mktemp("demo"))
    yield running
    if running.process.poll() is None:
        running.kill()


def run_printed(demo: Demo, command: str) -> subprocess.CompletedProcess:
    argv = shlex.split(command.split("  #")[0])
    if argv[0].endswith("temporal"):
        argv[0] = temporal_binary()
    return subprocess.run(argv, cwd=REPO_ROOT, env=cli_env(demo.workdir), capture_output=True, text=True, timeout=60)


def scrape(demo: Demo) -> set[str]:
    """Every metric name the two proxies export: families (# TYPE) and sample names (with _bucket, _sum, ...)."""
    names: set[str] = set()
    for example_port in (6290, 8390):
        status, text = get(f"http://127.0.0.1:{demo.port(example_port)}/metrics")
        assert status == 200, text
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                names.add(line.split()[2])
            elif line and not line.startswith("#"):
                names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_the_printed_commands_show_a_workflow_crossing_renamed_and_a_call_refused(demo):
    commands = demo.printed_commands()
    temporal_commands = [c for c in commands if not c.startswith("curl")]
    assert len(temporal_commands) == 6, demo.output
    start, describe, refused, namespaces, back, described_in_a = (run_printed(demo, c) for c in temporal_commands)

    # Started through proxy A under cluster A's name ...
    assert start.returncode == 0, start.stderr
    assert "orders" in start.stdout and "demo-1" in start.stdout
    # ... and there in cluster B, asked directly, under B's name.
    assert describe.returncode == 0, describe.stderr
    assert re.search(r"Namespace\s+orders-b\b", describe.stdout), describe.stdout
    assert "demo-1" in describe.stdout
    # B's other namespace is refused by proxy B's ACL, with its message.
    assert refused.returncode != 0
    assert "not allowed by namespace access control" in refused.stderr + refused.stdout
    # Proxy B's log says which chain entry ended the call.
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in (demo.workdir / "dev" / "logs" / "proxy-b.log").read_text().splitlines()
                 if "call failed in proxy" in line and "status=PERMISSION_DENIED" in line]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert lines and "plugin=acl" in lines[-1] and "entry=clusterConnections[0].plugins[1]" in lines[-1], lines
    # The namespace list through the tunnel: B's orders-b under A's name, billing left out.
    assert namespaces.returncode == 0, namespaces.stderr
    names = re.findall(r"NamespaceInfo\.Name\s+(\S+)", namespaces.stdout)
    assert names == ["orders"], namespaces.stdout
    # The other way: started by cluster B's side under B's name, there in cluster A under A's name.
    assert back.returncode == 0, back.stderr
    assert described_in_a.returncode == 0, described_in_a.stderr
    assert re.search(r"Namespace\s+orders\b", described_in_a.stdout) and "demo-3" in described_in_a.stdout


def test_the_printed_health_connections_and_metrics_urls_answer(demo):
    urls = [re.search(r"http://\S+", c).group(0) for c in demo.printed_commands() if c.startswith("curl")]
    assert len(urls) == 4, demo.output
    for url in urls:
        status, body = get(url)
        assert status == 200, f"{url}: {status} {body[:300]}"
    connections = json.loads(get(next(u for u in urls if u.endswith("/debug/connections")))[1])["connections"]
    assert connections[0]["name"] == "b-from-a"
    assert "mux" in {listener["role"] for listener in connections[0]["listeners"]}


def test_the_dashboard_names_only_metrics_the_proxies_export(demo):
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(expressions) >= 20
    exported = scrape(demo)
    named = {name for expr in expressions for name in METRIC.findall(expr)}
    named |= {name for var in dashboard["templating"]["list"] for name in METRIC.findall(json.dumps(var))}
    assert named, "the dashboard's queries name no metric"
    assert not named - exported, f"not exported: {sorted(named - exported)}"
    # Every query is PromQL that Prometheus parses (Grafana's variables as a query would resolve them).
    promtool = shutil.which("promtool")
    if promtool:
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:query_{index}", "expr": expr.replace("$__rate_interval", "5m")
             .replace("$instance", ".*").replace("$connection", ".*")}
            for index, expr in enumerate(expressions)
        ]}]}  # fmt: skip
        path = demo.workdir / "dashboard-queries.yaml"
        path.write_text(yaml.safe_dump(rules))
        check = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


def test_the_alert_rules_name_only_exported_metrics_and_pass_promtool(demo):
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = [rule for group in groups for rule in group["rules"]]
    assert {rule["alert"] for rule in alerts} >= {
        "S2SProxyNoMuxSession", "S2SProxyHealthCheckFailing", "S2SProxyCallsFailingInProxy",
        "S2SProxyReplicationStreamsEnded",
    }  # fmt: skip
    exported = scrape(demo)
    named = {name for rule in alerts for name in METRIC.findall(rule["expr"])}
    assert not named - exported, f"not exported: {sorted(named - exported)}"
    # The demo's Prometheus scrapes the example proxies' metrics listeners.
    targets = {target for job in yaml.safe_load(PROMETHEUS_DEMO.read_text())["scrape_configs"]
               for group in job["static_configs"] for target in group["targets"]}  # fmt: skip
    examples = {yaml.safe_load((REPO_ROOT / "examples" / "two-clusters" / f"proxy-{side}.yaml").read_text())
                ["metrics"]["prometheus"]["listenAddress"] for side in "ab"}  # fmt: skip
    assert targets == examples
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool is not installed (Debian prometheus; .ci/run installs it)")
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    config = subprocess.run([promtool, "check", "config", str(PROMETHEUS_DEMO)], capture_output=True, text=True)
    assert config.returncode == 0, config.stdout + config.stderr
    unit = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True,
                          cwd=RULE_TESTS.parent)
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_a_port_in_use_is_named_at_once(tmp_path):
    offset = free_offset()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 8233 + offset))  # cluster B's frontend
        taken.listen()
        env = cli_env(tmp_path)
        env.update({"S2S_PROXY_BIN": str(proxy_binary()), "S2S_DEV_DIR": str(tmp_path / "dev"),
                    "S2S_DEV_PORT_OFFSET": str(offset), "TEMPORAL": temporal_binary()})  # fmt: skip
        result = subprocess.run([str(REPO_ROOT / "scripts" / "run-dev")], cwd=REPO_ROOT, env=env, capture_output=True,
                                text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"127.0.0.1:{8233 + offset} is in use" in result.stderr
    assert "S2S_DEV_PORT_OFFSET" in result.stderr
    assert not (tmp_path / "dev" / "logs" / "cluster-a.log").exists(), "nothing was started"


def test_ctrl_c_stops_everything_it_started(demo):
    assert demo.ctrl_c() is not None, "run-dev did not exit within 60 s of Ctrl-C"
    deadline = time.monotonic() + 30
    busy = EXAMPLE_PORTS
    while time.monotonic() < deadline:
        busy = [p for p in EXAMPLE_PORTS if not port_free(demo.port(p))]
        if not busy:
            break
        time.sleep(0.5)
    assert not busy, f"still listening after Ctrl-C: {[demo.port(p) for p in busy]}"
