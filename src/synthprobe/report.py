"""History -> availability, latency percentiles, failures by class, outage windows.

JSON lines from any number of files (several cron hosts, several locations) are read
streaming, one line at a time. Each (probe, location) keeps only compact arrays
(timestamp, class code, latency, reason id: about 20 bytes a result), so a million-line
history fits in tens of MiB, not in the size of the files.

Definitions (docs/reference.md, "Report"):
- availability = ok / runs, over the results in the window;
- latency percentiles are over successful results, nearest-rank;
- an outage is a run of consecutive failed results of one probe at one location: it
  starts at the first failure's ``ts`` and ends at the ``ts`` of the next success
  (``ongoing`` while none came); its ``failure`` is the class seen most in it;
- a gap is a stretch between two results longer than GAP_FACTOR times the usual
  (median) interval: "no data", counted neither up nor down.
"""

from __future__ import annotations

import bisect
import math
import statistics
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import IO, Any

from synthprobe.models import TARGET_FAILURES, Failure, Slo
from synthprobe.record import BadLine, decode
from synthprobe.slo import Budget, as_json, evaluate
from synthprobe.units import format_utc

GAP_FACTOR = 3.0
"""A silence longer than this many usual intervals is a gap."""
MAX_WARNINGS_PER_FILE = 10
CLASSES = (None, Failure.DNS, Failure.NETWORK, Failure.SERVER, Failure.TIMEOUT)
"""Class codes in the compact arrays: 0 is ok."""
_CODE = {c: i for i, c in enumerate(CLASSES) if c is not None}
MAINTENANCE = -1
"""The code of a maintenance result in a status page's timeline (never in the counts)."""


@dataclass(frozen=True, slots=True)
class Filters:
    """Which results count."""

    since: float | None = None
    """Epoch seconds; results before are ignored."""
    until: float | None = None
    """Epoch seconds; results at or after are ignored."""
    probes: frozenset[str] = frozenset()
    """Probe names; empty means all."""
    kinds: frozenset[str] = frozenset()
    """Kinds; empty means all."""
    locations: frozenset[str] = frozenset()
    """Locations; empty means all."""

    def keep(self, probe: str, kind: str, location: str, ts: float) -> bool:
        return (
            (self.since is None or ts >= self.since)
            and (self.until is None or ts < self.until)
            and (not self.probes or probe in self.probes)
            and (not self.kinds or kind in self.kinds)
            and (not self.locations or location in self.locations)
        )


@dataclass(slots=True)
class Series:
    """Every kept result of one probe at one location, compactly."""

    probe: str
    kind: str
    location: str
    ts: array[float] = field(default_factory=lambda: array("d"))
    codes: array[int] = field(default_factory=lambda: array("b"))
    latency: array[float] = field(default_factory=lambda: array("d"))
    reasons: array[int] = field(default_factory=lambda: array("H"))
    maintenance: array[float] = field(default_factory=lambda: array("d"))
    """Timestamps of results inside maintenance windows: kept apart, never counted."""
    traces: dict[float, str] = field(default_factory=dict)
    """ts -> trace id of each failed result that has one (docs/tracing.md): an outage
    names the trace of its first failure. Failures only: a year of passes costs nothing."""

    def add(self, ts: float, code: int, latency: float, reason: int) -> None:
        self.ts.append(ts)
        self.codes.append(code)
        self.latency.append(latency)
        self.reasons.append(reason)

    def ordered(self) -> list[int]:
        """Indexes by time: files from several hosts arrive in any order."""
        return sorted(range(len(self.ts)), key=self.ts.__getitem__)

    def bad(self, max_latency: float | None) -> array[int]:
        """1 for each result an SLO counts bad: failed, or (with ``max_latency``, seconds)
        slower than that. A success without a total is good: nothing says it was slow."""
        if max_latency is None:
            return array("b", map(bool, self.codes))
        limit = max_latency * 1000
        return array(
            "b",
            (
                1 if code or lat > limit else 0
                for code, lat in zip(self.codes, self.latency, strict=True)
            ),
        )

    def trim(self, since: float) -> None:
        """Forget the results before ``since`` (read only for an SLO's longer window)."""
        keep = [i for i, ts in enumerate(self.ts) if ts >= since]
        self.ts = array("d", (self.ts[i] for i in keep))
        self.codes = array("b", (self.codes[i] for i in keep))
        self.latency = array("d", (self.latency[i] for i in keep))
        self.reasons = array("H", (self.reasons[i] for i in keep))
        self.maintenance = array("d", (ts for ts in self.maintenance if ts >= since))
        self.traces = {ts: t for ts, t in self.traces.items() if ts >= since}


