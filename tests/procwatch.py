"""Peak memory of a child process, read from /proc while it runs.

VmHWM is the peak RSS of the process's own memory since exec. ``ru_maxrss`` would also
count the pages of a forked parent (this pytest process), which is why it is not used.
VmHWM only grows, so the last reading before exit holds the peak.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, AnyStr

from .commands import probe_cmd
from .probing import write_config


def vm_kib(pid: int, field: str) -> int:
    """A memory field of /proc/PID/status (``VmHWM``, ``VmRSS``) in KiB; 0 once gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def vm_hwm_kib(pid: int) -> int:
    return vm_kib(pid, "VmHWM")


def wait_watching_peak(
    proc: subprocess.Popen[bytes], seconds: float, interval: float = 0.002
) -> int:
    """Wait for ``proc`` (at most ``seconds``), sampling its peak RSS; return it in KiB."""
    peak = 0
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        peak = max(peak, vm_hwm_kib(proc.pid))
        time.sleep(interval)
    return peak


def probe_url_watching_peak(url: str, tmp_path: Path, seconds: float) -> tuple[dict[str, Any], int]:
    """Run the real `probe run` on one URL; return its one JSON line and its peak RSS (KiB)."""
    config = write_config(
        tmp_path, f"probes:\n  - {{name: one, url: '{url}', timeout: {seconds}s}}\n", "one.yaml"
    )
    out = tmp_path / "one.jsonl"
    proc = subprocess.Popen(
        probe_cmd("run", str(config), "-o", str(out)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    peak = wait_watching_peak(proc, seconds * 2)
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    assert peak > 0, "could not read /proc/PID/status"
    return record, peak


def sigterm_when(
    proc: subprocess.Popen[AnyStr], ready: Callable[[], bool], *, wait: float = 20, exit: float = 10
) -> tuple[AnyStr, float]:
    """Once ``ready()`` (or after ``wait`` seconds, bounded), SIGTERM ``proc``; return its
    stderr and the seconds it took to exit. The process is killed whatever happens."""
    try:
        until = time.monotonic() + wait
        while time.monotonic() < until and not ready():
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        _, stderr = proc.communicate(timeout=exit)
        return stderr, time.monotonic() - sent
    finally:
        proc.kill()
        proc.wait()
