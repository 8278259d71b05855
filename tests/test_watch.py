"""``probe watch`` in a real terminal (tmux, from Debian), piped, and as a renderable:
a probe going down and coming back, since-when counting, flips, Ctrl-C and SIGTERM
exiting 0 with the terminal restored, ``--until-up``; no notification, no state."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from synthprobe.app.watch import View
from synthprobe.models import ProbeResult, Reason, Vantage
from synthprobe.output.watch import Row, render

from .commands import probe_cmd
from .probing import write_config
from .realprograms import TMUX, Tmux, need
from .results import make_result


class Switch:
    """An HTTP server on 127.0.0.1 answering ``status`` (the test flips it)."""

    def __init__(self) -> None:
        self.status = 503
        self.posts: list[bytes] = []
        switch = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(switch.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def do_POST(self) -> None:  # a notify target: must never be called
                switch.posts.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def switch() -> Iterator[Switch]:
    s = Switch()
    yield s
    s.close()


def _config(tmp_path: Path, switch: Switch) -> Path:
    """One probe of the switch; its POST handler as the notify target (never called)."""
    url = f"http://127.0.0.1:{switch.port}"
    return write_config(
        tmp_path,
        {
            "settings": {"notify": [f"json://127.0.0.1:{switch.port}/hook"]},
            "probes": [{"name": "feed-home", "url": f"{url}/feed", "timeout": "2s"}],
        },
    )


def _wait(check: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _cells(screen: str, probe: str) -> list[str]:
    """The cells of ``probe``'s row in the table on ``screen``."""
    row = next(line for line in screen.splitlines() if f"│{probe} " in line)
    return [cell.strip() for cell in row.strip().strip("│").split("│")]


def _table_width(screen: str) -> int:
    """How many columns the table's top border takes."""
    top = next((line for line in screen.splitlines() if line.startswith("┏")), "")
    return len(top.rstrip())


@pytest.fixture
def tmux() -> Iterator[Callable[..., Tmux]]:
    """Start a ``Tmux`` (its own server); every one started is killed at teardown."""
    need(TMUX, "tmux")
    started: list[Tmux] = []

    def start(*args: Any, **kwargs: Any) -> Tmux:
        started.append(Tmux(*args, **kwargs))
        return started[-1]

    yield start
    for term in started:
        term.kill()


@pytest.mark.slow
def test_watch_in_a_real_terminal(
    tmux: Callable[..., Tmux], switch: Switch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, switch)
    term = tmux([*probe_cmd("watch", str(config), "--every", "0.3s")], tmp_path)
    _wait(lambda: "✗ down" in term.screen(), "the probe shown down")
    down = term.screen()
    assert "feed-home" in down and "server.status" in down and "0/1 up" in down
    _wait(lambda: any(f" {n}s " in term.screen() for n in range(2, 9)), "since counting")
    switch.status = 200
    _wait(lambda: "✓ up" in term.screen(), "the probe back up")
    back = term.screen()
    assert "1/1 up" in back
    assert _cells(back, "feed-home")[6] == "1"  # one flip
    term.keys("C-c")
    _wait(lambda: "EXIT=0" in term.screen(), "exit 0 after Ctrl-C")
    exited = term.screen()
    assert "feed-home" not in exited  # the alternate screen is gone: the shell is back
    with capsys.disabled():  # the three screens, for whoever reads the test log
        print("\n--- down ---\n" + down + "\n--- back ---\n" + back + "\n--- exited ---\n" + exited)
    assert switch.posts == []  # no notification
    assert not list(tmp_path.glob("*.state.json"))  # no state


@pytest.mark.slow
def test_until_up_exits_0_on_its_own_in_a_terminal(
    tmux: Callable[..., Tmux], switch: Switch, tmp_path: Path
) -> None:
    config = _config(tmp_path, switch)
    term = tmux([*probe_cmd("watch", str(config), "--every", "0.3s", "--until-up")], tmp_path)
    _wait(lambda: "✗ down" in term.screen(), "the probe shown down")
    switch.status = 200
    _wait(lambda: "EXIT=0" in term.screen(), "--until-up to exit 0")


