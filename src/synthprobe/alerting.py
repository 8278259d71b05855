"""A run's results -> the state file, events, and one message per target.

Not the runner's business nor the writers': the run's recorder (``app/recorder.py``)
asks for each result's ``standing`` as it arrives (its JSON line then carries ``state``,
``since`` and ``event``), and ``finish`` is called once the results are final.

**An event is raised once, and its JSON line is the one that says so.** ``standing``
first applies the result to this run's view of the state (read at the start, without
the lock). When the view says it causes no event, the line goes out without one, and
that result will never raise one later. When the view says it may cause one, the
result is applied to the state file itself, under its lock, at once: another run may
have raised that event meanwhile (the line then says so: no ``event``), or this run
raises it, queues it for every target, and its line carries it. Overlapping runs
therefore write each event in exactly one line in total, as they send it in exactly
one message; a run takes the lock once per event it may raise, not once per result.

``finish``:

1. under the state file's lock: the results the view found uneventful are applied to
   the state as it is now; one that would raise an event there after all (another run
   moved the probe meanwhile) does not move the state, as its line went out without
   an event: the next result decides. A probe still DOWN whose outage was never queued
   for a target configured now (added, or its URL fixed) gets it queued for that target,
   once. Every undelivered event is leased to this run;
2. without the lock: one message per target, each within its time limit;
3. under the lock again: what a target accepted is marked delivered, the rest stays
   pending for the next run, marked late.
"""

from __future__ import annotations

import hashlib
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import FrameType

from synthprobe.alerts import Entry, Event, apply, title
from synthprobe.errors import OutputError
from synthprobe.maintenance import in_maintenance
from synthprobe.models import (
    NO_STANDING,
    EventKind,
    ProbeResult,
    ProbeSpec,
    Settings,
    Standing,
    State,
    Vantage,
    no_data,
)
from synthprobe.notify import DEFAULT_TIMEOUT, send, shown, target_id
from synthprobe.redact import Redactor
from synthprobe.state import Pending, StateData, StateFile, forget_gone
from synthprobe.units import parse_utc

SETTLE_EVERY = 0.5
"""Seconds a line that may carry an event waits, at most, for the locked decision
(``Alerting.settle``): one lock for all such lines of that half second."""
LEASE = 120.0
"""Seconds a run may take to send what it leased; after that another run may send it."""


class _Stop(Exception):
    """SIGTERM while sending: stop, and record what was delivered so far."""


@dataclass(frozen=True, slots=True)
class Finished:
    events: list[Event]
    """Raised by this run, in result order."""
    delivered: int
    """Messages accepted by their targets."""


def default_state_path(output: str) -> str | None:
    """``results.jsonl`` -> ``results.state.json``; None when results go to stdout or
    nowhere (then only ``--state`` or ``settings.state`` turns state on)."""
    import os

    if output in ("-", os.devnull):
        return None
    root, _ext = os.path.splitext(output)
    return f"{root}.state.json"


