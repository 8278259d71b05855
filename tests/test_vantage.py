"""The vantage check without namespaces: controls on loopback that refuse or answer,
the real `probe run`, and what the JUnit and Prometheus outputs say."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from synthprobe.models import Failure, Reason
from synthprobe.vantage import answered, judge

from .commands import results, run_probe
from .probing import write_config
from .results import make_result


@pytest.mark.parametrize(
    ("fields", "answers"),
    [
        ({"ok": True}, True),
        ({"ok": False, "failure": Failure.SERVER, "reason": Reason.SERVER_STATUS}, True),
        ({"ok": False, "failure": Failure.DNS, "reason": Reason.DNS_NXDOMAIN}, True),
        ({"ok": False, "failure": Failure.DNS, "reason": Reason.DNS_ERROR}, False),
        ({"ok": False, "failure": Failure.NETWORK, "reason": Reason.NETWORK_REFUSED}, False),
        ({"ok": False, "failure": Failure.TIMEOUT, "reason": Reason.TIMEOUT_CONNECT}, False),
    ],
    ids=["ok", "http-error-status", "nxdomain", "resolver-error", "refused", "timeout"],
)
def test_what_counts_as_a_control_answering(fields: dict[str, object], answers: bool) -> None:
    assert answered(make_result(**fields)) is answers  # type: ignore[arg-type]


def test_no_controls_is_never_down() -> None:
    assert not judge([]).down


def run(tmp_path: Path, config: str) -> subprocess.CompletedProcess[str]:
    path = write_config(tmp_path, config)
    out, junit, prom = (str(tmp_path / n) for n in ("r.jsonl", "j.xml", "m.prom"))
    return run_probe("run", str(path), "-o", out, "--junit", junit, "--prom", prom)


def test_every_control_refused_marks_the_failures_and_exits_3(
    tmp_path: Path, refused_url: str
) -> None:
    port = refused_url.rsplit(":", 1)[1]
    done = run(
        tmp_path,
        f"""
settings: {{controls: ["{refused_url}/health", "tcp:127.0.0.1:{port}"]}}
probes:
  - {{name: feed, url: "{refused_url}/v1/feed"}}
""",
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "this machine looks cut off" in done.stdout and "network.refused" in done.stdout
    [line] = results(tmp_path / "r.jsonl")
    assert line["vantage"] == "down"
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    assert suite is not None and (suite.get("skipped"), suite.get("failures")) == ("1", "0")
    assert "synthprobe_vantage_up 0" in (tmp_path / "m.prom").read_text()


def test_a_server_failure_is_never_marked(
    tmp_path: Path, platform_url: str, refused_url: str
) -> None:
    done = run(
        tmp_path,
        f"""
settings: {{controls: ["{refused_url}/health"]}}
probes:
  - {{name: gone, url: "{refused_url}/v1/feed"}}
  - {{name: broken, url: "{platform_url}/fault/status/503"}}
""",
    )
    assert done.returncode == 1  # one failure is not marked: not every failure is local
    lines = {r["probe"]: r for r in results(tmp_path / "r.jsonl")}
    assert lines["gone"]["vantage"] == "down" and "vantage" not in lines["broken"]


def test_a_control_that_answers_marks_nothing(
    tmp_path: Path, platform_url: str, refused_url: str
) -> None:
    done = run(
        tmp_path,
        f"""
settings: {{controls: ["{platform_url}/healthz"]}}
probes:
  - {{name: feed, url: "{refused_url}/v1/feed"}}
""",
    )
    assert done.returncode == 1
    assert "cut off" not in done.stdout
    assert re.search(
        r'^synthprobe_vantage_up\{location="[^"]*"\} 1$', (tmp_path / "m.prom").read_text(), re.M
    )
    assert "vantage" not in (tmp_path / "r.jsonl").read_text()


def test_without_failures_the_controls_are_not_probed(tmp_path: Path, platform_url: str) -> None:
    done = run(
        tmp_path,
        f"""
settings: {{controls: ["http://127.0.0.1:9/never-asked"]}}
probes:
  - {{name: feed, url: "{platform_url}/v1/feed"}}
""",
    )
    assert done.returncode == 0
    assert "synthprobe_vantage_up" not in (tmp_path / "m.prom").read_text().replace(
        "# HELP synthprobe_vantage_up", ""
    ).replace("# TYPE synthprobe_vantage_up", "")
