"""Counts that every human-facing format shows: per kind, per class."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from synthprobe.models import Failure, ProbeResult


@dataclass(slots=True)
class KindCount:
    """Probes of one kind."""

    total: int = 0
    ok: int = 0

    @property
    def state(self) -> str:
        """up (all pass), down (none pass) or degraded."""
        if self.ok == self.total:
            return "up"
        return "down" if self.ok == 0 else "degraded"


@dataclass(slots=True)
class Summary:
    """A run at a glance."""

    total: int = 0
    ok: int = 0
    kinds: dict[str, KindCount] = field(default_factory=dict)
    classes: Counter[str] = field(default_factory=Counter)

    @property
    def failed(self) -> int:
        return self.total - self.ok


def summarize(results: list[ProbeResult]) -> Summary:
    s = Summary()
    for r in results:
        s.total += 1
        s.ok += r.ok
        kc = s.kinds.setdefault(r.kind, KindCount())
        kc.total += 1
        kc.ok += r.ok
        if r.failure is not None:
            s.classes[r.failure.value] += 1
    return s


def summary_json(results: list[ProbeResult], run_id: str, location: str) -> dict[str, Any]:
    """``--format json``: the run's verdict and counts, for scripts (jq) and CI."""
    s = summarize(results)
    return {
        "run_id": run_id,
        "location": location,
        "ok": s.failed == 0,
        "probes": s.total,
        "passed": s.ok,
        "failed": s.failed,
        "kinds": {k: {"state": c.state, "ok": c.ok, "total": c.total} for k, c in s.kinds.items()},
        # the four target classes always; "internal" (our bug) only when it happened
        "failures": {
            f.value: s.classes.get(f.value, 0)
            for f in Failure
            if f is not Failure.INTERNAL or s.classes.get(f.value)
        },
        "failed_probes": [
            {
                "probe": r.probe,
                "kind": r.kind,
                "failure": r.failure.value,
                "reason": r.reason,
                "error": r.error,
            }
            for r in results
            if r.failure is not None
        ],
    }