class Alerting:
    """State and events of one run."""

    def __init__(
        self,
        settings: Settings,
        specs: Sequence[ProbeSpec],
        run_id: str,
        location: str,
        redactor: Redactor,
        warn: Callable[[str], None],
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        path = settings.state or default_state_path(settings.output)
        self.file = StateFile(path, warn) if settings.use_state and path else None
        if self.file is not None:
            self.file.check()
        self.settings = settings
        self.specs = {s.name: s for s in specs}
        self.run_id = run_id
        self.location = location
        self.mask = redactor
        self.warn = warn
        self.timeout = timeout
        self._terminated = False
        """SIGTERM came during finish(): send nothing more."""
        self._sending = False
        self._view = self.file.read() if self.file else StateData()
        self._raised: list[Event] = []
        """Events this run raised (under the lock, in settle)."""
        self._locked: set[tuple[str, str]] = set()
        """(probe, location) whose result settle applied under the lock."""
        self._waiting: list[ProbeResult] = []
        """Results that may raise an event, waiting for settle."""
        self.urls: dict[str, str] = {}
        """target id -> URL, for every target the config names."""
        for url in settings.notify:
            self.urls[target_id(url)] = url
        for spec in specs:
            for url in spec.alert.notify or ():
                self.urls[target_id(url)] = url

    @property
    def enabled(self) -> bool:
        return self.file is not None

    def _maintained(self, result: ProbeResult) -> bool:
        spec = self.specs.get(result.probe)
        if self.settings.maintenance_run:
            return True
        if spec is None or not self.settings.maintenance:
            return False
        return in_maintenance(spec, parse_utc(result.ts), self.settings.maintenance)

    def standing(self, result: ProbeResult, vantage: Vantage | None) -> Standing | None:
        """What the state says of ``result`` for its JSON line; None when it may raise an
        event: its standing then comes from ``settle``."""
        key = (result.probe, result.location)
        entry = self._view.entries.get(key, Entry())
        if self._maintained(result):
            return Standing(State.MAINTENANCE, entry.since or result.ts)
        if self.file is None:
            return NO_STANDING
        if no_data(result, vantage):  # cut off, or our own bug: the state does not move
            return Standing(entry.state, entry.since)
        entry, event = apply(entry, result, self.specs[result.probe].alert)
        if event is None:
            self._view.entries[key] = entry
            return Standing(entry.state, entry.since)
        # it may raise an event: decided under the lock, where overlapping runs see each
        # other, so that only the run that raises it writes it in a line. Such results
        # wait for settle(), which takes the lock once for all of them: one lock per
        # event would rewrite the whole state file once per probe in a mass outage
        self._waiting.append(result)
        return None

    def settle(self) -> list[tuple[ProbeResult, Standing]]:
        """The waiting results, applied under one lock, with their standing (and the
        events this run raised). The recorder calls it every ``SETTLE_EVERY`` seconds
        while probing, and once at the end. When the lock cannot be had, the results
        go out without their events, which the state, unmoved, raises next run."""
        waiting, self._waiting = self._waiting, []
        if not waiting or self.file is None:
            return []
        settled: list[tuple[ProbeResult, Standing]] = []
        try:
            with self.file.update() as data:
                for result in sorted(waiting, key=lambda r: parse_utc(r.ts)):
                    key = (result.probe, result.location)
                    entry, event = apply(
                        data.entries.get(key, Entry()), result, self.specs[result.probe].alert
                    )
                    if event is not None:
                        entry = self._queue(data, entry, event)
                        self._raised.append(event)
                    data.entries[key] = _settled(entry)
                    self._locked.add(key)
                    kind = event.kind if event else None
                    settled.append((result, Standing(entry.state, entry.since, kind)))
        except OutputError as exc:
            # the lines matter more than their events: losing a result is not an option
            self.warn(
                f"{exc}: {len(waiting)} results written without their events "
                "(the next run that can lock the state raises them)"
            )
            return [(r, self._unsettled(r)) for r in waiting]
        self._view = data  # fresher than the run's first view, and the only one kept
        return settled

    def _unsettled(self, result: ProbeResult) -> Standing:
        """The state the result moves the probe to, as the run saw it: no event."""
        entry = self._view.entries.get((result.probe, result.location), Entry())
        entry, _event = apply(entry, result, self.specs[result.probe].alert)
        return Standing(entry.state, entry.since)

    def _queue(self, data: StateData, entry: Entry, event: Event) -> Entry:
        """Put ``event`` in the state's undelivered events for the probe's targets;
        the entry, with the targets its outage was queued for."""
        targets = [target_id(u) for u in self._urls_for(event.probe)]
        if targets:
            ident = hashlib.sha256(
                f"{self.run_id}|{event.probe}|{event.location}|{event.ts}|{event.kind}".encode()
            ).hexdigest()[:16]
            data.pending.append(Pending(ident, event, targets, self.run_id))
        if event.kind is EventKind.DOWN:
            return replace(entry, notified=tuple(targets))
        if event.kind is EventKind.REMINDER:
            return replace(entry, notified=_union(entry.notified, targets))
        return entry

    def finish(self, results: Sequence[ProbeResult]) -> Finished:
        """Update the state with the run's results; deliver what is pending."""
        if self.file is None:
            return Finished([], 0)
        # SIGTERM from here on: a lease written just before it must still be handed back,
        # so the handler is in place before the lease is taken, and only the sending
        # itself is interrupted
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            return self._finish(results)
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self._terminated = True
        if self._sending:
            raise _Stop

    def _finish(self, results: Sequence[ProbeResult]) -> Finished:
        assert self.file is not None
        # the run's view served the JSON lines; the file, read again under the lock, is
        # what counts now (another run may have moved it): 100,000 probes need not
        # hold both
        self._view = StateData()
        leased: list[Pending] = []
        now = time.time()
        with self.file.update() as data:
            moved: list[ProbeResult] = []
            for result in sorted(results, key=lambda r: parse_utc(r.ts)):
                if self._maintained(result) or result.no_data:
                    continue  # counters frozen, no events
                moved.append(result)
                key = (result.probe, result.location)
                if key in self._locked:
                    continue  # applied by settle, under the lock
                entry, event = apply(
                    data.entries.get(key, Entry()), result, self.specs[result.probe].alert
                )
                if event is None:
                    data.entries[key] = _settled(entry)
                # else: another run moved this probe since this run's view, and the line
                # went out without an event; raising one now would be an event no line
                # carries, so this result leaves the state alone
            forget_gone(data, set(self.specs), now)
            self._drop_unknown_targets(data)
            for result in moved:
                if not result.ok:
                    self._catch_up(data, result)
            for pending in data.pending:
                if pending.lease is None or pending.lease < now:
                    pending.lease = now + LEASE
                    leased.append(replace(pending, targets=list(pending.targets)))
        accepted, delivered = self._deliver(leased)
        if leased:
            with self.file.update() as data:
                mine = {p.id for p in leased}
                for pending in data.pending:
                    if pending.id in mine:
                        pending.targets = [
                            t for t in pending.targets if (pending.id, t) not in accepted
                        ]
                        pending.lease = None
                data.pending = [p for p in data.pending if p.targets]
        events = sorted(self._raised, key=lambda e: parse_utc(e.ts))
        return Finished(events, delivered)

    def _catch_up(self, data: StateData, result: ProbeResult) -> None:
        """A probe still DOWN: a target configured now that its outage was never queued
        for (added to the config, or its URL fixed) gets the DOWN, once."""
        key = (result.probe, result.location)
        entry = data.entries.get(key)
        if entry is None or entry.state is not State.DOWN:
            return
        targets = [target_id(u) for u in self._urls_for(result.probe)]
        if entry.notified is None:  # a state file from before this was kept: as told
            data.entries[key] = replace(entry, notified=tuple(targets))
            return
        missing = [t for t in targets if t not in entry.notified]
        if not missing:
            return
        event = Event(
            kind=EventKind.DOWN,
            probe=result.probe,
            probe_kind=result.kind,
            location=result.location,
            ts=result.ts,
            since=entry.since,
            runs=entry.failures,
            reason=result.reason.value if result.reason else None,
            error=result.error,
        )
        ident = hashlib.sha256(
            f"catch-up|{result.probe}|{result.location}|{entry.since}|{'|'.join(missing)}".encode()
        ).hexdigest()[:16]
        data.pending.append(Pending(ident, event, missing, self.run_id))
        data.entries[key] = replace(entry, notified=_union(entry.notified, missing))

    def _urls_for(self, probe: str) -> tuple[str, ...]:
        spec = self.specs.get(probe)
        if spec is not None and spec.alert.notify is not None:
            return spec.alert.notify
        return self.settings.notify

    def _drop_unknown_targets(self, data: StateData) -> None:
        """Targets removed from the config can never accept: forget their events, and
        that they were told (the same URL configured again gets a DOWN still going on)."""
        dropped = 0
        for pending in data.pending:
            known = [t for t in pending.targets if t in self.urls]
            gone = [t for t in pending.targets if t not in self.urls]
            dropped += len(gone)
            pending.targets = known
            key = (pending.event.probe, pending.event.location)
            entry = data.entries.get(key)
            if gone and entry is not None and entry.notified:
                kept = tuple(t for t in entry.notified if t not in gone)
                data.entries[key] = replace(entry, notified=kept)
        data.pending = [p for p in data.pending if p.targets]
        if dropped:
            self.warn(
                f"notify: dropped {dropped} undelivered events of targets no longer "
                "configured (a probe still down tells the targets configured now)"
            )

    def _deliver(self, leased: list[Pending]) -> tuple[set[tuple[str, str]], int]:
        """One message per target; the (event id, target) pairs that were accepted."""
        accepted: set[tuple[str, str]] = set()
        by_target: dict[str, list[Pending]] = {}
        for pending in leased:
            for target in pending.targets:
                by_target.setdefault(target, []).append(pending)
        delivered = 0
        self._sending = True
        try:
            for target, batch in by_target.items():
                if self._terminated:
                    raise _Stop
                url = self.urls[target]
                lines = [self.mask.text(p.event.line(late=p.run_id != self.run_id)) for p in batch]
                if self.settings.status_url:
                    lines.append(f"status: {self.mask.text(self.settings.status_url)}")
                heading = self.mask.text(title(self.location, [p.event for p in batch]))
                outcome = send(url, heading, "\n".join(lines), self.timeout)
                if outcome.ok:
                    delivered += 1
                    accepted.update((p.id, target) for p in batch)
                else:
                    self.warn(
                        f"notify: {shown(url)} did not accept {len(batch)} events "
                        f"({self.mask.text(outcome.problem)}); they stay pending for the next run"
                    )
        except _Stop:
            self.warn("notify: stopped by SIGTERM; undelivered events stay pending")
        finally:
            self._sending = False
        return accepted, delivered


def _settled(entry: Entry) -> Entry:
    """An entry not DOWN has no outage to have told anyone of."""
    if entry.state is not State.DOWN and entry.notified is not None:
        return replace(entry, notified=None)
    return entry


def _union(told: tuple[str, ...] | None, more: Sequence[str]) -> tuple[str, ...]:
    known = list(told or ())
    return tuple(known + [t for t in more if t not in known])
