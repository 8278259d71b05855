"""The state file: what each (probe, location) was after the last run, and the events
not yet accepted by every notify target.

JSON, versioned, one probe a line for people. Every change is made under an
exclusive ``flock`` on ``PATH.lock`` (the file itself is replaced by rename, so it
cannot carry the lock) and written to a temporary file that is then renamed over it: a
reader sees the old file or the new one, never half of one. A corrupt or unreadable
file is moved aside with one warning and the run goes on from a fresh state.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TextIO

from synthprobe.alerts import Entry, Event
from synthprobe.errors import OutputError
from synthprobe.models import EventKind, State
from synthprobe.units import format_utc, parse_utc

VERSION = 1
FORGET_AFTER = 7 * 86400
"""Seconds without a result after which a probe gone from the config leaves the state."""

Key = tuple[str, str]
"""(probe, location)."""


@dataclass(slots=True)
class Pending:
    """An event some targets have not accepted yet."""

    id: str
    """Unique per event: the same event is never sent twice to a target that took it."""
    event: Event
    targets: list[str]
    """Target ids (a hash of the URL: the state file never holds a URL) still to accept."""
    run_id: str
    """The run that raised it; sent by a later run, it is marked late."""
    lease: float | None = None
    """Epoch seconds until which a run is sending it; others leave it alone meanwhile."""


@dataclass(slots=True)
class StateData:
    entries: dict[Key, Entry] = field(default_factory=dict)
    pending: list[Pending] = field(default_factory=list)
    """Undelivered events, oldest first."""


class CorruptState(ValueError):
    """The file is not a state file this version can read."""


def dumps(data: StateData) -> str:
    out = io.StringIO()
    write(data, out)
    return out.getvalue()


def write(data: StateData, out: TextIO) -> None:
    """The state as JSON, one probe a line: people can still read and grep it, and a
    state of 100,000 probes is written a line at a time (``json.dumps(indent=2)`` of the
    whole document took 3 s and 234 MiB of RSS for them; this takes 0.6-0.9 s, 7 MiB)."""
    pending_of: dict[Key, list[Pending]] = {}
    for p in data.pending:
        pending_of.setdefault(_key(p), []).append(p)
    out.write(f'{{"version": {VERSION}, "probes": {{')
    rows: dict[str, dict[str, Any]] = {}
    probe = None
    separator = "\n  "
    for (name, location), entry in sorted(data.entries.items()):
        if name != probe and probe is not None:
            out.write(f"{separator}{json.dumps(probe)}: {json.dumps(rows)}")
            separator, rows = ",\n  ", {}
        probe = name
        row: dict[str, Any] = {f: getattr(entry, f) for f in _ENTRY_FIELDS}
        row["state"] = entry.state.value
        row["undelivered"] = [_pending_json(p) for p in pending_of.get((name, location), [])]
        rows[location] = row
    if probe is not None:
        out.write(f"{separator}{json.dumps(probe)}: {json.dumps(rows)}")
    out.write("\n}")
    # events of probes without an entry (dropped meanwhile) are kept too
    orphans = [_pending_json(p) for p in data.pending if _key(p) not in data.entries]
    if orphans:
        lines = ",\n  ".join(json.dumps(o) for o in orphans)
        out.write(f',\n"undelivered": [\n  {lines}\n]')
    out.write("}\n")


_ENTRY_FIELDS = tuple(f.name for f in fields(Entry))


_HEADER = f'{{"version": {VERSION}, "probes": {{'
"""The first line ``write`` writes; a file that starts so is read a line at a time."""


def loads(text: str) -> StateData:
    return load(io.StringIO(text))


def load(fh: TextIO) -> StateData:
    """A state file's content; raises CorruptState. Our own layout is read a line at a
    time from ``fh`` (100,000 probes' state is never one string nor one JSON document
    in memory: reading them so took 134 MiB of RSS, now 46, the entries themselves);
    any other layout whole."""
    if fh.readline() == _HEADER + "\n":
        with contextlib.suppress(CorruptState):
            return _load_lines(fh)
        # not quite our layout (edited by hand?): the whole-document reader decides
    fh.seek(0)
    try:
        doc = json.loads(fh.read())
    except ValueError as exc:
        raise CorruptState(f"not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        raise CorruptState(f"not a version {VERSION} state file")
    data = StateData()
    pending: list[Pending] = []
    try:
        for probe, locations in doc["probes"].items():
            _add_probe(data, pending, probe, locations)
        pending += [_pending(p) for p in doc.get("undelivered", [])]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptState(f"unexpected content ({type(exc).__name__}: {exc})") from None
    return _sorted(data, pending)


def _load_lines(lines: Iterator[str]) -> StateData:
    """``write``'s layout after its first line: a probe a line, then the end or the
    undelivered events of probes without an entry, one a line."""
    data = StateData()
    pending: list[Pending] = []
    try:
        for line in lines:
            if line in ("}}\n", "},\n"):
                break
            body = line.removesuffix("\n").removesuffix(",")
            ((probe, locations),) = json.loads("{" + body + "}").items()
            _add_probe(data, pending, probe, locations)
        else:
            raise CorruptState("no end")
        if line == "},\n":
            if next(lines) != '"undelivered": [\n':
                raise CorruptState("no undelivered list")
            for line in lines:
                if line == "]}\n":
                    break
                pending.append(_pending(json.loads(line.removesuffix("\n").removesuffix(","))))
            else:
                raise CorruptState("no end")
        if any(line.strip() for line in lines):
            raise CorruptState("more after the end")
    except (KeyError, TypeError, ValueError, AttributeError, StopIteration) as exc:
        raise CorruptState(f"unexpected content ({type(exc).__name__}: {exc})") from None
    return _sorted(data, pending)


def _add_probe(data: StateData, pending: list[Pending], probe: str, locations: Any) -> None:
    for location, row in locations.items():
        row = dict(row)
        pending += [_pending(p) for p in row.pop("undelivered", [])]
        row["state"] = State(row["state"])
        notified = row.get("notified")
        if notified is not None:
            if not isinstance(notified, list) or not all(isinstance(t, str) for t in notified):
                raise TypeError("notified must be a list of strings")
            row["notified"] = tuple(notified)
        data.entries[(probe, location)] = Entry(**row)


def _sorted(data: StateData, pending: list[Pending]) -> StateData:
    data.pending = sorted(pending, key=lambda p: (parse_utc(p.event.ts), p.id))
    return data


def _key(p: Pending) -> Key:
    return (p.event.probe, p.event.location)


def _pending_json(p: Pending) -> dict[str, Any]:
    event = asdict(p.event)
    event["kind"] = p.event.kind.value
    return {"id": p.id, "run_id": p.run_id, "targets": p.targets, "lease": p.lease, **event}


def _pending(row: dict[str, Any]) -> Pending:
    row = dict(row)
    ident, run_id, targets, lease = (
        row.pop("id"),
        row.pop("run_id"),
        row.pop("targets"),
        row.pop("lease"),
    )
    row["kind"] = EventKind(row["kind"])
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise TypeError("targets must be a list of strings")
    return Pending(str(ident), Event(**row), targets, str(run_id), lease)


def forget_gone(data: StateData, probes: set[str], now: float) -> None:
    """Drop probes no longer configured once they have had no result for FORGET_AFTER."""
    for key, entry in list(data.entries.items()):
        if key[0] in probes or entry.last_ts is None:
            continue
        if now - parse_utc(entry.last_ts) > FORGET_AFTER:
            del data.entries[key]


class StateFile:
    """One state file: ``update`` reads, lets the caller change, and writes, all under
    the lock. Every message it warns or raises passes ``mask`` (the run's redactor: a
    path is configured, and may hold a ``${VAR}`` value)."""

    def __init__(
        self, path: str, warn: Callable[[str], None], mask: Callable[[str], str] = str
    ) -> None:
        self.path = path
        self._warn = warn
        self._mask = mask

    def warn(self, message: str) -> None:
        self._warn(self._mask(message))

    def check(self) -> None:
        """Before probing: a state path that cannot work is the user's error now, not
        a lost update after the run (the JSON lines' rule). A directory is refused, never
        moved aside: it may hold anything."""
        hint = "choose another with --state, or run with --no-state"
        if os.path.isdir(self.path):
            raise OutputError(self._mask(f"state file {self.path} is a directory"), hint=hint)
        try:
            os.close(os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644))
        except OSError as exc:
            raise OutputError(
                self._mask(f"cannot use state file {self.path}: {exc.strerror or exc}"), hint=hint
            ) from None

    @contextlib.contextmanager
    def update(self) -> Iterator[StateData]:
        lock_path = self.path + ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise OutputError(
                self._mask(f"cannot use state file {self.path}: {exc.strerror or exc}"),
                hint="choose another with --state, or run with --no-state",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = self._read()
            yield data
            self._write(data)
        finally:
            os.close(fd)  # closing releases the lock

    def read(self) -> StateData:
        """A snapshot without the lock: the file is only ever replaced whole."""
        return self._read(quiet=True)

    def _read(self, quiet: bool = False) -> StateData:
        try:
            with open(self.path, encoding="utf-8") as fh:
                return load(fh)
        except FileNotFoundError:
            return StateData()
        except (OSError, UnicodeDecodeError) as exc:
            return self._aside(f"unreadable ({exc})", quiet)
        except CorruptState as exc:
            return self._aside(str(exc), quiet)

    def _aside(self, why: str, quiet: bool) -> StateData:
        if quiet:  # the locked read that follows moves it aside and warns, once
            return StateData()
        stamp = format_utc(time.time()).replace(":", "")
        aside = f"{self.path}.corrupt-{stamp}"
        try:
            os.replace(self.path, aside)
            self.warn(f"state file {self.path} is {why}: moved to {aside}; starting afresh")
        except OSError as exc:
            self.warn(
                f"state file {self.path} is {why} and cannot be moved aside ({exc}); "
                "starting afresh"
            )
        return StateData()

    def _write(self, data: StateData) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            fd, tmp = tempfile.mkstemp(prefix=".state-", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                write(data, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)
            self.warn(f"cannot write state file {self.path}: {exc.strerror or exc}")