@pytest.mark.slow
def test_without_a_terminal_one_line_per_change(switch: Switch, tmp_path: Path) -> None:
    config = _config(tmp_path, switch)
    out = tmp_path / "w.jsonl"
    proc = subprocess.Popen(
        probe_cmd("watch", str(config), "--every", "0.3s", "--until-up", "-o", str(out)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("DOWN feed-home (http) "), first
        assert "server.status: status 503" in first
        time.sleep(1.0)  # more rounds, still down: no more lines
        switch.status = 200
        rest, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    lines = rest.splitlines()
    assert len(lines) == 1 and lines[0].startswith("UP feed-home (http) ") and " after " in lines[0]
    assert err == ""
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) >= 3 and records[-1]["ok"] and not records[0]["ok"]
    assert all("state" not in r and "event" not in r for r in records)  # no state kept
    assert switch.posts == [] and not list(tmp_path.glob("*.state.json"))


@pytest.mark.slow
def test_sigterm_ends_a_watch_with_0(switch: Switch, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        probe_cmd("watch", str(_config(tmp_path, switch)), "--every", "0.3s"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("DOWN ")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.slow
def test_a_state_file_gives_since_when_and_stays_as_it_was(switch: Switch, tmp_path: Path) -> None:
    config = _config(tmp_path, switch)
    state = tmp_path / "s.json"
    env = {**os.environ, "COLUMNS": "200"}
    run = subprocess.run(
        probe_cmd("run", str(config), "--state", str(state), "-o", os.devnull, "--location", "x"),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode == 1, run.stderr
    before = state.read_bytes()
    since = json.loads(before)["probes"]["feed-home"]["x"]["since"]
    watch = subprocess.Popen(
        probe_cmd(
            "watch", str(config), "--every", "0.3s", "--state", str(state), "--location", "x"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watch.stdout is not None
        line = watch.stdout.readline()
    finally:
        watch.terminate()
        watch.communicate(timeout=10)
    assert f"since {since[11:19]}Z" in line, (line, since)
    assert state.read_bytes() == before  # read, never written


@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 40), (60, 12)], ids=str)
def test_200_probes_fit_the_screen(width: int, height: int) -> None:
    now = time.time()
    rows = [
        Row(
            probe=f"probe-{i:03d}",
            kind=("feed", "live", "dns", "tcp")[i % 4],
            state="up" if i % 7 else "down",
            since=now - i,
            reason=None if i % 7 else "server.status",
            error=None if i % 7 else "status 503, expected 2xx",
            latency_ms=12.0,
            flips=i % 3,
        )
        for i in range(200)
    ]
    console = Console(width=width, height=height, record=True, file=io.StringIO())
    console.print(render(rows, now=now, last_round=now, next_round=now + 5, height=height))
    text = console.export_text()
    assert len(text.splitlines()) <= height, text
    assert "0/200" not in text and "171/200 up" in text
    assert "more" in text  # the up ones summarised per kind
    assert "probe-014" in text  # the failing probes first (dns, by name), then counted


@pytest.mark.slow
def test_json_lines_to_stdout_are_refused(switch: Switch, tmp_path: Path) -> None:
    done = subprocess.run(
        probe_cmd("watch", str(_config(tmp_path, switch)), "-o", "-"),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert done.returncode == 2 and "-o -" in done.stderr
    assert not (tmp_path / "-").exists()


@pytest.mark.slow
def test_the_table_is_as_wide_as_the_terminal_and_follows_a_resize(
    tmux: Callable[..., Tmux], switch: Switch, tmp_path: Path
) -> None:
    # COLUMNS and LINES as a shell may have exported them: the pane's size wins
    term = tmux(
        probe_cmd("watch", str(_config(tmp_path, switch)), "--every", "0.3s"),
        tmp_path,
        size=(150, 30),
        env={"COLUMNS": "80", "LINES": "10"},
    )
    _wait(lambda: _table_width(term.screen()) == 150, "a table as wide as the pane")
    term.resize(100, 20)
    _wait(lambda: _table_width(term.screen()) == 100, "the table to follow the resize")
    term.resize(200, 20)
    _wait(lambda: _table_width(term.screen()) == 200, "the table to grow with the pane")


PLANTED = """
import sys
from synthprobe.runner import Runner

real = Runner.probe


async def planted(self, spec):
    # a bug of ours in one probe: the runner records it as internal.error
    if spec.name == "buggy":
        raise ZeroDivisionError("planted bug")
    return await real(self, spec)


Runner.probe = planted
from synthprobe.cli import main

sys.argv = ["probe", *sys.argv[1:]]
main()
"""


def _buggy_config(tmp_path: Path, switch: Switch) -> list[str]:
    """argv of a watch of ``feed-home`` (the switch) and ``buggy`` (a planted bug)."""
    script = tmp_path / "planted.py"
    script.write_text(PLANTED)
    config = write_config(
        tmp_path,
        {
            "probes": [
                {"name": "feed-home", "url": f"http://127.0.0.1:{switch.port}/feed"},
                {"name": "buggy", "url": f"http://127.0.0.1:{switch.port}/feed"},
            ]
        },
    )
    return [sys.executable, str(script), "watch", str(config), "--every", "0.3s"]


@pytest.mark.slow
def test_a_bug_of_ours_is_shown_as_no_data_never_as_down(
    tmux: Callable[..., Tmux], switch: Switch, tmp_path: Path
) -> None:
    term = tmux(_buggy_config(tmp_path, switch), tmp_path)
    _wait(lambda: "? no data" in term.screen(), "the bug shown as no data")
    screen = term.screen()
    buggy = _cells(screen, "buggy")
    assert (buggy[2], buggy[4]) == ("? no data", "internal.error"), screen
    assert _cells(screen, "feed-home")[2] == "✗ down"
    assert "0/2 up" in screen and "1 no data" in screen
    switch.status = 200
    _wait(lambda: "✓ up" in term.screen(), "feed-home back up")
    back = term.screen()
    assert _cells(back, "buggy")[2] == "? no data" and _cells(back, "buggy")[6] == "0"
    assert "1/2 up" in back


@pytest.mark.slow
def test_a_bug_of_ours_prints_no_line_without_a_terminal(switch: Switch, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        _buggy_config(tmp_path, switch),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        switch.status = 200
        second = proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert first.startswith("DOWN feed-home ") and second.startswith("UP feed-home "), err
    assert "buggy" not in first + second + rest  # never DOWN, never UP: no data
    assert "ZeroDivisionError: planted bug" in err  # the bug itself is told, on stderr


def _result(name: str, reason: str | None, vantage: Vantage | None = None) -> ProbeResult:
    if reason is None:
        return make_result(name=name)
    why = Reason(reason)
    failed = make_result(name=name, ok=False, failure=why.failure, reason=why, error=reason)
    return replace(failed, vantage=vantage)


VIEW_CASES = [
    pytest.param([None], "up", [], 0, id="up"),
    pytest.param(["server.status"], "down", ["down"], 0, id="down-at-first-sight"),
    pytest.param(["internal.error"], "no data", [], 0, id="bug-at-first-sight"),
    pytest.param([None, "internal.error"], "no data", [], 0, id="up-then-bug"),
    pytest.param(["server.status", "internal.error"], "no data", ["down"], 0, id="down-then-bug"),
    pytest.param(["internal.error", "server.status"], "down", ["down"], 0, id="bug-then-down"),
    pytest.param([None, "internal.error", None], "up", [], 0, id="bug-between-two-ups"),
    pytest.param(
        ["server.status", "internal.error", None], "up", ["down", "up"], 1, id="down-bug-up"
    ),
    pytest.param([None, "server.status", None], "up", ["down", "up"], 2, id="flap"),
]


@pytest.mark.parametrize(("reasons", "state", "events", "flips"), VIEW_CASES)
def test_the_view_never_calls_a_bug_down(
    reasons: list[str | None], state: str, events: list[str], flips: int
) -> None:
    view = View()
    seen = [view.apply(_result("p", reason), now=float(i)) for i, reason in enumerate(reasons)]
    assert [e.kind.value for e in seen if e is not None] == events
    [row] = view.rows()
    assert (row.state, row.flips) == (state, flips)
    assert view.all_up() is (state == "up")


def test_a_cut_off_machine_is_no_data_too() -> None:
    view = View()
    assert view.apply(_result("p", "timeout.connect", Vantage.DOWN), now=0.0) is None
    assert view.rows()[0].state == "no data"


@pytest.mark.parametrize("width", [60, 100, 173], ids=str)
def test_the_table_takes_the_console_width(width: int) -> None:
    now = time.time()
    rows = [
        Row("feed-home", "http", "down", now - 5, "server.status", "status 503", 3.0, 1),
        Row("buggy", "http", "no data", now, "internal.error", "synthprobe bug", None, 0),
        Row("api", "http", "up", now - 60, None, None, 12.0, 0),
    ]
    console = Console(width=width, height=24, record=True, file=io.StringIO())
    console.print(render(rows, now=now, last_round=now, next_round=now + 5, height=24))
    lines = console.export_text().splitlines()
    assert {len(line) for line in lines[1:]} == {width}  # every line of the table
    order = [line.split("│")[1].strip() for line in lines if line.startswith("│")]
    assert order == ["feed-home", "buggy", "api"]  # down, then no data, then up
    assert "1/3 up" in lines[0] and "1 no data" in lines[0]
