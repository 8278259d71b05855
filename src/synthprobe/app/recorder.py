"""Where a result goes once the runner has it, for ``probe run``.

A result that the controls may judge (dns, network, timeout, when the config has
controls) is held until their verdict; every other result gets its standing from the
state at once, or, when it may raise an event, at the next settle. Its JSON line is
then made once (``ProbeResult.line``) and written. The lines are kept for the reports,
in the plan's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from synthprobe import vantage
from synthprobe.models import ProbeResult, ProbeSpec, Vantage

if TYPE_CHECKING:
    from synthprobe.alerting import Alerting
    from synthprobe.output.jsonl import JsonlWriter


class Recorder:
    """The writer, the alerting and the results that wait: one run's record."""

    def __init__(self, writer: JsonlWriter, alerting: Alerting, *, controls: bool) -> None:
        self.writer = writer
        self.alerting = alerting
        self.controls = controls
        self.held: list[ProbeResult] = []
        """Failures the controls may mark, waiting for their verdict."""
        self._lines: dict[str, ProbeResult] = {}
        """Probe name -> its line, as written."""

    def record(self, result: ProbeResult) -> None:
        """The runner's callback: each result as its probe ends."""
        if self.controls and result.failure in vantage.JUDGED:
            self.held.append(result)
            return
        self._place(result, None)

    def settle(self) -> None:
        """Write the lines that waited for their events (under the state's lock)."""
        for result, standing in self.alerting.settle():
            self._write(result.line(standing))

    def judged(self, verdict: vantage.Verdict | None) -> None:
        """The held results, with the controls' verdict (None: none was asked for, the
        run was interrupted); then the last settle."""
        mark = Vantage.DOWN if verdict is not None and verdict.down else None
        held, self.held = self.held, []
        for result in held:
            self._place(result, mark)
        self.settle()

    def lines(self, plan: Sequence[ProbeSpec]) -> list[ProbeResult]:
        """Every line written, in the plan's order (results come as probes end)."""
        return [self._lines[s.name] for s in plan if s.name in self._lines]

    def _place(self, result: ProbeResult, mark: Vantage | None) -> None:
        standing = self.alerting.standing(result, mark)
        if standing is not None:  # None: it waits for settle
            self._write(result.line(standing, mark))

    def _write(self, line: ProbeResult) -> None:
        self.writer.write(line)
        self._lines[line.probe] = line
