"""The events no notify target has accepted yet: queued, caught up, leased, delivered.

They live in the state file (``state.Pending``), so an event a target did not accept
goes out with a later run, marked late. ``alerting.py`` calls these with the state
file's content, under its lock, except ``deliver``, which is the network and holds no
lock: one message per target per run, the events leased for it one a line.

A lease keeps overlapping runs from sending an event twice: a run leases what is
pending (for ``LEASE`` seconds) before sending, then, under the lock again, ``release``
forgets what every target accepted and hands the rest back for the next run. ``stop``
(the run's SIGTERM handler, in ``app/run.py``) ends the sending early; the lease is
handed back all the same.

Every message about a target goes through the run's redactor: a notify URL may hold a
``${VAR}`` secret where Apprise's privacy rendering shows it whole (a path part of a
``json://`` URL).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import replace

from synthprobe.alerts import Event, event_for, title
from synthprobe.models import EventKind, ProbeResult, ProbeSpec, Settings, State
from synthprobe.notify import DEFAULT_TIMEOUT, send, shown, target_id
from synthprobe.redact import Redactor
from synthprobe.state import Pending, StateData

LEASE = 120.0
"""Seconds a run may take to send what it leased; after that another run may send it."""

Accepted = set[tuple[str, str]]
"""(event id, target id) pairs a target took."""


class Stopped(Exception):
    """``stop`` while a message was being sent: that message is abandoned."""


class Outbox:
    """One run's side of the undelivered events."""

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
        self.settings = settings
        self.specs = {s.name: s for s in specs}
        self.run_id = run_id
        self.location = location
        self.mask = redactor
        self._warn = warn
        self.timeout = timeout
        self.urls: dict[str, str] = {}
        """Target id -> URL, for every target the config names."""
        for url in settings.notify:
            self.urls[target_id(url)] = url
        for spec in specs:
            for url in spec.alert.notify or ():
                self.urls[target_id(url)] = url
        self._stopped = False
        """``stop`` was called: send nothing more."""
        self._sending = False

    def warn(self, message: str) -> None:
        self._warn(self.mask.text(message))

    def targets(self, probe: str) -> list[str]:
        """The ids of ``probe``'s targets: its own ``alert.notify``, else the settings'."""
        spec = self.specs.get(probe)
        urls = self.settings.notify
        if spec is not None and spec.alert.notify is not None:
            urls = spec.alert.notify
        return [target_id(u) for u in urls]

    def queue(self, data: StateData, event: Event) -> None:
        """``event``, just raised, pending for its probe's targets; its probe's entry
        (already in ``data``) records the targets its outage was queued for."""
        targets = self.targets(event.probe)
        if targets:
            ident = hashlib.sha256(
                f"{self.run_id}|{event.probe}|{event.location}|{event.ts}|{event.kind}".encode()
            ).hexdigest()[:16]
            data.pending.append(Pending(ident, event, targets, self.run_id))
        key = (event.probe, event.location)
        entry = data.entries.get(key)
        if entry is None:
            return
        if event.kind is EventKind.DOWN:
            data.entries[key] = replace(entry, notified=tuple(targets))
        elif event.kind is EventKind.REMINDER:
            data.entries[key] = replace(entry, notified=_union(entry.notified, targets))

    def catch_up(self, data: StateData, result: ProbeResult) -> None:
        """A probe still DOWN: a target configured now that its outage was never queued
        for (added to the config, or its URL fixed) gets the DOWN, once."""
        key = (result.probe, result.location)
        entry = data.entries.get(key)
        if entry is None or entry.state is not State.DOWN:
            return
        targets = self.targets(result.probe)
        if entry.notified is None:  # a state file from before this was kept: as told
            data.entries[key] = replace(entry, notified=tuple(targets))
            return
        missing = [t for t in targets if t not in entry.notified]
        if not missing:
            return
        event = event_for(EventKind.DOWN, result, entry.since, entry.failures)
        ident = hashlib.sha256(
            f"catch-up|{result.probe}|{result.location}|{entry.since}|{'|'.join(missing)}".encode()
        ).hexdigest()[:16]
        data.pending.append(Pending(ident, event, missing, self.run_id))
        data.entries[key] = replace(entry, notified=_union(entry.notified, missing))

    def drop_unknown_targets(self, data: StateData) -> None:
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

    def lease(self, data: StateData, now: float) -> list[Pending]:
        """Every pending event no other run is sending, leased to this one until
        ``now + LEASE``: copies, to send without the lock."""
        leased: list[Pending] = []
        for pending in data.pending:
            if pending.lease is None or pending.lease < now:
                pending.lease = now + LEASE
                leased.append(replace(pending, targets=list(pending.targets)))
        return leased

    def release(self, data: StateData, leased: list[Pending], accepted: Accepted) -> None:
        """The leased events back in ``data``: what a target accepted is gone, the rest
        pending for the next run, free to send."""
        mine = {p.id for p in leased}
        for pending in data.pending:
            if pending.id in mine:
                pending.targets = [t for t in pending.targets if (pending.id, t) not in accepted]
                pending.lease = None
        data.pending = [p for p in data.pending if p.targets]

    def deliver(self, leased: list[Pending]) -> tuple[Accepted, int]:
        """One message per target, each within ``timeout``: what was accepted, and how
        many messages were."""
        accepted: Accepted = set()
        by_target: dict[str, list[Pending]] = {}
        for pending in leased:
            for target in pending.targets:
                by_target.setdefault(target, []).append(pending)
        delivered = 0
        try:
            self._sending = True
            for target, batch in by_target.items():
                if self._stopped:
                    raise Stopped
                url = self.urls[target]
                if self._send(url, batch):
                    delivered += 1
                    accepted.update((p.id, target) for p in batch)
        except Stopped:
            self.warn("notify: stopped by SIGTERM; undelivered events stay pending")
        finally:
            self._sending = False
        return accepted, delivered

    def _send(self, url: str, batch: list[Pending]) -> bool:
        lines = [self.mask.text(p.event.line(late=p.run_id != self.run_id)) for p in batch]
        if self.settings.status_url:
            lines.append(f"status: {self.mask.text(self.settings.status_url)}")
        heading = self.mask.text(title(self.location, [p.event for p in batch]))
        outcome = send(url, heading, "\n".join(lines), self.timeout)
        if not outcome.ok:
            self.warn(
                f"notify: {shown(url)} did not accept {len(batch)} events "
                f"({outcome.problem}); they stay pending for the next run"
            )
        return outcome.ok

    def stop(self) -> None:
        """Send nothing more. Called from a signal handler while a message is being
        sent, it raises ``Stopped`` there, in the sending thread: the wait for that
        target ends now, not in ``timeout`` seconds."""
        self._stopped = True
        if self._sending:
            self._sending = False  # a second signal must not raise inside the first's handling
            raise Stopped


def _union(told: tuple[str, ...] | None, more: Sequence[str]) -> tuple[str, ...]:
    known = list(told or ())
    return tuple(known + [t for t in more if t not in known])
