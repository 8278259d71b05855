"""A gRPC health check's cost beside an HTTP/2 probe's, on the same machine, in one run.

    python bench/grpc_cpu.py [PROBES] [ROUNDS]

One server process (its CPU not counted) serves the demo platform's HTTP/2 over TLS
(GET /v1/feed?limit=1, the throwaway certificate) and its gRPC health service twice: on
h2c and on TLS with the same certificate. Each kind is probed by the real `probe run`
CLI, PROBES probes (default 200) with 10 in flight, every probe a fresh connection. CPU
per probe is the CPU (user + system) of that run minus the CPU of a run of one probe,
over PROBES - 1: Python's start-up and imports are left out. Kinds are interleaved per
round (default 5 rounds) and the median is printed.

Then start-up: `probe validate` and `probe run` of a one-probe config, an http probe
beside a grpc probe (both at a refused port, so no server time counts), interleaved, the
median wall time of 11 runs: grpclib and protobuf load only when a grpc probe runs.
Not part of `make test`: timings depend on the machine.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from synthprobe.demo import refused_port  # noqa: E402
from tests.commands import probe_cmd  # noqa: E402

SERVERS = """
import asyncio, sys
from synthprobe.demo import DemoPlatform
from synthprobe.demo.grpc import serve_grpc_health
from synthprobe.demo.h2 import throwaway_tls

async def main():
    platform = DemoPlatform(extras=True)
    await platform.start()
    _, grpcs = await serve_grpc_health("127.0.0.1", 0, tls=throwaway_tls())
    print(platform.tls_port, platform.grpc_port, grpcs, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


def children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def config(tmp: Path, name: str, probe: dict[str, object], n: int) -> Path:
    name = "".join(c if c.isalnum() else "-" for c in name)  # a probe name: no spaces
    path = tmp / f"{name}-{n}.yaml"
    lines = ["settings: {concurrency: 10}", "probes:"]
    lines += [
        f"  - {json.dumps({'name': f'{name}-{i}', 'timeout': '5s', **probe})}" for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def cpu_of(path: Path, out: Path) -> tuple[float, int]:
    """CPU seconds of one `probe run`, and how many of its probes passed."""
    before = children_cpu()
    subprocess.run(
        probe_cmd("run", str(path), "-o", str(out), "--format", "quiet", "--no-state"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cpu = children_cpu() - before
    passed = sum(json.loads(line)["ok"] for line in out.read_text().splitlines())
    out.unlink()
    return cpu, passed


def cpu_per_probe(kinds: dict[str, dict[str, object]], n: int, rounds: int, tmp: Path) -> None:
    per: dict[str, list[float]] = {k: [] for k in kinds}
    passed: dict[str, int] = {k: 0 for k in kinds}
    out = tmp / "out.jsonl"
    for _ in range(rounds):
        for name, probe in kinds.items():
            one, _ = cpu_of(config(tmp, name, probe, 1), out)
            many, ok = cpu_of(config(tmp, name, probe, n), out)
            per[name].append((many - one) / (n - 1) * 1000)
            passed[name] = ok
    print(f"CPU per probe ({n} probes, 10 in flight, median of {rounds} rounds; start-up excluded)")
    print(f"{'probe':<34} {'ms CPU/probe':>12} {'min':>7} {'max':>7} {'passed':>7}")
    for name, values in per.items():
        print(
            f"{name:<34} {statistics.median(values):>12.2f} {min(values):>7.2f} "
            f"{max(values):>7.2f} {passed[name]:>4}/{n}"
        )


def startup(tmp: Path, runs: int) -> None:
    held, port = refused_port()
    try:
        configs = {
            "http": config(tmp, "http", {"url": f"http://127.0.0.1:{port}/"}, 1),
            "grpc": config(tmp, "grpc", {"kind": "grpc", "url": f"grpc://127.0.0.1:{port}"}, 1),
        }
        out = str(tmp / "s.jsonl")
        cmds = {
            f"probe {verb} (1 {kind} probe)": probe_cmd(
                verb,
                str(path),
                *(("-o", out, "--format", "quiet", "--no-state") if verb == "run" else ()),
            )
            for verb in ("validate", "run")
            for kind, path in configs.items()
        }
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        times: dict[str, list[float]] = {name: [] for name in cmds}
        for round_ in range(runs + 2):
            for name, command in cmds.items():
                started = time.perf_counter()
                subprocess.run(
                    command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
                )
                if round_ >= 2:  # the first two write bytecode caches
                    times[name].append(time.perf_counter() - started)
    finally:
        held.close()
    print(f"\nStart-up (median wall of {runs} runs, interleaved)")
    for name, values in times.items():
        print(f"{name:<34} {statistics.median(values) * 1000:>8.0f} ms")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    server = subprocess.Popen(
        [sys.executable, "-c", SERVERS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        tls, grpc, grpcs = (int(p) for p in server.stdout.readline().split())
        health = {"kind": "grpc", "grpc": {"service": "feed.v1.Ranker"}}
        kinds: dict[str, dict[str, object]] = {
            "grpc health, h2c": {**health, "url": f"grpc://127.0.0.1:{grpc}"},
            "grpc health, TLS": {
                **health,
                "url": f"grpcs://127.0.0.1:{grpcs}",
                "verify_tls": False,
            },
            "http, HTTP/2 over TLS": {
                "url": f"https://127.0.0.1:{tls}/v1/feed?limit=1",
                "http_version": "2",
                "verify_tls": False,
            },
        }
        with tempfile.TemporaryDirectory() as folder:
            cpu_per_probe(kinds, n, rounds, Path(folder))
            startup(Path(folder), 11)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)


if __name__ == "__main__":
    main()
