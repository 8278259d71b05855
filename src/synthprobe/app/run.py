"""``probe run``: configs -> runner -> JSON lines, reports and an exit code."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, assert_never

from synthprobe import vantage
from synthprobe.alerting import Alerting, Finished
from synthprobe.alerts import Event
from synthprobe.app import (
    EXIT_CUT_OFF,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Streams,
    stdout_gone,
)
from synthprobe.app.recorder import Recorder
from synthprobe.config import LoadedConfig, load_configs
from synthprobe.errors import SynthprobeError, UsageError
from synthprobe.maintenance import selected
from synthprobe.models import Failure, ProbeResult, ProbeSpec, RunFormat, Settings
from synthprobe.redact import Redactor, printable

if TYPE_CHECKING:
    from rich.console import Console

    from synthprobe.output.jsonl import JsonlWriter
    from synthprobe.runner import Runner


@dataclass(frozen=True, slots=True)
class RunOptions:
    """``probe run`` options; None means "from the config, or the default"."""

    configs: Sequence[str]
    output: str | None = None
    concurrency: int | None = None
    only: Sequence[str] = ()
    location: str | None = None
    format: RunFormat = RunFormat.TABLE
    junit: str | None = None
    prom: str | None = None
    env_proxy: bool | None = None
    timeout: float | None = None
    retries: int | None = None
    state: str | None = None
    no_state: bool = False
    maintenance: bool = False
    workers: int = 1
    otlp: str | None = None
    """``--otlp URL``: export traces and metrics there (docs/tracing.md)."""

    def settings_layer(self) -> dict[str, Any]:
        """The options that are settings, for ``Settings.layered`` (None: not given)."""
        return {
            "output": self.output or None,
            "concurrency": self.concurrency,
            "location": self.location or None,
            "junit": self.junit or None,
            "prom": self.prom or None,
            "env_proxy": self.env_proxy,
            "state": self.state or None,
            "use_state": False if self.no_state else None,
            "maintenance_run": True if self.maintenance else None,
        }


def select(probes: Sequence[ProbeSpec], selectors: Sequence[str]) -> list[ProbeSpec]:
    """Probes matching any selector: a name, a kind, or ``tag:NAME``. No selector: all."""
    if not selectors:
        return list(probes)
    chosen: set[str] = set()
    for selector in selectors:
        hits = [p for p in probes if selected(p, (selector,))]
        if not hits:
            kinds = sorted({p.kind for p in probes})
            raise UsageError(
                f"--only {selector!r} matches no probe",
                hint=f"use a probe name, a kind ({', '.join(kinds)}) or tag:NAME; "
                "`probe list` shows them",
            )
        chosen.update(p.name for p in hits)
    return [p for p in probes if p.name in chosen]


def _override(spec: ProbeSpec, opts: RunOptions, settings: Settings) -> ProbeSpec:
    changes: dict[str, Any] = {}
    if spec.resolver is None and settings.resolver is not None:
        changes["resolver"] = settings.resolver
    if opts.timeout is not None:
        changes["timeout"] = opts.timeout
    if opts.retries is not None:
        changes["retries"] = opts.retries
    return dataclasses.replace(spec, **changes) if changes else spec


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run will do, decided before anything is sent: the settings (CLI over
    config, where results go among them), the probes, and where it probes from."""

    settings: Settings
    specs: list[ProbeSpec]
    """The selected probes, with the CLI's overrides, in config order."""
    location: str
    redactor: Redactor
    to_err: bool
    """stdout carries the JSON lines: the people's view goes to stderr."""

    def runner(self, concurrency: int, run_id: str | None = None, *, spans: bool) -> Runner:
        """One per process: a worker builds its own (with the run's id) after fork."""
        from synthprobe.probers.base import Network, env_proxies
        from synthprobe.runner import Runner

        return Runner(
            concurrency=concurrency,
            location=self.location,
            redactor=self.redactor,
            network=Network(proxies=env_proxies() if self.settings.env_proxy else None),
            run_id=run_id,
            spans=spans,
        )


def make_plan(opts: RunOptions, loaded: LoadedConfig) -> Plan:
    from synthprobe.runner import default_location

    settings = Settings.layered(opts.settings_layer(), loaded.settings)
    return Plan(
        settings=settings,
        specs=[_override(s, opts, settings) for s in select(loaded.probes, opts.only)],
        location=settings.location or default_location(),
        redactor=Redactor(loaded.secrets),
        to_err=settings.output == "-",
    )


def open_outputs(plan: Plan, io: Streams) -> JsonlWriter:
    """Every output opened or checked before probing: a bad path fails now, with
    nothing sent."""
    from synthprobe.output.files import check_writable
    from synthprobe.output.jsonl import JsonlWriter

    output = plan.settings.output
    writer = JsonlWriter(stream=io.stdout_bytes) if output == "-" else JsonlWriter(output)
    for report_path in (plan.settings.junit, plan.settings.prom):
        if report_path:
            check_writable(report_path)
    return writer


