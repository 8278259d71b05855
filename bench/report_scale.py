"""How `probe report` scales: time and peak memory over a large history.

    python bench/report_scale.py [LINES]      (default 1,000,000 lines, about 400 MB)

Writes the history to a temporary directory, runs the real `probe report --format json`
in a subprocess, and prints wall time, lines per second and the child's peak RSS
(VmHWM, sampled from /proc). Not part of `make test`.
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


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.jsonl"
        started = time.perf_counter()
        size = write_history(path, lines)
        print(
            f"history: {lines:,} lines, {size / 1e6:,.0f} MB "
            f"(written in {time.perf_counter() - started:.1f}s)"
        )
        report = Path(tmp) / "report.json"
        started = time.perf_counter()
        # output to a file, not a pipe: a pipe nobody reads until exit would block it
        with report.open("wb") as out, (Path(tmp) / "stderr.txt").open("wb") as err:
            proc = subprocess.Popen(
                probe_cmd("report", str(path), "--format", "json"),
                stdout=out,
                stderr=err,
            )
            peak = 0
            while proc.poll() is None:
                peak = max(peak, vm_hwm_kib(proc.pid))
                time.sleep(0.02)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            sys.exit(f"probe report failed: {(Path(tmp) / 'stderr.txt').read_text()}")
        data = json.loads(report.read_text())
        runs = sum(p["runs"] for p in data["probes"])
        assert runs == lines, (runs, lines)
        print(
            f"probe report: {wall:.1f}s wall, {lines / wall:,.0f} lines/s, "
            f"peak RSS {peak / 1024:.0f} MiB, {len(data['probes'])} series, "
            f"{len(data['outages']):,} outages"
        )


if __name__ == "__main__":
    os.environ.setdefault("COLUMNS", "120")
    main()
