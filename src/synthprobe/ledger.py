"""Pure: a run's results applied to its probes' state.

No file, no lock, no network, and no clock but what it is given (the results' own
``ts``; ``now`` to forget probes gone from the config): ``alerting.py`` reads and
writes the state file around it, and the outbox (``outbox.py``) keeps the events it
raises until every target has accepted them.

A result is applied at up to three moments of a run, each with its own rule:

``seen``
    As it arrives, to the run's view of the state (read without the lock), for its JSON
    line. A result that raises no event there is applied to the view; one that may
    raise an event is not (None): it settles.
``settle``
    Under the lock, to the state as it is now: it raises its event there, or another
    run has raised it meanwhile.
``final``
    At the end, under the lock, to the state as it is now: the results ``seen`` found
    uneventful. One that would raise an event there after all (another run moved the
    probe meanwhile) leaves the state alone: its line went out without an event, and
    the next result decides.

A result inside a maintenance window, or with no data about its target
(``models.no_data``), moves nothing at any moment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from synthprobe.alerts import Entry, Event, apply
from synthprobe.maintenance import in_maintenance
from synthprobe.models import ProbeResult, ProbeSpec, Settings, Standing, State, Vantage, no_data
from synthprobe.state import Key, StateData, forget_gone
from synthprobe.units import parse_utc


class Ledger:
    """The rules of one config: its probes' alert rules and maintenance windows."""

    def __init__(self, settings: Settings, specs: Sequence[ProbeSpec]) -> None:
        self.settings = settings
        self.specs = {s.name: s for s in specs}

    def maintained(self, result: ProbeResult) -> bool:
        """Inside maintenance: the whole run (``--maintenance``), or a window of its probe."""
        if self.settings.maintenance_run:
            return True
        spec = self.specs.get(result.probe)
        if spec is None or not self.settings.maintenance:
            return False
        return in_maintenance(spec, parse_utc(result.ts), self.settings.maintenance)

    def moves(self, result: ProbeResult, vantage: Vantage | None) -> bool:
        """Whether ``result`` may move its probe's state at all."""
        return not self.maintained(result) and not no_data(result.failure, vantage)

    def seen(
        self, data: StateData, result: ProbeResult, vantage: Vantage | None
    ) -> Standing | None:
        """``result`` applied to the view ``data`` when it raises no event there, and
        what its line says; None when it may raise one (it settles, under the lock)."""
        key = key_of(result)
        entry = data.entries.get(key, Entry())
        if self.maintained(result):
            return Standing(State.MAINTENANCE, entry.since or result.ts)
        if no_data(result.failure, vantage):
            return Standing(entry.state, entry.since)
        after, event = self._apply(entry, result)
        if event is not None:
            return None
        data.entries[key] = after
        return Standing(after.state, after.since)

    def settle(self, data: StateData, result: ProbeResult) -> tuple[Standing, Event | None]:
        """``result`` applied to the locked state ``data``: its line's standing, and the
        event it raises there (None: none, or another run raised it first). The event
        is the caller's to queue (``Outbox.queue``)."""
        after, event = self._apply(data.entries.get(key_of(result), Entry()), result)
        data.entries[key_of(result)] = settled(after)
        return Standing(after.state, after.since, event.kind if event else None), event

    def unsettled(self, data: StateData, result: ProbeResult) -> Standing:
        """What ``result`` would make of the view ``data``, without its event: for a
        line that cannot wait for the lock any longer. ``data`` is left as it is."""
        after, _event = self._apply(data.entries.get(key_of(result), Entry()), result)
        return Standing(after.state, after.since)

    def final(self, data: StateData, result: ProbeResult) -> None:
        """``result``, which ``seen`` found uneventful, applied to the locked state
        ``data``, unless it would raise an event there: no line carries that event."""
        after, event = self._apply(data.entries.get(key_of(result), Entry()), result)
        if event is None:
            data.entries[key_of(result)] = settled(after)

    def forget_gone(self, data: StateData, now: float) -> None:
        """Probes no longer configured leave ``data`` once silent long enough."""
        forget_gone(data, set(self.specs), now)

    def _apply(self, entry: Entry, result: ProbeResult) -> tuple[Entry, Event | None]:
        return apply(entry, result, self.specs[result.probe].alert)


def key_of(result: ProbeResult) -> Key:
    return (result.probe, result.location)


def in_order(results: Iterable[ProbeResult]) -> list[ProbeResult]:
    """Oldest first: the state is the results' replay, whatever order they came in."""
    return sorted(results, key=lambda r: parse_utc(r.ts))


def settled(entry: Entry) -> Entry:
    """An entry not DOWN has no outage to have told anyone of."""
    if entry.state is not State.DOWN and entry.notified is not None:
        return replace(entry, notified=None)
    return entry