@dataclass(frozen=True, slots=True)
class Outage:
    """A run of consecutive failed results."""

    probe: str
    location: str
    start: float
    end: float | None
    """The next success's ts; None while ongoing."""
    duration_s: float
    failure: Failure
    runs: int
    ongoing: bool
    trace_id: str | None = None
    """The trace of its first failed result, where the line has one."""


@dataclass(frozen=True, slots=True)
class Gap:
    """A stretch with no results: neither up nor down."""

    probe: str
    location: str
    start: float
    end: float
    duration_s: float


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch of results inside maintenance: neither up nor down."""

    probe: str
    location: str
    start: float
    end: float
    """The next counted result's ts, or the last maintenance result's."""
    runs: int


@dataclass(slots=True)
class Stats:
    """Figures for one probe at one location, or for one kind."""

    runs: int = 0
    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    latencies: array[float] = field(default_factory=lambda: array("d"))
    """8 bytes a success: a Python list of floats would take 32."""

    @property
    def availability(self) -> float | None:
        return round(self.ok / self.runs, 6) if self.runs else None

    def percentiles(self) -> dict[str, float | None]:
        ordered = sorted(self.latencies)
        return {f"p{p}": nearest_rank(ordered, p) for p in (50, 95, 99)}


def nearest_rank(ordered: Sequence[float], p: float) -> float | None:
    """The smallest value with at least p% of the values at or below it."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return round(ordered[rank - 1], 3)


@dataclass
class History:
    """All kept results, by (probe, location)."""

    series: dict[tuple[str, str], Series] = field(default_factory=dict)
    reason_names: list[str] = field(default_factory=lambda: [""])
    first: float | None = None
    last: float | None = None
    _reason_ids: dict[str, int] = field(default_factory=lambda: {"": 0})

    def trim(self, since: float) -> None:
        """Forget the results before ``since``: the report's window after an SLO's."""
        for key, series in list(self.series.items()):
            had = len(series.ts) + len(series.maintenance)
            series.trim(since)
            if had and not len(series.ts) + len(series.maintenance):
                del self.series[key]
        firsts = [min(s.ts) for s in self.series.values() if s.ts]
        firsts += [min(s.maintenance) for s in self.series.values() if s.maintenance]
        self.first = min(firsts) if firsts else None
        if self.first is None:
            self.last = None

    def reason_id(self, reason: str | None) -> int:
        if not reason:
            return 0
        found = self._reason_ids.get(reason)
        if found is None:
            found = self._reason_ids[reason] = len(self.reason_names)
            self.reason_names.append(reason)
        return found


def read_history(
    sources: Iterable[tuple[str, IO[bytes]]],
    filters: Filters,
    warn: Callable[[str], None],
) -> History:
    """Stream every line of every source into a History. A torn or malformed line (the
    last line of a file still being written, say) is skipped with a warning naming the
    file and line; it is never fatal. A file in which no line at all is a result is
    another file given by mistake (a config, a log): NotResults, naming it."""
    history = History()
    for name, stream in sources:
        bad = good = 0
        first_bad = ""
        warnings: list[str] = []  # held until the file is known to hold results
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                probe, kind, location, ts, failure, latency, reason, maintained, cut_off, trace = (
                    decode(line)
                )
            except BadLine as exc:
                bad += 1
                first_bad = first_bad or f"line {number}: {exc}"
                if bad <= MAX_WARNINGS_PER_FILE:
                    warnings.append(f"{name}:{number}: skipped malformed line ({exc})")
                continue
            good += 1
            if not filters.keep(probe, kind, location, ts):
                continue
            key = (probe, location)
            series = history.series.get(key)
            if series is None:
                series = history.series[key] = Series(probe, kind, location)
            if cut_off:
                continue  # models.no_data, as decode asked it: nothing about the target
            if maintained:
                series.maintenance.append(ts)
            else:
                code = _CODE[failure] if failure is not None else 0
                series.add(ts, code, latency, history.reason_id(reason))
                if code and trace is not None:
                    series.traces[ts] = trace
            history.first = ts if history.first is None else min(history.first, ts)
            history.last = ts if history.last is None else max(history.last, ts)
        # one bad line alone may be the first result of a fresh file, still being written
        if bad > 1 and not good:
            raise NotResults(name, first_bad)
        for message in warnings:
            warn(message)
        if bad > MAX_WARNINGS_PER_FILE:
            warn(f"{name}: {bad - MAX_WARNINGS_PER_FILE} more malformed lines skipped")
    return history


