"""Peak memory of a child process, read from /proc while it runs.

VmHWM is the peak RSS of the process's own memory since exec. ``ru_maxrss`` would also
count the pages of a forked parent (this pytest process), which is why it is not used.
VmHWM only grows, so the last reading before exit holds the peak.
"""

from __future__ import annotations

import subprocess
import time


def vm_hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


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
