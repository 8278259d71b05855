"""``probe watch``'s screen: the state of every probe as a person on call reads it.

Pure: from the view's rows and the clock to a rich renderable of a given height; the
table takes the console's whole width (the error column gets what the others leave).
Failing probes come first, grouped by kind, then those with no data (a bug of ours says
nothing about the target: never shown as down); when the screen cannot hold every row,
the probes that are up are summarised in one line per kind (200 probes fit in 24 lines).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from synthprobe.units import format_span, format_utc

CHROME = 7
"""Lines the header, the table's borders and its heading take."""


@dataclass(frozen=True, slots=True)
class Row:
    """One probe, as the watch has seen it."""

    probe: str
    kind: str
    state: Literal["up", "down", "no data"]
    """``no data`` while its last result says nothing of the target (``ProbeResult.no_data``)."""
    since: float
    """Epoch seconds: when it entered its last known state (first seen so, or the state
    file's); for ``no data`` with no state known yet, when it was first seen."""
    reason: str | None
    error: str | None
    latency_ms: float | None
    flips: int
    trace_id: str | None = None
    """The trace of its last result (docs/tracing.md): shown while it fails."""


def render(
    rows: Sequence[Row],
    *,
    now: float,
    last_round: float | None,
    next_round: float | None,
    height: int,
) -> RenderableType:
    """The whole screen: a header line, then the table (or its summary) within ``height``."""
    down = [r for r in rows if r.state == "down"]
    blind = [r for r in rows if r.state == "no data"]
    up = [r for r in rows if r.state == "up"]
    header = Text(no_wrap=True, overflow="ellipsis")
    header.append(f"{len(up)}/{len(rows)} up", style="green" if not down else "bold red")
    if blind:
        header.append(f"  ·  {len(blind)} no data", style="yellow")
    if last_round is not None:
        header.append(f"  ·  last round {format_utc(last_round, always_ms=False)[11:]}")
    if next_round is not None:
        header.append(f"  ·  next in {format_span(max(0.0, next_round - now))}")
    header.append("  ·  Ctrl-C to stop", style="dim")
    table = Table(pad_edge=False, expand=True)
    longest = max((len(r.probe) for r in rows), default=5)
    table.add_column("probe", no_wrap=True, min_width=min(longest, 32))
    table.add_column("kind", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("since", no_wrap=True, justify="right")
    table.add_column("reason", no_wrap=True)
    table.add_column("latency", no_wrap=True, justify="right")
    table.add_column("flips", no_wrap=True, justify="right")
    table.add_column("error", no_wrap=True, ratio=1, overflow="ellipsis")
    # a failing probe's trace, to find the backend's own trace of the failed request;
    # the column is there only while something fails (an all-green screen stays narrow)
    traced = any(r.trace_id for r in (*down, *blind))
    if traced:
        # shares what the other columns leave with the error: whole from ~130 columns
        table.add_column("trace", no_wrap=True, overflow="ellipsis", ratio=1, max_width=32)
    room = max(1, height - CHROME)
    failing = sorted(down, key=_by_kind) + sorted(blind, key=_by_kind)
    ordered = failing + sorted(up, key=_by_kind)
    shown = ordered if len(ordered) <= room else _summarised(failing, up, room)
    for row in shown:
        if isinstance(row, Row):
            cells = _cells(row, now)
            if traced:
                failing_row = row.state != "up" and row.trace_id
                cells.append(Text(row.trace_id or "", style="dim") if failing_row else "")
            table.add_row(*cells)
        else:
            table.add_row(*row, *([""] if traced else []))
    return Group(header, table)


def _by_kind(row: Row) -> tuple[str, str]:
    return (row.kind, row.probe)


STATES = {
    "up": Text("✓ up", style="green"),
    "down": Text("✗ down", style="bold red"),
    "no data": Text("? no data", style="yellow"),
}


def _cells(row: Row, now: float) -> list[Text | str]:
    state = STATES[row.state]
    latency = "-" if row.latency_ms is None else f"{row.latency_ms:,.0f} ms"
    return [
        Text(row.probe),
        Text(row.kind),
        state,
        format_span(max(0.0, now - row.since)),
        Text(row.reason or ""),
        latency,
        str(row.flips),
        Text(row.error or ""),
    ]


def _summarised(down: Sequence[Row], up: Sequence[Row], room: int) -> list[Row | list[Text | str]]:
    """Every failing (down or no data) probe that fits, then one line per kind for the
    probes up."""
    kinds: dict[str, int] = {}
    for r in up:
        kinds[r.kind] = kinds.get(r.kind, 0) + 1
    up_cell = Text("✓ up", style="green")
    summary: list[Row | list[Text | str]] = [
        [Text(f"{n} more", style="dim"), Text(kind), up_cell, "", "", "", "", ""]
        for kind, n in sorted(kinds.items())
    ]
    failing: list[Row | list[Text | str]] = [*down]
    if room - len(summary) - 1 < min(len(down), 3):
        # a small screen: the failing probes first, the ones up in one line
        summary = [[Text(f"{len(up)} more", style="dim"), "", up_cell, "", "", "", "", ""]]
    keep = max(0, room - len(summary) - 1)
    if len(failing) > keep:
        hidden = len(failing) - keep
        failing = [
            *failing[:keep],
            [Text(f"{hidden} more not up", style="bold red"), "", "", "", "", "", "", ""],
        ]
    return failing + summary
