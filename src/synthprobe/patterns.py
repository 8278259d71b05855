"""Users' regular expressions run on servers' bytes: each search has a time budget.

Python's ``re`` cannot be interrupted: ``(x+x+)+y`` on a 5,000-byte reply backtracks for
longer than any deadline, holding the event loop, so neither the probe's deadline nor
SIGTERM could act. The ``regex`` package accepts the same syntax (backreferences
included, which RE2 lacks) and gives up after ``timeout=`` seconds. A search that runs out
of budget fails the probe as ``server.assertion``: the expectation could not be shown
to hold on what the server sent (docs/reference.md, "Regular expressions").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthprobe.classify import ProbeFailure
from synthprobe.models import Reason

if TYPE_CHECKING:
    import regex

BUDGET = 0.25
"""Seconds one search may take. A few searches a probe stay well inside the 1 s the
contract allows past a deadline, and a signal waits at most this long."""


class PatternTooSlow(ProbeFailure):
    """A search ran out of ``BUDGET``."""


def find(pattern: str, text: str, what: str = "the reply") -> regex.Match[str] | None:
    """The first match of ``pattern`` in ``text`` (its groups: a capture needs them),
    within ``BUDGET`` seconds."""
    import regex  # not at import time: only probes with a pattern pay for it

    try:
        return regex.search(pattern, text, timeout=BUDGET)
    except TimeoutError:
        raise PatternTooSlow(
            Reason.SERVER_ASSERTION,
            f"/{pattern}/ gave up after {BUDGET:g}s on {len(text):,} characters of {what} "
            "(the pattern backtracks too much on this text)",
        ) from None


def search(pattern: str, text: str, what: str = "the reply") -> bool:
    """Whether ``pattern`` matches somewhere in ``text``, within ``BUDGET`` seconds."""
    return find(pattern, text, what) is not None
