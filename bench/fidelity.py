"""Timing fidelity and cost: synthprobe beside curl and blackbox_exporter, in one run.

    python bench/fidelity.py            # every scenario below
    python bench/fidelity.py --quick    # 1000 probes / 100 in flight, calm and busy
    python bench/fidelity.py --no-scale --one-process   # what an older release can run
    python bench/fidelity.py --otlp     # CPU per probe with OTLP export on and off

A delay server (bench/delay_server.py, its own process) answers every request after
DELAY_MS. The same URLs are fetched, with the same concurrency, by

- synthprobe: the real `probe run` CLI (JSON lines read back);
- curl: `curl --parallel` (its own `time_total` per transfer);
- blackbox_exporter (Debian's prometheus-blackbox-exporter, when installed): started
  on 127.0.0.1 with a config of our own, driven through `/probe?module=...&target=...`
  by curl with as many transfers in flight as the others; its latency is the
  `probe_duration_seconds` it reports, its CPU read from /proc/PID/stat around the
  scenario (serving its own HTTP endpoint included, as a deployment pays it).

Latency error is the measured latency minus the true delay: what a prober adds of its
own. "busy" scenarios run a CPU-bound process beside the bench, pinned to one core:
the machine has other work, as production machines do. CPU is per probe, user + system.
Printed as one table and written to bench/results.json. Not part of `make test`:
timings depend on the machine.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.commands import probe_cmd  # noqa: E402
from tests.procwatch import vm_hwm_kib, vm_kib  # noqa: E402  (one /proc reader)
from tests.realprograms import free_port  # noqa: E402

DELAY_MS = 200.0
BLACKBOX = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Scenario:
    name: str
    n: int
    concurrency: int
    busy: bool = False
    blackbox: bool = True
    workers: tuple[int, ...] = (1,)
    """synthprobe's --workers values to run (1: the default, one process)."""


SCENARIOS = [
    Scenario("small run", 5, 5),
    Scenario("calm", 1000, 100),
    Scenario("busy CPU beside", 1000, 100, busy=True),
    Scenario("calm", 10_000, 1000, workers=(1, 2)),
    Scenario("scale", 100_000, 1000, blackbox=False, workers=(1, 2)),
]
QUICK = [Scenario("calm", 1000, 100), Scenario("busy CPU beside", 1000, 100, busy=True)]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))]


def children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """utime + stime of a running process, in seconds (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def run_measured(command: list[str], stdout: Any = subprocess.DEVNULL) -> dict[str, Any]:
    """Wall, CPU (user+sys) and peak RSS of one child process; with worker processes
    (``--workers``), the largest sum of their RSS and the parent's seen while sampling
    (pages the workers share with the parent after fork count twice: an upper bound)."""
    before = children_cpu()
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        workers = children(proc.pid)
        own = vm_hwm_kib(proc.pid)
        peak = max(peak, own + sum(vm_kib(w, "VmRSS") for w in workers) if workers else own)
        time.sleep(0.01)
    return {
        "wall_s": time.perf_counter() - started,
        "cpu_s": children_cpu() - before,
        "peak_rss_mib": peak / 1024,
        "returncode": proc.returncode,
        "stderr": proc.stderr.read().decode()[-500:] if proc.stderr else "",
    }


def errors_summary(latencies_ms: list[float], n: int, cpu_s: float) -> dict[str, Any]:
    errors = [t - DELAY_MS for t in latencies_ms]
    return {
        "cpu_ms_per_probe": cpu_s * 1000 / n,
        "ok": len(latencies_ms),
        "p50_error_ms": percentile(errors, 50) if errors else None,
        "p95_error_ms": percentile(errors, 95) if errors else None,
        "max_error_ms": max(errors) if errors else None,
    }


def bench_probe(
    urls: list[str], concurrency: int, tmp: Path, workers: int = 1, otlp: str | None = None
) -> dict[str, Any]:
    config = tmp / "bench.yaml"
    config.write_text(
        "version: 1\ndefaults: {timeout: 60s, expect: {status: [200]}}\nprobes:\n"
        + "".join(f'  - {{name: p{i}, url: "{u}"}}\n' for i, u in enumerate(urls))
    )
    out = tmp / "results.jsonl"
    out.unlink(missing_ok=True)
    args = ["run", str(config), "-o", str(out), "-c", str(concurrency), "--format", "quiet"]
    if workers > 1:
        args += ["--workers", str(workers)]
    if otlp is not None:
        args += ["--otlp", otlp]
    # RUSAGE_CHILDREN counts worker processes too, once they are reaped by the parent
    figures = run_measured(probe_cmd(*args))
    records = [json.loads(line) for line in out.read_text().splitlines()]
    ok = [r["timings_ms"]["total"] for r in records if r["ok"]]
    lags = [r["details"].get("loop_lag_ms", 0.0) for r in records]
    return {
        **figures,
        **errors_summary(ok, len(urls), figures["cpu_s"]),
        "recorded": len(records),
        "max_loop_lag_ms": max(lags) if lags else None,
    }


def curl_parallel(urls: list[str], outputs: list[str], tmp: Path) -> Path:
    """A curl config fetching each URL to its output; returns the config's path."""
    config = tmp / "curl.conf"
    pairs = zip(urls, outputs, strict=True)
    config.write_text("".join(f'url = "{u}"\noutput = "{o}"\n' for u, o in pairs))
    return config


