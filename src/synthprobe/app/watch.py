"""``probe watch``: the probes, again and again, for a person waiting for "is it back?".

Rounds never overlap: a round runs every probe concurrently (the runner of ``probe
run``), and the next starts ``--every`` after this one began, or at once when it took
longer. A person's view, not cron's: no notification, no state written (``--state`` is
only read, for "since when"), JSON lines only with ``-o``.

On a terminal: a full-screen table (``output/watch.py``) redrawn as time passes and as
the terminal is resized. Without one: one line per change (``DOWN ...`` / ``UP ...``, the
words of ``--format changes``), and on the first round one ``DOWN`` line for each probe
already down: whoever starts a watch during an outage is told what is down now.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Literal

from synthprobe.alerts import Event, event_for
from synthprobe.app import EXIT_OK, Streams
from synthprobe.app.run import event_loop_factory, select, warn
from synthprobe.bugs import Bugs
from synthprobe.config import load_configs
from synthprobe.errors import UsageError
from synthprobe.models import EventKind, ProbeResult, ProbeSpec, Settings, State
from synthprobe.output.watch import Row
from synthprobe.redact import Redactor
from synthprobe.units import format_utc, parse_utc

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from synthprobe.output.jsonl import JsonlWriter
    from synthprobe.runner import Runner


@dataclass(frozen=True, slots=True)
class WatchOptions:
    configs: Sequence[str]
    every: float = 10.0
    only: Sequence[str] = ()
    until_up: bool = False
    output: str | None = None
    state: str | None = None
    location: str | None = None


@dataclass(slots=True)
class _Seen:
    ok: bool | None
    """The last state a result said (None: no result has said anything yet)."""
    since: float
    result: ProbeResult
    flips: int = 0


@dataclass(slots=True)
class View:
    """What the watch knows of each probe: its state, since when, how often it flipped."""

    known_since: dict[str, tuple[bool, float]] = field(default_factory=dict)
    """From a state file: probe -> (up, since), used while the first result agrees."""
    seen: dict[str, _Seen] = field(default_factory=dict)

    def apply(self, result: ProbeResult, now: float) -> Event | None:
        """The result in the view; the change it makes, if any (DOWN on a first sight).

        A result with no data (a bug of ours, ``ProbeResult.no_data``) is shown as such
        and moves nothing: no flip, no line, the state it had stays for when it returns."""
        before = self.seen.get(result.probe)
        if result.no_data:
            if before is None:
                self.seen[result.probe] = _Seen(None, now, result)
            else:
                before.result = result
            return None
        ok = result.ok
        if before is None or before.ok is None:
            since = now
            known = self.known_since.get(result.probe)
            if known is not None and known[0] == ok:
                since = known[1]
            self.seen[result.probe] = _Seen(ok, since, result)
            return None if ok else event_for(EventKind.DOWN, result, format_utc(since), 1)
        if before.ok == ok:
            before.result = result
            return None
        went = before.since
        self.seen[result.probe] = _Seen(ok, now, result, before.flips + 1)
        return event_for(
            EventKind.UP if ok else EventKind.DOWN, result, format_utc(went if ok else now), 1
        )

    def rows(self) -> list[Row]:
        return [
            Row(
                probe=name,
                kind=s.result.kind,
                state=_state(s),
                since=s.since,
                reason=s.result.reason.value if s.result.reason else None,
                error=s.result.error,
                latency_ms=s.result.latency_ms,
                flips=s.flips,
                trace_id=s.result.trace_id,
            )
            for name, s in self.seen.items()
        ]

    def all_up(self) -> bool:
        """Every probe's last result says up (one with no data is not known to be)."""
        return bool(self.seen) and all(_state(s) == "up" for s in self.seen.values())


def _state(seen: _Seen) -> Literal["up", "down", "no data"]:
    if seen.ok is None or seen.result.no_data:
        return "no data"
    return "up" if seen.ok else "down"


