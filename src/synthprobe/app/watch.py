"""``probe watch``: the probes, again and again, for a person waiting for "is it back?".

Rounds never overlap: a round runs every probe concurrently (the runner of ``probe
run``), and the next starts ``--every`` after this one began, or at once when it took
longer. A person's view, not cron's: no notification, no state written (``--state`` is
only read, for "since when"), JSON lines only with ``-o``.

On a terminal: a full-screen table (``output/watch.py``) redrawn as time passes and as
the terminal is resized. Without one: one line per change (``DOWN ...`` / ``UP ...``, the
words of ``--format changes``), and on the first round one ``DOWN`` line for each probe
already down: whoever starts a watch during an outage is told what is down now.

A result that says nothing about the target (``internal.error``, a synthprobe bug; or a
failure while ``settings.controls`` say this machine is cut off, as in ``probe run``) is
shown as what it is and moves nothing: the probe keeps the state it had, no line is
printed, and ``--until-up`` waits for a real answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from io import StringIO
from typing import TYPE_CHECKING

from synthprobe import vantage
from synthprobe.alerts import Event, EventKind, State, event_for
from synthprobe.app import EXIT_OK, Streams, stdout_gone
from synthprobe.app.run import (
    RunOptions,
    _check_controls,
    _override,
    event_loop_factory,
    select,
    warn,
)
from synthprobe.config import load_configs
from synthprobe.errors import UsageError
from synthprobe.models import Failure, ProbeResult, ProbeSpec, Settings
from synthprobe.output.watch import Round, Row
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
    up: bool | None
    """None: no result has said anything about the target yet (only bugs)."""
    since: float | None
    last: ProbeResult
    flips: int = 0


@dataclass(slots=True)
class View:
    """What the watch knows of each probe: its state, since when, how often it flipped."""

    known_since: dict[str, tuple[bool, float]] = field(default_factory=dict)
    """From a state file: probe -> (up, since), used while the first result agrees."""
    seen: dict[str, _Seen] = field(default_factory=dict)

    def apply(self, result: ProbeResult) -> Event | None:
        """The result in the view; the change it makes, if any (DOWN on a first sight)."""
        before = self.seen.get(result.probe)
        if result.no_data:  # a bug of ours says nothing about the target: nothing moves
            if before is None:
                self.seen[result.probe] = _Seen(None, None, result)
            else:
                before.last = result
            return None
        ok = result.ok
        at = parse_utc(result.ts)  # the result's own clock, as `--format changes` uses
        if before is None or before.up is None:
            known = self.known_since.get(result.probe)
            since = known[1] if known is not None and known[0] == ok else at
            self.seen[result.probe] = _Seen(ok, since, result)
            return None if ok else event_for(EventKind.DOWN, result, format_utc(since), 1)
        if before.up == ok:
            before.last = result
            return None
        went = before.since
        self.seen[result.probe] = _Seen(ok, at, result, before.flips + 1)
        if ok:
            return event_for(EventKind.UP, result, None if went is None else format_utc(went), 0)
        return event_for(EventKind.DOWN, result, result.ts, 1)

    def rows(self) -> list[Row]:
        return [
            Row(
                probe=name,
                kind=s.last.kind,
                up=s.up,
                since=s.since,
                reason=s.last.reason.value if s.last.reason else None,
                error=s.last.error,
                latency_ms=None if s.last.no_data else s.last.latency_ms,
                flips=s.flips,
                bug=s.last.failure is Failure.INTERNAL,
                cut_off=vantage.marked(s.last),
            )
            for name, s in self.seen.items()
        ]

    def all_up(self, probes: int) -> bool:
        """Every one of ``probes`` seen, and up (a probe known only by bugs is not)."""
        return len(self.seen) == probes and all(s.up is True for s in self.seen.values())


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
        if where != location or not entry.since:
            continue
        # pending is failing already (below the alert threshold): since its first failure
        if entry.state in (State.UP, State.DOWN, State.PENDING):
            out[probe] = (entry.state is State.UP, parse_utc(entry.since))
    return out


def watch_command(opts: WatchOptions, io: Streams) -> int:
    """``probe watch``: rounds until Ctrl-C, SIGTERM, or (``--until-up``) all up: exit 0."""
    from synthprobe.output.jsonl import JsonlWriter
    from synthprobe.probers.base import Network, env_proxies
    from synthprobe.runner import Runner, default_location

    if opts.output == "-":
        # stdout is the person's view (or the DOWN/UP lines): JSON lines would be mixed in
        raise UsageError("-o - would mix JSON lines with the view", hint="give -o a file path")
    loaded = load_configs(opts.configs)
    settings = Settings.layered({"location": opts.location}, loaded.settings)
    # the same specs `probe run` would run: the config's resolver where a probe has none
    as_run = RunOptions(opts.configs)
    specs = [_override(s, as_run, settings) for s in select(loaded.probes, opts.only)]
    location = settings.location or default_location()
    writer = JsonlWriter(opts.output) if opts.output else None  # exit 2 now, before probing
    view = View()
    if opts.state:
        view.known_since = _known_since(opts.state, location, io)
    redactor = Redactor(loaded.secrets)

    def runner() -> Runner:
        # one per round, as `probe run` makes one per run: each round has its own run id
        return Runner(
            concurrency=settings.concurrency,
            location=location,
            redactor=redactor,
            network=Network(proxies=env_proxies() if settings.env_proxy else None),
        )

    watch = _Watch(specs, opts, settings, view, runner, writer, io)
    console = _console(io) if io.stdout.isatty() else None
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as loop:
            loop.run(watch.run(console))
    finally:
        if writer is not None:
            writer.close()
    return EXIT_OK


@dataclass(slots=True)
class _Watch:
    """The rounds, and where their results go (the view, the lines, ``-o``)."""

    specs: Sequence[ProbeSpec]
    opts: WatchOptions
    settings: Settings
    view: View
    runner: Callable[[], Runner]
    writer: JsonlWriter | None
    io: Streams
    clock: Round = field(default_factory=Round)

    async def run(self, console: Console | None) -> None:
        """Rounds until stopped (Ctrl-C, SIGTERM, the reader of the lines gone) or, with
        ``--until-up``, until every probe is up."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        live = None if console is None else _live(console, self.view, self.clock)
        # on the terminal of the view, stderr (a bug's traceback, bugs.py) would be drawn
        # over and lost with the alternate screen: held, and printed once the screen is gone
        held = StringIO() if live is not None and sys.stderr.isatty() else None
        saved = sys.stderr
        try:
            if held is not None:
                sys.stderr = held
            if live is not None:
                live.start()
            while True:
                began = time.monotonic()
                self.clock.running = True
                await self.round(lines=live is None)
                pause = max(0.0, self.opts.every - (time.monotonic() - began))
                self.clock.last, self.clock.running = time.time(), False
                self.clock.next = self.clock.last + pause
                if live is not None:
                    live.refresh()
                if self.opts.until_up and self.view.all_up(len(self.specs)):
                    return
                await asyncio.sleep(pause)
        except asyncio.CancelledError:
            return  # Ctrl-C or SIGTERM: a person's stop, exit 0
        except BrokenPipeError:  # `probe watch ... | head -1`: the reader has what it wanted
            stdout_gone()
        finally:
            if live is not None:
                live.stop()  # the terminal as it was: the alternate screen left, cursor back
            if held is not None:
                sys.stderr = saved
                saved.write(held.getvalue())
                saved.flush()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    async def round(self, lines: bool) -> None:
        """Every probe once; the results into ``-o``, the view, and (``lines``) stdout."""
        runner = self.runner()
        results = await runner.run(self.specs, lambda _result: None)
        cut_off = await _cut_off(runner, self.settings, results)
        if cut_off is not None:
            results = [_marked(r) for r in results]
            if self.clock.cut_off is None and lines:
                # stdout keeps only DOWN/UP lines; on a terminal the header says it
                warn(self.io, f"this machine looks cut off: every control failed ({cut_off})")
        self.clock.cut_off = cut_off
        # the runner freezes what lives at its start (gc.freeze) for one run; a watch
        # runs for hours, and frozen garbage of past rounds would never be collected
        gc.unfreeze()
        for result in results:
            if self.writer is not None:
                self.writer.write(result)
            event = self.view.apply(result)
            if event is not None and lines:
                self.io.stdout.write(event.line() + "\n")
        if lines:
            self.io.stdout.flush()