def curl_command(config: Path, concurrency: int) -> list[str]:
    return [
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
    ]


def bench_curl(urls: list[str], concurrency: int, tmp: Path) -> dict[str, Any]:
    config = curl_parallel(urls, ["/dev/null"] * len(urls), tmp)
    out = tmp / "curl.out"
    with out.open("wb") as fh:
        figures = run_measured(curl_command(config, concurrency), stdout=fh)
    rows = [line.split() for line in out.read_text().splitlines() if line.strip()]
    ok = [float(t) * 1000 for code, t in rows if code == "200"]
    return {**figures, **errors_summary(ok, len(urls), figures["cpu_s"]), "recorded": len(rows)}


BLACKBOX_CONFIG = """\
modules:
  bench:
    prober: http
    timeout: 60s
    http:
      valid_status_codes: [200]
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
"""


@contextmanager
def blackbox_exporter(tmp: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    assert BLACKBOX is not None
    config = tmp / "blackbox.yml"
    config.write_text(BLACKBOX_CONFIG)
    port = free_port()
    proc = subprocess.Popen(
        [
            BLACKBOX,
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):  # bounded: 10 s
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/healthy", timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("blackbox_exporter did not start")
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(10)


def bench_blackbox(
    exporter: tuple[subprocess.Popen[bytes], int], urls: list[str], concurrency: int, tmp: Path
) -> dict[str, Any]:
    proc, port = exporter
    folder = tmp / "blackbox"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    probes = [
        f"http://127.0.0.1:{port}/probe?module=bench&target={urllib.parse.quote(u, safe='')}"
        for u in urls
    ]
    outputs = [str(folder / f"{i}.txt") for i in range(len(urls))]
    config = curl_parallel(probes, outputs, tmp)
    cpu_before = process_cpu(proc.pid)
    driver = run_measured(curl_command(config, concurrency))
    cpu = process_cpu(proc.pid) - cpu_before
    ok = []
    for output in outputs:
        metrics = dict(
            line.rsplit(" ", 1)
            for line in Path(output).read_text().splitlines()
            if line.startswith(("probe_success ", "probe_duration_seconds "))
        )
        if metrics.get("probe_success") == "1":
            ok.append(float(metrics["probe_duration_seconds"]) * 1000)
    return {
        "wall_s": driver["wall_s"],
        "peak_rss_mib": vm_hwm_kib(proc.pid) / 1024,
        **errors_summary(ok, len(urls), cpu),
        "recorded": len(outputs),
    }


@contextmanager
def busy_cpu(on: bool) -> Iterator[None]:
    """A CPU-bound process pinned to one core while the scenario runs."""
    if not on:
        yield
        return
    code = "import os; os.sched_setaffinity(0, {0})\nwhile True: pass"
    hog = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.2)
        yield
    finally:
        hog.kill()
        hog.wait()


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'scenario':<16} {'N':>7} {'c':>5} {'tool':<11} {'wall s':>8} {'x curl':>7} "
        f"{'CPU ms/probe':>13} {'peak MiB':>9} {'p50 err':>8} {'p95 err':>8} "
        f"{'max lag':>8} {'recorded':>9} {'ok':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        curl_wall = row["tools"]["curl"]["wall_s"]
        for tool, f in row["tools"].items():
            print(
                f"{row['scenario']:<16} {row['n']:>7,} {row['concurrency']:>5} {tool:<11} "
                f"{fmt(f['wall_s'], 2):>8} {fmt(f['wall_s'] / curl_wall, 2):>7} "
                f"{fmt(f['cpu_ms_per_probe'], 2):>13} {fmt(f['peak_rss_mib'], 0):>9} "
                f"{fmt(f['p50_error_ms']):>8} {fmt(f['p95_error_ms']):>8} "
                f"{fmt(f.get('max_loop_lag_ms')):>8} {fmt(f['recorded']):>9} {fmt(f['ok']):>8}"
            )


