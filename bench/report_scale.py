"""How `probe report` scales: time and peak memory over a large history.

    python bench/report_scale.py [LINES]      (default 1,000,000 lines, about 400 MB)

Writes the history to a temporary directory, runs the real `probe report --format json`
in a subprocess, and prints wall time, lines per second and the child's peak RSS
(VmHWM, sampled from /proc); then the same report with an SLO on each of the 50 probes
(`--config`, 99.9% over 7d, the whole history), and the ratio of the two, which must
stay within 1.5x. Not part of `make test`.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.commands import probe_cmd
from tests.procwatch import vm_hwm_kib

PROBES = [(f"probe-{i:02d}", ("feed", "upload", "live", "messaging")[i % 4]) for i in range(50)]
LOCATIONS = ["eu-1", "us-1"]


def write_history(path: Path, lines: int) -> int:
    rng = random.Random(1)
    start = time.time() - lines // (len(PROBES) * len(LOCATIONS)) * 60
    size = 0
    with path.open("w") as fh:
        for n in range(lines):
            probe, kind = PROBES[n % len(PROBES)]
            location = LOCATIONS[(n // len(PROBES)) % len(LOCATIONS)]
            minute = n // (len(PROBES) * len(LOCATIONS))
            t = start + minute * 60 + rng.random()
            ok = rng.random() > 0.02
            stamp = (
                time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
            )
            record = {
                "schema": 1,
                "run_id": "01JBENCH000000000000000000",
                "ts": stamp,
                "location": location,
                "probe": probe,
                "kind": kind,
                "method": "GET",
                "url": f"https://api.example.com/v1/{probe}?limit=10",
                "ok": ok,
                "failure": None if ok else "timeout",
                "reason": None if ok else "timeout.read",
                "error": None if ok else "no response headers within 5s",
                "status": 200 if ok else None,
                "attempts": 1,
                "timings_ms": {
                    "dns": 1.2,
                    "connect": 3.4,
                    "tls": 8.9,
                    "ttfb": 40.0 + rng.random() * 60,
                    "transfer": 1.1,
                    "total": 60.0 + rng.random() * 80,
                },
                "bytes_in": 5120,
                "bytes_out": 0,
                "tags": ["critical"],
                "details": {"remote_ip": "127.0.0.1", "truncated": False},
            }
            line = json.dumps(record) + "\n"
            size += len(line)
            fh.write(line)
    return size


def write_config(path: Path) -> None:
    """Every probe of the history with an SLO (the kind does not matter to a report)."""
    probes = "".join(
        f"  - {{name: {name}, url: 'https://api.example.com/v1/{name}'}}\n" for name, _ in PROBES
    )
    path.write_text(
        f"version: 1\ndefaults:\n  slo: {{objective: 99.9%, window: 7d}}\nprobes:\n{probes}"
    )


def run_report(tmp: Path, lines: int, *args: str) -> tuple[float, int, dict[str, Any]]:
    """(wall seconds, peak RSS KiB, the JSON) of one `probe report --format json`."""
    report = tmp / "report.json"
    started = time.perf_counter()
    # output to a file, not a pipe: a pipe nobody reads until exit would block it
    with report.open("wb") as out, (tmp / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen(
            probe_cmd("report", *args, "--format", "json"), stdout=out, stderr=err
        )
        peak = 0
        while proc.poll() is None:
            peak = max(peak, vm_hwm_kib(proc.pid))
            time.sleep(0.02)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"probe report failed: {(tmp / 'stderr.txt').read_text()}")
    data: dict[str, Any] = json.loads(report.read_text())
    runs = sum(p["runs"] for p in data["probes"])
    assert runs == lines, (runs, lines)
    return wall, peak, data


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        path = tmp / "history.jsonl"
        started = time.perf_counter()
        size = write_history(path, lines)
        print(
            f"history: {lines:,} lines, {size / 1e6:,.0f} MB "
            f"(written in {time.perf_counter() - started:.1f}s)"
        )
        wall, peak, data = run_report(tmp, lines, str(path))
        print(
            f"probe report: {wall:.1f}s wall, {lines / wall:,.0f} lines/s, "
            f"peak RSS {peak / 1024:.0f} MiB, {len(data['probes'])} series, "
            f"{len(data['outages']):,} outages"
        )
        config = tmp / "slo.yaml"
        write_config(config)
        slo_wall, slo_peak, slo_data = run_report(tmp, lines, str(path), "--config", str(config))
        slos = {p["probe"]: p["slo"] for p in slo_data["probes"]}
        assert len(slos) == len(PROBES), len(slos)
        valid = sum(s["valid"] for s in slos.values())
        alerts = sum(len(s["alerts"]) for s in slos.values())
        print(
            f"probe report --config (an SLO on each of {len(slos)} probes): {slo_wall:.1f}s "
            f"wall, {lines / slo_wall:,.0f} lines/s, peak RSS {slo_peak / 1024:.0f} MiB, "
            f"{valid:,} valid results judged, {alerts:,} alert spans replayed"
        )
        print(
            f"with SLOs / without: time {slo_wall / wall:.2f}x, "
            f"memory {slo_peak / peak:.2f}x (the bound is 1.5x)"
        )


if __name__ == "__main__":
    os.environ.setdefault("COLUMNS", "120")
    main()
