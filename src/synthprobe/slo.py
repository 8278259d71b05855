"""Service level objectives and error budgets from the probes' own history. Pure: results
in, figures out; the clock is the caller's ``to``.

Definitions (docs/slo.md, the SRE workbook's "Alerting on SLOs"):
- valid results are every result the history keeps: maintenance, a cut-off vantage point
  and our own bugs (``internal.error``) are no data, dropped before this module;
- good = passed (and, with ``max_latency``, ``timings_ms.total`` at most that); bad =
  every other valid result;
- ``burn_rate[W]`` = (bad / valid over [to - W, to)) / (1 - objective);
- an alert of ``BURN_ALERTS`` fires at a result's time t when the burn rates over
  (t - long, t] and (t - short, t] both exceed its factor. The replay, the burn rates and
  the budget see only the SLO window's results: a window is judged on its own.
"""

from __future__ import annotations

import bisect
import enum
import math
import operator
import statistics
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, groupby, pairwise, repeat
from typing import Any

from synthprobe.models import Slo
from synthprobe.objectives import (
    format_window,
    parse_window,
)
from synthprobe.units import format_utc

PLACES = 6
"""Decimal places of every fraction and rate in the JSON."""
BURNDOWN_POINTS = 61
"""Samples of the remaining budget across the window, for the status page."""


class Severity(enum.StrEnum):
    """How an error budget burn alert is routed."""

    PAGE = "page"
    TICKET = "ticket"


@dataclass(frozen=True, slots=True)
class BurnAlert:
    """One multiwindow burn-rate alert: fires while the burn rate over both windows
    exceeds ``factor``."""

    severity: Severity
    long: str
    """The long window (``1h``): the alert is about a real share of the budget."""
    short: str
    """The short window (``5m``): the alert stops soon after the burn does."""
    factor: float

    @property
    def long_s(self) -> float:
        return parse_window(self.long)

    @property
    def short_s(self) -> float:
        return parse_window(self.short)


BURN_ALERTS = (
    BurnAlert(Severity.PAGE, "1h", "5m", 14.4),
    BurnAlert(Severity.PAGE, "6h", "30m", 6.0),
    BurnAlert(Severity.TICKET, "3d", "6h", 1.0),
)
"""The SRE workbook's table 5-8 (2% of a 30-day budget in 1h, 5% in 6h, 10% in 3 days):
the report's replay and the rules of ``probe slo-rules`` both read it."""
BURN_WINDOWS = ("1h", "6h", "1d", "3d")
"""The burn rates the report shows; ``1d`` also predicts exhaustion."""


@dataclass(frozen=True, slots=True)
class AlertSpan:
    """A stretch of time over which an alert would have been firing."""

    alert: BurnAlert
    start: float
    """The time of the first result at which it fired."""
    end: float | None
    """The time of the first result at which it no longer fired; None: firing at ``to``."""


@dataclass(frozen=True, slots=True)
class Budget:
    """One probe's SLO over one window."""

    slo: Slo
    start: float
    end: float
    valid: int
    good: int
    bad: int
    sli: float | None
    """good / valid; None with no valid result."""
    allowed_bad: float
    consumed: float | None
    """bad / allowed_bad (may pass 1); None with no valid result."""
    remaining: float | None
    exhausted: bool
    burn_rate: dict[str, float | None]
    exhaustion: float | None
    """When the budget runs out at the last day's burn rate; None if it does not."""
    coverage: float | None
    """valid / the results expected at each location's own interval, at most 1."""
    alerts: tuple[AlertSpan, ...]
    burndown: tuple[tuple[float, float], ...]
    """(time, remaining budget) across the window; empty with no valid result."""


Location = tuple[Sequence[float], Sequence[int]]
"""One location's valid results: times and a bad flag (1 bad, 0 good) each."""


def evaluate(slo: Slo, to: float, locations: Sequence[Location]) -> Budget:
    """The budget of one probe whose results at each location are ``locations`` (any
    order), over the window ending at ``to``. Results outside [to - window, to) are left out."""
    start = to - slo.window
    every: list[float] = []
    marked: list[int] = []
    expected = 0.0
    for ts, marks in locations:
        order = sorted(range(len(ts)), key=ts.__getitem__)
        ordered = [ts[i] for i in order]
        lo, hi = bisect.bisect_left(ordered, start), bisect.bisect_left(ordered, to)
        expected += _expected(slo.window, ordered[lo:hi])
        every += ordered[lo:hi]
        marked += [1 if marks[i] else 0 for i in order[lo:hi]]
    # each location is in order already: the sort merges runs
    order = sorted(range(len(every)), key=every.__getitem__)
    times = array("d", [every[i] for i in order])
    cum = array("q", accumulate((marked[i] for i in order), initial=0))
    del every, marked, order
    valid, bad = len(times), cum[-1]
    fraction = _budget_fraction(slo.objective)
    allowed = fraction * valid
    consumed = bad / allowed if valid else None
    remaining = 1 - consumed if consumed is not None else None
    exhausted = remaining is not None and remaining <= 0
    burn: dict[str, float | None] = {}
    for name in BURN_WINDOWS:
        lo = bisect.bisect_left(times, to - parse_window(name))
        n = valid - lo
        burn[name] = (cum[valid] - cum[lo]) / n / fraction if n else None
    day = burn["1d"]
    exhaustion = None
    if remaining is not None and not exhausted and day:
        exhaustion = to + remaining * slo.window / day
    return Budget(
        slo=slo,
        start=start,
        end=to,
        valid=valid,
        good=valid - bad,
        bad=bad,
        sli=(valid - bad) / valid if valid else None,
        allowed_bad=allowed,
        consumed=consumed,
        remaining=remaining,
        exhausted=exhausted,
        burn_rate=burn,
        exhaustion=exhaustion,
        coverage=min(1.0, valid / expected) if expected else None,
        alerts=tuple(_replay_all(fraction, times, cum)),
        burndown=_burndown(start, to, times, cum, allowed) if valid else (),
    )


