"""SLOs and error budgets: every field of the contract's ``slo`` object, computed here by a
calculation of the test's own (brute force, exact fractions) from a generated history,
against what `probe report --format json` says."""

from __future__ import annotations

import json
import statistics
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from synthprobe.cli import app
from synthprobe.models import Slo
from synthprobe.objectives import format_objective, format_window, parse_objective, parse_window
from synthprobe.slo import BURN_ALERTS, evaluate

from .test_report import iso, record

runner = CliRunner()
T0 = datetime(2026, 11, 20, tzinfo=UTC)
STEP = timedelta(minutes=10)
TO = T0 + timedelta(days=2, hours=12)
WINDOW = timedelta(days=2)
CONFIG = """\
version: 1
defaults:
  slo: {objective: 99%, window: 2d}
probes:
  - name: feed-home
    kind: feed
    url: http://127.0.0.1/feed
    slo: {objective: 99.5%, max_latency: 800ms}
  - name: api
    url: http://127.0.0.1/api
"""
LIMIT_MS = {"feed-home": 800.0, "api": None}
OBJECTIVE = {"feed-home": Fraction(995, 1000), "api": Fraction(99, 100)}


def history() -> list[dict[str, Any]]:
    """2.5 days, one result every 10 minutes per (probe, location); eu-1 on the hour,
    us-1 three minutes after. The SLO window (2 days) ends at TO and so leaves out
    the first 12 hours. Planted, for feed-home:
    - a total outage from both locations, day 1 00:00-01:00 (server);
    - every 17th eu-1 result passed slower than its 800ms max_latency;
    - us-1 in maintenance for 3 hours from day 1 12:00 (failing: never counted);
    - eu-1 cut off (vantage down) for 2 hours from day 2 00:00 (failing: no data);
    - us-1 internal errors (our bugs) for an hour from day 1 18:00;
    - eu-1 silent for 4 hours from day 1 19:00 (a gap: less coverage, never up);
    - one success with no timings at all (good: nothing says it was slow).
    For api: three failures in the last day, one with a reason no release knows.
    """
    out: list[dict[str, Any]] = []
    n = 0
    t = T0
    while t < TO + timedelta(hours=1):  # results at or after TO are outside too
        for location, offset in (("eu-1", 0), ("us-1", 3)):
            at = t + timedelta(minutes=offset)
            since = at - T0
            failure = "server" if timedelta(days=1) <= since < timedelta(days=1, hours=1) else None
            latency = 100.0
            if location == "eu-1" and n % 17 == 0:
                latency = 900.0
            extra: dict[str, Any] = {}
            if location == "us-1" and timedelta(days=1.5) <= since < timedelta(days=1.5, hours=3):
                failure, extra = "server", {"state": "maintenance"}
            if location == "eu-1" and timedelta(days=2) <= since < timedelta(days=2, hours=2):
                failure, extra = "network", {"vantage": "down"}
            if location == "us-1" and timedelta(days=1.75) <= since < timedelta(days=1.75, hours=1):
                failure = "internal"
            if location == "eu-1" and timedelta(days=1, hours=19) <= since < timedelta(
                days=1, hours=23
            ):
                continue
            rec = record("feed-home", "feed", location, at, failure, latency)
            if failure == "internal":
                rec["reason"] = "internal.error"
            rec.update(extra)
            if location == "us-1" and since == timedelta(days=2, hours=6, minutes=3):
                del rec["timings_ms"]
            out.append(rec)
            api_failure = None
            if location == "us-1" and since in (
                timedelta(days=1, hours=16, minutes=3),
                timedelta(days=2, hours=3, minutes=3),
            ):
                api_failure = "network"
            rec = record("api", "http", location, at, api_failure, 50.0)
            if location == "eu-1" and since == timedelta(days=2, hours=9):
                rec = record("api", "http", location, at, "timeout", 50.0, "timeout.martian")
            out.append(rec)
        n += 1
        t += STEP
    return out


