"""``probe report``: history -> availability, percentiles, failures, outages."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, assert_never

from synthprobe.app import EXIT_OK, Streams
from synthprobe.errors import UsageError
from synthprobe.models import ListFormat
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


def report_command(opts: ReportOptions, io: Streams) -> int:
    """``probe report``: history -> availability, percentiles, failures, outages."""
    import time

    from synthprobe.report import Filters, NotResults, analyse, read_history, to_json

    until = _when(opts.until, time.time(), "--until") if opts.until else None
    since = _when(opts.since, until or time.time(), "--since") if opts.since else None
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
    if opts.format is ListFormat.JSON:
        io.stdout_bytes.write((json.dumps(data, indent=2) + "\n").encode())
        io.stdout_bytes.flush()
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