async def _cut_off(runner: Runner, settings: Settings, results: list[ProbeResult]) -> str | None:
    """As ``probe run``: with controls, failures this machine could cause have them
    probed; when every control fails too, what they said (else None)."""
    if not settings.controls or not any(r.failure in vantage.JUDGED for r in results):
        return None
    verdict = await _check_controls(runner, settings.controls)
    return verdict.summary() if verdict.down else None


def _marked(result: ProbeResult) -> ProbeResult:
    if result.failure in vantage.JUDGED:
        return dataclasses.replace(result, vantage="down")  # no data, as in `probe run`
    return result


def _console(io: Streams) -> Console:
    """stdout's terminal, ignoring exported COLUMNS and LINES: those are a snapshot taken
    when they were exported, and the view must follow the terminal as it is resized."""
    from rich.console import Console

    environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return Console(file=io.stdout, emoji=False, _environ=environ)


def _live(console: Console, view: View, clock: Round) -> Live:
    """A full-screen Live: the shell's screen comes back untouched on exit."""
    from rich.live import Live

    from synthprobe.output.watch import render

    def draw() -> RenderableType:
        # the size is read at every refresh: the table follows a resize
        width, height = console.size
        return render(view.rows(), clock, now=time.time(), width=width, height=height)

    return Live(
        console=console,
        get_renderable=draw,
        screen=True,
        auto_refresh=True,
        refresh_per_second=2,
        redirect_stdout=False,
        redirect_stderr=False,
    )
