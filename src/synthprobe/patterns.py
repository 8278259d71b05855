"""Users' regular expressions: compiled once, at load, by the engine that runs them, and
run on servers' bytes with a time budget per search.

Python's ``re`` cannot be interrupted: ``(x+x+)+y`` on a 5,000-byte reply backtracks for
longer than any deadline, holding the event loop, so neither the probe's deadline nor
SIGTERM could act. The ``regex`` package accepts the same syntax (backreferences
included, which RE2 lacks) and gives up after ``timeout=`` seconds. A search that runs out
of budget fails the probe as ``server.assertion``: the expectation could not be shown
to hold on what the server sent (docs/reference.md, "Regular expressions").

Light on purpose, and below everything else (it imports nothing of synthprobe): the
config and the models hold ``Pattern``s, and ``regex`` itself is imported only when a
config holds a pattern. A pattern is run by the judge, ``expect.find``.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

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
