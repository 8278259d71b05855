"""synthprobe's own exceptions. The CLI turns each into one red line and an exit code.

    SynthprobeError              exit 2: the user must fix something
     ├── ConfigError             a config file is missing, broken or invalid (file:line: field: ...)
     ├── UsageError              options that cannot work together, a selector that matches nothing
     ├── OutputError             an output file or directory cannot be written
     └── workers.WorkerFailed    exit 1: a --workers process died; the run is incomplete

A failing *probe* is not an exception: it is a ``ProbeResult`` with ``ok=False``.
Anything outside this tree reaching the CLI is a bug in synthprobe and keeps its traceback.
"""

from __future__ import annotations


class SynthprobeError(Exception):
    """Base of every error that is the user's to fix."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def lines(self) -> list[str]:
        """The message lines to print (one per problem)."""
        return [self.message]


class ConfigError(SynthprobeError):
    """One or more problems in config files, each naming file, line and field."""

    def __init__(self, problems: list[str]) -> None:
        # one problem, one line: a message echoing input may carry newlines
        problems = [" ".join(p.split()) for p in problems]
        super().__init__(problems[0] if problems else "invalid config")
        self.problems = problems

    def lines(self) -> list[str]:
        return list(self.problems)


class UsageError(SynthprobeError):
    """Options or selectors that cannot work."""


class OutputError(SynthprobeError):
    """An output path that cannot be written."""