class NotResults(ValueError):
    """A file with lines, none of them a synthprobe result."""

    def __init__(self, name: str, first_problem: str) -> None:
        super().__init__(
            f"{name}: not a synthprobe results file: no line is a schema-1 result ({first_problem})"
        )
        self.name = name


@dataclass
class Report:
    """Everything ``probe report`` shows."""

    start: float | None
    end: float | None
    probes: list[tuple[Series, Stats]]
    kinds: dict[str, Stats]
    outages: list[Outage]
    gaps: list[Gap]
    timelines: dict[tuple[str, str], list[tuple[float, int, float]]]
    """(probe, location) -> (ts, class code, latency), for the status page; maintenance
    results have the code MAINTENANCE."""
    maintenance: list[Window] = field(default_factory=list)
    """Maintenance windows, apart from the counts."""
    slos: dict[str, Budget] = field(default_factory=dict)
    """Probe name -> its SLO over every location kept (``measure_slos``)."""


def measure_slos(history: History, slos: Mapping[str, Slo], to: float) -> dict[str, Budget]:
    """Each probe with an SLO: its budget over the window ending at ``to``, from the
    results of every location the history kept (maintenance and cut-off results are
    already apart: no data)."""
    by_probe: dict[str, list[Series]] = {}
    for (probe, _location), series in history.series.items():
        if probe in slos:
            by_probe.setdefault(probe, []).append(series)
    return {
        probe: evaluate(
            slos[probe], to, [(s.ts, s.bad(slos[probe].max_latency)) for s in by_probe[probe]]
        )
        for probe in sorted(by_probe)
    }


def analyse(history: History, filters: Filters, keep_timelines: bool = False) -> Report:
    start = filters.since if filters.since is not None else history.first
    end = filters.until if filters.until is not None else history.last
    probes: list[tuple[Series, Stats]] = []
    kinds: dict[str, Stats] = {}
    outages: list[Outage] = []
    gaps: list[Gap] = []
    windows: list[Window] = []
    timelines: dict[tuple[str, str], list[tuple[float, int, float]]] = {}
    for key in sorted(history.series):
        series = history.series[key]
        order = series.ordered()
        stats = Stats()
        kind_stats = kinds.setdefault(series.kind, Stats())
        for i in order:
            code = series.codes[i]
            for target in (stats, kind_stats):
                target.runs += 1
                if code == 0:
                    target.ok += 1
                    if not math.isnan(series.latency[i]):
                        target.latencies.append(series.latency[i])
                else:
                    failure = CLASSES[code]
                    assert failure is not None
                    target.failures[failure.value] += 1
                    reason = history.reason_names[series.reasons[i]]
                    if reason:
                        target.reasons[reason] += 1
        outages.extend(_outages(series, order, end))
        gaps.extend(_gaps(series, order))
        windows.extend(_windows(series))
        probes.append((series, stats))
        if keep_timelines:
            timelines[key] = [(series.ts[i], series.codes[i], series.latency[i]) for i in order]
            timelines[key] += [(ts, MAINTENANCE, math.nan) for ts in series.maintenance]
    outages.sort(key=lambda o: (o.start, o.probe, o.location))
    windows.sort(key=lambda w: (w.start, w.probe, w.location))
    return Report(start, end, probes, kinds, outages, gaps, timelines, windows)


def _windows(series: Series) -> Iterator[Window]:
    """Runs of maintenance results; a counted result between two ends a window."""
    if not series.maintenance:
        return
    counted = sorted(series.ts)
    run: list[float] = []
    for ts in sorted(series.maintenance):
        if run and _counted_between(counted, run[-1], ts):
            yield _window(series, run, counted)
            run = []
        run.append(ts)
    yield _window(series, run, counted)


def _counted_between(counted: list[float], low: float, high: float) -> bool:
    return bisect.bisect_left(counted, high) > bisect.bisect_right(counted, low)


def _window(series: Series, stamps: list[float], counted: list[float]) -> Window:
    i = bisect.bisect_right(counted, stamps[-1])
    end = counted[i] if i < len(counted) else stamps[-1]
    return Window(series.probe, series.location, stamps[0], end, len(stamps))


