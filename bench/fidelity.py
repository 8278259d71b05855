"""Timing fidelity and cost: synthprobe beside `curl --parallel`, in one run.

    python bench/fidelity.py                  # the scales below
    python bench/fidelity.py --quick          # N=1000, 100 in flight only

A delay server (bench/delay_server.py, its own process) answers every request after
DELAY_MS. The same N URLs are fetched by the real `probe run` CLI and by curl with the
same concurrency. Latency error is measured latency minus the true delay: what a
prober adds of its own. Results are printed as one table and written to
bench/results.json. Not part of `make test`: timings depend on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.commands import probe_cmd  # noqa: E402
from tests.procwatch import vm_hwm_kib  # noqa: E402  (one reader of /proc for tests and bench)

DELAY_MS = 200.0
SCALES = [(100, 10), (1000, 100), (10_000, 1000)]
QUICK = [(1000, 100)]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))]


def run_measured(command: list[str], stdout: Any = subprocess.DEVNULL) -> dict[str, float]:
    """Wall, CPU (user+sys) and peak RSS of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, vm_hwm_kib(proc.pid))
        time.sleep(0.01)
    wall = time.perf_counter() - started
    # rusage of this child alone: wait4 on an already-reaped child is not possible, so
    # take RUSAGE_CHILDREN deltas around it
    return {
        "wall_s": wall,
        "peak_rss_mib": peak / 1024,
        "returncode": proc.returncode,
        "stderr": proc.stderr.read().decode()[-500:] if proc.stderr else "",
    }


def children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_probe(urls: list[str], concurrency: int, tmp: Path) -> dict[str, Any]:
    config = tmp / "bench.yaml"
    config.write_text(
        "version: 1\ndefaults: {timeout: 30s, expect: {status: [200]}}\nprobes:\n"
        + "".join(f'  - {{name: p{i}, url: "{u}"}}\n' for i, u in enumerate(urls))
    )
    out = tmp / "results.jsonl"
    out.unlink(missing_ok=True)
    before = children_cpu()
    figures = run_measured(
        probe_cmd("run", str(config), "-o", str(out), "-c", str(concurrency), "--format", "quiet")
    )
    cpu = children_cpu() - before
    records = [json.loads(line) for line in out.read_text().splitlines()]
    ok = [r for r in records if r["ok"]]
    errors = [r["timings_ms"]["total"] - DELAY_MS for r in ok]
    lags = [r["details"].get("loop_lag_ms") for r in records if "loop_lag_ms" in r["details"]]
    return {
        **figures,
        "cpu_ms_per_probe": cpu * 1000 / len(urls),
        "recorded": len(records),
        "ok": len(ok),
        "p50_error_ms": percentile(errors, 50) if errors else None,
        "p95_error_ms": percentile(errors, 95) if errors else None,
        "max_loop_lag_ms": max(lags) if lags else None,
    }


def bench_curl(urls: list[str], concurrency: int, tmp: Path) -> dict[str, Any]:
    config = tmp / "curl.conf"
    config.write_text("".join(f'url = "{u}"\noutput = "/dev/null"\n' for u in urls))
    out = tmp / "curl.out"
    before = children_cpu()
    with out.open("wb") as fh:
        figures = run_measured(
            [
                "curl",
                "--parallel",
                "--parallel-max",
                str(concurrency),
                "--parallel-immediate",
                "-s",
                "-w",
                "%{http_code} %{time_total}\n",
                "-K",
                str(config),
            ],
            stdout=fh,
        )
    cpu = children_cpu() - before
    rows = [line.split() for line in out.read_text().splitlines() if line.strip()]
    ok = [float(t) * 1000 for code, t in rows if code == "200"]
    errors = [t - DELAY_MS for t in ok]
    return {
        **figures,
        "cpu_ms_per_probe": cpu * 1000 / len(urls),
        "recorded": len(rows),
        "ok": len(ok),
        "p50_error_ms": percentile(errors, 50) if errors else None,
        "p95_error_ms": percentile(errors, 95) if errors else None,
    }


def startup(command: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def main() -> None:
    if shutil.which("curl") is None:
        sys.exit("curl is needed for the side-by-side figures")
    scales = QUICK if "--quick" in sys.argv else SCALES
    port = 20000 + os.getpid() % 20000
    server = subprocess.Popen(
        [sys.executable, str(HERE / "delay_server.py"), str(port), str(DELAY_MS)],
        stdout=subprocess.PIPE,
    )
    assert server.stdout is not None
    server.stdout.readline()  # "ready"
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            one = tmp / "one.yaml"
            one.write_text(f'probes:\n  - {{name: one, url: "http://127.0.0.1:{port}/"}}\n')
            starts = {
                "probe --help": startup(probe_cmd("--help")),
                "probe run (1 probe)": startup(
                    probe_cmd("run", str(one), "-o", os.devnull, "--format", "quiet")
                )
                - DELAY_MS,
            }
            for n, c in scales:
                urls = [f"http://127.0.0.1:{port}/item?i={i}" for i in range(n)]
                ours = bench_probe(urls, c, tmp)
                theirs = bench_curl(urls, c, tmp)
                rows.append(
                    {
                        "n": n,
                        "concurrency": c,
                        "synthprobe": ours,
                        "curl": theirs,
                        "wall_ratio": ours["wall_s"] / theirs["wall_s"],
                    }
                )
    finally:
        server.terminate()
        server.wait(5)
    print(f"server delay {DELAY_MS:.0f} ms; latency error = measured - delay\n")
    header = (
        f"{'N':>6} {'c':>5} {'tool':<11} {'wall s':>8} {'x curl':>7} {'CPU ms/probe':>13} "
        f"{'peak MiB':>9} {'p50 err':>8} {'p95 err':>8} {'recorded':>9} {'ok':>6}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        for tool in ("synthprobe", "curl"):
            f = row[tool]
            ratio = fmt(row["wall_ratio"], 2) if tool == "synthprobe" else "1.00"
            print(
                f"{row['n']:>6} {row['concurrency']:>5} {tool:<11} {fmt(f['wall_s'], 2):>8} "
                f"{ratio:>7} {fmt(f['cpu_ms_per_probe'], 2):>13} {fmt(f['peak_rss_mib'], 0):>9} "
                f"{fmt(f['p50_error_ms']):>8} {fmt(f['p95_error_ms']):>8} "
                f"{fmt(f['recorded']):>9} {fmt(f['ok']):>6}"
            )
    print()
    for name, ms in starts.items():
        print(f"startup: {name:<22} {ms:,.0f} ms")
    (HERE / "results.json").write_text(
        json.dumps({"delay_ms": DELAY_MS, "startup_ms": starts, "rows": rows}, indent=2)
    )
    print(f"\nwritten to {HERE / 'results.json'}")


if __name__ == "__main__":
    main()