@contextmanager
def delay_server() -> Iterator[int]:
    """bench/delay_server.py in its own process, warmed; yields its port."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(HERE / "delay_server.py"), str(port), str(DELAY_MS)],
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "ready"
        # a fresh Python server answers its first requests late (cold code paths): warm
        # it so that the first scenario's first tool does not pay for that
        warm = [f"http://127.0.0.1:{port}/warm?i={i}" for i in range(50)]
        with tempfile.TemporaryDirectory() as warm_dir:
            bench_curl(warm, 10, Path(warm_dir))
        yield port
    finally:
        server.terminate()
        server.wait(5)


def otlp_section(port: int, tmp: Path) -> None:
    """The same run without and with ``--otlp`` to a collector of the tests' own (it
    accepts everything): what the spans and metrics cost per probe, the SDK's import
    included. Best of three each, interleaved."""
    from tests.otlp_receiver import receiver

    print(f"{'N':>7} {'c':>5} {'export':<7} {'wall s':>8} {'CPU ms/probe':>13} {'spans':>7}")
    for n, concurrency in ((100, 50), (1000, 100), (10_000, 1000)):
        urls = [f"http://127.0.0.1:{port}/item?i={i}" for i in range(n)]
        best: dict[bool, dict[str, Any]] = {}
        spans = 0
        with receiver() as collector:
            for _ in range(3):
                for on in (False, True):
                    got = bench_probe(urls, concurrency, tmp, otlp=collector.url if on else None)
                    assert got["recorded"] == n, got["stderr"]
                    if on not in best or got["cpu_s"] < best[on]["cpu_s"]:
                        best[on] = got
            spans = len(collector.spans()) // 3
        for on in (False, True):
            f = best[on]
            print(
                f"{n:>7,} {concurrency:>5} {'on' if on else 'off':<7} {fmt(f['wall_s'], 2):>8} "
                f"{fmt(f['cpu_ms_per_probe'], 3):>13} {spans if on else 0:>7,}"
            )


def main() -> None:
    if "--otlp" in sys.argv:
        with delay_server() as port, tempfile.TemporaryDirectory() as tmp_name:
            otlp_section(port, Path(tmp_name))
        return
    if shutil.which("curl") is None:
        sys.exit("curl is needed for the side-by-side figures")
    if BLACKBOX is None:
        print(
            "blackbox_exporter not installed (Debian: prometheus-blackbox-exporter): "
            "its rows are left out",
            file=sys.stderr,
        )
    scenarios = QUICK if "--quick" in sys.argv else SCENARIOS
    if "--no-scale" in sys.argv:
        scenarios = [s for s in scenarios if s.n < 100_000]
    if "--one-process" in sys.argv:
        scenarios = [dataclasses.replace(s, workers=(1,)) for s in scenarios]
    rows: list[dict[str, Any]] = []
    with delay_server() as port, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for s in scenarios:
            urls = [f"http://127.0.0.1:{port}/item?i={i}" for i in range(s.n)]
            tools: dict[str, Any] = {}
            with busy_cpu(s.busy):
                for w in s.workers:
                    name = "synthprobe" if w == 1 else f"synthp. -w{w}"
                    tools[name] = bench_probe(urls, s.concurrency, tmp, w)
                tools["curl"] = bench_curl(urls, s.concurrency, tmp)
                if BLACKBOX is not None and s.blackbox:
                    # a fresh exporter per scenario: its CPU and peak are this one's
                    with blackbox_exporter(tmp) as exporter:
                        tools["blackbox"] = bench_blackbox(exporter, urls, s.concurrency, tmp)
            row = {"scenario": s.name, "n": s.n, "concurrency": s.concurrency, "tools": tools}
            rows.append(row)
            print(f"done: {s.name} {s.n}/{s.concurrency}", file=sys.stderr, flush=True)
    print(
        f"\nserver delay {DELAY_MS:.0f} ms; error = measured latency - delay (ms); "
        f"{os.cpu_count()} CPUs\n"
    )
    print_table(rows)
    (HERE / "results.json").write_text(
        json.dumps({"delay_ms": DELAY_MS, "rows": rows}, indent=2) + "\n"
    )
    print(f"\nwritten to {HERE / 'results.json'}")


if __name__ == "__main__":
    main()
