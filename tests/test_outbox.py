"""The outbox: events queued for their targets, caught up for a target configured
later, leased, handed back; delivered to a real webhook on 127.0.0.1, and stopped by a
real SIGTERM while a target hangs."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from types import FrameType

import pytest

from synthprobe.alerts import Entry, Event, event_for
from synthprobe.models import EventKind, Failure, ProbeResult, Reason, Settings, State
from synthprobe.notify import target_id
from synthprobe.outbox import LEASE, Outbox
from synthprobe.redact import Redactor
from synthprobe.state import Pending, StateData
from synthprobe.units import format_utc

from .conftest import specs_from_yaml
from .test_alerting_real import Receiver

pytestmark = pytest.mark.filterwarnings(
    # Apprise's mail plugin imports the stdlib's imghdr (deprecated in 3.11) when loaded
    # in this process; `probe` itself runs with Python's default filters
    "ignore:'imghdr' is deprecated:DeprecationWarning"
)

A, B, OWN = "json://127.0.0.1:9/a", "json://127.0.0.1:9/b", "json://127.0.0.1:9/own"
_FEED, _UPLOAD = specs_from_yaml(
    "probes:\n"
    "  - {name: feed-home, url: 'http://127.0.0.1:9/'}\n"
    "  - {name: upload, url: 'http://127.0.0.1:9/u'}\n"
)
# upload's own notify put in by hand: the config would ask Apprise about it, here at
# collection, where pytest's warning filters do not apply yet
SPECS = [_FEED, replace(_UPLOAD, alert=replace(_UPLOAD.alert, notify=(OWN,)))]
KEY = ("feed-home", "eu-1")
T0 = 1_795_000_000.0


def outbox(
    notify: tuple[str, ...] = (A, B), warnings: list[str] | None = None, **kw: object
) -> Outbox:
    sink = warnings if warnings is not None else []
    settings = Settings(notify=notify, **kw)  # type: ignore[arg-type]
    return Outbox(settings, SPECS, "run-1", "eu-1", Redactor(), sink.append)


def failed(minute: int = 0, name: str = "feed-home") -> ProbeResult:
    from .results import make_result

    return make_result(
        name,
        ok=False,
        ts=format_utc(T0 + minute * 60),
        failure=Failure.SERVER,
        reason=Reason.SERVER_STATUS,
        error="status 503",
    )


def event(kind: EventKind = EventKind.DOWN, minute: int = 0) -> Event:
    return event_for(kind, failed(minute), format_utc(T0), 2)


@pytest.mark.parametrize(
    ("kind", "told_before", "told_after"),
    [
        (EventKind.DOWN, None, (target_id(A), target_id(B))),
        (EventKind.REMINDER, (target_id(B),), (target_id(B), target_id(A))),
        (EventKind.UP, None, None),
    ],
    ids=["down-records-its-targets", "reminder-adds-to-them", "up-leaves-them"],
)
def test_queue(
    kind: EventKind, told_before: tuple[str, ...] | None, told_after: tuple[str, ...] | None
) -> None:
    data = StateData(entries={KEY: Entry(State.DOWN, notified=told_before)})
    if kind is EventKind.UP:
        data.entries[KEY] = Entry(State.UP)
    ev = event(kind)
    outbox().queue(data, ev)
    [pending] = data.pending
    assert (pending.event, pending.targets, pending.run_id) == (
        ev,
        [target_id(A), target_id(B)],
        "run-1",
    )
    assert data.entries[KEY].notified == told_after


def test_a_probes_own_notify_replaces_the_settings_and_no_target_queues_nothing() -> None:
    box = outbox()
    assert box.targets("upload") == [target_id(OWN)]
    assert box.targets("feed-home") == [target_id(A), target_id(B)]
    data = StateData(entries={KEY: Entry(State.DOWN)})
    outbox(notify=()).queue(data, event())
    assert data.pending == [] and data.entries[KEY].notified == ()


DOWN_SINCE = format_utc(T0)
CATCH_UP = [
    ("not-down-nothing", Entry(State.PENDING, notified=()), [], None),
    (
        "all-told-nothing",
        Entry(State.DOWN, DOWN_SINCE, 2, notified=(target_id(A), target_id(B))),
        [],
        None,
    ),
    (
        "an-old-state-file-counts-as-told",
        Entry(State.DOWN, DOWN_SINCE, 2, notified=None),
        [],
        (target_id(A), target_id(B)),
    ),
    (
        "a-target-added-gets-the-down-once",
        Entry(State.DOWN, DOWN_SINCE, 2, notified=(target_id(A),)),
        [target_id(B)],
        (target_id(A), target_id(B)),
    ),
]


@pytest.mark.parametrize(
    ("entry", "queued", "told"), [c[1:] for c in CATCH_UP], ids=[c[0] for c in CATCH_UP]
)
def test_catch_up(entry: Entry, queued: list[str], told: tuple[str, ...] | None) -> None:
    data = StateData(entries={KEY: entry})
    result = failed(3)
    outbox().catch_up(data, result)
    assert [p.targets for p in data.pending] == ([queued] if queued else [])
    if queued:
        # the same event the ledger would have raised: built by alerts.event_for
        assert data.pending[0].event == event_for(EventKind.DOWN, result, DOWN_SINCE, 2)
    assert data.entries[KEY].notified == (told if told is not None else entry.notified)
    before = list(data.pending)
    outbox().catch_up(data, result)  # once: the entry now says it was queued
    assert data.pending == before


def test_targets_no_longer_configured_are_dropped_with_one_warning() -> None:
    warnings: list[str] = []
    data = StateData(entries={KEY: Entry(State.DOWN, notified=(target_id(A), "gone0000gone0000"))})
    data.pending = [
        Pending("p1", event(), [target_id(A), "gone0000gone0000"], "run-0"),
        Pending("p2", event(minute=1), ["gone0000gone0000"], "run-0"),
    ]
    outbox(warnings=warnings).drop_unknown_targets(data)
    assert [(p.id, p.targets) for p in data.pending] == [("p1", [target_id(A)])]
    assert data.entries[KEY].notified == (target_id(A),)
    assert len(warnings) == 1 and "dropped 2 undelivered events" in warnings[0]


def test_lease_then_release() -> None:
    now = T0
    data = StateData()
    data.pending = [
        Pending("free", event(), [target_id(A), target_id(B)], "run-0"),
        Pending("expired", event(minute=1), [target_id(A)], "run-0", lease=now - 1),
        Pending("taken", event(minute=2), [target_id(A)], "run-9", lease=now + 60),
    ]
    box = outbox()
    leased = box.lease(data, now)
    assert [p.id for p in leased] == ["free", "expired"]
    assert {p.id: p.lease for p in data.pending} == {
        "free": now + LEASE,
        "expired": now + LEASE,
        "taken": now + 60,
    }
    box.release(data, leased, {("free", target_id(A)), ("expired", target_id(A))})
    assert [(p.id, p.targets, p.lease) for p in data.pending] == [
        ("free", [target_id(B)], None),
        ("taken", [target_id(A)], now + 60),
    ]


# --------------------------------------------------------------------------- delivery


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def test_one_message_per_target_and_a_refusal_stays_pending(receiver: Receiver) -> None:
    warnings: list[str] = []
    box = outbox(notify=(receiver.url,), warnings=warnings, status_url="https://status.invalid")
    target = target_id(receiver.url)
    leased = [
        Pending("new", event(), [target], "run-1"),
        Pending("old", event(minute=1), [target], "run-0"),
    ]
    accepted, delivered = box.deliver(leased)
    assert (accepted, delivered) == ({("new", target), ("old", target)}, 1)
    [message] = receiver.messages
    assert message["title"] == "synthprobe eu-1: 2 down"
    lines = message["message"].splitlines()
    assert lines[0].startswith("DOWN feed-home") and not lines[0].endswith("(late)")
    assert lines[1].endswith("(late)") and lines[2] == "status: https://status.invalid"
    receiver.failing = True
    assert box.deliver(leased) == (set(), 0)
    [warning] = warnings
    assert "did not accept 2 events" in warning and "stay pending" in warning


def test_stop_before_sending_sends_nothing(receiver: Receiver) -> None:
    warnings: list[str] = []
    box = outbox(notify=(receiver.url,), warnings=warnings)
    box.stop()
    assert box.deliver([Pending("p", event(), [target_id(receiver.url)], "run-1")]) == (set(), 0)
    assert receiver.messages == [] and warnings == [
        "notify: stopped by SIGTERM; undelivered events stay pending"
    ]


def test_a_real_sigterm_ends_the_wait_for_a_hung_target() -> None:
    """The handler app/run.py installs: ``stop`` raises in the main thread, blocked on a
    target that accepted the connection and never answers; the wait ends at once."""
    from .sockets import accepting

    warnings: list[str] = []
    with accepting(lambda conn: None) as port:
        url = f"json://127.0.0.1:{port}/hook"
        settings = Settings(notify=(url,))
        box = Outbox(settings, SPECS, "run-1", "eu-1", Redactor(), warnings.append, timeout=30)

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            box.stop()

        previous = signal.signal(signal.SIGTERM, on_sigterm)
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM))
        try:
            timer.start()
            started = time.monotonic()
            accepted, delivered = box.deliver([Pending("p", event(), [target_id(url)], "run-1")])
            took = time.monotonic() - started
        finally:
            timer.cancel()
            signal.signal(signal.SIGTERM, previous)
    assert (accepted, delivered) == (set(), 0)
    assert took < 10, f"took {took:.1f}s: the signal did not end the wait"
    assert warnings == ["notify: stopped by SIGTERM; undelivered events stay pending"]
