"""JSON lines (schema 1, ``record.py``): one whole line per probe, safe with concurrent writers.

Each line is written with a single ``write`` on an ``O_APPEND`` descriptor while
holding an exclusive ``flock``: two cron runs appending to one file never interleave.

A run killed by SIGKILL can leave a torn last line: Linux copies a write into the page
cache a page at a time and stops between pages when the process is being killed
(``generic_perform_write``), so a line that crosses a 4 KiB boundary of the file can be
cut. Under the lock, before every line, the writer looks at the file's last byte: a
fragment of a killed writer's line is cut away, and no line ever runs into one. The
killed run loses the line it was writing, and nothing else; text of other programs is
never cut (an open last line of theirs is ended with a newline).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
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
        self._reader: int | None = None
        """The same regular file, for reading its tail; None where it cannot be read
        (a FIFO, a device, a write-only file): no tail to mend there."""
        self.lost_reader = False
        """stdout's reader left (``| head -1``): the remaining lines went nowhere."""
        if path is not None:
            try:
                self._fd, self._reader = _open(path)
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
            self.close()
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
                if self._reader is not None:
                    data = _mend_tail(self._fd, self._reader) + data
                view = memoryview(data)
                while view:  # a regular file takes it whole; loop for the odd short write
                    written = os.write(self._fd, view)
                    view = view[written:]
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        except OSError as exc:
            raise OutputError(f"cannot append to {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        for fd in (self._fd, self._reader):
            if fd is not None:
                os.close(fd)
        self._fd = self._reader = None


def _open(path: str) -> tuple[int, int | None]:
    """The file for appending and, for a regular file, a second descriptor to read its
    tail (the same inode, checked: a file renamed in between is not mended)."""
    # O_NONBLOCK: a FIFO nobody reads fails now (ENXIO) instead of blocking the run
    # forever before its first probe
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK, 0o644)
    try:
        os.set_blocking(fd, True)
        info = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(info.st_mode):
        return fd, None
    try:
        reader = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # write-only for us: appended to, never mended
        return fd, None
    again = os.fstat(reader)
    if (again.st_dev, again.st_ino) != (info.st_dev, info.st_ino):
        os.close(reader)
        return fd, None
    return fd, reader


_OURS = b'{"schema": '
"""How every line of ours begins (record.py puts ``schema`` first)."""
_TAIL_LIMIT = 4 * 1024 * 1024
"""How far back a torn line is looked for: far beyond any line of ours."""


def _mend_tail(fd: int, reader: int) -> bytes:
    """Under the lock, before a line: what must come first so that it starts a line of
    its own. When the file does not end with a newline, a writer was killed mid-line or
    another program left its last line open: a fragment of one of our lines is cut away
    (the killed run's lost line); anything else, a whole JSON value or text we did not
    write, is kept and ended with a newline (returned, to go in the same write)."""
    size = os.fstat(fd).st_size
    if not size or os.pread(reader, 1, size - 1) == b"\n":
        return b""
    start = max(0, size - _TAIL_LIMIT)
    back = os.pread(reader, size - start, start)
    newline = back.rfind(b"\n")
    if newline < 0 and start > 0:
        return b"\n"  # no line start within reach: not a line of ours
    tail = back[newline + 1 :]
    torn_ours = tail.startswith(_OURS) or _OURS.startswith(tail)  # cut as short as "{"
    if not torn_ours or _whole(tail):
        return b"\n"
    os.ftruncate(fd, start + newline + 1)
    return b""


def _whole(line: bytes) -> bool:
    """A line that is complete but for its newline (a kill just before it)."""
    try:
        json.loads(line)
    except (ValueError, RecursionError):  # 4 MiB of "[" is not a line of ours either
        return False
    return True
