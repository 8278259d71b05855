"""What each command does, free of option parsing: the CLI calls these and maps the
``SynthprobeError`` tree (errors.py) to exit codes.

    run.py       probe run: configs -> runner -> outputs -> exit code
    probes.py    probe validate and probe list
    report.py    probe report
    demo.py      probe demo
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import IO

from rich.console import Console

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CUT_OFF = 3
"""Every failure of the run was marked ``"vantage": "down"``: this machine, not the platform."""


@dataclass(frozen=True, slots=True)
class Streams:
    """Where things go: data to stdout, messages to stderr."""

    out: Console
    """stdout, for the table or summary."""
    err: Console
    """stderr, for warnings and errors (and the table when JSON lines go to stdout)."""
    stdout_bytes: IO[bytes]
    """stdout as bytes, for ``-o -``."""


def main_streams() -> Streams:
    """Consoles on the real stdout and stderr; 120 columns when not a terminal, so a
    cron mail or CI log is not wrapped at rich's default of 80."""
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "120"))
    err_width = None if sys.stderr.isatty() else int(os.environ.get("COLUMNS", "120"))
    return Streams(
        out=Console(file=sys.stdout, width=width),
        err=Console(file=sys.stderr, width=err_width),
        stdout_bytes=sys.stdout.buffer,
    )
