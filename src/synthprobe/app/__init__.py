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
from functools import cached_property
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CUT_OFF = 3
"""Every failure of the run was marked ``"vantage": "down"``: this machine, not the platform."""
EXIT_INTERNAL = 4
"""synthprobe failed on at least one probe (a bug of ours, class ``internal``): before 1,
so a bug is never read as the platform's outage, nor hidden behind one."""


class Streams:
    """Where things go: data to stdout, messages to stderr.

    The rich consoles are made on first use: ``--format quiet`` or ``json`` and a run
    that prints no warning never import rich (about 25 ms of start-up)."""

    def __init__(self, stdout: IO[str], stderr: IO[str], stdout_bytes: IO[bytes]) -> None:
        self.stdout = stdout
        """stdout as text, for plain lines (``--format quiet``, ``json``, ``changes``)."""
        self.stderr = stderr
        self.stdout_bytes = stdout_bytes
        """stdout as bytes, for ``-o -``."""

    @cached_property
    def out(self) -> Console:
        """stdout, for the table or summary."""
        return _console(self.stdout)

    @cached_property
    def err(self) -> Console:
        """stderr, for warnings and errors (and the table when JSON lines go to stdout)."""
        return _console(self.stderr)


def _console(stream: IO[str]) -> Console:
    """120 columns when not a terminal, so a cron mail or CI log is not wrapped at
    rich's default of 80. No emoji codes: a server's reply or a URL with ``:ok:`` in it
    is printed as it came (and rich's emoji table is not loaded, 6 ms)."""
    from rich.console import Console

    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "120"))
    console = Console(file=stream, width=width, emoji=False)

    def broken_pipe() -> None:
        # rich's own answer is SystemExit(1): a run whose probes all passed would exit
        # 1 because `| head -1` stopped reading. Raise it to the caller, which knows
        # the run's own exit code.
        stdout_gone()
        raise BrokenPipeError

    console.on_broken_pipe = broken_pipe  # type: ignore[method-assign]
    return console


def main_streams() -> Streams:
    """The process's real stdout and stderr. A closed one (``probe run >&-``: Python
    then has None) writes to nowhere: the run's work (results file, state, messages)
    does not depend on anyone reading the terminal."""
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    return Streams(sys.stdout, sys.stderr, sys.stdout.buffer)


def stdout_gone() -> None:
    """The reader of stdout left (``| head -1``): whatever is still to be printed goes
    nowhere, quietly, instead of a BrokenPipeError at every later write and at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
