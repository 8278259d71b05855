"""What each command does, free of option parsing: the CLI calls these and maps the
``SynthprobeError`` tree (errors.py) to exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from synthprobe.config import LoadedConfig, load_configs
from synthprobe.errors import SynthprobeError, UsageError
from synthprobe.models import Kind, ProbeResult, ProbeSpec
from synthprobe.redact import Redactor
from synthprobe.units import format_duration, format_size

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_OUTPUT = "probe-results.jsonl"
DEFAULT_CONCURRENCY = 20
FORMATS = ("table", "json", "quiet")


@dataclass(frozen=True, slots=True)
class Streams:
    """Where things go: data to stdout, messages to stderr."""

    out: Console
    """stdout, for the table or summary."""
    err: Console
    """stderr, for warnings and errors (and the table when JSON lines go to stdout)."""
    stdout_bytes: IO[bytes]
    """stdout as bytes, for ``-o -``."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """``probe run`` options; None means "from the config, or the default"."""

    configs: Sequence[str]
    output: str | None = None
    concurrency: int | None = None
    only: Sequence[str] = ()
    location: str | None = None
    format: str = "table"
    junit: str | None = None
    prom: str | None = None
    env_proxy: bool | None = None
    timeout: float | None = None
    retries: int | None = None


def select(probes: Sequence[ProbeSpec], selectors: Sequence[str]) -> list[ProbeSpec]:
    """Probes matching any selector: a name, a kind, or ``tag:NAME``. No selector: all."""
    if not selectors:
        return list(probes)
    chosen: set[str] = set()
    for selector in selectors:
        if selector.startswith("tag:"):
            hits = [p for p in probes if selector[4:] in p.tags]
        else:
            hits = [p for p in probes if selector in (p.name, p.kind.value)]
        if not hits:
            kinds = sorted({p.kind.value for p in probes})
            raise UsageError(
                f"--only {selector!r} matches no probe",
                hint=f"use a probe name, a kind ({', '.join(kinds)}) or tag:NAME; "
                "`probe list` shows them",
            )
        chosen.update(p.name for p in hits)
    return [p for p in probes if p.name in chosen]


def _override(spec: ProbeSpec, opts: RunOptions) -> ProbeSpec:
    changes: dict[str, Any] = {}
    if opts.timeout is not None:
        changes["timeout"] = opts.timeout
    if opts.retries is not None:
        changes["retries"] = opts.retries
    return dataclasses.replace(spec, **changes) if changes else spec


def run_command(opts: RunOptions, io: Streams, loaded: LoadedConfig | None = None) -> int:
    """``probe run``: probe, write JSON lines as each probe ends, report, return the exit code."""
    from synthprobe.output.files import check_writable, write_atomic
    from synthprobe.output.jsonl import JsonlWriter
    from synthprobe.runner import Runner, default_location, supported

    if opts.format not in FORMATS:
        raise UsageError(f"unknown format {opts.format!r}: use table, json or quiet")
    loaded = loaded or load_configs(opts.configs)
    settings = loaded.settings
    specs = [_override(s, opts) for s in select(loaded.probes, opts.only)]
    runnable = [s for s in specs if supported(s)]
    skipped = [s for s in specs if not supported(s)]
    for spec in skipped:
        io.err.print(
            f"[yellow]warning:[/] skipped {spec.name}: kind {spec.kind.value} is not "
            "supported by this version of synthprobe",
            highlight=False,
        )
    if not runnable:
        raise UsageError("nothing to run: every selected probe was skipped")
    output = (
        opts.output or os.environ.get("PROBE_OUTPUT") or settings.get("output") or DEFAULT_OUTPUT
    )
    junit = opts.junit or settings.get("junit")
    prom = opts.prom or settings.get("prom")
    concurrency = opts.concurrency or settings.get("concurrency") or DEFAULT_CONCURRENCY
    location = opts.location or settings.get("location") or default_location()
    # open every output before probing: a bad path fails now, with nothing sent
    writer = JsonlWriter(stream=io.stdout_bytes) if output == "-" else JsonlWriter(output)
    for report_path in (junit, prom):
        if report_path:
            check_writable(report_path)
    human = io.err if output == "-" else io.out
    from synthprobe.probers import Network
    from synthprobe.probers.base import env_proxies

    use_env_proxy = (
        opts.env_proxy if opts.env_proxy is not None else settings.get("env_proxy", True)
    )
    runner = Runner(
        concurrency=concurrency,
        location=location,
        redactor=Redactor(loaded.secrets),
        network=Network(proxies=env_proxies() if use_env_proxy else None),
    )
    finished: list[ProbeResult] = []

    def record(result: ProbeResult) -> None:
        writer.write(result)
        finished.append(result)

    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as loop_runner:
            interrupted = loop_runner.run(_run_interruptible(runner, runnable, record))
    finally:
        writer.close()
    order = {s.name: i for i, s in enumerate(runnable)}
    results = sorted(finished, key=lambda r: order[r.probe])
    _report(results, opts.format, human, runner.run_id, location)
    if junit:
        from synthprobe.output.junit import junit_xml

        write_atomic(junit, junit_xml(results, runner.run_id, location))
    if prom:
        import time

        from synthprobe.output.prom import prom_text

        write_atomic(prom, prom_text(results, time.time()).encode())
    if interrupted:
        where = "stdout" if output == "-" else output
        io.err.print(
            f"[red]interrupted[/] by {interrupted}: {len(results)} of {len(runnable)} probes "
            f"finished; their results are in {where}",
            highlight=False,
        )
        return EXIT_INTERRUPTED
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


async def _run_interruptible(runner: Any, specs: list[ProbeSpec], record: Any) -> str | None:
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
        await runner.run(specs, record)
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


def _report(
    results: list[ProbeResult], fmt: str, console: Console, run_id: str, location: str
) -> None:
    from synthprobe.output.table import quiet_lines, render_table

    if fmt == "table":
        render_table(results, console)
    elif fmt == "quiet":
        for line in quiet_lines(results):
            console.print(line, highlight=False, markup=False, soft_wrap=True)
    else:
        from synthprobe.output.summary import summary_json

        console.print_json(json.dumps(summary_json(results, run_id, location)))


def validate_command(configs: Sequence[str], console: Console) -> int:
    """``probe validate``: load and check, send nothing; print the probes per kind."""
    loaded = load_configs(configs)
    by_kind: dict[str, list[str]] = {}
    for spec in loaded.probes:
        by_kind.setdefault(spec.kind.value, []).append(spec.name)
    files = ", ".join(loaded.files)
    console.print(f"[green]valid:[/] {files}: {len(loaded.probes)} probes", highlight=False)
    for kind in Kind:
        names = by_kind.get(kind.value)
        if names:
            console.print(
                f"  {kind.value:<10} {len(names):>3}  {', '.join(names)}", highlight=False
            )
    return EXIT_OK


def describe(spec: ProbeSpec, redactor: Redactor) -> dict[str, Any]:
    """A probe as it will run, secrets masked (``probe list --format json``)."""
    e = spec.expect
    expect: dict[str, Any] = {"status": list(e.status)}
    if e.max_latency is not None:
        expect["max_latency"] = format_duration(e.max_latency)
    for key in ("body_contains", "body_regex"):
        if getattr(e, key) is not None:
            expect[key] = redactor.text(getattr(e, key))
    if e.headers:
        expect["headers"] = {k: redactor.text(v) for k, v in e.headers}
    if e.json:
        expect["json"] = [
            {k: v for k, v in dataclasses.asdict(c).items() if v is not None and k != "has_equals"}
            for c in e.json
        ]
    out: dict[str, Any] = {
        "name": spec.name,
        "kind": spec.kind.value,
        "method": spec.method,
        "url": redactor.url(spec.url),
        "timeout": format_duration(spec.timeout),
        "retries": spec.retries,
        "retry_on": sorted(f.value for f in spec.retry_on),
        "headers": {k: redactor.header(k, v) for k, v in spec.headers},
        "tags": list(spec.tags),
        "expect": expect,
        "follow_redirects": spec.follow_redirects,
        "verify_tls": spec.verify_tls,
        "max_body": format_size(spec.max_body),
        "source": spec.source,
    }
    if spec.upload is not None:
        up = dataclasses.asdict(spec.upload)
        up["size"] = format_size(spec.upload.size)
        out["upload"] = up
    for block in (spec.live, spec.messaging):
        if block is not None:
            out[spec.kind.value] = {
                k: redactor.text(v) if isinstance(v, str) else v
                for k, v in dataclasses.asdict(block).items()
                if v is not None
            }
    masked: dict[str, Any] = _masked(out, redactor)
    return masked


def _masked(value: Any, redactor: Redactor) -> Any:
    """Every string masked, however deep: a URL template is as secret as a URL."""
    if isinstance(value, str):
        return redactor.text(value)
    if isinstance(value, dict):
        return {k: _masked(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, redactor) for v in value]
    return value


def list_command(configs: Sequence[str], console: Console, fmt: str = "table") -> int:
    """``probe list``: the probes as they will run (defaults merged, env expanded, masked)."""
    loaded = load_configs(configs)
    redactor = Redactor(loaded.secrets)
    described = [describe(s, redactor) for s in loaded.probes]
    if fmt == "json":
        console.print_json(json.dumps(described))
        return EXIT_OK
    if fmt != "table":
        raise UsageError(f"unknown format {fmt!r}: use table or json")
    table = Table(pad_edge=False)
    for column in ("probe", "kind", "method", "url", "timeout", "retries", "tags", "expect"):
        table.add_column(column, overflow="fold")
    for d in described:
        expect = ", ".join(
            f"{k}={v if not isinstance(v, list | dict) else json.dumps(v)}"
            for k, v in d["expect"].items()
        )
        table.add_row(
            d["name"],
            d["kind"],
            d["method"],
            d["url"],
            d["timeout"],
            str(d["retries"]),
            ",".join(d["tags"]),
            expect,
        )
    console.print(table)
    for d in described:
        if d["headers"]:
            headers = ", ".join(f"{k}: {v}" for k, v in d["headers"].items())
            console.print(f"{d['name']} headers: {headers}", highlight=False, markup=False)
    return EXIT_OK


def demo_command(opts: RunOptions, io: Streams, serve: bool, port: int) -> int:
    """``probe demo``: start the demo platform; probe it with the bundled config, or serve."""
    from importlib.resources import files

    from synthprobe.config import load_sources
    from synthprobe.demo import DemoPlatform, PlatformThread, refused_port

    if serve:
        return asyncio.run(_serve_demo(DemoPlatform(port=port), io))
    raw = files("synthprobe").joinpath("demo.yaml").read_bytes()
    sock, refused = refused_port()
    try:
        with PlatformThread(DemoPlatform()) as platform:
            loaded = load_sources(
                [("demo.yaml (bundled)", raw)],
                variables={
                    "DEMO_URL": platform.base_url,
                    "DEMO_WS": platform.base_url.replace("http://", "ws://"),
                    "DEMO_REFUSED": f"http://127.0.0.1:{refused}",
                },
            )
            io.err.print(
                f"demo platform on {platform.base_url}; probing it with the bundled config",
                highlight=False,
            )
            demo_opts = dataclasses.replace(opts, output=opts.output or os.devnull)
            return run_command(demo_opts, io, loaded)
    finally:
        sock.close()


async def _serve_demo(platform: Any, io: Streams) -> int:
    try:
        await platform.start()
    except OSError as exc:
        raise UsageError(
            f"cannot listen on 127.0.0.1:{platform.port}: {exc.strerror or exc}",
            hint="choose another port with --port",
        ) from None
    io.err.print(
        f"demo platform on [bold]{platform.base_url}[/] (Ctrl-C stops it)\n"
        f"  try: BASE_URL={platform.base_url} probe run probes.example.yaml\n"
        f"  break a part: curl -X PUT '{platform.base_url}/_demo/faults/feed?mode=503'\n"
        f"  mend it:      curl -X DELETE {platform.base_url}/_demo/faults/feed",
        highlight=False,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await platform.close()
    return EXIT_OK


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """``probe report`` options."""

    results: Sequence[str]
    since: str | None = None
    until: str | None = None
    probes: Sequence[str] = ()
    kinds: Sequence[str] = ()
    locations: Sequence[str] = ()
    format: str = "table"
    html: str | None = None


def parse_when(text: str, reference: float, option: str) -> float:
    """``24h``/``90m`` (before ``reference``) or an ISO 8601 time (UTC unless it says)."""
    from datetime import UTC, datetime

    from synthprobe.units import parse_duration

    try:
        return reference - parse_duration(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{option} {text!r}: use a duration such as 24h or 90m, "
            "or a time such as 2026-11-22T06:00:00Z"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def report_command(opts: ReportOptions, io: Streams) -> int:
    """``probe report``: history -> availability, percentiles, failures, outages."""
    import time

    from synthprobe.report import Filters, NotResults, analyse, read_history, to_json

    if opts.format not in ("table", "json"):
        raise UsageError(f"unknown format {opts.format!r}: use table or json")
    until = parse_when(opts.until, time.time(), "--until") if opts.until else None
    since = parse_when(opts.since, until or time.time(), "--since") if opts.since else None
    if since is not None and until is not None and since >= until:
        raise UsageError("--since must be before --until")
    filters = Filters(
        since, until, frozenset(opts.probes), frozenset(opts.kinds), frozenset(opts.locations)
    )
    if opts.html:
        from synthprobe.output.files import check_writable

        check_writable(opts.html)
    with _opened(opts.results) as sources:
        try:
            history = read_history(
                sources,
                filters,
                lambda msg: io.err.print(f"[yellow]warning:[/] {msg}", highlight=False),
            )
        except NotResults as exc:
            raise UsageError(
                str(exc), hint="give `probe report` the JSON lines that `probe run -o` writes"
            ) from None
    report = analyse(history, filters, keep_timelines=bool(opts.html))
    data = to_json(report)
    if opts.format == "json":
        io.stdout_bytes.write((json.dumps(data, indent=2) + "\n").encode())
        io.stdout_bytes.flush()
    else:
        from synthprobe.output.report_table import render_report

        render_report(data, io.out)
    if opts.html:
        from synthprobe.output.files import write_atomic
        from synthprobe.output.html import status_page

        write_atomic(opts.html, status_page(report, data).encode())
        io.err.print(f"status page written to {opts.html}", highlight=False)
    return EXIT_OK


@contextlib.contextmanager
def _opened(paths: Sequence[str]) -> Iterator[list[tuple[str, IO[bytes]]]]:
    """Open every results file first: a missing one is an error before any work."""
    from synthprobe.errors import OutputError

    with contextlib.ExitStack() as stack:
        sources: list[tuple[str, IO[bytes]]] = []
        for path in paths:
            if path == "-":
                sources.append(("<stdin>", sys.stdin.buffer))
                continue
            try:
                sources.append((path, stack.enter_context(open(path, "rb"))))
            except OSError as exc:
                raise OutputError(f"{path}: cannot read: {exc.strerror or exc}") from None
        yield sources


def main_streams() -> Streams:
    """Consoles on the real stdout and stderr; 120 columns when not a terminal, so a
    cron mail or CI log is not wrapped at rich's default of 80."""
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "120"))
    err_width = None if sys.stderr.isatty() else int(os.environ.get("COLUMNS", "120"))
    return Streams(
        out=Console(file=sys.stdout, width=width),
        err=Console(file=sys.stderr, width=err_width),
        stdout_bytes=sys.stdout.buffer,
    )
