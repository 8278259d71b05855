"""Kills, overlapping runs, a hung resolver, 5000 probes: real processes, real servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from synthprobe.demo import DemoPlatform
from synthprobe.output.jsonl import JsonlWriter

from .commands import probe_cmd
from .probing import write_config
from .procwatch import wait_watching_peak
from .results import make_result


def config_with(tmp_path: Path, lines: list[str], name: str = "c.yaml") -> Path:
    """A config of these probe lines (YAML, each ``  - {...}``)."""
    return write_config(tmp_path, "probes:\n" + "\n".join(lines) + "\n", name)


def test_sigkill_loses_at_most_the_line_being_written(
    tmp_path: Path, platform: DemoPlatform
) -> None:
    fast = [f'  - {{name: f{i}, url: "{platform.base_url}/v1/feed?limit=20"}}' for i in range(400)]
    slow = [
        f'  - {{name: s{i}, url: "{platform.base_url}/fault/slow-headers?delay=30", timeout: 25s}}'
        for i in range(20)
    ]
    config = config_with(tmp_path, slow + fast)
    out = tmp_path / "r.jsonl"
    proc = subprocess.Popen(
        probe_cmd("run", str(config), "-o", str(out), "-c", "40"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if out.exists() and out.stat().st_size > 20_000:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # mid-run, while lines are being appended
    proc.wait(10)
    # the kernel may have cut the line being written (a write stops between pages when
    # the process is killed); the next run's writer cuts that fragment before its line
    JsonlWriter(str(out)).write(make_result("next-run"))
    records = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert records[-1]["probe"] == "next-run"
    killed = records[:-1]
    assert 0 < len(killed) < 420
    assert len({r["probe"] for r in killed}) == len(killed)


TEARING_WRITER = """
import sys
from synthprobe.output.jsonl import JsonlWriter
from tests.results import make_result
writer = JsonlWriter(sys.argv[1])
big = make_result("big", details={"pad": "x" * (4 * 1024 * 1024)})
for _ in range(200):  # bounded: killed long before
    writer.write(big)
"""


@pytest.mark.slow
def test_a_line_the_kernel_tore_on_sigkill_is_cut_by_the_next_writer(tmp_path: Path) -> None:
    """Lines of 4 MiB: SIGKILL lands inside a write, which Linux stops between pages,
    leaving a torn line (the reason the writer mends the tail). The next writer's line
    starts a line of its own and every line parses."""
    import sys

    out = tmp_path / "r.jsonl"
    root = Path(__file__).resolve().parent.parent
    torn = 0
    for _ in range(5):  # bounded; a kill almost always lands mid-write
        out.unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, "-c", TEARING_WRITER, str(out)], cwd=root)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (out.exists() and out.stat().st_size > 9e6):
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        data = out.read_bytes()
        if data.endswith(b"\n"):
            continue  # the kill fell between two writes: try again
        torn += 1
        JsonlWriter(str(out)).write(make_result("next-run"))
        lines = out.read_bytes().splitlines()
        records = [json.loads(line) for line in lines]
        assert records[-1]["probe"] == "next-run"
        assert all(r["probe"] == "big" for r in records[:-1]) and len(records) >= 3
        break
    assert torn, "no kill tore a line in 5 tries: the premise of this test did not hold"


@pytest.mark.slow
def test_four_overlapping_runs_append_1200_whole_lines(
    tmp_path: Path, platform: DemoPlatform
) -> None:
    lines = [f'  - {{name: p{i}, url: "{platform.base_url}/v1/feed?limit=5"}}' for i in range(300)]
    config = config_with(tmp_path, lines)
    out, junit, prom = tmp_path / "all.jsonl", tmp_path / "j.xml", tmp_path / "m.prom"
    procs = [
        subprocess.Popen(
            probe_cmd(
                "run",
                str(config),
                "-o",
                str(out),
                "-c",
                "30",
                "--junit",
                str(junit),
                "--prom",
                str(prom),
                "--format",
                "quiet",
                "--location",
                f"host-{n}",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(4)
    ]
    for p in procs:
        _stdout, stderr = p.communicate(timeout=180)
        assert p.returncode == 0, stderr
    records = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert len(records) == 1200
    assert {r["location"] for r in records} == {f"host-{n}" for n in range(4)}
    # the reports were replaced whole by whichever run finished last
    assert ET.fromstring(junit.read_bytes()).get("tests") == "300"
    families = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    assert len(families["synthprobe_up"].samples) == 300
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".synthprobe-")]


HUNG_RESOLVER = """
import socket, sys, time
def hung(*args, **kwargs):
    time.sleep(60)  # a resolver that never answers
    raise socket.gaierror(socket.EAI_AGAIN, "gave up")
socket.getaddrinfo = hung
sys.argv = ["probe", "run", sys.argv[1], "-o", sys.argv[2]]
from synthprobe.cli import main
main()
"""


def test_hung_resolver_is_dns_timeout_and_does_not_hold_up_exit(tmp_path: Path) -> None:
    config = config_with(
        tmp_path, ['  - {name: slow-dns, url: "http://api.example.invalid/", timeout: 300ms}']
    )
    out = tmp_path / "r.jsonl"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", HUNG_RESOLVER, str(config), str(out)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert time.monotonic() - started < 10  # not the resolver's 60 s
    assert result.returncode == 1, result.stderr
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    assert (record["failure"], record["reason"]) == ("dns", "dns.timeout")


@pytest.mark.slow
def test_sigterm_with_hung_resolver_exits_within_2s(tmp_path: Path) -> None:
    config = config_with(
        tmp_path, ['  - {name: slow-dns, url: "http://api.example.invalid/", timeout: 30s}']
    )
    out = tmp_path / "r.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", HUNG_RESOLVER, str(config), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)  # the lookup is now stuck in its thread
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    _, stderr = proc.communicate(timeout=15)
    assert time.monotonic() - sent < 2.0
    assert proc.returncode == 130
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_5000_probes_one_line_each_bounded_memory(tmp_path: Path, platform: DemoPlatform) -> None:
    lines = [f'  - {{name: p{i}, url: "{platform.base_url}/healthz"}}' for i in range(5000)]
    config = config_with(tmp_path, lines)
    out = tmp_path / "r.jsonl"
    proc = subprocess.Popen(
        probe_cmd("run", str(config), "-o", str(out), "-c", "200", "--format", "quiet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    peak = wait_watching_peak(proc, 240, interval=0.05)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    records = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert len(records) == 5000 and len({r["probe"] for r in records}) == 5000
    assert peak / 1024 < 300, f"peak RSS {peak / 1024:.0f} MiB"


def test_unwritable_output_directory_fails_before_probing(
    tmp_path: Path, platform: DemoPlatform
) -> None:
    config = config_with(tmp_path, [f'  - {{name: a, url: "{platform.base_url}/healthz"}}'])
    before = platform.requests
    for target in ("/proc/synthprobe-results.jsonl", str(tmp_path / "missing" / "r.jsonl")):
        result = subprocess.run(
            probe_cmd("run", str(config), "-o", target), capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2
        assert "cannot write results to" in result.stderr and "Traceback" not in result.stderr
    assert platform.requests == before


def test_disk_full_is_a_clear_error(tmp_path: Path, platform: DemoPlatform) -> None:
    if not os.path.exists("/dev/full"):
        import pytest

        pytest.skip("no /dev/full on this system")
    config = config_with(tmp_path, [f'  - {{name: a, url: "{platform.base_url}/healthz"}}'])
    result = subprocess.run(
        probe_cmd("run", str(config), "-o", "/dev/full"), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
