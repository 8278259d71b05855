"""Faults that need the kernel, made for real inside a network and mount namespace the
test creates (``unshare -n -m``, as root): only a loopback, a route that makes
127.1.0.0/16 unreachable (EHOSTUNREACH), a dnsmasq on 127.0.0.1:53 and a resolv.conf
bind-mounted over /etc/resolv.conf. Only 127.x addresses, even in there."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .commands import probe_cmd
from .probing import write_config
from .realprograms import dnsmasq_command


def _namespaces_allowed() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network and mount namespaces (CI runs as root)"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare (util-linux) and ip (iproute2)"
    done = subprocess.run(["unshare", "-n", "-m", "true"], capture_output=True, timeout=30)
    if done.returncode != 0:
        return f"namespaces not permitted here: {done.stderr.decode().strip()}"
    return None


SKIP = _namespaces_allowed()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


def in_namespace(
    tmp_path: Path, config: str, *args: str, nameserver: str = "127.0.0.1", serve_http: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``probe run`` in a fresh network and mount namespace; results in tmp/r.jsonl."""
    config_path = write_config(tmp_path, config)
    (tmp_path / "resolv.conf").write_text(
        f"nameserver {nameserver}\noptions timeout:1 attempts:1\n"
    )
    dnsmasq = shlex.join(dnsmasq_command(53))
    probe = shlex.join(probe_cmd("run", str(config_path), "-o", str(tmp_path / "r.jsonl"), *args))
    http = ""
    if serve_http:  # a control that answers, inside the namespace
        http = (
            f"{shlex.quote(sys.executable)} -m http.server 8000 --bind 127.0.0.1 "
            f"--directory {shlex.quote(str(tmp_path))} >/dev/null 2>&1 & sleep 1; "
        )
    script = (
        "set -e; ip link set lo up; ip route add unreachable 127.1.0.0/16 table local; "
        f"mount --bind {shlex.quote(str(tmp_path / 'resolv.conf'))} /etc/resolv.conf; "
        f"{dnsmasq} >/dev/null 2>&1 & sleep 0.5; {http}"
        f"set +e; {probe}; code=$?; kill $(jobs -p) 2>/dev/null; exit $code"
    )
    return subprocess.run(
        ["unshare", "-n", "-m", "bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def lines(tmp_path: Path) -> dict[str, dict[str, object]]:
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    return {str(r["probe"]): r for r in rows}


@pytest.mark.slow
def test_system_resolver_and_unreachable(tmp_path: Path) -> None:
    done = in_namespace(
        tmp_path,
        """
probes:
  - {name: dns-web, kind: dns, url: "dns:web.synth.invalid?type=A"}
  - {name: dns-gone, kind: dns, url: "dns:nothing.synth.invalid"}
  - {name: http-gone, url: "http://nothing.synth.invalid/"}
  - {name: http-unreachable, url: "http://127.1.0.1/", timeout: 3s}
""",
    )
    assert "Traceback" not in done.stderr, done.stderr
    got = lines(tmp_path)
    assert got["dns-web"]["ok"] and got["dns-web"]["details"]["answers"] == ["127.0.0.7"]  # type: ignore[index]
    assert got["dns-web"]["details"]["server"] == "127.0.0.1:53"  # type: ignore[index]
    assert got["dns-gone"]["reason"] == "dns.nxdomain"
    assert got["http-gone"]["reason"] == "dns.nxdomain"  # getaddrinfo, through resolv.conf
    assert got["http-unreachable"]["reason"] == "network.unreachable"


CUT_OFF = """
settings:
  controls: ["http://127.1.2.3/", "tcp:127.1.2.4:443", "dns:control.synth.invalid"]
probes:
  - {name: feed, kind: feed, url: "http://127.1.0.1/v1/feed", timeout: 3s}
  - {name: api-dns, kind: dns, url: "dns:api.synth.invalid", timeout: 3s}
"""


@pytest.mark.slow
def test_a_cut_off_machine_exits_3_and_marks_its_failures(tmp_path: Path) -> None:
    # the resolver is unreachable too: nothing outside this machine answers
    done = in_namespace(tmp_path, CUT_OFF, "--format", "changes", nameserver="127.1.0.53")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "this machine looks cut off" in done.stdout
    got = lines(tmp_path)
    assert {r["vantage"] for r in got.values()} == {"down"}
    assert all("event" not in r for r in got.values())  # no events: nothing to tell
    state = json.loads((tmp_path / "r.state.json").read_text())
    assert state["probes"] == {}  # marked results never move the state
    report = subprocess.run(
        probe_cmd("report", str(tmp_path / "r.jsonl"), "--format", "json"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    data = json.loads(report.stdout)
    assert data["outages"] == [] and all(p["runs"] == 0 for p in data["probes"])


@pytest.mark.slow
def test_a_live_control_means_the_platform_is_down(tmp_path: Path) -> None:
    config = CUT_OFF.replace('"http://127.1.2.3/"', '"http://127.0.0.1:8000/"')
    done = in_namespace(tmp_path, config, nameserver="127.1.0.53", serve_http=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cut off" not in done.stdout
    assert all("vantage" not in r for r in lines(tmp_path).values())
