"""The rich summary table (by hand) and the quiet format (cron)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from synthprobe.models import Failure, ProbeResult
from synthprobe.output.summary import summarize

CLASS_STYLE = {
    Failure.DNS: "magenta",
    Failure.NETWORK: "red",
    Failure.TIMEOUT: "yellow",
    Failure.SERVER: "bright_red",
    Failure.INTERNAL: "bold white on red",
}
STATE_STYLE = {"up": "green", "degraded": "yellow", "down": "bold red"}
LAG_WARNING_MS = 20.0
"""Event-loop lag above which a probe's timings are flagged as possibly inflated."""


def _latency(result: ProbeResult) -> str:
    total = result.latency_ms
    return "-" if total is None else f"{total:,.0f} ms"


def render_table(results: list[ProbeResult], console: Console, title: str | None = None) -> None:
    """One row per probe, then one line per kind and the failures by class."""
    table = Table(title=title, title_justify="left", expand=False, pad_edge=False)
    # names and reasons are never broken mid-word ("chat-round/trip" in a cron mail):
    # the error column gives way instead
    table.add_column("probe", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("class / reason", no_wrap=True)
    table.add_column("status", justify="right")
    table.add_column("latency", justify="right")
    table.add_column("error", overflow="fold", max_width=60)
    for r in results:
        if r.ok:
            result = Text("✓ up", style="green")
            reason = Text("")
        elif r.failure is Failure.INTERNAL:
            # our bug, not their outage: never shown as "down"
            result = Text("! error", style=CLASS_STYLE[Failure.INTERNAL])
            reason = Text(r.reason or "", style=CLASS_STYLE[Failure.INTERNAL])
        else:
            style = CLASS_STYLE[r.failure] if r.failure else "red"
            result = Text("✗ down", style="bold red")
            reason = Text(r.reason or "", style=style)
        attempts = f" ({r.attempts} attempts)" if r.attempts > 1 else ""
        # Text, never a str: rich would read markup in what a server sent (an error
        # quoting a Location header) and could hide or restyle what the table says
        table.add_row(
            Text(r.probe),
            Text(r.kind),
            result,
            reason,
            "-" if r.status is None else str(r.status),
            _latency(r),
            Text((r.error or "") + attempts),
        )
    console.print(table)
    s = summarize(results)
    kinds = Text()
    for i, (kind, count) in enumerate(s.kinds.items()):
        if i:
            kinds.append("  ·  ")
        kinds.append(f"{kind} ")
        kinds.append(count.state, style=STATE_STYLE[count.state])
        kinds.append(f" {count.ok}/{count.total}")
    console.print(kinds)
    verdict = Text(f"{s.ok}/{s.total} passed", style="green" if s.failed == 0 else "bold red")
    if s.failed:
        verdict.append("  ·  failures: ", style="default")
        verdict.append(
            ", ".join(
                f"{f.value} {s.classes.get(f.value, 0)}"
                for f in Failure
                if f is not Failure.INTERNAL or s.classes.get(f.value)
            ),
            style="default",
        )
    console.print(verdict)
    lagged = [r for r in results if (r.details.get("loop_lag_ms") or 0) > LAG_WARNING_MS]
    if lagged:
        worst = max(r.details["loop_lag_ms"] for r in lagged)
        console.print(
            f"[yellow]note:[/] {len(lagged)} probe(s) ran while synthprobe itself was busy "
            f"(event loop up to {worst:,.0f} ms late). Plain HTTP probes are timed by the "
            "kernel and are not skewed by it; the timings of other kinds and of steps may "
            "be that much high. Lower --concurrency, or spread probes over more runs.",
            highlight=False,
        )
