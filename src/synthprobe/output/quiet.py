"""``--format quiet``: one plain line per failed probe, nothing when all pass."""

from __future__ import annotations

from synthprobe.models import ProbeResult


def quiet_lines(results: list[ProbeResult]) -> list[str]:
    """Nothing when all pass; one line per failed probe (cron mails only those)."""
    return [
        f"FAIL {r.probe} {r.kind} {r.reason} {r.url}: {r.error}"
        + (f" (after {r.attempts} attempts)" if r.attempts > 1 else "")
        for r in results
        if not r.ok
    ]
