"""How tests and benchmarks start the real command: the installed package, in a child
process, exactly as cron or CI would."""

from __future__ import annotations

import sys


def probe_cmd(*args: str) -> list[str]:
    """argv for ``probe ARGS...`` with this interpreter."""
    return [sys.executable, "-m", "synthprobe", *args]
