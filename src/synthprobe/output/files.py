"""Writing report files safely."""

from __future__ import annotations

import os
import tempfile

from synthprobe.errors import OutputError


def write_atomic(path: str, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename it into place: a reader
    sees the old file or the new one, never half of one."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".synthprobe-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def check_writable(path: str) -> None:
    """Fail before probing, not after, when the report cannot be written."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise OutputError(f"cannot write {path}: it is a directory")
    if not os.path.isdir(directory):
        raise OutputError(f"cannot write {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise OutputError(f"cannot write {path}: directory {directory} is not writable")
    try:
        # root passes os.access everywhere: only a real file shows a read-only mount
        fd, tmp = tempfile.mkstemp(prefix=".synthprobe-check-", dir=directory)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(tmp)
