"""The ledger, pure: a result applied to the state at each moment of a run (``seen``,
``settle``, ``final``), by tables; and "no data", decided once for the state, the JSON
line and the report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from synthprobe.alerts import Entry
from synthprobe.ledger import Ledger, in_order, settled
from synthprobe.models import (
    NO_STANDING,
    EventKind,
    Failure,
    MaintenanceWindow,
    ProbeResult,
    Reason,
    Settings,
    Standing,
    State,
    Vantage,
    no_data,
)
from synthprobe.record import decode, to_record
from synthprobe.state import StateData
from synthprobe.units import format_utc

from .conftest import specs_from_yaml
from .results import make_result

T0 = 1_795_000_000.0
KEY = ("feed-home", "eu-1")
SPECS = specs_from_yaml(
    "probes:\n  - {name: feed-home, url: 'http://127.0.0.1:9/', alert: {failure_threshold: 2}}\n"
)


def ts(minute: int) -> str:
    return format_utc(T0 + minute * 60)


def passed(minute: int) -> ProbeResult:
    return make_result(ts=ts(minute))


def failed(minute: int, failure: Failure = Failure.SERVER) -> ProbeResult:
    reason = Reason.INTERNAL_ERROR if failure is Failure.INTERNAL else Reason.SERVER_STATUS
    return make_result(ok=False, ts=ts(minute), failure=failure, reason=reason, error="503")


PENDING = Entry(State.PENDING, ts(0), failures=1, last_ts=ts(0))
DOWN = Entry(State.DOWN, ts(0), failures=2, last_ts=ts(1), last_notice=ts(1), notified=("t1",))
UP = Entry(State.UP, ts(0), successes=1, last_ts=ts(0))
ALWAYS = MaintenanceWindow(start=0.0, end=4_000_000_000.0)


@dataclass(frozen=True)
class Case:
    id: str
    before: Entry | None
    result: ProbeResult
    expected: Standing | None
    after: Entry | None
    """The entry in the state afterwards (None: none)."""
    vantage: Vantage | None = None
    settings: dict[str, object] = field(default_factory=dict)


def ledger(**settings: object) -> Ledger:
    return Ledger(Settings(**settings), SPECS)  # type: ignore[arg-type]


def state(entry: Entry | None) -> StateData:
    return StateData(entries={KEY: entry} if entry is not None else {})


SEEN = [
    Case(
        "a-pass-on-a-new-probe-is-up",
        None,
        passed(0),
        Standing(State.UP, ts(0)),
        Entry(State.UP, ts(0), successes=1, last_ts=ts(0)),
    ),
    Case(
        "a-first-failure-under-the-threshold-is-pending",
        UP,
        failed(1),
        Standing(State.PENDING, ts(1)),
        Entry(State.PENDING, ts(1), failures=1, last_ts=ts(1)),
    ),
    Case("a-failure-that-may-raise-down-waits", PENDING, failed(1), None, PENDING),
    Case("a-pass-that-may-raise-up-waits", DOWN, passed(2), None, DOWN),
    Case(
        "an-older-result-moves-nothing",
        PENDING,
        passed(-1),
        Standing(State.PENDING, ts(0)),
        PENDING,
    ),
    Case(
        "cut-off-moves-nothing",
        PENDING,
        failed(1, Failure.NETWORK),
        Standing(State.PENDING, ts(0)),
        PENDING,
        vantage=Vantage.DOWN,
    ),
    Case(
        "our-own-bug-moves-nothing",
        PENDING,
        failed(1, Failure.INTERNAL),
        Standing(State.PENDING, ts(0)),
        PENDING,
    ),
    Case(
        "a-maintenance-run-keeps-the-outages-start",
        DOWN,
        failed(2),
        Standing(State.MAINTENANCE, ts(0)),
        DOWN,
        settings={"maintenance_run": True},
    ),
    Case(
        "a-window-on-a-new-probe-starts-now",
        None,
        failed(0),
        Standing(State.MAINTENANCE, ts(0)),
        None,
        settings={"maintenance": (ALWAYS,)},
    ),
]


@pytest.mark.parametrize("case", SEEN, ids=[c.id for c in SEEN])
def test_seen(case: Case) -> None:
    data = state(case.before)
    assert ledger(**case.settings).seen(data, case.result, case.vantage) == case.expected
    assert data.entries.get(KEY) == case.after


SETTLE = [
    Case(
        "the-threshold-reached-raises-down",
        PENDING,
        failed(1),
        Standing(State.DOWN, ts(0), EventKind.DOWN),
        Entry(State.DOWN, ts(0), failures=2, last_ts=ts(1), last_notice=ts(1)),
    ),
    Case(
        "down-already-raised-by-another-run",
        DOWN,
        failed(2),
        Standing(State.DOWN, ts(0)),
        Entry(State.DOWN, ts(0), 3, 0, ts(2), ts(1), ("t1",)),
    ),
    Case(
        "up-forgets-who-was-told",
        DOWN,
        passed(2),
        Standing(State.UP, ts(2), EventKind.UP),
        Entry(State.UP, ts(2), successes=1, last_ts=ts(2), last_notice=ts(1)),
    ),
]


@pytest.mark.parametrize("case", SETTLE, ids=[c.id for c in SETTLE])
def test_settle(case: Case) -> None:
    data = state(case.before)
    standing, event = ledger().settle(data, case.result)
    assert standing == case.expected
    assert (event.kind if event else None) == case.expected.event  # type: ignore[union-attr]
    assert data.entries.get(KEY) == case.after


FINAL = [
    Case(
        "uneventful-is-applied",
        UP,
        passed(1),
        None,
        Entry(State.UP, ts(0), successes=2, last_ts=ts(1)),
    ),
    Case(
        "one-that-would-raise-an-event-now-leaves-the-state",
        PENDING,  # another run's failure landed since this run's view
        failed(1),
        None,
        PENDING,
    ),
    Case(
        "a-stale-list-of-the-told-goes-when-not-down",
        Entry(State.PENDING, ts(0), failures=1, last_ts=ts(0), notified=("t1",)),
        passed(1),
        None,
        Entry(State.UP, ts(1), successes=1, last_ts=ts(1)),
    ),
]


@pytest.mark.parametrize("case", FINAL, ids=[c.id for c in FINAL])
def test_final(case: Case) -> None:
    data = state(case.before)
    ledger().final(data, case.result)
    assert data.entries.get(KEY) == case.after


def test_unsettled_says_the_state_without_the_event_and_moves_nothing() -> None:
    data = state(PENDING)
    assert ledger().unsettled(data, failed(1)) == Standing(State.DOWN, ts(0))
    assert data.entries[KEY] == PENDING


def test_in_order_is_by_time_not_by_text() -> None:
    late = make_result(ts="2026-11-22T10:00:01Z")
    early = make_result(ts="2026-11-22T10:00:00.500Z")  # sorts after `late` as text
    assert in_order([late, early]) == [early, late]


@pytest.mark.parametrize(
    ("entry", "kept"),
    [
        (Entry(State.DOWN, notified=("t1",)), ("t1",)),
        (Entry(State.UP, notified=("t1",)), None),
        (Entry(State.PENDING, notified=()), None),
    ],
    ids=["down-keeps-them", "up-forgets", "pending-forgets"],
)
def test_settled_keeps_the_told_only_while_down(entry: Entry, kept: tuple[str, ...] | None) -> None:
    assert settled(entry).notified == kept


# --------------------------------------------------------------------------- no data

NO_DATA = [
    ("ok", None, None, False),
    ("server-failure", Failure.SERVER, None, False),
    ("network-failure", Failure.NETWORK, None, False),
    ("internal", Failure.INTERNAL, None, True),
    ("cut-off", Failure.NETWORK, Vantage.DOWN, True),
    ("internal-and-cut-off", Failure.INTERNAL, Vantage.DOWN, True),
]


@pytest.mark.parametrize(
    ("failure", "vantage", "expected"), [c[1:] for c in NO_DATA], ids=[c[0] for c in NO_DATA]
)
def test_no_data_is_one_decision_for_the_state_the_line_and_the_report(
    failure: Failure | None, vantage: Vantage | None, expected: bool
) -> None:
    assert no_data(failure, vantage) is expected
    result = make_result(ts=ts(0)) if failure is None else failed(0, failure)
    line = result.line(NO_STANDING, vantage)
    assert line.no_data is expected
    assert decode(json.dumps(to_record(line)).encode()).no_data is expected
    assert ledger().moves(result, vantage) is not expected
