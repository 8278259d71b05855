"""Users' regular expressions: compiled once, at load, by the engine that runs them, and
run on servers' bytes with a time budget per search.

Python's ``re`` cannot be interrupted: ``(x+x+)+y`` on a 5,000-byte reply backtracks for
longer than any deadline, holding the event loop, so neither the probe's deadline nor
SIGTERM could act. The ``regex`` package accepts the same syntax (backreferences
included, which RE2 lacks) and gives up after ``timeout=`` seconds. A search that runs out
of budget fails the probe as ``server.assertion``: the expectation could not be shown
to hold on what the server sent (docs/reference.md, "Regular expressions").

Light on purpose: the config imports ``Pattern`` (``regex`` itself is imported only when a
config holds a pattern, ``classify`` and httpx only when a search runs out of budget).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from synthprobe.models import Reason

if TYPE_CHECKING:
    import regex

BUDGET = 0.25
"""Seconds one search may take. A few searches a probe stay well inside the 1 s the
contract allows past a deadline, and a signal waits at most this long."""


class PatternError(ValueError):
    """The engine refuses the pattern (the config names file:line and key)."""


class Pattern(str):
    """A user's regex: its source text, which ``str()``, ``f"/{p}/"``, JSON and
    ``dataclasses.asdict`` show as written, and the ``regex`` object compiled from it once.

    Equal and hashing as its text, so equal expectations stay one shared object."""

    compiled: regex.Pattern[str]

    def __new__(cls, source: str) -> Pattern:
        import regex  # not at import time: only configs with a pattern pay for it

        self = super().__new__(cls, source)
        try:
            with warnings.catch_warnings():
                # a warning about valid syntax is the user's to judge, not a load failure
                warnings.simplefilter("ignore")
                self.compiled = regex.compile(source)
        except regex.error as exc:
            raise PatternError(str(exc)) from None
        except RecursionError:  # the compiler recurses once per nested group
            raise PatternError("nested too deep") from None
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # copy, deepcopy (dataclasses.asdict) and pickle rebuild it from the text
        return (Pattern, (str(self),))


def find(pattern: str, text: str, what: str = "the reply") -> regex.Match[str] | None:
    """The first match of ``pattern`` in ``text`` (its groups: a capture needs them),
    within ``BUDGET`` seconds.

    ``pattern`` is a ``Pattern`` the config compiled at load; a plain str (a spec built
    in code, as tests do) is compiled here. Typed ``str`` because the reply rule's
    protocol (``expect.ReplyRule``) declares its pattern so."""
    compiled = pattern.compiled if isinstance(pattern, Pattern) else Pattern(pattern).compiled
    try:
        return compiled.search(text, timeout=BUDGET)
    except TimeoutError:
        from synthprobe.classify import ProbeFailure  # httpx: only on this rare path

        raise ProbeFailure(
            Reason.SERVER_ASSERTION,
            f"/{pattern}/ gave up after {BUDGET:g}s on {len(text):,} characters of {what} "
            "(the pattern backtracks too much on this text)",
        ) from None


def search(pattern: str, text: str, what: str = "the reply") -> bool:
    """Whether ``pattern`` matches somewhere in ``text``, within ``BUDGET`` seconds."""
    return find(pattern, text, what) is not None
