"""``probe watch`` in a real terminal (tmux, from Debian), piped, and as a renderable:
a probe going down and coming back, since-when counting, flips, a resize, Ctrl-C and
SIGTERM exiting 0 with the terminal restored, ``--until-up``; a synthprobe bug shown as
``internal.error`` (not down); no notification, no state written."""

from __future__ import annotations

import fcntl
import gc
import io
import itertools
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from synthprobe.alerts import EventKind
from synthprobe.app import Streams
from synthprobe.app.watch import View, WatchOptions, watch_command
from synthprobe.models import Failure, Reason
from synthprobe.output.watch import CHROME, Round, Row, render
from synthprobe.units import format_utc, parse_utc

from .commands import probe_cmd
from .results import make_result

TMUX = shutil.which("tmux")

PLANTED = textwrap.dedent(
    """
    import sys
    import synthprobe.runner as runner

    real = runner.check

    def planted(expect, obs, latency):
        # a bug of ours, planted where the result would pass: status 299 marks it
        if 299 in expect.status:
            raise ZeroDivisionError("planted bug")
        return real(expect, obs, latency)

    runner.check = planted
    from synthprobe.cli import main

    sys.argv = ["probe", *sys.argv[1:]]
    main()
    """
)


class Switch:
    """An HTTP server on 127.0.0.1: GET answers ``status`` (the test flips it); POST is
    the config's notify target (an Apprise ``json://`` webhook) and is recorded."""

    def __init__(self) -> None:
        self.status = 503
        self.posts: list[bytes] = []
        self.in_flight = self.most_in_flight = 0
        lock = threading.Lock()
        switch = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/slow"):  # 0.5 s, counting requests in flight
                    with lock:
                        switch.in_flight += 1
                        switch.most_in_flight = max(switch.most_in_flight, switch.in_flight)
                    time.sleep(0.5)
                    with lock:
                        switch.in_flight -= 1
                # /always-up and /slow answer 200 whatever the switch says
                status = switch.status if self.path == "/feed" else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def do_POST(self) -> None:
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


def _config(tmp_path: Path, switch: Switch, extra: str = "", notify: bool = True) -> Path:
    """One probe of the switch; the switch's POST handler as the config's notify target."""
    path = tmp_path / "w.yaml"
    hook = f"settings: {{notify: ['json://127.0.0.1:{switch.port}/hook']}}\n" if notify else ""
    path.write_text(
        hook + "probes:\n"
        f"  - {{name: feed-home, url: 'http://127.0.0.1:{switch.port}/feed', timeout: 2s}}\n"
        + extra
    )
    return path


def _wait(check: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds * 10) + 1):
        if check():
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _files(path: Path) -> dict[str, tuple[int, bytes]]:
    """Every file of ``path`` with its mtime and bytes: what "nothing written" compares
    (tmux's socket is no file)."""
    return {
        p.name: (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(path.iterdir())
        if p.is_file()
    }


class Tmux:
    """A tmux server of this test alone (its own socket, no user config), one pane with
    an interactive shell, where ``command; echo EXIT=$?`` is typed as a person would."""

    def __init__(self, command: list[str], cwd: Path, width: int = 120, height: int = 30) -> None:
        self.base = [str(TMUX), "-S", str(cwd / "tmux.sock"), "-f", os.devnull]
        shell = f"cd {shlex.quote(str(cwd))} && PS1='$ ' exec bash --norc --noprofile -i"
        size = ["-x", str(width), "-y", str(height)]
        subprocess.run([*self.base, "new-session", "-d", "-s", "w", *size, shell], timeout=10)
        _wait(lambda: self.screen().startswith("$"), "the shell's prompt")
        self.keys("-l", f"{shlex.join(command)}; echo EXIT=$?")
        self.keys("Enter")

    def screen(self) -> str:
        done = subprocess.run(
            [*self.base, "capture-pane", "-p", "-t", "w"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return done.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "w", *keys], check=True, timeout=10)

    def resize(self, width: int, height: int) -> None:
        size = ["-x", str(width), "-y", str(height)]
        subprocess.run([*self.base, "resize-window", "-t", "w", *size], check=True, timeout=10)

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], timeout=10, capture_output=True)


