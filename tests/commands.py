"""How tests and benchmarks start the real command: the installed package, in a child
process, exactly as cron or CI would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def probe_cmd(*args: str) -> list[str]:
    """argv for ``probe ARGS...`` with this interpreter."""
    return [sys.executable, "-m", "synthprobe", *args]


def run_probe(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``probe ARGS...`` in a child process, as cron would run it: text output captured,
    200 columns so tables do not wrap, ``env`` on top of this environment."""
    return subprocess.run(
        probe_cmd(*args),
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def results(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a results file, parsed."""
    return [json.loads(line) for line in path.read_text().splitlines()]