def run_command(opts: RunOptions, io: Streams, loaded: LoadedConfig | None = None) -> int:
    """``probe run``: probe, write JSON lines as each probe ends, report, return the exit code."""
    from synthprobe.tracing import endpoint_problem, export_target

    problem = endpoint_problem(opts.otlp) if opts.otlp is not None else None
    if problem:
        raise UsageError(f"--otlp: {problem}", hint="give the collector's OTLP/HTTP base URL")
    loaded = loaded or load_configs(opts.configs)
    plan = make_plan(opts, loaded)
    settings = plan.settings
    exporting = export_target(
        opts.otlp, settings.otlp, os.environ, lambda m: warn(io, plan.redactor.text(m))
    )
    writer = open_outputs(plan, io)
    runner = plan.runner(settings.concurrency, spans=exporting is not None)
    alerting = Alerting(
        settings,
        # every probe of the config, not only those --only chose: a target named by an
        # unselected probe is still configured (its pending events are not "gone")
        loaded.probes,
        runner.run_id,
        plan.location,
        plan.redactor,
        lambda msg: warn(io, msg),
    )
    if opts.format is RunFormat.CHANGES and not alerting.enabled:
        writer.close()
        # events come from the state file: without one this format would print nothing,
        # ever, and cron would mail nothing, even during an outage
        raise UsageError(
            "--format changes needs a state file, and this run has none"
            + (" (--no-state)" if opts.no_state else " (results go to stdout)"),
            hint="drop --no-state, or give --state PATH",
        )
    recorder = Recorder(writer, alerting, controls=bool(settings.controls))
    verdict: vantage.Verdict | None = None
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as loop:
            interrupted = loop.run(
                _run_interruptible(
                    lambda: _settling(_probing(plan, runner, recorder, opts), recorder)
                )
            )
            if recorder.held and not interrupted:
                verdict = loop.run(_check_controls(runner, settings.controls))
        recorder.judged(verdict)
    finally:
        writer.close()
        if writer.lost_reader:
            stdout_gone()
    results = recorder.lines(plan.specs)
    done = _finish_stoppable(alerting, results)
    _reports(plan, opts.format, io, results, runner.run_id, done.events, verdict)
    if exporting is not None:
        from synthprobe.otel import export

        shown = plan.redactor.text
        export(exporting, results, runner.run_id, lambda m: warn(io, shown(m)))
    if interrupted:
        output = settings.output
        where = "stdout" if output == "-" else output
        io.err.print(
            f"[red]interrupted[/] by {interrupted}: {len(results)} of {len(plan.specs)} probes "
            f"finished; their results are in {where}",
            highlight=False,
        )
        return EXIT_INTERRUPTED
    return exit_code(results)


def _probing(plan: Plan, runner: Runner, recorder: Recorder, opts: RunOptions) -> Awaitable[Any]:
    """The run itself: in this process, or sharded over ``--workers`` processes."""
    if opts.workers <= 1 or len(plan.specs) <= 1:
        return runner.run(plan.specs, recorder.record)
    from synthprobe.workers import run_in_workers

    def child(shard: Sequence[ProbeSpec], share: int, send: Callable[..., None]) -> None:
        mine = plan.runner(share, runner.run_id, spans=runner.spans)
        with asyncio.Runner(loop_factory=event_loop_factory()) as worker_loop:
            worker_loop.run(_run_interruptible(lambda: mine.run(shard, send)))

    return run_in_workers(
        plan.specs, opts.workers, plan.settings.concurrency, child, recorder.record
    )


def _reports(
    plan: Plan,
    fmt: RunFormat,
    io: Streams,
    results: list[ProbeResult],
    run_id: str,
    events: list[Event],
    verdict: vantage.Verdict | None,
) -> None:
    """The people's view, then the report files."""
    from synthprobe.output.files import write_atomic

    try:
        _report(results, fmt, io, plan.to_err, run_id, plan.location, events)
        if verdict is not None and verdict.down:
            _say_cut_off(io, plan.to_err, plan.redactor, verdict, results)
    except BrokenPipeError:  # `probe run | head -1`: the reader has what it wanted
        stdout_gone()
    junit, prom = plan.settings.junit, plan.settings.prom
    if junit:
        from synthprobe.output.junit import junit_xml

        write_atomic(junit, junit_xml(results, run_id, plan.location))
    if prom:
        import time

        from synthprobe.output.prom import prom_text

        vantage_up = None if verdict is None else not verdict.down
        write_atomic(prom, prom_text(results, time.time(), plan.location, vantage_up).encode())


