"""The command line: typer's CliRunner for the logic, real subprocesses for exit codes,
streams, signals and overlapping runs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from synthprobe.cli import app
from synthprobe.demo import DemoPlatform

from .commands import probe_cmd, run_probe
from .probing import write_config

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


probe = run_probe  # this file's name for it


@pytest.fixture
def mixed_config(tmp_path: Path, platform: DemoPlatform) -> str:
    return str(
        write_config(
            tmp_path,
            f"""
version: 1
probes:
  - {{name: feed-ok, kind: feed, url: "{platform.base_url}/v1/feed", tags: [critical]}}
  - {{name: feed-503, kind: feed, url: "{platform.base_url}/fault/status/503"}}
  - {{name: up-ok, kind: upload, url: "{platform.base_url}/v1/media", upload: {{size: 1KiB}}}}
""",
        )
    )


def test_validate_prints_probes_per_kind(mixed_config: str) -> None:
    result = runner.invoke(app, ["validate", mixed_config])
    assert result.exit_code == 0, result.output
    assert "3 probes" in result.output
    assert "feed" in result.output and "feed-ok, feed-503" in result.output


def test_validate_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "probes:\n  - {name: a, url: 'http://127.0.0.1/', timout: 1s}\n")
    result = probe("validate", path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f'error: {path}:2: probes[0].timout: unknown key (did you mean "timeout"?)'
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "no such file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a text file"),
        (b"probes: [", "invalid YAML"),
        (b"", "the file is empty"),
    ],
    ids=["missing", "binary", "broken-yaml", "empty"],
)
def test_user_mistakes_never_show_a_traceback(
    tmp_path: Path, content: bytes | None, needle: str
) -> None:
    path = tmp_path / "c.yaml"
    if content is not None:
        path.write_bytes(content)
    for command in ("run", "validate", "list"):
        result = probe(command, str(path))
        assert result.returncode == 2, (command, result.stderr)
        assert needle in result.stderr
        assert "Traceback" not in result.stderr + result.stdout


def test_list_masks_secrets(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
probes:
  - name: a
    url: "http://127.0.0.1/feed?token=${TOK}"
    headers: {Authorization: "Bearer ${TOK}", X-Trace: "t-${TOK}", X-Api-Key: literal-key}
""",
    )
    result = probe("list", path, env={"TOK": "sekret-value-1"})
    assert result.returncode == 0, result.stderr
    assert "sekret-value-1" not in result.stdout + result.stderr
    assert "literal-key" not in result.stdout
    assert "token=***" in result.stdout and "t-***" in result.stdout
    as_json = probe("list", "--format", "json", path, env={"TOK": "sekret-value-1"})
    [described] = json.loads(as_json.stdout)
    assert described["headers"] == {"Authorization": "***", "X-Trace": "t-***", "X-Api-Key": "***"}


def test_run_exit_1_table_on_stdout_lines_in_file(mixed_config: str, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    result = probe("run", mixed_config, "-o", str(out), "--location", "ci-1")
    assert result.returncode == 1, result.stderr
    assert "feed-503" in result.stdout and "server.status" in result.stdout
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["probe"] for r in records) == ["feed-503", "feed-ok", "up-ok"]
    assert {r["location"] for r in records} == {"ci-1"}
    assert len({r["run_id"] for r in records}) == 1


