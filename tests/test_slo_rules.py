"""`probe slo-rules`: the rules promtool accepts, and `promtool test rules` proving that a
30-minute total outage pages, a slow leak only tickets, and a stale or cut-off location
does neither (tests/prometheus/slo.rules_test.yml, over tests/prometheus/slo.yaml)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from synthprobe.cli import app
from synthprobe.models import Failure, Reason
from synthprobe.output.prom import prom_text
from synthprobe.slo import BURN_ALERTS

from .results import make_result
from .test_prometheus_rules import promtool

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tests" / "prometheus" / "slo.yaml"
runner = CliRunner()
PAIR = r"error_ratio:(\w+)\{[^}]*\} > ([\d.e-]+)\s+and \S+:error_ratio:(\w+)\{[^}]*\} > ([\d.e-]+)"
"""(long window, its threshold, short window, its threshold) in an alert's expr."""


def written(tmp_path: Path, config: Path = CONFIG) -> Path:
    rules = tmp_path / "slo.rules.yml"
    result = runner.invoke(app, ["slo-rules", str(config), "-o", str(rules)])
    assert result.exit_code == 0, result.output
    return rules


def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    done = promtool("check", "rules", str(written(tmp_path)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "24 rules found" in done.stdout  # 3 probes: bad, 5 ratios, page, ticket each


@pytest.mark.slow  # promtool evaluates 3 days of rules: about 2 s
def test_outage_pages_leak_tickets_stale_and_cut_off_do_neither(tmp_path: Path) -> None:
    written(tmp_path)
    shutil.copy(ROOT / "tests" / "prometheus" / "slo.rules_test.yml", tmp_path)
    done = promtool("test", "rules", "slo.rules_test.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_thresholds_are_the_reports_windows_and_factors(tmp_path: Path) -> None:
    groups = yaml.safe_load(written(tmp_path).read_text())["groups"]
    [feed] = [g for g in groups if g["name"] == "synthprobe-slo-feed-home"]
    alerts = [r for r in feed["rules"] if "alert" in r]
    assert {r["alert"] for r in alerts} == {"SynthprobeErrorBudgetBurn"}
    found = {
        (r["labels"]["severity"], long, short, float(a), float(b))
        for r in alerts
        for long, a, short, b in re.findall(PAIR, r["expr"])
    }
    want = {
        (a.severity.value, a.long, a.short, a.factor * 0.001, a.factor * 0.001) for a in BURN_ALERTS
    }
    assert {(s, lo, sh, round(x, 9), round(y, 9)) for s, lo, sh, x, y in found} == {
        (s, lo, sh, round(x, 9), round(y, 9)) for s, lo, sh, x, y in want
    }
    assert all(r["labels"]["probe"] == "feed-home" for r in alerts)


def test_rules_use_only_metrics_synthprobe_writes(tmp_path: Path) -> None:
    result = make_result(ok=False, failure=Failure.SERVER, reason=Reason.SERVER_STATUS)
    metrics = set(
        re.findall(r"^# TYPE (\w+) ", prom_text([result], 0.0, "eu-1", True), re.MULTILINE)
    )
    used = set(re.findall(r"\b(synthprobe_[a-z_]+)\b", written(tmp_path).read_text()))
    assert used - metrics == {"synthprobe_slo"}  # the rules' own records: synthprobe_slo:...


def test_max_latency_counts_slow_results_bad(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "probes:\n  - name: a\n    url: http://127.0.0.1/\n"
        "    slo: {objective: 99%, max_latency: 800ms}\n"
    )
    text = written(tmp_path, config).read_text()
    assert 'synthprobe_duration_seconds{probe="a",phase="total"} > bool 0.8' in text


def test_stdout_without_output(tmp_path: Path) -> None:
    result = runner.invoke(app, ["slo-rules", str(CONFIG)])
    assert result.exit_code == 0
    assert yaml.safe_load(result.stdout)["groups"][0]["name"] == "synthprobe-slo-feed-home"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("probes:\n  - {name: a, url: 'http://127.0.0.1/'}\n", "has an slo"),
        (
            "probes:\n  - {name: a, url: 'http://127.0.0.1/', slo: {objective: 99.9}}\n",
            "c.yaml:2: probes[0].slo.objective: 99.9 without %",
        ),
    ],
    ids=["no-slo", "bad-objective"],
)
def test_bad_configs_exit_2(tmp_path: Path, config: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(config)
    result = runner.invoke(app, ["slo-rules", str(path)])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
