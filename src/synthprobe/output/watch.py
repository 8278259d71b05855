"""``probe watch``'s screen: the state of every probe as a person on call reads it.

Pure: from the view's rows and the clock to a rich renderable of a given height (the
width is the console's, at each refresh). Probes that need a look come first (down, then
those whose last result was a synthprobe bug), grouped by kind; when the screen cannot
hold every row, the probes that are up are summarised in one line per kind (200 probes
fit in 24 lines).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from synthprobe.units import format_span, format_utc

CHROME = 6
"""Lines that are not probe rows: the header, the table's top border, heading, the line
under the heading, its bottom border, and one spare so the terminal never scrolls."""

Cells = list[Text | str]


@dataclass(frozen=True, slots=True)
class Row:
    """One probe, as the watch has seen it."""

    probe: str
    kind: str
    up: bool | None
    """None: no result has said anything about the target yet (only synthprobe bugs)."""
    since: float | None
    """Epoch seconds: when it entered this state (first seen so, or the state file's)."""
    reason: str | None
    error: str | None
    """Of the last result."""
    latency_ms: float | None
    flips: int
    bug: bool = False
    """The last result was ``internal.error``: synthprobe's fault, not the target's."""
    cut_off: bool = False
    """The last result failed while this machine was cut off (``"vantage": "down"``)."""


@dataclass(slots=True)
class Round:
    """When the last round ended and the next starts (epoch seconds), and whether the
    controls said this machine is cut off (what they said)."""

    last: float | None = None
    next: float | None = None
    running: bool = True
    cut_off: str | None = None


COLUMNS = ("probe", "kind", "state", "since", "reason", "latency", "flips", "error")
KEPT = ("probe", "state", "since")
"""Always shown; the others join in this order while the width holds them."""
OPTIONAL = ("reason", "error", "latency", "flips", "kind")
SEP = " · "
RIGHT = frozenset({"since", "latency", "flips"})
PROBE_MAX, ERROR_MIN = 24, 10
"""Widths a name is cut to and an error is given at least, when choosing columns."""


def render(
    rows: Sequence[Row], clock: Round, *, now: float, width: int, height: int
) -> RenderableType:
    """The whole screen within ``width`` x ``height``: a header line, then the table (or
    its summary). A narrow screen drops the columns that matter least (kind first)."""
    look = sorted((r for r in rows if r.up is not True or _no_data(r)), key=_order)
    fine = sorted((r for r in rows if r.up is True and not _no_data(r)), key=_order)
    room = max(1, height - CHROME)
    if len(look) + len(fine) <= room:
        lines = [_cells(r, now) for r in (*look, *fine)]
    else:
        lines = _summarised(look, fine, room, now)
    shown = _fitting(lines, width)
    # the error takes what is left; without it the columns keep their own widths
    table = Table(pad_edge=False, expand="error" in shown)
    for name in shown:
        table.add_column(
            name,
            no_wrap=True,
            overflow="ellipsis",
            justify="right" if name in RIGHT else "left",
            ratio=1 if name == "error" else None,
        )
    index = [COLUMNS.index(name) for name in shown]
    for cells in lines:
        table.add_row(*(cells[i] for i in index))
    return Group(_header(rows, clock, now, width), table)


def _fitting(lines: Sequence[Cells], width: int) -> list[str]:
    """The columns that fit ``width``, in table order: each costs its widest cell plus
    three (padding and a border), less the outer padding the table leaves out."""

    def need(name: str) -> int:
        i = COLUMNS.index(name)
        widest = max([len(name), *(len(str(cells[i])) for cells in lines)])
        if name == "probe":
            widest = min(widest, PROBE_MAX)
        elif name == "error":
            widest = min(widest, ERROR_MIN)
        return widest + 3

    chosen = set(KEPT)
    used = 1 - 2 + sum(need(name) for name in KEPT)
    for name in OPTIONAL:
        if used + need(name) <= width:
            chosen.add(name)
            used += need(name)
    return [name for name in COLUMNS if name in chosen]


def _no_data(row: Row) -> bool:
    """The last result said nothing about the target (our bug, or this machine cut off)."""
    return row.bug or row.cut_off


def _order(row: Row) -> tuple[int, str, str]:
    """Down first, then no data yet, then up with no data in its last result; by kind."""
    rank = 0 if row.up is False else 1 if row.up is None else 2 if _no_data(row) else 3
    return (rank, row.kind, row.probe)


def _header(rows: Sequence[Row], clock: Round, now: float, width: int) -> Text:
    up = sum(1 for r in rows if r.up is True)
    down = sum(1 for r in rows if r.up is False)
    bugs = sum(1 for r in rows if r.bug)
    counts: list[tuple[str, str]] = [(f"{up}/{len(rows)} up", "bold red" if down else "green")]
    if down:
        counts.append((f"{down} down", "bold red"))
    if bugs:
        counts.append((f"{bugs} synthprobe bug" + ("s" if bugs > 1 else ""), "yellow"))
    if clock.cut_off is not None:  # the controls failed too: these failures are no data
        counts.insert(0, ("this machine looks cut off", "bold red"))
    last = "" if clock.last is None else f"last round {_time(clock.last)}"
    if clock.running:
        coming, short = "round running", "running"
    elif clock.next is not None:
        wait = format_span(max(0.0, clock.next - now))
        coming, short = f"next {_time(clock.next)} (in {wait})", f"next in {wait}"
    else:
        coming = short = ""
    # the longest that fits: the counts matter most, then the times, then the hint
    for times, hint in (
        ((last, coming), True),
        ((last, coming), False),
        ((last, short), False),
        ((short,), False),
    ):
        parts = [*counts, *((t, "") for t in times if t)]
        if hint:
            parts.append(("Ctrl-C to stop", "dim"))
        if len(SEP.join(text for text, _ in parts)) <= width:
            break
    header = Text(no_wrap=True, overflow="ellipsis")
    for n, (text, style) in enumerate(parts):
        header.append((SEP if n else "") + text, style=style)
    return header


def _time(epoch: float) -> str:
    """``10:13:51Z``: the day is today's, the milliseconds are noise here."""
    return format_utc(epoch)[11:19] + "Z"


def _cells(row: Row, now: float) -> Cells:
    if row.up is None:
        state = Text("? no data", style="yellow")
    elif row.up:
        state = Text("✓ up", style="green")
    else:
        state = Text("✗ down", style="bold red")
    latency = "-" if row.latency_ms is None else f"{row.latency_ms:,.0f} ms"
    since = "-" if row.since is None else format_span(max(0.0, now - row.since))
    return [
        Text(row.probe),
        Text(row.kind),
        state,
        since,
        Text(row.reason or "", style="yellow" if _no_data(row) else ""),
        latency,
        str(row.flips),
        Text(("cut off: " if row.cut_off else "") + (row.error or "")),
    ]


def _note(text: str, style: str, state: Text | str = "") -> Cells:
    return [Text(text, style=style), "", state, "", "", "", "", ""]


def _summarised(look: Sequence[Row], fine: Sequence[Row], room: int, now: float) -> list[Cells]:
    """Every probe needing a look that fits, then one line per kind for the probes up."""
    kinds: dict[str, int] = {}
    for r in fine:
        kinds[r.kind] = kinds.get(r.kind, 0) + 1
    up = Text("✓ up", style="green")
    summary: list[Cells] = [
        [Text(f"{n} more {kind}", style="dim"), Text(kind), up, "", "", "", "", ""]
        for kind, n in sorted(kinds.items())
    ]
    if room - len(summary) < min(len(look), 3) + (1 if look else 0):
        # a small screen: the probes needing a look first, the ones up in a single line
        summary = [_note(f"{len(fine)} more", "dim", up)] if fine else []
    if look and len(summary) >= room:
        summary = []  # no room for both: the probes needing a look win
    keep = room - len(summary)
    shown = [_cells(r, now) for r in look]
    if len(shown) > keep:
        hidden = len(look) - (keep - 1)
        # the first one hidden is the worst of them (the order): its state says theirs
        worst = shown[keep - 1][COLUMNS.index("state")]
        shown = [*shown[: keep - 1], _note(f"{hidden} more", "bold red", worst)]
    return shown + summary
