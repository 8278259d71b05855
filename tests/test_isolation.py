"""A probe's trouble stays in that probe (SPEC, third wave): a bug of ours is that probe's
``internal.error`` and no data; hostile JSON and catastrophic patterns get a class; the
command's own outputs (closed stdout, a pipe that closes, a FIFO, a directory) never cost
a result or give a traceback.

Real servers on 127.0.0.1 (a small HTTP server of this file's, the demo platform) and
``probe`` in a child process, as cron runs it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from junitparser import JUnitXml

from synthprobe import runner as runner_module
from synthprobe.demo import DemoPlatform

from .commands import probe_cmd, results, run_probe
from .conftest import run_specs, specs_from_yaml
from .probing import probes_text, run_beside_healthy, write_config

BODIES: dict[str, tuple[bytes, float]] = {
    # path: (body, seconds to wait before answering)
    "/deep": (b"[" * 100_000 + b"]" * 100_000, 0),
    "/infinity": (b'{"t": Infinity}', 0),
    "/overflow": (b'{"t": 1e400}', 0),
    "/nan": (b'{"t": NaN}', 0),
    "/digits": (b'{"t": 1' + b"0" * 5000 + b"}", 0),
    "/bom": (b'\xef\xbb\xbf{"ok": true}', 0),
    "/x5000": (b"x" * 5000, 0),
    "/feed": (b'{"ok": true}', 0),
    "/slow": (b'{"ok": true}', 30),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/cookies":
            # cookie values a server chose to collide with our words and our address
            body = b'{"sid": "abc123xyz789"}'
            self.send_response(500)
            for cookie in ("a=status", "b=expected", "c=500", "d=127.0.0.1", "sid=abc123xyz789"):
                self.send_header("Set-Cookie", cookie)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        body, wait = BODIES.get(self.path, (b"not found", 0))
        if wait:
            time.sleep(wait)
        self.send_response(200 if self.path in BODIES else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


HOSTILE_JSON = [
    pytest.param(
        "/deep", {"json": [{"path": "a", "exists": True}]}, "nested too deep", id="nested-100k"
    ),
    pytest.param(
        "/infinity", {"json": [{"path": "t", "max_age": "30s"}]}, "is not a time", id="infinity"
    ),
    pytest.param(
        "/overflow", {"json": [{"path": "t", "max_age": "30s"}]}, "is not a time", id="1e400"
    ),
    pytest.param("/nan", {"json": [{"path": "t", "max_age": "30s"}]}, "is not a time", id="nan"),
    pytest.param(
        "/digits",
        {"json": [{"path": "t", "exists": True}]},
        "more than 4300 digits",
        id="5000-digits",
    ),
    pytest.param(
        "/x5000", {"body_regex": "(x+x+)+y"}, "gave up after 0.25s on 5,000", id="backtracking"
    ),
    pytest.param(
        "/x5000",
        {"json": [{"path": "a", "exists": True}], "headers": {"content-type": "(j+j+)+y"}},
        "header content-type",
        id="header-pattern",
    ),
]


@pytest.mark.parametrize(("path", "expect", "words"), HOSTILE_JSON)
def test_hostile_bodies_get_a_class_and_the_run_goes_on(
    server: str, path: str, expect: dict[str, Any], words: str
) -> None:
    hostile = run_beside_healthy(
        {"name": "hostile", "url": server + path, "timeout": "3s", "expect": expect},
        {"url": server + "/feed", "timeout": "3s"},
        within=3 + 1,
    )["hostile"]
    assert (hostile.failure, hostile.reason) == ("server", "server.assertion"), hostile.error
    assert hostile.error is not None and words in hostile.error
    assert "set_int_max_str_digits" not in hostile.error


def test_a_utf8_bom_before_json_is_json(server: str) -> None:
    [result] = run_specs(
        specs_from_yaml(
            probes_text(
                {
                    "name": "bom",
                    "url": server + "/bom",
                    "expect": {"json": [{"path": "ok", "equals": True}]},
                }
            )
        )
    )
    assert result.ok, result.error


def test_a_servers_cookies_cannot_blank_our_words_but_tokens_stay_masked(server: str) -> None:
    def one(expect: dict[str, Any]) -> Any:
        probe = {"name": "c", "url": server + "/cookies", "expect": expect}
        [result] = run_specs(specs_from_yaml(probes_text(probe)))
        return result

    status = one({"status": [200]})
    assert status.error == "status 500, expected 200"
    assert status.details["remote_ip"] == "127.0.0.1"
    token = one({"status": [500], "json": [{"path": "sid", "equals": "nope"}]})
    assert token.error is not None and "abc123xyz789" not in token.error
    assert "***" in token.error and "expected" in token.error


# -- our own bugs -----------------------------------------------------------------------

PLANTED = textwrap.dedent(
    """
    import sys
    import synthprobe.runner as runner

    real = runner.judge

    def planted(expect, *rest):
        # a bug of ours, planted where every kind's result passes: status 299 marks it
        if 299 in expect.status:
            raise ZeroDivisionError("planted bug")
        return real(expect, *rest)

    runner.judge = planted
    from synthprobe.cli import main

    sys.argv = ["probe", *sys.argv[1:]]
    main()
    """
)


def _planted_probe(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PLANTED, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def test_a_bug_is_that_probes_result_with_its_traceback_once(
    platform: DemoPlatform, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = runner_module.judge

    def planted(expect: Any, *rest: Any) -> Any:
        if 299 in expect.status:
            raise ZeroDivisionError("planted bug")
        return real(expect, *rest)

    monkeypatch.setattr(runner_module, "judge", planted)
    base = platform.base_url
    probes = [
        {"name": f"bug-{i}", "url": f"{base}/v1/feed", "expect": {"status": [200, 299]}}
        for i in range(3)
    ]
    probes.append({"name": "fine", "url": f"{base}/v1/feed"})
    got = run_specs(specs_from_yaml(probes_text(*probes)))
    assert [r.probe for r in got] == ["bug-0", "bug-1", "bug-2", "fine"]
    for r in got[:3]:
        assert (r.ok, r.failure, r.reason) == (False, "internal", "internal.error")
        assert r.error == "synthprobe bug: ZeroDivisionError: planted bug"
        assert r.no_data
    assert got[3].ok
    # one traceback for one bug, however many probes it hit
    err = capsys.readouterr().err
    assert err.count("Traceback (most recent call last)") == 1, err
    assert "ZeroDivisionError: planted bug" in err
    # the next run in the same process tells of it again: what a run has told is the
    # run's, not the process's (a process-wide set once silenced every later test)
    run_specs(specs_from_yaml(probes_text(*probes)))
    assert capsys.readouterr().err.count("Traceback (most recent call last)") == 1


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
def test_a_bug_exits_4_and_is_no_data_everywhere(
    platform: DemoPlatform, tmp_path: Path, workers: int
) -> None:
    base = platform.base_url
    probes = [
        {"name": "bug", "url": f"{base}/v1/feed", "expect": {"status": [200, 299]}},
        *({"name": f"ok-{i}", "url": f"{base}/v1/feed"} for i in range(4)),
        {"name": "down", "url": f"{base}/fault/status/503"},
    ]
    config = write_config(tmp_path, {"probes": probes})
    out, junit, prom = tmp_path / "r.jsonl", tmp_path / "j.xml", tmp_path / "m.prom"
    args = ["run", str(config), "-o", str(out), "--junit", str(junit), "--prom", str(prom)]
    done = _planted_probe(*args, "--workers", str(workers), "--format", "quiet")
    assert done.returncode == 4, done.stderr  # 4 before 1: the bug is never hidden
    assert done.stderr.count("Traceback (most recent call last)") == 1, done.stderr
    lines = {r["probe"]: r for r in results(out)}
    assert set(lines) == {p["name"] for p in probes}  # nothing lost
    bug = lines["bug"]
    assert (bug["ok"], bug["failure"], bug["reason"]) == (False, "internal", "internal.error")
    assert "event" not in bug  # no event; "state" shows the state as it stands
    assert lines["down"]["state"] in ("pending", "down")
    state = (tmp_path / "r.state.json").read_text()
    assert '"down"' in state and '"bug"' not in state  # the bug moved no state
    case = {c.name: c for suite in JUnitXml.fromfile(str(junit)) for c in suite}
    assert type(case["bug"].result[0]).__name__ == "Error"
    assert type(case["down"].result[0]).__name__ == "Failure"
    metrics = prom.read_text()
    assert 'synthprobe_internal_error{probe="bug"' in metrics
    assert 'synthprobe_up{probe="bug"' not in metrics
    report = run_probe("report", str(out), "--format", "json")
    assert report.returncode == 0, report.stderr
    counted = {p["probe"] for p in json.loads(report.stdout)["probes"]}
    assert "down" in counted
    assert all(p["runs"] == 0 for p in json.loads(report.stdout)["probes"] if p["probe"] == "bug")


# -- the command's own outputs ------------------------------------------------------------


@pytest.fixture
def config(platform: DemoPlatform, tmp_path: Path) -> Path:
    feeds = [{"name": f"feed-{i}", "url": f"{platform.base_url}/v1/feed"} for i in range(3)]
    return write_config(tmp_path, {"probes": feeds})


def test_closed_stdout_runs_and_records(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    done = subprocess.run(
        f"{' '.join(probe_cmd())} run {config} -o {out} >&-",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert len(results(out)) == 3


@pytest.mark.slow
@pytest.mark.parametrize(
    "args", [["-o", "-"], ["--format", "table"], ["--format", "quiet"]], ids=str
)
def test_a_pipe_closed_by_its_reader_ends_quietly_with_the_runs_code(
    config: Path, tmp_path: Path, args: list[str]
) -> None:
    state = tmp_path / "s.json"
    command = " ".join([*probe_cmd(), "run", str(config), "--state", str(state), *args])
    done = subprocess.run(
        ["bash", "-c", f"{command} | head -c 1 >/dev/null; echo ${{PIPESTATUS[0]}} >&2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stderr.strip().splitlines()[-1] == "0", done.stderr
    assert "Traceback" not in done.stderr and "Broken pipe" not in done.stderr
    assert "Exception ignored" not in done.stderr
    assert len(json.loads(state.read_text())["probes"]) == 3  # the run went on to the end


def _unusable_outputs(tmp_path: Path) -> dict[str, list[str]]:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "dir").mkdir()
    return {
        "fifo-without-reader": ["-o", str(fifo)],
        "directory": ["-o", str(tmp_path / "dir")],
        "junit-directory": ["--junit", str(tmp_path / "dir")],
        "prom-directory": ["--prom", str(tmp_path / "dir")],
        "no-such-directory": ["-o", str(tmp_path / "nope" / "r.jsonl")],
        "prom-no-such-directory": ["--prom", str(tmp_path / "nope" / "m.prom")],
    }


@pytest.mark.slow
def test_unusable_outputs_exit_2_before_probing(config: Path, tmp_path: Path) -> None:
    for name, args in _unusable_outputs(tmp_path).items():
        started = time.monotonic()
        done = run_probe("run", str(config), *args, "--no-state", timeout=30)
        assert done.returncode == 2, (name, done.stderr)
        assert "cannot write" in done.stderr, (name, done.stderr)
        if "no-such" in name:
            assert "does not exist" in done.stderr or "No such file" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        assert time.monotonic() - started < 20, name  # a FIFO must not block the run


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(["--timeout", "999999h"], "at most 24h", id="timeout-over-24h"),
        pytest.param(["--format", "changes", "--no-state"], "needs a state", id="changes-no-state"),
        pytest.param(["--format", "changes", "-o", "-"], "needs a state", id="changes-stdout"),
    ],
)
def test_options_that_could_never_work_are_refused(
    config: Path, args: list[str], words: str
) -> None:
    done = run_probe("run", str(config), *args)
    assert done.returncode == 2, done.stderr
    assert words in done.stderr


@pytest.mark.slow
def test_sigterm_during_pattern_heavy_probes_exits_130_and_keeps_lines(
    server: str, tmp_path: Path
) -> None:
    probes = [
        {"name": "quick", "url": server + "/feed", "timeout": "5s"},
        {"name": "slow", "url": server + "/slow", "timeout": "60s"},
        *(
            {
                "name": f"regex-{i}",
                "url": server + "/x5000",
                "timeout": "60s",
                "retries": 0,
                "expect": {"body_regex": "(x+x+)+y"},
            }
            for i in range(8)
        ),
    ]
    config = write_config(tmp_path, {"probes": probes})
    out = tmp_path / "r.jsonl"
    proc = subprocess.Popen(
        probe_cmd("run", str(config), "-o", str(out), "--format", "quiet", "-c", "10"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            out.exists() and out.read_text().count("\n") >= 1
        ):
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code = proc.wait(timeout=10)
        assert time.monotonic() - sent < 5
    finally:
        proc.kill()
        proc.wait()
    assert code == 130
    names = {r["probe"] for r in results(out)}
    assert "quick" in names and "slow" not in names