@pytest.fixture
def tmux_ok() -> None:
    if TMUX is None:
        pytest.skip("tmux is not installed (`make test` installs Debian's tmux as root)")


def _row(screen: str, probe: str) -> str:
    return next(line for line in screen.splitlines() if probe in line)


def _show(**screens: str) -> None:
    """The screens and lines, for the test log (`pytest -s` shows them)."""
    for name, text in screens.items():
        sys.stdout.write(f"\n--- {name} ---\n{text.rstrip()}\n")


def test_watch_in_a_real_terminal(
    tmux_ok: None, switch: Switch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, switch)
    before = _files(tmp_path)
    term = Tmux(probe_cmd("watch", str(config), "--every", "0.3s"), tmp_path)
    # the same outage, piped: what a CI log or `tee` gets meanwhile
    piped = subprocess.Popen(
        probe_cmd("watch", str(config), "--every", "0.3s"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait(lambda: "✗ down" in term.screen(), "the probe shown down")
        _wait(lambda: any(f" {n}s " in term.screen() for n in range(2, 9)), "since counting")
        down = term.screen()
        assert "0/1 up" in down and "1 down" in down and "last round" in down
        row = _row(down, "feed-home")
        assert "server.status" in row and "status 503, expected 2xx" in row
        assert len(down.splitlines()[1]) == 120  # the table is as wide as the pane
        term.resize(90, 20)
        _wait(lambda: len(term.screen().splitlines()[1]) == 90, "the table following a resize")
        switch.status = 200
        _wait(lambda: "✓ up" in term.screen(), "the probe back up")
        back = term.screen()
        assert "1/1 up" in back and "down" not in back
        assert _row(back, "feed-home").split("│")[7].strip() == "1"  # one flip
        term.keys("C-c")
        _wait(lambda: "EXIT=0" in term.screen(), "exit 0 after Ctrl-C")
        exited = term.screen()
        # the alternate screen is gone: the typed command, EXIT=0, and the prompt again
        assert "feed-home" not in exited and exited.rstrip().endswith("EXIT=0\n$"), exited
        piped.send_signal(signal.SIGINT)
        lines, err = piped.communicate(timeout=10)
    finally:
        term.kill()
        piped.kill()
        piped.communicate()
    with capsys.disabled():
        _show(down=down, back=back, exited=exited, piped=lines)
    assert (piped.returncode, err) == (0, "")
    [went, came] = lines.splitlines()
    assert went.startswith("DOWN feed-home (http) ") and came.startswith("UP feed-home (http) ")
    assert switch.posts == []  # no notification
    assert _files(tmp_path) == before  # no state, no lock


def test_until_up_exits_0_on_its_own_in_a_terminal(
    tmux_ok: None, switch: Switch, tmp_path: Path
) -> None:
    config = _config(tmp_path, switch)
    # exported COLUMNS/LINES (a snapshot that never follows a resize) do not size the view
    stale = ["env", "COLUMNS=70", "LINES=10"]
    args = ("watch", str(config), "--every", "0.3s", "--until-up")
    term = Tmux([*stale, *probe_cmd(*args)], tmp_path)
    try:
        _wait(lambda: "✗ down" in term.screen(), "the probe shown down")
        assert len(term.screen().splitlines()[1]) == 120  # the pane's width, not COLUMNS
        switch.status = 200
        _wait(lambda: "EXIT=0" in term.screen(), "--until-up to exit 0")
        assert "feed-home" not in term.screen()
    finally:
        term.kill()


def test_a_bug_of_ours_is_shown_as_internal_error_not_as_down(
    tmux_ok: None, switch: Switch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(
        tmp_path,
        switch,
        f"  - {{name: buggy, url: 'http://127.0.0.1:{switch.port}/always-up', "
        "expect: {status: [200, 299]}}\n",
    )
    (tmp_path / "planted.py").write_text(PLANTED)
    command = [sys.executable, str(tmp_path / "planted.py"), "watch", str(config)]
    term = Tmux([*command, "--every", "0.3s"], tmp_path)
    try:
        _wait(lambda: "internal.error" in term.screen(), "the bug shown")
        screen = term.screen()
        row = _row(screen, "buggy")
        assert "? no data" in row and "down" not in row and "synthprobe bug: Zero" in row
        assert "1 synthprobe bug" in screen and "0/2 up" in screen and "1 down" in screen
        assert "Traceback" not in screen  # held while the view is up: not drawn over it
        term.keys("C-c")
        _wait(lambda: "EXIT=0" in term.screen(), "exit 0 after Ctrl-C")
        # then printed, once the view is gone: the bug can be reported
        after = term.screen()
        assert "ZeroDivisionError: planted bug" in after
    finally:
        term.kill()
    with capsys.disabled():
        _show(bug=screen, bug_exited=after)


def test_without_a_terminal_one_line_per_change(
    switch: Switch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, switch)
    out = tmp_path / "w.jsonl"
    before = _files(tmp_path)
    proc = subprocess.Popen(
        probe_cmd("watch", str(config), "--every", "0.3s", "--until-up", "-o", str(out)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        # already down when the watch starts: the first round says so (docs/watch.md)
        first = proc.stdout.readline()
        _wait(lambda: len(out.read_text().splitlines()) >= 3, "more rounds, still down")
        switch.status = 200
        rest, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    with capsys.disabled():
        _show(piped=first + rest)
    assert proc.returncode == 0, err
    assert first.startswith("DOWN feed-home (http) "), first
    assert "server.status: status 503, expected 2xx, since " in first and first.endswith(
        "(1 run)\n"
    )
    lines = rest.splitlines()
    assert len(lines) == 1 and lines[0].startswith("UP feed-home (http) ") and " after " in lines[0]
    assert err == ""
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["ok"] for r in records[:3]] == [False] * 3 and records[-1]["ok"]
    assert {r["probe"] for r in records} == {"feed-home"}
    assert len({r["run_id"] for r in records}) == len(records)  # a run id per round
    assert switch.posts == []  # no notification
    assert set(_files(tmp_path)) == set(before) | {"w.jsonl"}  # no state file


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_ends_a_watch_with_0(switch: Switch, tmp_path: Path, sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        probe_cmd("watch", str(_config(tmp_path, switch)), "--every", "0.3s"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("DOWN ")
        proc.send_signal(sig)
        rest, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert (proc.returncode, rest, err) == (0, "", "")


def test_a_reader_gone_ends_the_watch_quietly(switch: Switch, tmp_path: Path) -> None:
    # `probe watch ... | head -1`: the next line finds no reader
    proc = subprocess.Popen(
        probe_cmd("watch", str(_config(tmp_path, switch)), "--every", "0.3s"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().startswith(b"DOWN ")
        proc.stdout.close()
        switch.status = 200  # a change: an UP line to write, and nobody to read it
        proc.wait(timeout=20)
        err = proc.stderr.read().decode()
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    assert (proc.returncode, err) == (0, "")


def test_rounds_never_overlap_and_a_round_runs_its_probes_together(
    switch: Switch, tmp_path: Path
) -> None:
    config = tmp_path / "w.yaml"
    config.write_text(
        "probes:\n"
        + "".join(
            f"  - {{name: slow-{n}, url: 'http://127.0.0.1:{switch.port}/slow/{n}'}}\n"
            for n in "ab"
        )
    )
    out = tmp_path / "w.jsonl"
    proc = subprocess.Popen(
        probe_cmd("watch", str(config), "--every", "0.1s", "-o", str(out)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait(lambda: out.exists() and len(out.read_text().splitlines()) >= 6, "three rounds")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    rounds: dict[str, list[tuple[float, float]]] = {}
    for line in out.read_text().splitlines():
        r = json.loads(line)
        start = parse_utc(r["ts"])
        rounds.setdefault(r["run_id"], []).append((start, start + r["timings_ms"]["total"] / 1000))
    spans = sorted((min(s for s, _ in v), max(e for _, e in v)) for v in rounds.values())
    # 0.1 s asked, 0.5 s taken: each round starts once the one before has ended
    for (_, ended), (began, _) in itertools.pairwise(spans):
        assert began >= ended - 0.002, spans  # ts is truncated to the millisecond
    assert switch.most_in_flight == 2  # both probes of a round at once, never more


def test_a_bug_of_ours_prints_no_line(switch: Switch, tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        switch,
        f"  - {{name: buggy, url: 'http://127.0.0.1:{switch.port}/always-up', "
        "expect: {status: [200, 299]}}\n",
    )
    out = tmp_path / "w.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", PLANTED, "watch", str(config), "--every", "0.3s", "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        switch.status = 200
        assert proc.stdout.readline().startswith("UP feed-home ")
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert first.startswith("DOWN feed-home ") and rest == "" and proc.returncode == 0
    assert err.count("ZeroDivisionError: planted bug") >= 1  # the traceback, on stderr
    buggy = [json.loads(line) for line in out.read_text().splitlines() if '"buggy"' in line]
    assert buggy and all(r["reason"] == "internal.error" for r in buggy)


def test_cut_off_failures_are_no_data_and_a_503_still_a_line(
    switch: Switch, tmp_path: Path, refused_url: str
) -> None:
    config = tmp_path / "w.yaml"
    config.write_text(
        f'settings: {{controls: ["{refused_url}/health"]}}\n'
        "probes:\n"
        f"  - {{name: gone, url: '{refused_url}/feed', timeout: 2s}}\n"
        f"  - {{name: feed-home, url: 'http://127.0.0.1:{switch.port}/feed', timeout: 2s}}\n"
    )
    out = tmp_path / "w.jsonl"
    proc = subprocess.Popen(
        probe_cmd("watch", str(config), "--every", "0.3s", "-o", str(out)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        _wait(lambda: len(out.read_text().splitlines()) >= 6, "three rounds")
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    # a 503 proves the network works, so it is never marked; the refusal is no data
    assert first.startswith("DOWN feed-home ") and rest == "", (first, rest)
    assert err.count("this machine looks cut off") == 1 and "network.refused" in err
    gone = [json.loads(line) for line in out.read_text().splitlines() if '"gone"' in line]
    assert gone and all(r["vantage"] == "down" for r in gone)


def test_a_state_file_gives_since_when_is_never_locked_nor_written(
    switch: Switch, tmp_path: Path
) -> None:
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
    # the control: `probe run` with this config reaches the notify target
    _wait(lambda: len(switch.posts) >= 1, "probe run's DOWN message")
    sent = len(switch.posts)
    since = json.loads(state.read_bytes())["probes"]["feed-home"]["x"]["since"]
    before = _files(tmp_path)
    time.sleep(1.1)  # the state's since is then at least a second before any watch result
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
        # a cron run could take the state's lock now: the watch holds none
        fd = os.open(str(state) + ".lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        switch.status = 200
        assert watch.stdout.readline().startswith("UP feed-home (http) x after ")
    finally:
        watch.terminate()
        watch.communicate(timeout=10)
    assert f"since {since[11:19]}Z" in line, (line, since)
    assert _files(tmp_path) == before  # read, never written
    assert len(switch.posts) == sent  # nothing more: the watch sent no message


def test_o_dash_is_refused(tmp_path: Path, switch: Switch) -> None:
    done = subprocess.run(
        probe_cmd("watch", str(_config(tmp_path, switch)), "-o", "-"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "-o - would mix JSON lines" in done.stderr
    assert done.stdout == ""


def test_until_up_in_process_leaves_nothing_frozen(switch: Switch, tmp_path: Path) -> None:
    switch.status = 200
    out, err = io.StringIO(), io.StringIO()
    # no notify target: Apprise is only loaded in child processes (its imports warn)
    opts = WatchOptions([str(_config(tmp_path, switch, notify=False))], every=0.3, until_up=True)
    assert watch_command(opts, Streams(out, err, io.BytesIO())) == 0
    assert (out.getvalue(), err.getvalue()) == ("", "")  # up from the start: no line
    assert gc.get_freeze_count() == 0  # the runner's gc.freeze does not outlive a round


# -- the view: results -> state, since, flips, lines -------------------------------------

T0 = parse_utc("2026-11-22T10:00:00Z")
BUG = "bug"


def _result(step: int, outcome: bool | str) -> Any:
    ts = format_utc(T0 + 10 * step)
    if outcome == BUG:
        return make_result(
            ok=False,
            ts=ts,
            failure=Failure.INTERNAL,
            reason=Reason.INTERNAL_ERROR,
            error="synthprobe bug: ZeroDivisionError: planted bug",
        )
    return make_result(ok=bool(outcome), ts=ts)


@pytest.mark.parametrize(
    ("outcomes", "events", "up", "flips", "since_step"),
    [
        pytest.param([True, True], [None, None], True, 0, 0, id="up-all-along"),
        pytest.param([False, False], ["down", None], False, 0, 0, id="down-at-start-one-line"),
        pytest.param([True, False, True], [None, "down", "up"], True, 2, 2, id="down-and-back"),
        pytest.param([True, BUG, True], [None, None, None], True, 0, 0, id="bug-moves-nothing"),
        pytest.param([False, BUG, True], ["down", None, "up"], True, 1, 2, id="bug-mid-outage"),
        pytest.param([BUG, BUG], [None, None], None, 0, None, id="only-bugs-no-data"),
        pytest.param([BUG, False], [None, "down"], False, 0, 1, id="bug-then-down"),
    ],
)
def test_the_view(
    outcomes: list[bool | str],
    events: list[str | None],
    up: bool | None,
    flips: int,
    since_step: int | None,
) -> None:
    view = View()
    got = []
    for step, outcome in enumerate(outcomes):
        event = view.apply(_result(step, outcome))
        got.append(None if event is None else event.kind.value)
    assert got == events
    (row,) = view.rows()
    assert (row.up, row.flips) == (up, flips)
    assert row.since == (None if since_step is None else T0 + 10 * since_step)
    assert row.bug == (outcomes[-1] == BUG)
    assert view.all_up(1) == (up is True)


def test_the_view_takes_since_from_the_state_file_while_it_agrees() -> None:
    view = View(known_since={"feed-home": (False, T0 - 600)})
    event = view.apply(_result(0, False))
    assert event is not None and event.kind is EventKind.DOWN
    assert event.line() == (
        "DOWN feed-home (feed) eu-1 timeout.read: no response headers within 5s, "
        "since 09:50:00Z (1 run)"
    )
    back = view.apply(_result(1, True))
    assert back is not None and back.line() == "UP feed-home (feed) eu-1 after 10m10s"
    other = View(known_since={"feed-home": (True, T0 - 600)})  # it was up: now it is not
    assert other.apply(_result(0, False)) is not None
    assert other.rows()[0].since == T0


# -- the screen ------------------------------------------------------------------------


def _rows(n: int, now: float) -> list[Row]:
    return [
        Row(
            probe=f"probe-{i:03d}",
            kind=("feed", "live", "dns", "tcp")[i % 4],
            up=None if i == 1 else i % 7 != 0,
            since=None if i == 1 else now - i,
            reason="internal.error" if i in (1, 2) else None if i % 7 else "server.status",
            error=None if i % 7 else "status 503, expected 2xx",
            latency_ms=12.0,
            flips=i % 3,
            bug=i in (1, 2),
        )
        for i in range(n)
    ]


def _screen(rows: list[Row], width: int, height: int, now: float) -> str:
    console = Console(width=width, height=height, record=True, file=io.StringIO())
    clock = Round(last=now - 1, next=now + 5, running=False)
    console.print(render(rows, clock, now=now, width=width, height=height))
    return console.export_text()


@pytest.mark.parametrize(
    ("width", "height"), [(80, 24), (120, 40), (60, 12), (200, 60), (40, 7)], ids=str
)
def test_200_probes_fit_the_screen(width: int, height: int) -> None:
    now = time.time()
    text = _screen(_rows(200, now), width, height, now)
    lines = text.splitlines()
    assert len(lines) <= height and max(len(line) for line in lines) <= width, text
    assert lines[0].startswith("170/200 up · 29 down"), text  # and one with no data yet
    assert "more" in text  # the rest summarised
    if height - CHROME > 1:  # the failing probes first: by kind, then name
        assert "probe-014" in lines[4] and "✗ down" in lines[4], text
    if 1 < height - CHROME < 29:  # some of the 29 down are hidden: the note says "down"
        assert any("more" in line and "✗ down" in line for line in lines), text


def test_a_screen_that_holds_every_probe_lists_each_failing_first() -> None:
    now = time.time()
    text = _screen(_rows(8, now), 120, 30, now)
    names = [line.split("│")[1].strip() for line in text.splitlines() if "probe-" in line]
    assert names[:3] == ["probe-000", "probe-007", "probe-001"]  # down, down, no data
    assert sorted(names) == [f"probe-{i:03d}" for i in range(8)]
    assert "more" not in text
    bug = next(line for line in text.splitlines() if "probe-001" in line)
    assert "? no data" in bug and "internal.error" in bug and "down" not in bug
    header = text.splitlines()[0]
    assert "last round" in header and "(in 5s)" in header and "Ctrl-C to stop" in header


def test_the_summary_is_one_line_per_kind() -> None:
    now = time.time()
    text = _screen(_rows(200, now), 120, 40, now)
    summary = [line.split("│")[1].strip() for line in text.splitlines() if " more " in line]
    assert summary == [
        "2 more",
        "42 more dns",
        "42 more feed",
        "42 more live",
        "43 more tcp",
    ]


@pytest.mark.parametrize(
    ("width", "columns"),
    [
        pytest.param(
            120,
            ["probe", "kind", "state", "since", "reason", "latency", "flips", "error"],
            id="wide",
        ),
        pytest.param(
            80, ["probe", "state", "since", "reason", "latency", "flips", "error"], id="80"
        ),
        pytest.param(50, ["probe", "state", "since", "reason"], id="narrow"),
    ],
)
def test_a_narrow_screen_drops_the_columns_that_matter_least(
    width: int, columns: list[str]
) -> None:
    now = time.time()
    text = _screen(_rows(8, now), width, 30, now)
    heading = text.splitlines()[2]
    assert [cell.strip() for cell in heading.split("┃")[1:-1]] == columns, text


def test_a_cut_off_machine_is_said_first_and_its_failures_marked() -> None:
    now = time.time()
    row = Row(
        "feed-home", "http", True, now - 60, "network.refused", "refused", None, 0, False, True
    )
    console = Console(width=100, height=20, record=True, file=io.StringIO())
    clock = Round(last=now, next=now + 5, running=False, cut_off="http://127.0.0.1:9/ x")
    console.print(render([row], clock, now=now, width=100, height=20))
    lines = console.export_text().splitlines()
    assert lines[0].startswith("this machine looks cut off · 1/1 up")
    assert "✓ up" in lines[4] and "cut off: refused" in lines[4]  # the state it had
