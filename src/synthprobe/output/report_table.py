"""``probe report --format table``: the same figures as the JSON, for people."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from synthprobe.models import TARGET_FAILURES, Failure
from synthprobe.output.table import CLASS_STYLE
from synthprobe.units import format_span


def _pct(value: float | None) -> Text:
    if value is None:
        return Text("-")
    style = "green" if value >= 0.999 else "yellow" if value >= 0.99 else "bold red"
    return Text(f"{value * 100:.2f}%", style=style)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _failures(counts: dict[str, int]) -> Text:
    text = Text()
    for f in TARGET_FAILURES:
        n = counts.get(f.value, 0)
        if n:
            if text:
                text.append(" ")
            text.append(f"{f.value} {n}", style=CLASS_STYLE[f])
    return text or Text("-")


def render_report(data: dict[str, Any], console: Console) -> None:
    """Window, per kind, per probe and location, outages, gaps, maintenance windows."""
    console.print(f"[bold]window[/] {data['from'] or '-'} → {data['to'] or '-'}", highlight=False)
    if not data["probes"]:
        console.print("no results in this window")
        return
    kinds = Table(title="by kind", title_justify="left", pad_edge=False)
    for col in ("kind", "runs", "availability", "p50 ms", "p95 ms", "p99 ms", "failures"):
        kinds.add_column(col, justify="left" if col in ("kind", "failures") else "right")
    for k in data["kinds"]:
        lat = k["latency_ms"]
        kinds.add_row(
            Text(k["kind"]),
            str(k["runs"]),
            _pct(k["availability"]),
            _ms(lat["p50"]),
            _ms(lat["p95"]),
            _ms(lat["p99"]),
            _failures(k["failures"]),
        )
    console.print(kinds)
    probes = Table(title="by probe", title_justify="left", pad_edge=False)
    for col in (
        "probe",
        "kind",
        "location",
        "runs",
        "availability",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "failures",
        "top reasons",
        "MTTR",
        "longest",
    ):
        probes.add_column(col, overflow="fold")
    for p in data["probes"]:
        lat = p["latency_ms"]
        reasons = ", ".join(f"{r['reason']} {r['count']}" for r in p["top_reasons"]) or "-"
        probes.add_row(
            Text(p["probe"]),
            Text(p["kind"]),
            Text(p["location"]),
            str(p["runs"]),
            _pct(p["availability"]),
            _ms(lat["p50"]),
            _ms(lat["p95"]),
            _ms(lat["p99"]),
            _failures(p["failures"]),
            Text(reasons),
            format_span(p["mttr_s"]) if p["mttr_s"] is not None else "-",
            format_span(p["longest_outage_s"]) if p["longest_outage_s"] is not None else "-",
        )
    console.print(probes)
    _render_slos(data["probes"], console)
    if data["outages"]:
        outages = Table(title="outages", title_justify="left", pad_edge=False)
        for col in ("probe", "location", "start", "end", "duration", "class", "runs"):
            outages.add_column(col)
        for o in data["outages"]:
            end = Text("ongoing", style="bold red") if o["ongoing"] else Text(o["end"])
            outages.add_row(
                Text(o["probe"]),
                Text(o["location"]),
                o["start"],
                end,
                format_span(o["duration_s"]),
                Text(o["failure"], style=CLASS_STYLE[Failure(o["failure"])]),
                str(o["runs"]),
            )
        console.print(outages)
    else:
        console.print("[green]no outages[/] in this window")
    for g in data["gaps"]:
        console.print(
            f"[dim]no data:[/] {escape(g['probe'])}@{escape(g['location'])} {g['start']} → "
            f"{g['end']} ({format_span(g['duration_s'])})",
            highlight=False,
        )
    for w in data.get("maintenance", []):
        console.print(
            f"[blue]maintenance:[/] {escape(w['probe'])}@{escape(w['location'])} "
            f"{w['start']} → {w['end']} "
            f"({w['runs']} results, counted neither up nor down)",
            highlight=False,
        )


def _budget(remaining: float | None, exhausted: bool) -> Text:
    if remaining is None:
        return Text("no data", style="dim")
    style = "bold red" if exhausted else "yellow" if remaining < 0.25 else "green"
    return Text(f"{remaining * 100:.1f}%", style=style)


def _rate(value: float | None) -> Text:
    if value is None:
        return Text("-")
    return Text(f"{value:.2f}", style="bold red" if value > 1 else "")


def _render_slos(rows: list[dict[str, Any]], console: Console) -> None:
    """One row per probe with an SLO (every location's results together)."""
    slos = {p["probe"]: p["slo"] for p in rows if "slo" in p}
    if not slos:
        return
    table = Table(title="SLOs", title_justify="left", pad_edge=False)
    for col in (
        "probe",
        "objective",
        "window",
        "SLI",
        "good/valid",
        "budget left",
        "burn 1h",
        "6h",
        "1d",
        "3d",
        "exhaustion",
        "coverage",
        "alerts",
    ):
        table.add_column(col, overflow="fold")
    for probe, slo in sorted(slos.items()):
        burn = slo["burn_rate"]
        exhaustion = (
            Text("exhausted", style="bold red")
            if slo["exhausted"]
            else Text(slo["exhaustion"] or "-")
        )
        alerts = [a["severity"] for a in slo["alerts"]]
        table.add_row(
            Text(probe),
            f"{slo['objective'] * 100:g}%",
            slo["window"],
            "-" if slo["sli"] is None else f"{slo['sli'] * 100:.3f}%",
            f"{slo['good']}/{slo['valid']}",
            _budget(slo["budget"]["remaining"], slo["exhausted"]),
            _rate(burn["1h"]),
            _rate(burn["6h"]),
            _rate(burn["1d"]),
            _rate(burn["3d"]),
            exhaustion,
            "-" if slo["coverage"] is None else f"{slo['coverage'] * 100:.1f}%",
            Text(
                ", ".join(f"{n} {s}" for s in ("page", "ticket") if (n := alerts.count(s))) or "-"
            ),
        )
    console.print(table)
