"""Pure alert logic: consecutive results -> states and events (Gatus's semantics), the
state file's round trip, and maintenance windows across a DST change."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthprobe.alerts import Entry, Event, apply, title
from synthprobe.maintenance import inside
from synthprobe.models import (
    AlertRule,
    EventKind,
    Failure,
    MaintenanceWindow,
    ProbeResult,
    Reason,
    State,
    Weekday,
)
from synthprobe.state import Pending, StateData, dumps, loads
from synthprobe.units import format_utc

from .results import make_result


def result(ok: bool, minute: int) -> ProbeResult:
    failure = {} if ok else {"failure": Failure.SERVER, "reason": Reason.SERVER_STATUS}
    return make_result(
        ok=ok,
        ts=format_utc(1_795_000_000 + minute * 60),
        error=None if ok else "status 503, expected 2xx",
        **failure,
    )


def run(pattern: str, rule: AlertRule) -> list[tuple[str, str | None]]:
    """``pattern``: one char per run, ``.`` pass, ``x`` fail -> (state, event) per run."""
    entry, out = Entry(), []
    for minute, c in enumerate(pattern):
        entry, event = apply(entry, result(c == ".", minute), rule)
        out.append((entry.state.value, event.kind.value if event else None))
    return out


CASES = [
    ("threshold-1", "..x.", AlertRule(), ["up", "up", "down", "up"], [None, None, "down", "up"]),
    (
        "threshold-2-pending-first",
        ".xx.",
        AlertRule(failure_threshold=2),
        ["up", "pending", "down", "up"],
        [None, None, "down", "up"],
    ),
    (
        "pending-that-recovers-raises-nothing",
        "x.x.",
        AlertRule(failure_threshold=2),
        ["pending", "up", "pending", "up"],
        [None] * 4,
    ),
    (
        "success-threshold",
        "x..x..",
        AlertRule(success_threshold=2),
        ["down", "down", "up", "down", "down", "up"],
        ["down", None, "up", "down", None, "up"],
    ),
    (
        "a-success-resets-the-failures",
        "xx.xx",
        AlertRule(failure_threshold=3),
        ["pending", "pending", "up", "pending", "pending"],
        [None] * 5,
    ),
    (
        "reminders",
        "xxxx.",
        AlertRule(remind_every=120),
        ["down", "down", "down", "down", "up"],
        ["down", None, "reminder", None, "up"],
    ),
    (
        "no-resolved",
        "x.",
        AlertRule(send_resolved=False),
        ["down", "up"],
        ["down", None],
    ),
    ("never-down-no-up", "....", AlertRule(), ["up"] * 4, [None] * 4),
]


@pytest.mark.parametrize(
    ("pattern", "rule", "states", "events"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_states_and_events(
    pattern: str, rule: AlertRule, states: list[str], events: list[str | None]
) -> None:
    got = run(pattern, rule)
    assert [s for s, _ in got] == states
    assert [e for _, e in got] == events


def test_an_older_result_does_not_move_the_state() -> None:
    entry, _ = apply(Entry(), result(False, 5), AlertRule())
    after, event = apply(entry, result(True, 4), AlertRule())
    assert (after, event) == (entry, None)


def test_down_since_is_the_first_failure_and_up_says_how_long() -> None:
    rule = AlertRule(failure_threshold=2)
    entry, _ = apply(Entry(), result(False, 0), rule)
    entry, down = apply(entry, result(False, 1), rule)
    assert down is not None and down.since == result(False, 0).ts and down.runs == 2
    assert "DOWN feed-home (feed) eu-1 server.status: status 503" in down.line()
    assert "(2 runs)" in down.line()
    entry, up = apply(entry, result(True, 15), rule)
    assert up is not None and up.line() == "UP feed-home (feed) eu-1 after 15m00s"
    assert up.line(late=True).endswith("(late)")


def test_title_counts_each_kind() -> None:
    def ev(kind: EventKind) -> Event:
        return Event(kind, "p", "feed", "eu-1", "2026-11-25T00:00:00.000Z", None, 1, None, None)

    events = [ev(EventKind.DOWN), ev(EventKind.DOWN), ev(EventKind.UP)]
    assert title("eu-1", events) == "synthprobe eu-1: 2 down, 1 up"


# --------------------------------------------------------------------------- state file

texts = st.text(min_size=1, max_size=12)
stamps = st.integers(0, 4_000_000_000).map(lambda s: format_utc(float(s)))
entries = st.builds(
    Entry,
    state=st.sampled_from([State.UP, State.PENDING, State.DOWN]),
    since=st.one_of(st.none(), stamps),
    failures=st.integers(0, 10**6),
    successes=st.integers(0, 10**6),
    last_ts=st.one_of(st.none(), stamps),
    last_notice=st.one_of(st.none(), stamps),
)


@st.composite
def states(draw: st.DrawFn) -> StateData:
    data = StateData()
    for key in draw(st.lists(st.tuples(texts, texts), max_size=5, unique=True)):
        data.entries[key] = draw(entries)
    keys = list(data.entries)
    for i in range(draw(st.integers(0, 3)) if keys else 0):
        probe, location = draw(st.sampled_from(keys))
        event = Event(
            draw(st.sampled_from(list(EventKind))),
            probe,
            "feed",
            location,
            draw(stamps),
            draw(st.one_of(st.none(), stamps)),
            draw(st.integers(0, 100)),
            draw(st.one_of(st.none(), texts)),
            draw(st.one_of(st.none(), texts)),
        )
        targets = draw(st.lists(st.text(alphabet="0123456789abcdef", min_size=16, max_size=16)))
        lease = draw(st.one_of(st.none(), st.floats(0, 1e10, allow_nan=False)))
        data.pending.append(Pending(f"id{i}", event, targets, "run", lease))
    return data


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["a-probe-a-line", "indented-document"])
@given(data=states())
def test_state_round_trip(layout: str, data: StateData) -> None:
    """Both layouts load the same: ours (read a line at a time) and the indented
    document earlier releases wrote (and a person may write)."""
    text = dumps(data)
    if layout == "indented-document":
        text = json.dumps(json.loads(text), indent=2)
    back = loads(text)
    assert back.entries == data.entries
    assert sorted(p.id for p in back.pending) == sorted(p.id for p in data.pending)
    assert {p.id: (p.event, p.targets, p.lease) for p in back.pending} == {
        p.id: (p.event, p.targets, p.lease) for p in data.pending
    }


# --------------------------------------------------------------------------- maintenance

PARIS_SUNDAY_3AM = MaintenanceWindow(
    every=(Weekday.SUNDAY,), at=(3, 0), duration=3600, timezone="Europe/Paris"
)


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2026-03-22T02:30:00", True),  # winter: 03:30 in Paris (UTC+1)
        ("2026-03-22T01:30:00", False),  # 02:30 in Paris: before the window
        ("2026-03-29T01:30:00", True),  # the DST Sunday: 03:30 in Paris is now UTC+2
        ("2026-03-29T02:30:00", False),  # 04:30 in Paris: after it
        ("2026-10-25T02:30:00", True),  # back to winter that night: 03:30 UTC+1
        ("2026-10-25T01:30:00", False),  # 02:30 (the second one) in Paris: before
        ("2026-03-23T02:30:00", False),  # a Monday
    ],
)
def test_recurring_window_follows_local_time_across_dst(when: str, expected: bool) -> None:
    assert inside(PARIS_SUNDAY_3AM, utc(when)) is expected


def test_one_off_window_is_half_open() -> None:
    window = MaintenanceWindow(start=utc("2026-12-01T02:00:00"), end=utc("2026-12-01T04:00:00"))
    assert inside(window, utc("2026-12-01T02:00:00"))
    assert not inside(window, utc("2026-12-01T04:00:00"))


def test_window_across_midnight() -> None:
    window = MaintenanceWindow(every=(Weekday.SATURDAY,), at=(23, 0), duration=2 * 3600)
    assert inside(window, utc("2026-11-29T00:30:00"))  # Sunday 00:30, started Saturday


def test_probes_gone_from_the_config_are_forgotten_after_seven_days() -> None:
    from synthprobe.state import FORGET_AFTER, forget_gone

    now = 1_795_000_000.0
    data = StateData()
    data.entries[("kept", "eu-1")] = Entry(last_ts=format_utc(now - 30 * 86400))  # configured
    data.entries[("recent", "eu-1")] = Entry(last_ts=format_utc(now - FORGET_AFTER + 60))
    data.entries[("gone", "eu-1")] = Entry(last_ts=format_utc(now - FORGET_AFTER - 60))
    forget_gone(data, {"kept"}, now)
    assert sorted(k for k, _ in data.entries) == ["kept", "recent"]


@pytest.mark.slow
def test_a_big_state_is_written_a_line_at_a_time(tmp_path: Path) -> None:
    """Memory, not time: 20,000 probes' state goes to the file and comes back a probe
    at a time; json.dumps(indent=2) of the whole document peaked near 45 MB for them."""
    import tracemalloc

    from synthprobe.state import load, write

    data = StateData()
    for i in range(20_000):
        data.entries[(f"p{i}", "vm")] = Entry(State.UP, "2026-11-25T10:00:00.000Z", 0, 3)
    path = tmp_path / "state.json"
    with path.open("w", encoding="utf-8") as fh:
        tracemalloc.start()
        try:
            write(data, fh)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 2_000_000, f"writing: {peak / 1e6:.1f} MB at the peak"
    with path.open(encoding="utf-8") as fh:
        tracemalloc.start()
        try:
            back = load(fh)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert back.entries == data.entries
    # the entries themselves are ~7 MB; the whole text and document at once took ~25
    assert peak < 10_000_000, f"reading: {peak / 1e6:.1f} MB at the peak"


def test_a_state_file_cut_short_is_never_taken_for_a_whole_one() -> None:
    """A state file cut at any line (a full disk, a copy interrupted) is refused, so
    it is moved aside with a warning instead of losing probes silently."""
    from synthprobe.state import CorruptState

    data = StateData()
    for i in range(3):
        data.entries[(f"p{i}", "vm")] = Entry(State.DOWN, "2026-11-25T10:00:00.000Z", 2)
    event = Event(
        EventKind.DOWN, "gone", "http", "vm", "2026-11-25T10:00:00.000Z", None, 2, None, None
    )
    data.pending.append(Pending("x1", event, ["abcdef0123456789"], "run", None))
    text = dumps(data)
    lines = text.splitlines(keepends=True)
    assert len(lines) == 8 and lines[-1] == "]}\n"  # 3 probes, then an orphan section
    assert loads(text).entries == data.entries
    for cut in range(1, len(lines)):
        with pytest.raises(CorruptState):
            loads("".join(lines[:cut]))


def test_a_result_whose_line_went_out_without_an_event_never_raises_one(tmp_path: Path) -> None:
    """Two overlapping runs, failure_threshold 2, both read the state while the probe
    was up. B's failure lands first (pending). A's failure, which A's view found
    uneventful and wrote so in its line, would make the probe DOWN on the state as it
    is now: raising that event would put an event in no line, so A's result leaves the
    state alone, and the next run's failure raises the DOWN, in its own line."""
    from synthprobe.alerting import Alerting
    from synthprobe.models import Settings
    from synthprobe.redact import Redactor

    from .conftest import specs_from_yaml

    specs = specs_from_yaml(
        "probes:\n"
        "  - {name: feed-home, url: 'http://127.0.0.1:9/', alert: {failure_threshold: 2}}\n"
    )
    settings = Settings(output=str(tmp_path / "r.jsonl"))
    warnings: list[str] = []

    def alerting(run_id: str) -> Alerting:
        return Alerting(settings, specs, run_id, "eu-1", Redactor(), warnings.append)

    def line(run: Alerting, measured: ProbeResult) -> ProbeResult | None:
        standing = run.standing(measured, None)
        return None if standing is None else measured.line(standing)

    a, b = alerting("run-a"), alerting("run-b")
    line_b = line(b, result(False, 1))
    assert line_b is not None and line_b.event is None and b.finish([line_b]).events == []
    line_a = line(a, result(False, 2))
    assert line_a is not None and line_a.event is None and line_a.state is State.PENDING
    assert a.finish([line_a]).events == []
    state = json.loads((tmp_path / "r.state.json").read_text())["probes"]["feed-home"]["eu-1"]
    assert (state["state"], state["failures"]) == ("pending", 1)  # A's result: not applied
    c = alerting("run-c")
    assert line(c, result(False, 3)) is None  # it may raise an event: it waits
    [(measured, standing)] = c.settle()  # decided under the lock, with every other waiting one
    line_c = measured.line(standing)
    assert line_c.event is EventKind.DOWN
    assert [e.kind for e in c.finish([line_c]).events] == [EventKind.DOWN]
    assert warnings == []
