"""``probe report --html``: one self-contained status page.

Inline CSS and SVG only: no JavaScript, no fonts, no external files, so it can be
mailed, attached to a CI run, or served from any static host. It reads on a phone
(the bars scale to the width) and prints (colours kept, no dark background).
"""

from __future__ import annotations

import math
import statistics
from html import escape
from typing import Any

from synthprobe.models import Failure
from synthprobe.objectives import format_objective, format_window
from synthprobe.report import CLASSES, MAINTENANCE, Report, utc
from synthprobe.slo import Budget
from synthprobe.units import format_span

BUCKETS = 60
COLOURS = {
    "ok": "#2e9e5b",
    Failure.DNS.value: "#8e44ad",
    Failure.NETWORK.value: "#d35400",
    Failure.TIMEOUT.value: "#e0a800",
    Failure.SERVER.value: "#c0392b",
    "maintenance": "#5dade2",
    "none": "#d5d8dc",
}

BUDGET_COLOURS = {"left": "#1f77b4", "spent": "#f5b7b1", "overspent": "#922b21"}
"""The budget meter and burn-down: remaining, spent, spent beyond the budget."""

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 0 auto; max-width: 960px; padding: 16px; color: #1c2833; background: #fff; }
header { border-bottom: 2px solid #eaecee; margin-bottom: 16px; padding-bottom: 8px; }
h1 { font-size: 1.4em; margin: 0 0 4px; }
h2 { font-size: 1.15em; margin: 24px 0 8px; display: flex; gap: 8px; align-items: baseline;
     flex-wrap: wrap; }
.state { display: inline-block; padding: 6px 12px; border-radius: 6px; color: #fff;
         font-weight: 600; }
.up { background: #2e9e5b; } .degraded { background: #e0a800; color: #1c2833; }
.down { background: #c0392b; }
.muted { color: #5d6d7e; font-size: .9em; }
.probe { border: 1px solid #eaecee; border-radius: 8px; padding: 10px 12px; margin: 8px 0; }
.row { display: flex; justify-content: space-between; gap: 8px; flex-wrap: wrap; }
.name { font-weight: 600; overflow-wrap: anywhere; }
svg { display: block; width: 100%; }
svg.bar { height: 22px; margin: 8px 0 4px; } svg.spark { height: 28px; }
svg.meter { height: 14px; margin: 6px 0; } svg.burn { height: 56px; }
.legend span { display: inline-block; margin-right: 12px; white-space: nowrap; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px;
            border-radius: 2px; vertical-align: middle; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .92em; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #eaecee; }
@media (max-width: 600px) { body { padding: 8px; font-size: 14px; }
  th:nth-child(2), td:nth-child(2), th:nth-child(4), td:nth-child(4) { display: none; } }
@media print { body { max-width: none; } .probe { break-inside: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
"""


def _state(availability: float | None, ongoing: bool) -> str:
    if ongoing:
        return "down"
    if availability is None or availability >= 0.999:
        return "up"
    return "degraded"


def _bar(points: list[tuple[float, int, float]], start: float, end: float) -> str:
    """One cell per time bucket: green when every result passed, else the colour of the
    class seen most; blue where only maintenance results are; grey where there is no data."""
    span = max(end - start, 1e-9)
    buckets: list[list[int]] = [[] for _ in range(BUCKETS)]
    for ts, code, _latency in points:
        index = min(BUCKETS - 1, max(0, int((ts - start) / span * BUCKETS)))
        buckets[index].append(code)
    cells = []
    width = 100 / BUCKETS
    for i, all_codes in enumerate(buckets):
        codes = [c for c in all_codes if c != MAINTENANCE]
        if all_codes and not codes:
            colour, label = COLOURS["maintenance"], f"{len(all_codes)} in maintenance"
        elif not codes:
            colour, label = COLOURS["none"], "no data"
        elif not any(codes):
            colour, label = COLOURS["ok"], f"{len(codes)} ok"
        else:
            failed = [c for c in codes if c]
            worst = max(set(failed), key=lambda c: (failed.count(c), -c))
            failure = CLASSES[worst]
            assert failure is not None
            colour = COLOURS[failure.value]
            label = f"{len(failed)} of {len(codes)} failed, mostly {failure.value}"
        when = utc(start + i * span / BUCKETS)
        cells.append(
            f'<rect x="{i * width:.3f}" y="0" width="{width * 0.86:.3f}" height="10" '
            f'rx="0.6" fill="{colour}"><title>{escape(str(when))}: {label}</title></rect>'
        )
    return (
        '<svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" '
        f'aria-label="results over time">{"".join(cells)}</svg>'
    )


def _sparkline(points: list[tuple[float, int, float]], start: float, end: float) -> str:
    """Median latency of the successful results in each bucket."""
    span = max(end - start, 1e-9)
    buckets: list[list[float]] = [[] for _ in range(BUCKETS)]
    for ts, code, latency in points:
        if code == 0 and not math.isnan(latency):
            index = min(BUCKETS - 1, max(0, int((ts - start) / span * BUCKETS)))
            buckets[index].append(latency)
    medians = [(i, statistics.median(b)) for i, b in enumerate(buckets) if b]
    if not medians:
        return '<p class="muted">no successful results to chart</p>'
    top = max(m for _, m in medians) or 1.0
    coords = " ".join(
        f"{(i + 0.5) * 100 / BUCKETS:.2f},{18 - m / top * 16:.2f}" for i, m in medians
    )
    return (
        '<svg class="spark" viewBox="0 0 100 20" preserveAspectRatio="none" role="img" '
        f'aria-label="latency, peak {top:.0f} ms"><polyline points="{coords}" fill="none" '
        'stroke="#2874a6" stroke-width="0.6" vector-effect="non-scaling-stroke"/></svg>'
        f'<div class="muted">latency (median per bucket), peak {top:,.0f} ms</div>'
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def status_page(report: Report, data: dict[str, Any]) -> str:
    """The whole page as text."""
    start = report.start or 0.0
    end = report.end or start
    ongoing = {(o["probe"], o["location"]) for o in data["outages"] if o["ongoing"]}
    probes_by_kind: dict[str, list[dict[str, Any]]] = {}
    for p in data["probes"]:
        probes_by_kind.setdefault(p["kind"], []).append(p)
    down = len(ongoing)
    if not data["probes"]:
        overall, overall_text = "degraded", "No results in this window"
    elif down == 0:
        overall, overall_text = "up", "All probes up"
    elif down == len(data["probes"]):
        overall, overall_text = "down", "Everything is down"
    else:
        overall, overall_text = "down", f"{down} of {len(data['probes'])} probes down now"
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width, initial-scale=1">',
        f"<title>Status: {escape(overall_text)}</title><style>{CSS}</style></head><body>",
        "<header><h1>Status</h1>",
        f'<p><span class="state {overall}">{escape(overall_text)}</span></p>',
        f'<p class="muted">{escape(str(data["from"]))} → {escape(str(data["to"]))}</p>',
        '<p class="legend muted">',
        *(f'<span><i style="background:{c}"></i>{escape(k)}</span>' for k, c in COLOURS.items()),
        "</p></header>",
    ]
    kinds = {k["kind"]: k for k in data["kinds"]}
    for kind, probes in sorted(probes_by_kind.items()):
        kind_down = any((p["probe"], p["location"]) in ongoing for p in probes)
        state = _state(kinds[kind]["availability"], kind_down)
        parts.append(
            f'<section><h2>{escape(kind)} <span class="state {state}">{state}</span>'
            f'<span class="muted">{_pct(kinds[kind]["availability"])} available</span></h2>'
        )
        for p in probes:
            key = (p["probe"], p["location"])
            points = report.timelines.get(key, [])
            state = _state(p["availability"], key in ongoing)
            parts.append(
                '<div class="probe"><div class="row">'
                f'<span class="name">{escape(p["probe"])} '
                f'<span class="muted">@{escape(p["location"])}</span></span>'
                f'<span><span class="state {state}">{_pct(p["availability"])}</span> '
                f'<span class="muted">{p["runs"]} runs</span></span></div>'
                f"{_bar(points, start, end)}{_sparkline(points, start, end)}</div>"
            )
        parts.append("</section>")
    if report.slos:
        parts.append("<section><h2>Error budgets</h2>")
        parts.extend(_budget(probe, budget) for probe, budget in sorted(report.slos.items()))
        parts.append("</section>")
    parts.append("<section><h2>Outages</h2>")
    if data["outages"]:
        parts.append(
            '<div class="scroll"><table><thead><tr><th>probe</th><th>location</th>'
            "<th>start</th><th>end</th><th>duration</th><th>class</th><th>trace</th>"
            "</tr></thead><tbody>"
        )
        for o in reversed(data["outages"]):
            end_text = "<b>ongoing</b>" if o["ongoing"] else escape(str(o["end"]))
            colour = COLOURS[o["failure"]]
            parts.append(
                f"<tr><td>{escape(o['probe'])}</td><td>{escape(o['location'])}</td>"
                f"<td>{escape(str(o['start']))}</td><td>{end_text}</td>"
                f"<td>{format_span(o['duration_s'])}</td>"
                f'<td><i style="color:{colour}">■</i> {escape(o["failure"])}</td>'
                # the trace of its first failed result: the backend's trace of it
                f"<td><code>{escape(o.get('trace_id') or '')}</code></td></tr>"
            )
        parts.append("</tbody></table></div>")
    else:
        parts.append('<p class="muted">No outages in this window.</p>')
    parts.append(
        '</section><footer class="muted"><p>Generated by synthprobe.</p></footer></body></html>'
    )
    return "\n".join(parts)


def _budget(probe: str, budget: Budget) -> str:
    """A probe's remaining error budget (a meter) and its burn-down over the window."""
    objective = format_objective(budget.slo.objective)
    window = format_window(budget.slo.window)
    head = (
        f'<div class="probe"><div class="row"><span class="name">{escape(probe)} '
        f'<span class="muted">{objective} over {window}</span></span>'
    )
    if budget.remaining is None:
        return head + '<span class="muted">no data in the window</span></div></div>'
    state = "down" if budget.exhausted else "degraded" if budget.remaining < 0.25 else "up"
    left = f"{budget.remaining * 100:.1f}% of the error budget left"
    if budget.exhausted:
        left = f"budget exhausted ({-budget.remaining * 100:.1f}% over)"
    coverage = "" if budget.coverage is None else f", coverage {budget.coverage * 100:.1f}%"
    when = ""
    if budget.exhaustion is not None:
        when = f", gone by {escape(str(utc(round(budget.exhaustion))))} at the last day's rate"
    return (
        f'{head}<span class="state {state}">{escape(left)}</span></div>'
        f"{_meter(budget.remaining)}{_burndown(budget)}"
        f'<div class="muted">SLI {(budget.sli or 0) * 100:.3f}% ({budget.good} of '
        f"{budget.valid} valid results good){coverage}{when}</div></div>"
    )


def _meter(remaining: float) -> str:
    # overspent, the whole meter says so: there is no share of nothing left to draw
    width = max(0.0, min(1.0, remaining)) * 100 if remaining > 0 else 100.0
    fill = BUDGET_COLOURS["left"] if remaining > 0 else BUDGET_COLOURS["overspent"]
    return (
        '<svg class="meter" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" '
        f'aria-label="{remaining * 100:.1f}% of the error budget left">'
        f'<rect x="0" y="0" width="100" height="10" fill="{BUDGET_COLOURS["spent"]}"/>'
        f'<rect x="0" y="0" width="{width:.3f}" height="10" fill="{fill}"/></svg>'
    )


def _burndown(budget: Budget) -> str:
    """The budget left across the window: the area under it is what was left at each
    moment; below the dashed line it was overspent."""
    points = budget.burndown
    low = min(0.0, *(r for _t, r in points))
    span = max(budget.end - budget.start, 1e-9)

    def y(remaining: float) -> float:
        return 2 + (1 - remaining) / (1 - low) * 36

    xs = [(t - budget.start) / span * 100 for t, _r in points]
    zero = y(0.0)
    left = [(x, y(max(r, 0.0))) for x, (_t, r) in zip(xs, points, strict=True)]
    area = " ".join(f"{x:.2f},{v:.2f}" for x, v in [(0.0, zero), *left, (100.0, zero)])
    over = ""
    if low < 0:  # overspent: the curve goes on below the line, in the overspent colour
        under = " ".join(
            f"{x:.2f},{y(min(r, 0.0)):.2f}" for x, (_t, r) in zip(xs, points, strict=True)
        )
        over = (
            f'<polygon points="0,{zero:.2f} {under} 100,{zero:.2f}" '
            f'fill="{BUDGET_COLOURS["overspent"]}"/>'
        )
    return (
        '<svg class="burn" viewBox="0 0 100 40" preserveAspectRatio="none" role="img" '
        f'aria-label="error budget burn-down from {escape(str(utc(budget.start)))}">{over}'
        f'<polygon points="{area}" fill="{BUDGET_COLOURS["left"]}"/>'
        f'<line x1="0" x2="100" y1="{zero:.2f}" y2="{zero:.2f}" stroke="#5d6d7e" '
        'stroke-width="1" stroke-dasharray="3 2" vector-effect="non-scaling-stroke"/></svg>'
        '<div class="muted">error budget left across the window (burn-down)</div>'
    )