def _outages(series: Series, order: list[int], end: float | None) -> Iterator[Outage]:
    begin: float | None = None
    classes: Counter[int] = Counter()
    for i in order:
        ts, code = series.ts[i], series.codes[i]
        if code:
            if begin is None:
                begin, classes = ts, Counter()
            classes[code] += 1
        elif begin is not None:
            yield _outage(series, begin, ts, classes, ongoing=False)
            begin = None
    if begin is not None:
        last = max(end if end is not None else begin, series.ts[order[-1]])
        yield _outage(series, begin, last, classes, ongoing=True)


def _first_trace(series: Series, begin: float) -> str | None:
    """The trace of an outage's first failed result (``begin`` is its ts)."""
    return series.traces.get(begin)


def _outage(
    series: Series, begin: float, until: float, classes: Counter[int], ongoing: bool
) -> Outage:
    # most seen; on a tie, the first in class order (dns, network, server, timeout)
    code = max(classes, key=lambda c: (classes[c], -c))
    failure = CLASSES[code]
    assert failure is not None
    return Outage(
        probe=series.probe,
        location=series.location,
        start=begin,
        end=None if ongoing else until,
        duration_s=round(until - begin, 3),
        failure=failure,
        runs=sum(classes.values()),
        ongoing=ongoing,
        trace_id=_first_trace(series, begin),
    )


def _gaps(series: Series, order: list[int]) -> Iterator[Gap]:
    if len(order) < 3:
        return
    times = [series.ts[i] for i in order]
    deltas = [b - a for a, b in pairwise(times)]
    usual = statistics.median(deltas)
    if usual <= 0:
        return
    for a, b in pairwise(times):
        if b - a > GAP_FACTOR * usual:
            yield Gap(series.probe, series.location, a, b, round(b - a, 3))


def utc(epoch: float | None) -> str | None:
    """``2026-11-22T02:10:00Z``, with milliseconds only when there are some."""
    return None if epoch is None else format_utc(epoch, always_ms=False)


def _stats_json(stats: Stats) -> dict[str, Any]:
    return {
        "runs": stats.runs,
        "ok": stats.ok,
        "availability": stats.availability,
        "latency_ms": stats.percentiles(),
        "failures": {f.value: stats.failures.get(f.value, 0) for f in TARGET_FAILURES},
        "top_reasons": [{"reason": r, "count": n} for r, n in stats.reasons.most_common(3)],
    }


def to_json(report: Report) -> dict[str, Any]:
    """The documented shape (docs/reference.md); ``kinds``, ``gaps``, ``top_reasons``,
    ``mttr_s`` and ``longest_outage_s`` are additions."""
    by_probe: dict[tuple[str, str], list[Outage]] = {}
    for o in report.outages:
        by_probe.setdefault((o.probe, o.location), []).append(o)
    probes = []
    slos = {probe: as_json(budget) for probe, budget in report.slos.items()}
    for series, stats in report.probes:
        mine = by_probe.get((series.probe, series.location), [])
        closed = [o.duration_s for o in mine if not o.ongoing]
        probes.append(
            {
                "probe": series.probe,
                "kind": series.kind,
                "location": series.location,
                **_stats_json(stats),
                "mttr_s": round(sum(closed) / len(closed), 3) if closed else None,
                "longest_outage_s": max((o.duration_s for o in mine), default=None),
            }
        )
        if series.probe in slos:  # the probe's, over every location: the same on each row
            probes[-1]["slo"] = slos[series.probe]
    return {
        "from": utc(report.start),
        "to": utc(report.end),
        "probes": probes,
        "kinds": [{"kind": k, **_stats_json(s)} for k, s in sorted(report.kinds.items())],
        "outages": [
            {
                "probe": o.probe,
                "location": o.location,
                "start": utc(o.start),
                "end": utc(o.end),
                "duration_s": o.duration_s,
                "failure": o.failure.value,
                "runs": o.runs,
                "ongoing": o.ongoing,
                # where the first failed result has one (docs/tracing.md)
                **({"trace_id": o.trace_id} if o.trace_id else {}),
            }
            for o in report.outages
        ],
        "gaps": [
            {
                "probe": g.probe,
                "location": g.location,
                "start": utc(g.start),
                "end": utc(g.end),
                "duration_s": g.duration_s,
            }
            for g in report.gaps
        ],
        "maintenance": [
            {
                "probe": w.probe,
                "location": w.location,
                "start": utc(w.start),
                "end": utc(w.end),
                "runs": w.runs,
            }
            for w in report.maintenance
        ],
    }