def _known_since(path: str, location: str, io: Streams) -> dict[str, tuple[bool, float]]:
    """``--state``: each probe's state and since, read only (never locked, never moved)."""
    from synthprobe.state import CorruptState, load

    try:
        with open(path, encoding="utf-8") as fh:
            data = load(fh)
    except (OSError, CorruptState) as exc:
        warn(io, f"--state {path}: not read ({exc}); since when counts from this watch")
        return {}
    out: dict[str, tuple[bool, float]] = {}
    for (probe, where), entry in data.entries.items():
        if where == location and entry.since and entry.state in (State.UP, State.DOWN):
            out[probe] = (entry.state is State.UP, parse_utc(entry.since))
    return out


def watch_command(opts: WatchOptions, io: Streams) -> int:
    """``probe watch``: rounds until Ctrl-C, SIGTERM, or (``--until-up``) all up: exit 0."""
    from synthprobe.output.jsonl import JsonlWriter
    from synthprobe.probers.base import Network, env_proxies
    from synthprobe.runner import Runner, default_location

    loaded = load_configs(opts.configs)
    settings = Settings.layered({"location": opts.location}, loaded.settings)
    specs = select(loaded.probes, opts.only)
    location = settings.location or default_location()
    if opts.output == "-":  # stdout is the view: JSON lines there would garble it
        raise UsageError("probe watch -o - would mix JSON lines into the view", hint="give a file")
    writer = JsonlWriter(opts.output) if opts.output else None  # exit 2 now, before probing
    view = View()
    if opts.state:
        view.known_since = _known_since(opts.state, location, io)
    redactor = Redactor(loaded.secrets)
    network = Network(proxies=env_proxies() if settings.env_proxy else None)

    bugs = Bugs()  # a bug's traceback once per watch, not once per round

    def runner() -> Runner:
        return Runner(
            concurrency=settings.concurrency,
            location=location,
            redactor=redactor,
            network=network,
            bugs=bugs,
            spans=False,  # the watch exports nothing
        )

    terminal = io.stdout.isatty()
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as loop:
            loop.run(_watch(specs, opts, view, runner, writer, io, terminal))
    finally:
        if writer is not None:
            writer.close()
    return EXIT_OK


async def _watch(
    specs: Sequence[ProbeSpec],
    opts: WatchOptions,
    view: View,
    runner: Callable[[], Runner],
    writer: JsonlWriter | None,
    io: Streams,
    terminal: bool,
) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    clock: dict[str, float | None] = {"last": None, "next": None}

    def draw() -> RenderableType:
        from synthprobe.output.watch import render

        _fit(io.out, io.stdout)  # at every refresh: the table follows a resize
        height = io.out.size.height
        return render(
            view.rows(),
            now=time.time(),
            last_round=clock["last"],
            next_round=clock["next"],
            height=height,
        )

    live = _live(io, draw) if terminal else None
    try:
        if live is not None:
            live.start()
        while True:
            began = time.monotonic()
            results: list[ProbeResult] = []
            await runner().run(specs, results.append)
            now = time.time()
            clock["last"] = now
            for result in results:
                if writer is not None:
                    writer.write(result)
                event = view.apply(result, now)
                if event is not None and live is None:
                    io.stdout.write(event.line() + "\n")
            if live is None:
                io.stdout.flush()
            else:
                live.refresh()
            if opts.until_up and view.all_up():
                return
            pause = max(0.0, opts.every - (time.monotonic() - began))
            clock["next"] = now + pause
            await asyncio.sleep(pause)
    except asyncio.CancelledError:
        return  # Ctrl-C or SIGTERM: a person's stop, exit 0
    finally:
        if live is not None:
            live.stop()  # the terminal as it was: the alternate screen left, cursor back
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _fit(console: Console, stream: IO[str]) -> None:
    """The console as big as the terminal is now. rich takes ``COLUMNS``/``LINES`` from
    the environment over the terminal's own size, once: a value a shell exported (or one
    from before a resize) would keep the table narrower or wider than the pane."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError):  # not a terminal after all (or closed): keep rich's size
        return
    console.size = (size.columns, size.lines)


def _live(io: Streams, draw: Callable[[], RenderableType]) -> Live:
    from rich.live import Live

    return Live(
        console=io.out,
        get_renderable=draw,
        screen=True,
        auto_refresh=True,
        refresh_per_second=2,
        redirect_stdout=False,
        redirect_stderr=False,
    )
