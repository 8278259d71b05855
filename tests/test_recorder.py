"""The run's recorder: each result's line made once, with its standing and vantage;
held results wait for the controls; nothing is lost when the state cannot be locked.
Real files throughout: the JSON lines file and the state file with its lock."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from synthprobe import vantage
from synthprobe.alerting import Alerting
from synthprobe.app.recorder import Recorder
from synthprobe.models import EventKind, Failure, ProbeResult, Reason, Settings, State, Vantage
from synthprobe.output.jsonl import JsonlWriter
from synthprobe.redact import Redactor

from .conftest import specs_from_yaml
from .results import make_result

SPECS = specs_from_yaml(
    "probes:\n"
    "  - {name: feed, url: 'http://127.0.0.1:9/feed'}\n"
    "  - {name: upload, url: 'http://127.0.0.1:9/up'}\n"
    "  - {name: live, url: 'http://127.0.0.1:9/live'}\n"
)


def failed(name: str, failure: Failure = Failure.SERVER) -> ProbeResult:
    reason = Reason.SERVER_STATUS if failure is Failure.SERVER else Reason.NETWORK_REFUSED
    return make_result(name, ok=False, failure=failure, reason=reason, status=None)


def recorder(tmp_path: Path, warnings: list[str], *, controls: bool = False) -> Recorder:
    out = tmp_path / "r.jsonl"
    settings = Settings(output=str(out))
    alerting = Alerting(settings, SPECS, "run-1", "eu-1", Redactor(), warnings.append)
    return Recorder(JsonlWriter(str(out)), alerting, controls=controls)


def written(tmp_path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]


def test_lines_come_in_the_plans_order_whatever_order_probes_end(tmp_path: Path) -> None:
    rec = recorder(tmp_path, [])
    for name in ("live", "feed", "upload"):  # as probes end
        rec.record(make_result(name))
    rec.judged(None)
    rec.writer.close()
    assert [line.probe for line in rec.lines(SPECS)] == ["feed", "upload", "live"]
    assert [line["probe"] for line in written(tmp_path)] == ["live", "feed", "upload"]
    assert all(line.state is State.UP for line in rec.lines(SPECS))


def test_a_failure_that_raises_an_event_is_written_once_with_it(tmp_path: Path) -> None:
    rec = recorder(tmp_path, [])
    rec.record(failed("feed"))
    assert written(tmp_path) == []  # it waits for the locked decision
    rec.settle()
    rec.judged(None)
    rec.writer.close()
    [line] = written(tmp_path)
    assert (line["probe"], line["state"], line["event"]) == ("feed", "down", "down")
    [kept] = rec.lines(SPECS)
    assert kept.event is EventKind.DOWN


def test_held_failures_get_the_controls_verdict_and_move_no_state(tmp_path: Path) -> None:
    rec = recorder(tmp_path, [], controls=True)
    rec.record(failed("feed", Failure.NETWORK))  # the controls judge this one
    rec.record(failed("upload"))  # a 503 proves the network works: never held
    assert [r.probe for r in rec.held] == ["feed"]
    rec.settle()
    controls = [failed("control-1", Failure.NETWORK)]
    rec.judged(vantage.judge(controls))
    rec.writer.close()
    lines = {line["probe"]: line for line in written(tmp_path)}
    assert lines["feed"]["vantage"] == "down" and lines["feed"]["state"] == "up"
    assert "event" not in lines["feed"]
    assert "vantage" not in lines["upload"] and lines["upload"]["event"] == "down"
    assert rec.lines(SPECS)[0].vantage is Vantage.DOWN


def test_a_state_that_cannot_be_locked_loses_no_line_and_no_event(tmp_path: Path) -> None:
    warnings: list[str] = []
    rec = recorder(tmp_path, warnings)
    rec.record(failed("feed"))  # may raise an event: waits for the lock
    lock = tmp_path / "r.state.json.lock"
    os.unlink(lock)
    lock.mkdir()  # the lock file cannot be opened now (as root too: it is a directory)
    rec.judged(None)
    rec.writer.close()
    [line] = written(tmp_path)
    assert line["probe"] == "feed" and line["state"] == "down" and "event" not in line
    assert len(warnings) == 1 and "written without their events" in warnings[0]
    lock.rmdir()
    # the state did not move: the next run's failure raises the event, in its own line
    again = recorder(tmp_path, [])
    again.record(failed("feed"))
    again.judged(None)
    assert [line.event for line in again.lines(SPECS)] == [EventKind.DOWN]


@pytest.mark.parametrize("mark", [None, Vantage.DOWN], ids=["no-verdict", "cut-off"])
def test_a_line_without_state_is_the_result_itself_unless_marked(mark: Vantage | None) -> None:
    from synthprobe.models import NO_STANDING

    measured = failed("feed", Failure.TIMEOUT)
    line = measured.line(NO_STANDING, mark)
    assert (line is measured) == (mark is None)
    assert line.vantage is mark and line.no_data == (mark is not None)
