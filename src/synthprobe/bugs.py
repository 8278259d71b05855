"""Our own bugs: recorded for the probe they hit, never for the whole run.

An exception no rule in ``classify`` explains is synthprobe's fault, not the target's.
It must not be disguised as an outage (so it is class ``internal``, which moves no state
and counts as no data), and it must not take the other probes down with it (so it is
one probe's result). Its traceback goes to stderr once per distinct bug: a bug that hits
10,000 probes is one traceback, not 10,000.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import TextIO

from synthprobe.classify import Classified
from synthprobe.models import Reason

MESSAGE_LIMIT = 300
"""Characters of the exception's own message kept in the result's ``error``."""


def _where(exc: BaseException) -> tuple[str, str, int]:
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    return (type(exc).__name__, last.filename if last else "", last.lineno or 0 if last else 0)


class Bugs:
    """The bugs one run (or one ``probe watch``) has told of: each traceback once. Held
    by its runner, never by the process, so one run's bugs do not silence another's."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.seen: set[tuple[str, str, int]] = set()
        self.stream = stream

    def internal(self, exc: BaseException, mask: Callable[[str], str] = str) -> Classified:
        """The label of a bug of ours; its traceback the first time this run sees it."""
        key = _where(exc)
        if key not in self.seen:
            self.seen.add(key)
            _tell(exc, mask, self.stream)
        return internal(exc)


def _tell(exc: BaseException, mask: Callable[[str], str], stream: TextIO | None) -> None:
    text = "".join(traceback.format_exception(exc))
    print(
        f"synthprobe bug (please report it; the probe is recorded as internal.error):\n"
        f"{mask(text)}",
        file=stream or sys.stderr,
        end="",
        flush=True,
    )


def internal(exc: BaseException) -> Classified:
    """The label of a bug of ours (``Bugs.internal`` also tells of it once)."""
    try:
        message = str(exc)
    except Exception:  # a message that cannot even be made (int too large to print)
        message = "(no message)"
    if len(message) > MESSAGE_LIMIT:
        message = message[:MESSAGE_LIMIT] + "..."
    return Classified(Reason.INTERNAL_ERROR, f"synthprobe bug: {type(exc).__name__}: {message}")
