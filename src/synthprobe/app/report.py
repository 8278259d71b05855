"""``probe report``: history -> availability, percentiles, failures, outages."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, assert_never

from synthprobe.app import EXIT_OK, Streams
from synthprobe.errors import UsageError
from synthprobe.models import ListFormat, Slo
from synthprobe.units import parse_when


def _when(text: str, reference: float, option: str) -> float:
    try:
        return parse_when(text, reference)
    except ValueError as exc:
        raise UsageError(f"{option} {exc}") from None


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """``probe report`` options."""

    results: Sequence[str]
    since: str | None = None
    until: str | None = None
    probes: Sequence[str] = ()
    kinds: Sequence[str] = ()
    locations: Sequence[str] = ()
    format: ListFormat = ListFormat.TABLE
    html: str | None = None
    configs: Sequence[str] = ()
    """Configs whose probes' ``slo`` keys the report judges."""
    slo: str | None = None
    """``--slo 99.9%``: one objective for every probe."""
    window: str | None = None
    """``--window 28d``, with ``--slo``."""


def _slos(opts: ReportOptions) -> tuple[Mapping[str, Slo], Slo | None]:
    """(each configured probe's SLO, the one ``--slo`` gives every probe)."""
    from synthprobe.objectives import parse_objective, parse_window

    if opts.window is not None and opts.slo is None:
        raise UsageError("--window needs --slo (a config's probes give their own windows)")
    if opts.slo is not None and opts.configs:
        raise UsageError("give either --slo or --config, not both")
    if opts.slo is not None:
        try:
            objective = parse_objective(opts.slo)
        except ValueError as exc:
            raise UsageError(f"--slo {exc}", hint="for example --slo 99.9%") from None
        if opts.window is None:
            return {}, Slo(objective)
        try:
            return {}, Slo(objective, parse_window(opts.window))
        except ValueError as exc:
            raise UsageError(f"--window {exc}", hint="for example --window 28d") from None
    if not opts.configs:
        return {}, None
    from synthprobe.config import load_configs

    loaded = load_configs(opts.configs)
    return {p.name: p.slo for p in loaded.probes if p.slo is not None}, None


def report_command(opts: ReportOptions, io: Streams) -> int:
    """``probe report``: history -> availability, percentiles, failures, outages."""
    import time

    from synthprobe.report import (
        Filters,
        NotResults,
        analyse,
        measure_slos,
        read_history,
        to_json,
    )

    now = time.time()
    until = _when(opts.until, now, "--until") if opts.until else None
    since = _when(opts.since, until or now, "--since") if opts.since else None
    if since is not None and until is not None and since >= until:
        raise UsageError("--since must be before --until")
    configured, every = _slos(opts)
    # an SLO window ends at --until (or now), whatever --since says: read back that far
    slo_end = until if until is not None else now
    windows = [s.window for s in configured.values()] + ([every.window] if every else [])
    read_since = since
    if since is not None and windows:
        read_since = min(since, slo_end - max(windows))
    filters = Filters(
        since, until, frozenset(opts.probes), frozenset(opts.kinds), frozenset(opts.locations)
    )
    read_filters = Filters(read_since, until, filters.probes, filters.kinds, filters.locations)
    if opts.html:
        from synthprobe.output.files import check_writable

        check_writable(opts.html)
    with _opened(opts.results) as sources:
        try:
            history = read_history(
                sources,
                read_filters,
                lambda msg: io.err.print(f"[yellow]warning:[/] {msg}", highlight=False),
            )
        except NotResults as exc:
            raise UsageError(
                str(exc), hint="give `probe report` the JSON lines that `probe run -o` writes"
            ) from None
    slos = configured if every is None else {probe: every for probe, _ in history.series}
    budgets = measure_slos(history, slos, slo_end) if slos else {}
    if read_since != since:
        assert since is not None
        history.trim(since)
    report = analyse(history, filters, keep_timelines=bool(opts.html))
    report.slos = budgets
    data = to_json(report)
    if opts.format is ListFormat.JSON:
        _write_json(data, io.stdout_bytes)
    elif opts.format is ListFormat.TABLE:
        from synthprobe.output.report_table import render_report

        render_report(data, io.out)
    else:
        assert_never(opts.format)
    if opts.html:
        from synthprobe.output.files import write_atomic
        from synthprobe.output.html import status_page

        write_atomic(opts.html, status_page(report, data).encode())
        # a success message under cron is a mail every night: only a person at a
        # terminal is told (data goes to stdout, so stdout is no place for it either)
        if io.stderr.isatty():
            io.err.print(f"status page written to {opts.html}", highlight=False, soft_wrap=True)
    return EXIT_OK


def _write_json(data: object, out: IO[bytes]) -> None:
    """Streamed: ``json.dumps`` of a large report (an SLO's alert spans on each of its
    rows) holds every piece of the text at once, then the text again."""
    import io as _io

    text = _io.TextIOWrapper(out, encoding="utf-8", newline="\n")
    try:
        json.dump(data, text, indent=2)
        text.write("\n")
        text.flush()
    finally:
        text.detach()  # the stream is the caller's: not closed with the wrapper


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
