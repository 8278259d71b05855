"""``probe watch`` in a real terminal (tmux, from Debian), piped, and as a renderable:
a probe going down and coming back, since-when counting, flips, Ctrl-C and SIGTERM
exiting 0 with the terminal restored, ``--until-up``; no notification, no state."""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from synthprobe.output.watch import Row, render

from .commands import probe_cmd

TMUX = shutil.which("tmux")


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
    path = tmp_path / "w.yaml"
    path.write_text(
        f"settings: {{notify: ['json://127.0.0.1:{switch.port}/hook']}}\n"
        "probes:\n"
        f"  - {{name: feed-home, url: 'http://127.0.0.1:{switch.port}/feed', timeout: 2s}}\n"
    )
    return path


def _wait(check: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Tmux:
    def __init__(self, command: list[str], cwd: Path) -> None:
        self.name = f"synthprobe-{uuid.uuid4().hex[:8]}"
        line = f"cd {shlex.quote(str(cwd))}; {shlex.join(command)}; echo EXIT=$?; sleep 60"
        subprocess.run(
            [str(TMUX), "new-session", "-d", "-s", self.name, "-x", "120", "-y", "30", line],
            check=True,
            timeout=10,
        )

    def screen(self) -> str:
        done = subprocess.run(
            [str(TMUX), "capture-pane", "-p", "-t", self.name],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return done.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([str(TMUX), "send-keys", "-t", self.name, *keys], check=True, timeout=10)

    def kill(self) -> None:
        subprocess.run([str(TMUX), "kill-session", "-t", self.name], timeout=10)


@pytest.fixture
def tmux_ok() -> None:
    if TMUX is None:
        pytest.skip("tmux is not installed (`make test` installs Debian's tmux as root)")


@pytest.mark.slow
def test_watch_in_a_real_terminal(
    tmux_ok: None, switch: Switch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, switch)
    term = Tmux([*probe_cmd("watch", str(config), "--every", "0.3s")], tmp_path)
    try:
        _wait(lambda: "✗ down" in term.screen(), "the probe shown down")
        down = term.screen()
        assert "feed-home" in down and "server.status" in down and "0/1 up" in down
        _wait(lambda: any(f" {n}s " in term.screen() for n in range(2, 9)), "since counting")
        switch.status = 200
        _wait(lambda: "✓ up" in term.screen(), "the probe back up")
        back = term.screen()
        assert "1/1 up" in back
        row = next(line for line in back.splitlines() if "feed-home" in line)
        assert row.split()[-1] == "1" or " 1 " in row  # one flip
        term.keys("C-c")
        _wait(lambda: "EXIT=0" in term.screen(), "exit 0 after Ctrl-C")
        exited = term.screen()
        assert "feed-home" not in exited  # the alternate screen is gone: the shell is back
    finally:
        term.kill()
    with capsys.disabled():  # the three screens, for whoever reads the test log
        print("\n--- down ---\n" + down + "\n--- back ---\n" + back + "\n--- exited ---\n" + exited)
    assert switch.posts == []  # no notification
    assert not list(tmp_path.glob("*.state.json"))  # no state


def test_until_up_exits_0_on_its_own_in_a_terminal(
    tmux_ok: None, switch: Switch, tmp_path: Path
) -> None:
    config = _config(tmp_path, switch)
    term = Tmux([*probe_cmd("watch", str(config), "--every", "0.3s", "--until-up")], tmp_path)
    try:
        _wait(lambda: "✗ down" in term.screen(), "the probe shown down")
        switch.status = 200
        _wait(lambda: "EXIT=0" in term.screen(), "--until-up to exit 0")
    finally:
        term.kill()


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
            ok=i % 7 != 0,
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
