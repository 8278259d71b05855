"""``probe slo-rules``: each probe's SLO as Prometheus recording and alerting rules.

Over the series that ``--prom`` writes, counting locations as the shipped rules
(deploy/prometheus/synthprobe.rules.yml) do: a location's results count while its file
is fresh (written within 10 minutes) and its run did not find itself cut off
(``synthprobe_vantage_up 0``); ``internal.error`` writes no ``synthprobe_up`` at all. So
maintenance-free no data stays no data here as in ``probe report``.

The error ratio over a window is bad samples / samples of every counted location, the
scrape standing in for the result. The alerts are ``slo.BURN_ALERTS``: the windows and
factors ``probe report`` replays.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from synthprobe.models import ProbeSpec, Slo
from synthprobe.objectives import format_objective, format_window
from synthprobe.slo import BURN_ALERTS, BurnAlert

FRESH_S = 600
"""A location's file older than this says nothing now (as in the shipped rules)."""
ALERT = "SynthprobeErrorBudgetBurn"


def _windows() -> list[str]:
    """Every window an alert reads, shortest first."""
    names = {a.long: a.long_s for a in BURN_ALERTS} | {a.short: a.short_s for a in BURN_ALERTS}
    return sorted(names, key=names.__getitem__)


def _bad(probe: str, slo: Slo) -> str:
    """1 for a counted location whose last result was bad, 0 for a good one."""
    who = f"probe={json.dumps(probe)}"
    bad = f"(1 - synthprobe_up{{{who}}})"
    if slo.max_latency is not None:
        # slower than max_latency is bad too; a result without a total is judged by up
        slow = f'synthprobe_duration_seconds{{{who},phase="total"}} > bool {slo.max_latency:g}'
        bad = (
            f"clamp_max({bad} + on (instance, job, location, probe, kind) ({slow}), 1)\n  or {bad}"
        )
    return (
        f"({bad})\n"
        "  and on (instance, job, location)\n"
        f"    (time() - synthprobe_last_run_timestamp_seconds < {FRESH_S})\n"
        "  unless on (instance, job, location)\n"
        "    (synthprobe_vantage_up == 0)"
    )


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())


def _threshold(alert: BurnAlert, slo: Slo) -> str:
    return f"{round(alert.factor * round(1 - slo.objective, 12), 12):g}"


def _group(probe: str, slo: Slo) -> list[str]:
    who = f"probe={json.dumps(probe)}"
    # the series carry probe already; said again, each probe's rules are distinct to
    # promtool's linter, which refuses one record name with the same labels twice
    label = f"        labels: {{probe: {json.dumps(probe)}}}"
    lines = [
        f"  - name: {json.dumps(f'synthprobe-slo-{probe}')}",
        "    rules:",
        f"      # {probe}: {format_objective(slo.objective)} of valid results good over "
        f"{format_window(slo.window)}"
        + (f", good meaning passed within {slo.max_latency:g}s" if slo.max_latency else ""),
        "      - record: synthprobe_slo:bad:fresh",
        "        expr: |",
        _indent(_bad(probe, slo), 10),
        label,
    ]
    for window in _windows():
        lines += [
            f"      - record: synthprobe_slo:error_ratio:{window}",
            "        expr: |",
            _indent(
                f"sum by (probe) (sum_over_time(synthprobe_slo:bad:fresh{{{who}}}[{window}]))\n"
                "  /\n"
                f"sum by (probe) (count_over_time(synthprobe_slo:bad:fresh{{{who}}}[{window}]))",
                10,
            ),
            label,
        ]
    for severity in dict.fromkeys(a.severity for a in BURN_ALERTS):
        pairs = [a for a in BURN_ALERTS if a.severity is severity]
        expr = "\nor\n".join(
            f"(synthprobe_slo:error_ratio:{a.long}{{{who}}} > {_threshold(a, slo)}\n"
            f"  and synthprobe_slo:error_ratio:{a.short}{{{who}}} > {_threshold(a, slo)})"
            for a in pairs
        )
        burns = " or ".join(f"{a.factor:g}x over {a.long} and {a.short}" for a in pairs)
        lines += [
            f"      - alert: {ALERT}",
            "        expr: |",
            _indent(expr, 10),
            "        labels:",
            f"          probe: {json.dumps(probe)}",
            f"          severity: {severity.value}",
            "        annotations:",
            "          summary: "
            + json.dumps(
                f"{probe} burns its error budget ({format_objective(slo.objective)} over "
                f"{format_window(slo.window)}) {burns}: "
                "{{ $value | humanizePercentage }} of results bad over the long window"
            ),
        ]
    return lines


def slo_rules(probes: Iterable[ProbeSpec]) -> str:
    """The rules file for every probe with an ``slo``, in config order."""
    out = [
        "# Written by `probe slo-rules`: error budget burn alerts (the SRE workbook's",
        "# multiwindow, multi-burn-rate alerts) over the series `probe run --prom` writes.",
        "# Load it beside deploy/prometheus/synthprobe.rules.yml (docs/slo.md).",
        "groups:",
    ]
    for spec in probes:
        if spec.slo is not None:
            out += _group(spec.name, spec.slo)
    return "\n".join(out) + "\n"