# -- the test's own calculation ---------------------------------------------------------


def parse(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expected_slo(records: list[dict[str, Any]], probe: str) -> dict[str, Any]:
    to, start = TO.timestamp(), (TO - WINDOW).timestamp()
    objective = OBJECTIVE[probe]
    limit = LIMIT_MS[probe]
    valid: list[tuple[float, bool, str]] = []  # (ts, bad, location)
    for r in records:
        ts = parse(r["ts"])
        no_data = (
            r.get("state") == "maintenance"
            or r.get("vantage") == "down"
            or r["failure"] == "internal"
        )
        if r["probe"] != probe or not start <= ts < to or no_data:
            continue
        total = (r.get("timings_ms") or {}).get("total")
        slow = limit is not None and total is not None and total > limit
        valid.append((ts, not r["ok"] or slow, r["location"]))
    valid.sort()
    bad = sum(1 for _, b, _ in valid if b)
    budget = 1 - objective
    allowed = budget * len(valid)
    consumed = Fraction(bad) / allowed
    remaining = 1 - consumed

    def rate(lo: float, hi: float, closed_right: bool) -> Fraction | None:
        inside = [b for ts, b, _ in valid if lo <= ts < hi or (closed_right and ts == hi)]
        return Fraction(sum(inside), len(inside)) / budget if inside else None

    def rate_at(t: float, seconds: float) -> Fraction | None:  # over (t - seconds, t]
        inside = [b for ts, b, _ in valid if t - seconds < ts <= t]
        return Fraction(sum(inside), len(inside)) / budget if inside else None

    hours = {"5m": 300, "30m": 1800, "1h": 3600, "6h": 21600, "1d": 86400, "3d": 259200}
    burn = {w: rate(to - hours[w], to, False) for w in ("1h", "6h", "1d", "3d")}
    exhaustion = None
    if remaining > 0 and burn["1d"]:
        exhaustion = utc(round(to + float(remaining) * WINDOW.total_seconds() / float(burn["1d"])))
    expected = 0.0
    for location in ("eu-1", "us-1"):
        times = [ts for ts, _, loc in valid if loc == location]
        gap = statistics.median(b - a for a, b in pairwise(times))
        expected += WINDOW.total_seconds() / gap
    alerts = []
    for severity, long, short, factor in (
        ("page", "1h", "5m", 14.4),
        ("page", "6h", "30m", 6),
        ("ticket", "3d", "6h", 1),
    ):
        firing_since: float | None = None
        for t in sorted({ts for ts, _, _ in valid}):
            a, b = rate_at(t, hours[long]), rate_at(t, hours[short])
            firing = a is not None and b is not None and a > factor and b > factor
            if firing and firing_since is None:
                firing_since = t
            elif not firing and firing_since is not None:
                alerts.append((severity, long, short, factor, utc(firing_since), utc(t)))
                firing_since = None
        if firing_since is not None:
            alerts.append((severity, long, short, factor, utc(firing_since), None))

    def num(x: Fraction | None) -> float | None:
        return None if x is None else round(float(x), 6)

    return {
        "objective": float(objective),
        "window": "2d",
        **({"max_latency_ms": limit} if limit else {}),
        "from": utc(start),
        "to": utc(to),
        "valid": len(valid),
        "good": len(valid) - bad,
        "bad": bad,
        "sli": num(Fraction(len(valid) - bad, len(valid))),
        "budget": {
            "allowed_bad": num(allowed),
            "consumed": num(consumed),
            "remaining": num(remaining),
        },
        "burn_rate": {w: num(v) for w, v in burn.items()},
        "exhaustion": exhaustion,
        "exhausted": remaining <= 0,
        "coverage": round(min(1.0, len(valid) / expected), 6),
        "alerts": [
            {"severity": s, "long": lo, "short": sh, "factor": f, "start": a, "end": b}
            for s, lo, sh, f, a, b in alerts
        ],
    }


# -- the product, against it ------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> tuple[list[dict[str, Any]], Path, Path]:
    records = history()
    results = tmp_path / "history.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    config = tmp_path / "probes.yaml"
    config.write_text(CONFIG)
    return records, results, config


def report(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["report", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.mark.parametrize("probe", ["feed-home", "api"])
def test_every_field_of_the_slo_matches_a_calculation_of_our_own(
    files: tuple[list[dict[str, Any]], Path, Path], probe: str
) -> None:
    records, results, config = files
    # --since says 6 hours; the SLO's window (2d) ends at --until whatever --since says
    data = report(str(results), "--config", str(config), "--until", iso(TO), "--since", "6h")
    rows = [p for p in data["probes"] if p["probe"] == probe]
    assert len(rows) == 2 and rows[0]["slo"] == rows[1]["slo"]  # every location's, on each
    assert all(r["runs"] <= 36 for r in rows)  # the rest of the report kept to --since
    got, want = rows[0]["slo"], expected_slo(records, probe)
    assert got == want


def test_the_planted_history_exercises_every_field(
    files: tuple[list[dict[str, Any]], Path, Path],
) -> None:
    """The fixture is worth something only if it plants what the fields are about."""
    records, _, _ = files
    feed, api = expected_slo(records, "feed-home"), expected_slo(records, "api")
    assert feed["exhausted"] and feed["exhaustion"] is None
    assert {a["severity"] for a in feed["alerts"]} == {"page", "ticket"}
    assert any(a["end"] is not None for a in feed["alerts"])
    assert not api["exhausted"] and api["exhaustion"] is not None and api["alerts"] == []
    # the gap costs both coverage; maintenance, cut-off and bugs cost feed-home more
    assert 0.8 < feed["coverage"] < api["coverage"] < 1
    assert api["burn_rate"]["1h"] == 0.0 and api["burn_rate"]["1d"] > 0


def test_one_objective_for_every_probe(files: tuple[list[dict[str, Any]], Path, Path]) -> None:
    _, results, _ = files
    data = report(str(results), "--slo", "99.5%", "--window", "36h", "--until", iso(TO))
    slos = {p["probe"]: p["slo"] for p in data["probes"]}
    assert set(slos) == {"feed-home", "api"}
    assert {(s["objective"], s["window"]) for s in slos.values()} == {(0.995, "36h")}
    assert "max_latency_ms" not in slos["feed-home"]  # --slo judges passed alone
    assert slos["feed-home"]["from"] == iso(TO - timedelta(hours=36)).replace(".000", "")


def test_location_filter_makes_a_one_location_slo(
    files: tuple[list[dict[str, Any]], Path, Path],
) -> None:
    _, results, config = files
    data = report(str(results), "--config", str(config), "--until", iso(TO), "--location", "us-1")
    [row] = [p for p in data["probes"] if p["probe"] == "api"]
    assert row["slo"]["valid"] == 288 and row["slo"]["bad"] == 2


def test_no_slo_no_object(files: tuple[list[dict[str, Any]], Path, Path]) -> None:
    _, results, _ = files
    assert all("slo" not in p for p in report(str(results))["probes"])


def test_table_shows_each_probes_budget(files: tuple[list[dict[str, Any]], Path, Path]) -> None:
    _, results, config = files
    result = runner.invoke(
        app,
        ["report", str(results), "--config", str(config), "--until", iso(TO)],
        env={"COLUMNS": "220"},
    )
    assert result.exit_code == 0, result.output
    table = result.stdout.split("SLOs", 1)[1].split("outages", 1)[0]
    rows = {line.split("│")[1].strip(): line for line in table.splitlines() if "│" in line}
    assert "exhausted" in rows["feed-home"] and "99.5%" in rows["feed-home"]
    assert "99%" in rows["api"] and "2d" in rows["api"] and "2026-11-2" in rows["api"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slo", "99.9"], "99.9 without %"),
        (["--slo", "100%"], "must be below 100%"),
        (["--slo", "0%"], "must be more than 0%"),
        (["--slo", "120%"], "must be below 100%"),
        (["--slo", "ninety"], "expected a percentage"),
        (["--slo", "99%", "--window", "0d"], "--window must be more than 0"),
        (["--slo", "99%", "--window", "401d"], "--window must be at most 400d"),
        (["--window", "7d"], "--window needs --slo"),
        (["--slo", "99%", "--config", "x.yaml"], "either --slo or --config"),
    ],
    ids=[
        "no-percent",
        "hundred",
        "zero",
        "over",
        "words",
        "window-zero",
        "window-long",
        "window-alone",
        "both",
    ],
)
def test_bad_slo_options_exit_2(
    files: tuple[list[dict[str, Any]], Path, Path], args: list[str], message: str
) -> None:
    _, results, _ = files
    result = runner.invoke(app, ["report", str(results), *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())


def test_a_bad_config_exits_2_naming_file_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "probes:\n  - {name: a, url: 'http://127.0.0.1/', slo: {objective: 99.9}}\n"
        "  - {name: b, url: 'http://127.0.0.1/', slo: {objective: 99%, window: 0d}}\n"
    )
    results = tmp_path / "r.jsonl"
    results.write_text(json.dumps(record("a", "http", "eu-1", T0, None, 1.0)) + "\n")
    result = runner.invoke(app, ["report", str(results), "--config", str(config)])
    assert result.exit_code == 2
    err = " ".join(result.stderr.split())
    assert "bad.yaml:2: probes[0].slo.objective: 99.9 without %" in err
    assert "bad.yaml:3: probes[1].slo.window: must be more than 0" in err


# -- the arithmetic alone ---------------------------------------------------------------


def test_no_valid_result_is_no_data_not_a_perfect_score() -> None:
    budget = evaluate(Slo(0.999, 86400.0), 86400.0 * 10, [([1.0, 2.0], [0, 1])])
    assert (budget.valid, budget.sli, budget.consumed, budget.remaining) == (0, None, None, None)
    assert budget.coverage is None and not budget.exhausted and budget.exhaustion is None
    assert all(v is None for v in budget.burn_rate.values()) and budget.alerts == ()


def test_alert_that_no_share_of_bad_results_can_reach_never_fires() -> None:
    """At 90%, 14.4x the budget is 144% of results: that page cannot fire."""
    times = [float(t) for t in range(0, 7200, 60)]
    budget = evaluate(Slo(0.9, 7200.0), 7200.0, [(times, [1] * len(times))])
    assert {(s.alert.long, s.alert.short) for s in budget.alerts} == {("6h", "30m"), ("3d", "6h")}


def test_burn_alerts_are_the_workbooks() -> None:
    assert [(a.severity.value, a.long, a.short, a.factor) for a in BURN_ALERTS] == [
        ("page", "1h", "5m", 14.4),
        ("page", "6h", "30m", 6.0),
        ("ticket", "3d", "6h", 1.0),
    ]


@given(st.integers(1, 400 * 24).map(lambda h: h * 3600.0))
def test_window_round_trips(seconds: float) -> None:
    assert parse_window(format_window(seconds)) == seconds


@given(st.integers(1, 99999).map(lambda n: n / 1000))
def test_objective_round_trips(percent: float) -> None:
    text = f"{percent:g}%"
    assert format_objective(parse_objective(text)) == text


def test_an_slo_changes_nothing_else_in_the_report(
    files: tuple[list[dict[str, Any]], Path, Path],
) -> None:
    """The SLO's window reaches back before --since; the rest of the report must not."""
    _, results, config = files
    window = ("--until", iso(TO), "--since", "6h")
    plain = report(str(results), *window)
    judged = report(str(results), "--config", str(config), *window)
    for row in judged["probes"]:
        del row["slo"]
    assert judged == plain
    assert plain["from"] == iso(TO - timedelta(hours=6)).replace(".000", "")
