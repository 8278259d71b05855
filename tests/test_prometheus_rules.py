"""deploy/prometheus/synthprobe.rules.yml, checked and unit-tested by the real promtool
(Debian's `prometheus` package, which `make test` installs), against series named as
synthprobe's own --prom output names them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from synthprobe.models import Failure, Reason
from synthprobe.output.prom import prom_text

from .results import make_result

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "synthprobe.rules.yml"
PROMTOOL = shutil.which("promtool")


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (`make test` installs Debian's prometheus)")
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_rules_are_valid() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7 rules found" in done.stdout


def test_every_alert_fires_and_holds_back_as_designed() -> None:
    done = promtool("test", "rules", "synthprobe.rules_test.yml", cwd=ROOT / "tests" / "prometheus")
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_use_only_metrics_synthprobe_writes() -> None:
    result = make_result(
        ok=False,
        failure=Failure.SERVER,
        reason=Reason.SERVER_STATUS,
        details={"cert_expires_in_days": 10.5},
    )
    written = set(re.findall(r"^# TYPE (\w+) ", prom_text([result], 0.0, "eu-1"), re.MULTILINE))
    used = set(re.findall(r"\b(synthprobe_\w+)", RULES.read_text()))
    assert used and used <= written, used - written
