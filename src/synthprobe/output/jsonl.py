"""JSON lines (schema 1, ``record.py``): one whole line per probe, safe with concurrent writers.

Each line is written with a single ``write`` on an ``O_APPEND`` descriptor while
holding an exclusive ``flock``: two cron runs appending to one file never
interleave, and a killed run leaves only whole lines (at most the line being
written is missing, never torn, since it is one write of a few hundred bytes).
"""

from __future__ import annotations

import errno
import fcntl
import os
from typing import IO

from synthprobe.errors import OutputError
from synthprobe.models import ProbeResult
from synthprobe.record import encode

MIN_FREE_BYTES = 64 * 1024
"""Less free space than this on the output's file system is an error before probing."""


class JsonlWriter:
    """Appends results to a file (or writes them to a stream such as stdout)."""

    def __init__(self, path: str | None = None, stream: IO[bytes] | None = None) -> None:
        self.path = path
        self._stream = stream
        self._fd: int | None = None
        self.lost_reader = False
        """stdout's reader left (``| head -1``): the remaining lines went nowhere."""
        if path is not None:
            try:
                # O_NONBLOCK: a FIFO nobody reads fails now (ENXIO) instead of blocking
                # the run forever before its first probe
                self._fd = os.open(
                    path,
                    os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK,
                    0o644,
                )
                os.set_blocking(self._fd, True)
            except OSError as exc:
                why = (
                    "a FIFO with no reader"
                    if exc.errno == errno.ENXIO
                    else exc.strerror or str(exc)
                )
                raise OutputError(
                    f"cannot write results to {path}: {why}",
                    hint="choose another file with -o, or - for stdout",
                ) from None
            self._check_space(path)

    def _check_space(self, path: str) -> None:
        """A full disk is found now, before probing, not after the first probe."""
        assert self._fd is not None
        try:
            stats = os.fstatvfs(self._fd)
        except OSError:
            return
        if stats.f_blocks and stats.f_bavail * stats.f_frsize < MIN_FREE_BYTES:
            os.close(self._fd)
            self._fd = None
            raise OutputError(
                f"cannot write results to {path}: No space left on device "
                f"(less than {MIN_FREE_BYTES // 1024} KiB free)"
            )

    def write(self, result: ProbeResult) -> None:
        data = encode(result)
        if self._fd is None:
            assert self._stream is not None
            if self.lost_reader:
                return
            try:
                self._stream.write(data)
                self._stream.flush()
            except BrokenPipeError:
                # the reader has what it wanted; the run (state, messages) goes on
                self.lost_reader = True
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                view = memoryview(data)
                while view:  # a regular file takes it whole; loop for the odd short write
                    written = os.write(self._fd, view)
                    view = view[written:]
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        except OSError as exc:
            raise OutputError(f"cannot append to {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