def exit_code(results: Sequence[ProbeResult]) -> int:
    """The first that applies (130 and 2 are decided before): 4 a bug of ours, 1 a probe
    failed, 3 every failure was marked ``"vantage": "down"``, 0."""
    if any(r.failure is Failure.INTERNAL for r in results):
        return EXIT_INTERNAL
    failed = [r for r in results if not r.ok]
    if not failed:
        return EXIT_OK
    return EXIT_CUT_OFF if all(vantage.marked(r) for r in failed) else EXIT_FAILED


def _say_cut_off(
    io: Streams,
    to_err: bool,
    redactor: Redactor,
    verdict: vantage.Verdict,
    results: Sequence[ProbeResult],
) -> None:
    from rich.markup import escape

    marked = sum(vantage.marked(r) for r in results)
    (io.err if to_err else io.out).print(
        f"[bold red]this machine looks cut off:[/] every control failed "
        f"({escape(printable(redactor.text(verdict.summary())))}); {marked} failures "
        'are marked "vantage": "down" and count as no data',
        highlight=False,
        soft_wrap=True,
    )


async def _settling(probing: Awaitable[Any], recorder: Recorder) -> Any:
    """``probing``, while every ``SETTLE_EVERY`` seconds the lines that wait for their
    event are decided under the state's lock, all at once, and written."""
    from synthprobe.alerting import SETTLE_EVERY

    async def settle() -> None:
        while True:
            await asyncio.sleep(SETTLE_EVERY)
            recorder.settle()

    settler = asyncio.create_task(settle(), name="settle-events")
    try:
        return await probing
    finally:
        settler.cancel()


async def _check_controls(runner: Runner, controls: Sequence[str]) -> vantage.Verdict:
    """Probe every control at once, with the run's own machinery."""
    specs = [vantage.control_spec(i, c) for i, c in enumerate(controls)]
    results = await runner.run(specs, lambda _result: None)
    return vantage.judge(results)


async def _run_interruptible(probing: Callable[[], Awaitable[Any]]) -> str | None:
    """Run; on SIGINT or SIGTERM cancel what is in flight and return the signal's name."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    caught: list[str] = []

    def stop(sig: signal.Signals) -> None:
        caught.append(sig.name)
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    try:
        await probing()
    except asyncio.CancelledError:
        if not caught:
            raise
    except BaseExceptionGroup as group:
        # an output that fails mid-run (disk full) surfaces from the task group: report
        # it as the user's error it is, not as a traceback
        mine = group.subgroup(lambda e: isinstance(e, SynthprobeError))
        if mine is None:
            raise
        first: BaseException = mine
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return caught[0] if caught else None


def _finish_stoppable(alerting: Alerting, results: Sequence[ProbeResult]) -> Finished:
    """``alerting.finish``, where SIGTERM stops the sending and nothing else: a lease
    taken must still be handed back, so the handler is in place before the lease is
    taken, and what is delivered is recorded."""

    def stop(signum: int, frame: FrameType | None) -> None:
        alerting.stop()  # raises in this, the main thread, while a message is sent

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return alerting.finish(results)
    finally:
        signal.signal(signal.SIGTERM, previous)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (a dependency except on Windows): its I/O callbacks
    cost a fraction of asyncio's, so a busy run notices responses sooner and its
    latencies stay closer to the server's (bench/fidelity.py). ``SYNTHPROBE_LOOP=asyncio``
    opts out."""
    if os.environ.get("SYNTHPROBE_LOOP") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def warn(io: Streams, message: str) -> None:
    """A warning line on stderr (rich is imported only when there is one)."""
    from rich.markup import escape

    io.err.print(
        f"[yellow]warning:[/] {escape(printable(message))}", highlight=False, soft_wrap=True
    )


def _report(
    results: list[ProbeResult],
    fmt: RunFormat,
    io: Streams,
    to_err: bool,
    run_id: str,
    location: str,
    events: list[Event],
) -> None:
    # only the table needs rich: the other formats are plain lines for scripts and cron
    plain: IO[str] = io.stderr if to_err else io.stdout
    if fmt is RunFormat.TABLE:
        from synthprobe.output.table import render_table

        console: Console = io.err if to_err else io.out
        render_table(results, console)
    elif fmt is RunFormat.QUIET:
        from synthprobe.output.quiet import quiet_lines

        plain.writelines(f"{line}\n" for line in quiet_lines(results))
    elif fmt is RunFormat.CHANGES:
        plain.writelines(f"{event.line()}\n" for event in events)
    elif fmt is RunFormat.JSON:
        from synthprobe.output.summary import summary_json

        plain.write(json.dumps(summary_json(results, run_id, location), indent=2) + "\n")
    else:
        assert_never(fmt)
    plain.flush()
