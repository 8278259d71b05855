"""Pure: consecutive results -> a probe's state (up, pending, down) and events.

Gatus's threshold semantics: ``failure_threshold`` consecutive failures make a probe
DOWN, ``success_threshold`` consecutive passes make a DOWN probe UP again; a pass resets
the failure count and a failure the pass count. A probe that was never DOWN has no
``up`` event. The clock is the results' own ``ts``: replaying the same results gives
the same states and events, whichever run applies them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from synthprobe.models import AlertRule, EventKind, ProbeResult, State
from synthprobe.units import format_span, parse_utc


@dataclass(frozen=True, slots=True)
class Entry:
    """What the state file keeps of one (probe, location)."""

    state: State = State.UP
    since: str | None = None
    """When ``state`` began: for DOWN and PENDING, the first failure of the streak."""
    failures: int = 0
    """Consecutive failed results."""
    successes: int = 0
    """Consecutive passing results."""
    last_ts: str | None = None
    """The newest result applied; an older one does not move the entry."""
    last_notice: str | None = None
    """When the last event (down, reminder) was raised."""
    notified: tuple[str, ...] | None = None
    """While DOWN: the notify targets (ids) this outage was queued for. A target
    configured later (added, or its URL fixed) gets the DOWN once, late. None: a state
    file older than this field (its targets are taken as told)."""


@dataclass(frozen=True, slots=True)
class Event:
    """A change worth telling someone about."""

    kind: EventKind
    probe: str
    probe_kind: str
    location: str
    ts: str
    """The result that caused it."""
    since: str | None
    """DOWN and reminders: the first failure; UP: when it went down."""
    runs: int
    """Consecutive failed results so far (DOWN, reminder)."""
    reason: str | None
    error: str | None
    trace_id: str | None = None
    """The W3C trace of the result that caused it: the backend's trace of the failed
    request (docs/tracing.md); None when that probe's ``trace_context`` is false, or an
    event queued by a version before it."""

    def line(self, late: bool = False) -> str:
        """One line for people: the message body and ``--format changes``; it ends with
        ``trace <id>``, for the person paged to find the backend's own trace."""
        since = f"since {self.since[11:19]}Z" if self.since else ""
        when = " (late)" if late else ""
        trace = f" trace {self.trace_id}" if self.trace_id else ""
        if self.kind is EventKind.UP:
            took = ""
            if self.since:
                took = f" after {format_span(parse_utc(self.ts) - parse_utc(self.since))}"
            return f"UP {self.probe} ({self.probe_kind}) {self.location}{took}{when}{trace}"
        word = "DOWN" if self.kind is EventKind.DOWN else "STILL DOWN"
        runs = f"{self.runs} run" + ("s" if self.runs != 1 else "")
        return (
            f"{word} {self.probe} ({self.probe_kind}) {self.location} {self.reason}: "
            f"{self.error}, {since} ({runs}){when}{trace}"
        )


def apply(entry: Entry, result: ProbeResult, rule: AlertRule) -> tuple[Entry, Event | None]:
    """The entry after ``result``, and the event it caused. A result not newer than the
    entry's last one changes nothing (an overlapping run got there first)."""
    if entry.last_ts is not None and parse_utc(result.ts) <= parse_utc(entry.last_ts):
        return entry, None
    ts = result.ts
    if result.ok:
        entry = replace(entry, successes=entry.successes + 1, failures=0, last_ts=ts)
        if entry.state is State.DOWN and entry.successes >= rule.success_threshold:
            went_down = entry.since
            entry = replace(entry, state=State.UP, since=ts)
            if rule.send_resolved:
                return entry, event_for(EventKind.UP, result, went_down, 0)
            return entry, None
        if entry.state is State.PENDING or entry.since is None:
            entry = replace(entry, state=State.UP, since=ts)
        return entry, None
    streak_start = entry.since if entry.state is State.PENDING and entry.since else ts
    entry = replace(entry, failures=entry.failures + 1, successes=0, last_ts=ts)
    if entry.state is State.DOWN:
        if rule.remind_every is not None and _due(entry.last_notice, ts, rule.remind_every):
            entry = replace(entry, last_notice=ts)
            return entry, event_for(EventKind.REMINDER, result, entry.since, entry.failures)
        return entry, None
    if entry.failures >= rule.failure_threshold:
        entry = replace(entry, state=State.DOWN, since=streak_start, last_notice=ts)
        return entry, event_for(EventKind.DOWN, result, streak_start, entry.failures)
    return replace(entry, state=State.PENDING, since=streak_start), None


def _due(last: str | None, now: str, every: float) -> bool:
    return last is None or parse_utc(now) - parse_utc(last) >= every


def event_for(kind: EventKind, result: ProbeResult, since: str | None, runs: int) -> Event:
    """The event ``result`` causes (also ``probe watch``'s lines)."""
    return Event(
        kind=kind,
        probe=result.probe,
        probe_kind=result.kind,
        location=result.location,
        ts=result.ts,
        since=since,
        runs=runs,
        reason=result.reason.value if result.reason else None,
        error=result.error,
        trace_id=result.trace_id,
    )


def title(location: str, events: list[Event]) -> str:
    """``synthprobe eu-1: 2 down, 1 up``."""
    counts = {k: sum(1 for e in events if e.kind is k) for k in EventKind}
    parts = [
        f"{counts[EventKind.DOWN]} down" if counts[EventKind.DOWN] else "",
        f"{counts[EventKind.REMINDER]} still down" if counts[EventKind.REMINDER] else "",
        f"{counts[EventKind.UP]} up" if counts[EventKind.UP] else "",
    ]
    return f"synthprobe {location}: " + ", ".join(p for p in parts if p)