def test_run_all_passing_exits_0(mixed_config: str, tmp_path: Path) -> None:
    result = probe(
        "run",
        mixed_config,
        "--only",
        "feed-ok",
        "--only",
        "upload",
        "-o",
        str(tmp_path / "r.jsonl"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_output_dash_sends_lines_to_stdout_and_table_to_stderr(mixed_config: str) -> None:
    result = probe("run", mixed_config, "-o", "-")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all(json.loads(line)["schema"] == 1 for line in lines)
    assert "server.status" in result.stderr and "1/3" not in result.stdout


@pytest.mark.slow
def test_quiet_is_silent_on_success_and_one_line_per_failure(
    mixed_config: str, tmp_path: Path
) -> None:
    out = str(tmp_path / "r.jsonl")
    ok = probe("run", mixed_config, "--format", "quiet", "--only", "tag:critical", "-o", out)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    bad = probe("run", mixed_config, "--format", "quiet", "-o", out)
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [
        line
        for line in bad.stdout.splitlines()
        if line.startswith("FAIL feed-503 feed server.status ")
    ]
    assert len(bad.stdout.splitlines()) == 1


def test_json_format_summary(mixed_config: str, tmp_path: Path) -> None:
    result = probe("run", mixed_config, "--format", "json", "-o", str(tmp_path / "r.jsonl"))
    summary = json.loads(result.stdout)
    assert summary["passed"] == 2 and summary["failed"] == 1
    assert summary["failed_probes"][0]["reason"] == "server.status"


def test_junit_prom_timeout_retries_overrides(mixed_config: str, tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    junit = tmp_path / "junit.xml"
    prom = tmp_path / "synthprobe.prom"
    out = tmp_path / "r.jsonl"
    result = probe(
        "run",
        mixed_config,
        "--junit",
        str(junit),
        "--prom",
        str(prom),
        "--retries",
        "2",
        "--timeout",
        "3s",
        "-c",
        "1",
        "-o",
        str(out),
    )
    assert result.returncode == 1
    assert junit.read_text().count("<testcase") == 3
    records = {json.loads(x)["probe"]: x for x in out.read_text().splitlines()}
    assert json.loads(records["feed-503"])["attempts"] == 1  # server class: not retried
    families = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    up = {s.labels["probe"]: s.value for s in families["synthprobe_up"].samples}
    assert up == {"feed-ok": 1.0, "feed-503": 0.0, "up-ok": 1.0}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".synthprobe-")] == []


def test_only_matching_nothing_is_a_usage_error(mixed_config: str) -> None:
    result = probe("run", mixed_config, "--only", "nope")
    assert result.returncode == 2
    assert "--only 'nope' matches no probe" in result.stderr


def test_unwritable_output_fails_before_probing(
    mixed_config: str, tmp_path: Path, platform: DemoPlatform
) -> None:
    before = platform.requests
    result = probe("run", mixed_config, "-o", str(tmp_path / "no" / "such" / "dir.jsonl"))
    assert result.returncode == 2
    assert "cannot write results to" in result.stderr
    assert platform.requests == before


def test_bad_option_value_exits_2(mixed_config: str) -> None:
    assert probe("run", mixed_config, "--timeout", "soon").returncode == 2
    assert probe("run", mixed_config, "--format", "xml").returncode == 2
    assert probe("run", mixed_config, "-c", "0").returncode == 2


def test_config_from_stdin(platform: DemoPlatform, tmp_path: Path) -> None:
    config = f"probes:\n  - {{name: a, url: '{platform.base_url}/v1/feed'}}\n"
    result = subprocess.run(
        probe_cmd("run", "-", "-o", str(tmp_path / "r.jsonl")),
        input=config,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_probe_output_env_var(mixed_config: str, tmp_path: Path) -> None:
    target = tmp_path / "from-env.jsonl"
    probe("run", mixed_config, env={"PROBE_OUTPUT": str(target)}, cwd=tmp_path)
    assert len(target.read_text().splitlines()) == 3
    assert not (tmp_path / "probe-results.jsonl").exists()


def _processes_running(needle: str) -> list[int]:
    """Processes whose command line contains ``needle`` (a test's own config path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if needle.encode() in cmdline:
                found.append(int(entry.name))
    return found


@pytest.mark.parametrize("workers", ["1", "3"], ids=["one-process", "three-workers"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_promptly_and_keeps_finished_lines(
    sig: signal.Signals, workers: str, tmp_path: Path, platform: DemoPlatform
) -> None:
    fast = [f'  - {{name: fast-{i}, url: "{platform.base_url}/v1/feed"}}' for i in range(5)]
    slow = [
        f'  - {{name: slow-{i}, url: "{platform.base_url}/fault/slow-headers?delay=30", '
        f"timeout: 25s}}"
        for i in range(5)
    ]
    path = write_config(tmp_path, "probes:\n" + "\n".join(fast + slow))
    out = tmp_path / "r.jsonl"
    proc = subprocess.Popen(
        probe_cmd("run", path, "-o", str(out), "--workers", workers),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if out.exists() and len(out.read_bytes().splitlines()) >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(sig)
    sent = time.monotonic()
    stdout, stderr = proc.communicate(timeout=10)
    assert time.monotonic() - sent < 2.0
    assert proc.returncode == 130
    assert "Traceback" not in stderr
    assert f"interrupted by {sig.name}: 5 of 10 probes finished" in stderr
    lines = out.read_bytes().splitlines()
    assert sorted(json.loads(line)["probe"] for line in lines) == [f"fast-{i}" for i in range(5)]
    assert "fast-0" in stdout  # the partial table
    assert _processes_running(str(path)) == []  # no worker left behind


@pytest.mark.slow
def test_a_killed_worker_is_an_error_not_a_gap(tmp_path: Path, platform: DemoPlatform) -> None:
    slow = [
        f'  - {{name: slow-{i}, url: "{platform.base_url}/fault/slow?delay=1", timeout: 25s}}'
        for i in range(6)
    ]
    path = write_config(tmp_path, "probes:\n" + "\n".join(slow))
    out = tmp_path / "r.jsonl"
    proc = subprocess.Popen(
        probe_cmd("run", path, "-o", str(out), "--workers", "2", "--format", "quiet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    children: list[int] = []
    for _ in range(400):  # bounded: the workers are up within seconds
        children = [p for p in _processes_running(str(path)) if p != proc.pid]
        if len(children) == 2:
            break
        time.sleep(0.01)
    assert len(children) == 2, children
    os.kill(children[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in stderr
    assert "1 of 2 worker processes failed" in stderr
    # the other worker's results are whole lines in the file
    for line in out.read_bytes().splitlines():
        assert json.loads(line)["probe"].startswith("slow-")


@pytest.mark.slow
def test_overlapping_runs_append_whole_lines(tmp_path: Path, platform: DemoPlatform) -> None:
    probes = [
        f'  - {{name: p{i}, url: "{platform.base_url}/v1/feed?limit=50"}}' for i in range(100)
    ]
    path = write_config(tmp_path, "probes:\n" + "\n".join(probes))
    out = tmp_path / "shared.jsonl"
    procs = [
        subprocess.Popen(
            probe_cmd("run", path, "-o", str(out), "--format", "quiet", "-c", "20"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for p in procs:
        p.communicate(timeout=120)
        assert p.returncode == 0
    records = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert len(records) == 200
    assert len({r["run_id"] for r in records}) == 2


COMMANDS = [c.name or c.callback.__name__ for c in app.registered_commands]  # type: ignore[union-attr]


def _long_options(command: str) -> list[str]:
    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    return [o for p in click_command.params for o in p.opts if o.startswith("--")]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_documented_in_the_readme(command: str) -> None:
    assert f"`probe {command}" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("option", _long_options("run"))
def test_every_run_option_is_documented_in_the_reference(option: str) -> None:
    # in the options table, as `--name` or `-x, --name`
    text = (ROOT / "docs" / "reference.md").read_text()
    assert re.search(rf"`(-\w, )?{re.escape(option)}\b", text)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_every_option_of_the_command(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    missing = [o for o in _long_options(command) if o not in result.output]
    assert not missing, f"probe {command} --help does not show {missing}"


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("synthprobe ")


def test_module_entry_point_lists_every_command() -> None:
    result = probe("--help")
    assert result.returncode == 0
    assert all(command in result.stdout for command in COMMANDS), result.stdout


def _imported_by(module: str) -> list[str]:
    # a None entry is an import blocked on purpose (httpx._main, see cli.py)
    code = (
        f"import sys, {module}; "
        "print(' '.join(sorted(k for k, v in sys.modules.items() if v is not None)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.split()


def test_importing_the_cli_imports_no_prober_no_httpx_and_no_yaml() -> None:
    # `probe --help` must not pay for the probing stack or the config loader at start-up
    out = _imported_by("synthprobe.cli")
    heavy = [m for m in out if m.startswith(("synthprobe.probers", "httpx", "httpcore", "yaml"))]
    assert "synthprobe.cli" in out and heavy == []


_AT_EXIT = """
import atexit, sys
atexit.register(lambda: print(
    " ".join(sorted(k for k, v in sys.modules.items() if v is not None)), file=sys.stderr
))
from synthprobe.cli import main
sys.argv = ["probe", *sys.argv[1:]]
main()
"""
HEAVY = ("rich", "pygments", "pydantic", "click", "m3u8", "wsproto", "dns", "apprise")
"""What a plain HTTP run must not pay for: the table, httpx's own CLI, typer 0.29's
option parser, and the HLS, WebSocket, DNS and notification stacks."""


def _imported_by_command(*args: str) -> set[str]:
    """Modules loaded when a real ``probe`` command ends (sys.modules at exit)."""
    done = subprocess.run(
        [sys.executable, "-c", _AT_EXIT, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode in (0, 1), done.stderr
    return {m.partition(".")[0] for m in done.stderr.strip().splitlines()[-1].split()}


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("--help",), id="help"),
        pytest.param(("run", "{config}", "-o", "{out}", "--format", "quiet"), id="run-quiet"),
        pytest.param(("run", "{config}", "-o", "-", "--format", "json"), id="run-json"),
    ],
)
def test_commands_import_only_what_they_need(
    tmp_path: Path, refused_url: str, args: tuple[str, ...]
) -> None:
    config = write_config(tmp_path, f"probes:\n  - {{name: feed, url: {refused_url}}}\n", "p.yaml")
    out = str(tmp_path / "r.jsonl")
    loaded = _imported_by_command(*(a.format(config=config, out=out) for a in args))
    assert "synthprobe" in loaded and "typer" in loaded  # the listing is real...
    assert sorted(loaded.intersection(HEAVY)) == []  # ...and has none of the heavy ones
    if args[0] == "run":
        assert "httpx" in loaded


def test_a_table_run_does_import_rich(tmp_path: Path, refused_url: str) -> None:
    # the other side of the test above: the check can see rich when it is there
    config = write_config(tmp_path, f"probes:\n  - {{name: feed, url: {refused_url}}}\n", "p.yaml")
    loaded = _imported_by_command("run", str(config), "-o", str(tmp_path / "r.jsonl"))
    assert "rich" in loaded


def test_loading_configs_imports_no_prober_and_no_network_stack() -> None:
    # `probe validate` reads every kind's KindInfo, but no prober, httpx or event loop
    out = _imported_by("synthprobe.config.schema")
    assert "synthprobe.probers.live" in out  # the kinds are known...
    heavy = [m for m in out if m.endswith(".prober") or m.startswith(("httpx", "asyncio"))]
    assert heavy == []  # ...but nothing that probes


@pytest.mark.parametrize("workers", ["1", "3"], ids=["one-process", "three-workers"])
@pytest.mark.slow
def test_2000_probes_under_load_all_recorded_and_classified(
    tmp_path: Path, platform: DemoPlatform, refused_url: str, workers: str
) -> None:
    """Correctness under load (no timing thresholds): every result written once, whole,
    and labelled right; with worker processes too, and the state still kept."""
    expected = {"ok": None, "bad": "server.status", "gone": "network.refused"}
    lines = []
    for i in range(2000):
        kind = ("ok", "bad", "gone")[i % 3]
        url = {
            "ok": f"{platform.base_url}/v1/feed?limit=1",
            "bad": f"{platform.base_url}/fault/status/502",
            "gone": refused_url + "/",
        }[kind]
        lines.append(f'  - {{name: {kind}-{i}, url: "{url}", timeout: 20s}}')
    config = write_config(tmp_path, "probes:\n" + "\n".join(lines))
    out = tmp_path / "r.jsonl"
    result = probe(
        "run",
        config,
        "-o",
        str(out),
        "-c",
        "200",
        "--format",
        "quiet",
        "--workers",
        workers,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    records = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert len(records) == 2000
    assert len({r["probe"] for r in records}) == 2000
    wrong = [
        (r["probe"], r["reason"], r["error"])
        for r in records
        if r["reason"] != expected[r["probe"].split("-")[0]]
    ]
    assert wrong == []
    assert all("loop_lag_ms" in r["details"] for r in records)
    assert len({r["run_id"] for r in records}) == 1  # one run, however many processes
    state = json.loads((tmp_path / "r.state.json").read_text())
    assert len(state["probes"]) == 2000


@pytest.mark.parametrize(
    "args",
    [["run", "x.yaml"], ["list", "x.yaml"], ["report", "x.jsonl"], ["demo"]],
    ids=["run", "list", "report", "demo"],
)
def test_unknown_format_is_a_usage_error_for_every_command(args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--format", "xml"])
    assert result.exit_code == 2
    assert "xml" in result.output and "table" in result.output


def test_list_shows_journeys_alerts_and_protocol_choices(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
probes:
  - name: watch
    url: https://127.0.0.1:8443/v1/login
    method: POST
    json: {password: "${PW}"}
    http_version: "2"
    resolver: 127.0.0.1:5353
    alert: {failure_threshold: 3, remind_every: 1h}
    capture: {token: "json:access_token"}
    mask: [token]
    steps:
      - name: feed
        url: https://127.0.0.1:8443/v1/me/feed
        headers: {Authorization: "Bearer {{token}}"}
""",
    )
    done = probe("list", "--format", "json", path, env={"PW": "hunter2-list"})
    assert done.returncode == 0, done.stderr
    [p] = json.loads(done.stdout)
    assert (p["http_version"], p["resolver"]) == ("2", "127.0.0.1:5353")
    assert p["alert"]["failure_threshold"] == 3 and p["alert"]["remind_every"] == "3600s"
    assert p["journey"]["capture"] == {"token": "json:access_token"}
    assert [s["name"] for s in p["journey"]["steps"]] == ["feed"]
    assert p["journey"]["steps"][0]["headers"]["Authorization"] == "***"
    assert "hunter2-list" not in done.stdout and "***" in p["json"]


def test_workers_without_fork_are_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Windows has no fork: say so as the user's error, not with a traceback
    import asyncio

    from synthprobe import workers
    from synthprobe.errors import UsageError

    from .conftest import specs_from_yaml

    def no_fork(method: str | None = None) -> None:
        raise ValueError(f"cannot find context for {method!r}")

    monkeypatch.setattr(workers.multiprocessing, "get_context", no_fork)
    specs = specs_from_yaml(
        "probes:\n  - {name: a, url: http://127.0.0.1:1/}\n"
        "  - {name: b, url: http://127.0.0.1:1/}\n"
    )
    with pytest.raises(UsageError, match="fork"):
        asyncio.run(workers.run_in_workers(specs, 2, 10, lambda *_: None, lambda _r: None))
