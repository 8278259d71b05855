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

The rules are the ledger's (``ledger.py``, pure: a result applied to the state), the
undelivered events the outbox's (``outbox.py``: queue, catch-up, lease, delivery);
this module holds the run's own bookkeeping and the state file's lock around them.
Every line this module, the outbox and the state file print goes through the run's
redactor.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from synthprobe.alerts import Event
from synthprobe.errors import OutputError
from synthprobe.ledger import Ledger, in_order, key_of
from synthprobe.models import NO_STANDING, ProbeResult, ProbeSpec, Settings, Standing, Vantage
from synthprobe.notify import DEFAULT_TIMEOUT
from synthprobe.outbox import Outbox
from synthprobe.redact import Redactor
from synthprobe.state import Key, StateData, StateFile
from synthprobe.units import parse_utc

SETTLE_EVERY = 0.5
"""Seconds a line that may carry an event waits, at most, for the locked decision
(``Alerting.settle``): one lock for all such lines of that half second."""


@dataclass(frozen=True, slots=True)
class Finished:
    events: list[Event]
    """Raised by this run, in result order."""
    delivered: int
    """Messages accepted by their targets."""


def default_state_path(output: str) -> str | None:
    """``results.jsonl`` -> ``results.state.json``; None when results go to stdout or
    nowhere (then only ``--state`` or ``settings.state`` turns state on)."""
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
        self.mask = redactor
        self._warn = warn
        path = settings.state or default_state_path(settings.output)
        self.file = StateFile(path, warn, redactor.text) if settings.use_state and path else None
        if self.file is not None:
            self.file.check()
        self.ledger = Ledger(settings, specs)
        self.outbox = Outbox(settings, specs, run_id, location, redactor, warn, timeout)
        self._view = self.file.read() if self.file else StateData()
        self._raised: list[Event] = []
        """Events this run raised (under the lock, in settle)."""
        self._locked: set[Key] = set()
        """(probe, location) whose result settle applied under the lock."""
        self._waiting: list[ProbeResult] = []
        """Results that may raise an event, waiting for settle."""

    @property
    def enabled(self) -> bool:
        return self.file is not None

    def warn(self, message: str) -> None:
        self._warn(self.mask.text(message))

    def standing(self, result: ProbeResult, vantage: Vantage | None) -> Standing | None:
        """What the state says of ``result`` for its JSON line; None when it may raise an
        event: its standing then comes from ``settle``."""
        if self.file is None and not self.ledger.maintained(result):
            return NO_STANDING
        standing = self.ledger.seen(self._view, result, vantage)
        if standing is None:
            # it may raise an event: decided under the lock, where overlapping runs see
            # each other, so that only the run that raises it writes it in a line. Such
            # results wait for settle(), which takes the lock once for all of them: one
            # lock per event would rewrite the whole state file once per probe in a mass
            # outage
            self._waiting.append(result)
        return standing

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
                for result in in_order(waiting):
                    standing, event = self.ledger.settle(data, result)
                    if event is not None:
                        self.outbox.queue(data, event)
                        self._raised.append(event)
                    self._locked.add(key_of(result))
                    settled.append((result, standing))
        except OutputError as exc:
            # the lines matter more than their events: losing a result is not an option
            self.warn(
                f"{exc}: {len(waiting)} results written without their events "
                "(the next run that can lock the state raises them)"
            )
            return [(r, self.ledger.unsettled(self._view, r)) for r in waiting]
        self._view = data  # fresher than the run's first view, and the only one kept
        return settled

    def finish(self, results: Sequence[ProbeResult]) -> Finished:
        """Update the state with the run's results; deliver what is pending. ``stop``
        meanwhile (SIGTERM: ``app/run.py``) ends the sending, never the bookkeeping."""
        if self.file is None:
            return Finished([], 0)
        # the run's view served the JSON lines; the file, read again under the lock, is
        # what counts now (another run may have moved it): 100,000 probes need not
        # hold both
        self._view = StateData()
        now = time.time()
        with self.file.update() as data:
            moved = [r for r in in_order(results) if self.ledger.moves(r, r.vantage)]
            for result in moved:
                if key_of(result) not in self._locked:  # else settle applied it, locked
                    self.ledger.final(data, result)
            self.ledger.forget_gone(data, now)
            self.outbox.drop_unknown_targets(data)
            for result in moved:
                if not result.ok:
                    self.outbox.catch_up(data, result)
            leased = self.outbox.lease(data, now)
        accepted, delivered = self.outbox.deliver(leased)
        if leased:
            with self.file.update() as data:
                self.outbox.release(data, leased, accepted)
        return Finished(sorted(self._raised, key=lambda e: parse_utc(e.ts)), delivered)

    def stop(self) -> None:
        """SIGTERM: send nothing more (see ``Outbox.stop``); what was leased is handed
        back and what was delivered recorded all the same."""
        self.outbox.stop()
