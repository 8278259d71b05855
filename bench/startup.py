"""Start-up: `probe` commands beside `python -c "import httpx, asyncio"` in the same venv.

    python bench/startup.py [RUNS]

Each command runs RUNS times (default 21), interleaved so that a noisy moment hurts
every command alike, after two warm-up rounds; the median wall time is printed with
its ratio to the baseline (the least any httpx-based prober can cost). The one probe
goes to a refused port on 127.0.0.1, so no server's time is counted.
Python may write bytecode caches here (PYTHONDONTWRITEBYTECODE is dropped for the
children): a pip-installed synthprobe has them, and so should what is measured.
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

TARGET = 1.5
"""Issue 14: each command within 1.5x of the baseline."""


def commands(tmp: Path, port: int) -> dict[str, list[str]]:
    one = tmp / "one.yaml"
    one.write_text(f'probes:\n  - {{name: one, url: "http://127.0.0.1:{port}/"}}\n')
    h3 = tmp / "h3.yaml"
    h3.write_text(
        f'probes:\n  - {{name: h3, url: "https://127.0.0.1:{port}/", http_version: "3"}}\n'
    )
    out = str(tmp / "results.jsonl")
    return {
        'python -c "import httpx, asyncio"': [sys.executable, "-c", "import httpx, asyncio"],
        "probe --help": probe_cmd("--help"),
        "probe validate (1 probe)": probe_cmd("validate", str(one)),
        "probe run (1 probe, quiet)": probe_cmd("run", str(one), "-o", out, "--format", "quiet"),
        "probe run (1 probe, table)": probe_cmd("run", str(one), "-o", out),
        # the same refused port over QUIC (its UDP twin is closed too): qh3 imported
        "probe run (1 HTTP/3 probe, quiet)": probe_cmd(
            "run", str(h3), "-o", out, "--format", "quiet"
        ),
    }


def measure(cmds: dict[str, list[str]], runs: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for round_ in range(runs + 2):
        for name, command in cmds.items():
            started = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            if round_ >= 2:  # the first two write bytecode caches and warm the page cache
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) * 1000 for name, t in times.items()}


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    held, port = refused_port()  # bound, never listening: refused while we hold it
    with held, tempfile.TemporaryDirectory() as tmp:
        medians = measure(commands(Path(tmp), port), runs)
    baseline = next(iter(medians.values()))
    print(f"median of {runs} runs each, interleaved; target: within {TARGET}x of the first\n")
    print(f"{'command':<36} {'ms':>7} {'x baseline':>11}")
    print("-" * 56)
    for name, ms in medians.items():
        ratio = ms / baseline
        flag = "" if ratio <= TARGET else "  over target"
        print(f"{name:<36} {ms:>7.0f} {ratio:>11.2f}{flag}")
    (HERE / "startup.json").write_text(json.dumps(medians, indent=2) + "\n")


if __name__ == "__main__":
    main()