def _budget_fraction(objective: float) -> float:
    # 1 - 0.999 is 0.0010000000000000009 in binary: keep the objective's own digits
    return round(1 - objective, 12)


def _expected(window: float, ordered: list[float]) -> float:
    """Results a location would have had over the window at its own (median) interval."""
    if len(ordered) < 2:
        return float(len(ordered))
    usual = statistics.median(b - a for a, b in pairwise(ordered))
    return window / usual if usual > 0 else float(len(ordered))


def _replay_all(fraction: float, times: array[float], cum: array[int]) -> list[AlertSpan]:
    """Every alert of ``BURN_ALERTS`` evaluated at each result's time, as Prometheus
    would at each scrape. A million results a report: the loops are ``map`` over C
    functions, not Python bytecode per result."""
    live = [a for a in BURN_ALERTS if a.factor * fraction < 1]
    if not times or cum[-1] == 0 or not live:
        return []  # nothing bad, or factors no share of bad results can exceed
    n = len(times)
    stamps = times.tolist()  # bisect compares a list's floats without making them anew
    # his[i]: past every result at times[i] (one instant, several locations, is one)
    if len(set(stamps)) == n:
        his: Sequence[int] = range(1, n + 1)
    else:
        his = list(map(bisect.bisect_right, repeat(stamps, n), stamps))
    bad_to = list(map(cum.__getitem__, his))
    # per window: (bad results, results) in (t - W, t] at each result's time t
    inside: dict[str, tuple[list[int], list[int]]] = {}
    for name in {w for a in live for w in (a.long, a.short)}:
        shifted = map(operator.sub, stamps, repeat(parse_window(name), n))
        starts = list(map(bisect.bisect_right, repeat(stamps, n), shifted))
        bad = list(map(operator.sub, bad_to, map(cum.__getitem__, starts)))
        inside[name] = (bad, list(map(operator.sub, his, starts)))
    spans: list[AlertSpan] = []
    for alert in live:
        threshold = alert.factor * fraction  # bad/valid above this burns above the factor
        over = [
            list(map(operator.gt, bad, map(operator.mul, count, repeat(threshold, n))))
            for bad, count in (inside[alert.short], inside[alert.long])
        ]
        index = 0
        for firing, run in groupby(map(operator.and_, *over)):
            length = len(list(run))
            if firing:
                after = index + length
                spans.append(AlertSpan(alert, times[index], times[after] if after < n else None))
            index += length
    return spans


def _burndown(
    start: float, end: float, times: array[float], cum: array[int], allowed: float
) -> tuple[tuple[float, float], ...]:
    step = (end - start) / (BURNDOWN_POINTS - 1)
    points = []
    for k in range(BURNDOWN_POINTS):
        t = start + k * step
        spent = cum[bisect.bisect_right(times, t)]
        points.append((t, 1 - spent / allowed if allowed else 1.0))
    return tuple(points)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, PLACES)


def as_json(budget: Budget) -> dict[str, Any]:
    """The ``slo`` object of ``probe report --format json`` (docs/reference.md)."""
    return {
        "objective": budget.slo.objective,
        "window": format_window(budget.slo.window),
        **({"max_latency_ms": budget.slo.max_latency * 1000} if budget.slo.max_latency else {}),
        "from": _utc(budget.start),
        "to": _utc(budget.end),
        "valid": budget.valid,
        "good": budget.good,
        "bad": budget.bad,
        "sli": _round(budget.sli),
        "budget": {
            "allowed_bad": _round(budget.allowed_bad),
            "consumed": _round(budget.consumed),
            "remaining": _round(budget.remaining),
        },
        "burn_rate": {k: _round(v) for k, v in budget.burn_rate.items()},
        "exhaustion": _utc(None if budget.exhaustion is None else round(budget.exhaustion)),
        "exhausted": budget.exhausted,
        "coverage": _round(budget.coverage),
        "alerts": [
            {
                "severity": span.alert.severity.value,
                "long": span.alert.long,
                "short": span.alert.short,
                "factor": span.alert.factor,
                "start": _utc(span.start),
                "end": _utc(span.end),
            }
            for span in budget.alerts
        ],
    }


def _utc(epoch: float | None) -> str | None:
    if epoch is None or not math.isfinite(epoch):
        return None
    try:
        return format_utc(epoch, always_ms=False)
    except (OverflowError, ValueError, OSError):  # past year 9999: a burn so slow it is never
        return None
