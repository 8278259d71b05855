"""The clock of one attempt: how long each step took, and nothing else.

The runner creates one ``Clock`` per attempt (inside its ``Attempt``, probers/attempt.py)
and the prober marks the steps: httpx's through the trace callback of ``Attempt``, the
ones httpx cannot see (DNS, a WebSocket frame) itself. What the attempt learns on the way
(the address, the protocol, cookies, details) is the ``Attempt``'s, not the clock's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from synthprobe.models import Phase
from synthprobe.steps import KindStep, Step

AnyStep = Step | KindStep


def _key(step: AnyStep) -> str:
    return step.key if isinstance(step, KindStep) else step.value


class Clock:
    """Accumulated step durations of one attempt (summed across redirect hops)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.ended: float | None = None
        self.last_byte: float | None = None
        """When the final response's body completed: the end of ``total``, so closing
        our own connection is not counted as the server's time."""
        self.durations: dict[str, float] = {}
        """step name -> seconds, for steps that completed."""
        self.counts: dict[str, int] = {}
        """step name -> times it completed: a step of 0 s still happened (tracing.py
        tells each request's own steps by it)."""
        self.current: AnyStep | None = None
        """The step in progress: where a deadline cut the attempt, if it did."""
        self.loop_lag = 0.0
        """Worst event-loop lag (seconds) while the attempt ran: how late we may have
        noticed what the network did."""
        self.summed = False
        """The attempt is one HTTP exchange timed by the kernel (``runner.kernel_timed``):
        its total is the sum of its steps, without our own work between them."""
        self._since: float = self.started
        self._last_end: float = self.started

    def begin(self, step: AnyStep, at: float | None = None) -> None:
        """``step`` starts now, or ``at`` (perf_counter clock) when it follows on."""
        self.current = step
        if step is not Step.BODY:
            self.last_byte = None  # more work followed: the end is later
        self._since = time.perf_counter() if at is None else at

    def end(self, step: AnyStep, at: float | None = None) -> None:
        """``step`` completed, now or (``at``, perf_counter clock) when its last bytes
        arrived."""
        if self.current == step:
            self._add(step, at)
            self.current = None

    def fail(self, step: AnyStep) -> None:
        """The step ended in an error: keep its time, and keep it as ``current``."""
        if self.current == step:
            self._add(step)

    @contextlib.contextmanager
    def timing(self, step: AnyStep, *failing: type[BaseException]) -> Iterator[None]:
        """``step`` around a block: begun, ended, or failed by one of ``failing`` (the
        peer's fault: its time until then is kept). Anything else, our deadline's
        cancellation above all, leaves it ``current`` with no time: where it was cut."""
        self.begin(step)
        try:
            yield
        except failing:
            self.fail(step)
            raise
        self.end(step)

    def _add(self, step: AnyStep, at: float | None = None) -> None:
        key = _key(step)
        end = time.perf_counter() if at is None else max(at, self._since)
        self.durations[key] = self.durations.get(key, 0.0) + (end - self._since)
        self.counts[key] = self.counts.get(key, 0) + 1
        self._last_end = end

    @property
    def last_end(self) -> float:
        """When the last completed step ended (perf_counter clock): where a step that
        follows on without our work between (waiting, after sending) starts."""
        return self._last_end

    @property
    def since(self) -> float:
        """When the step in progress started (perf_counter clock)."""
        return self._since

    def stop(self) -> float:
        """Freeze the total; returns it in seconds."""
        if self.ended is None:
            self.ended = time.perf_counter()
        return self.ended - self.started

    @property
    def total(self) -> float:
        """Start to the last byte of the final response (or to the end, if none came);
        for an exchange that completed, the sum of its steps (``summed``)."""
        if self.summed and self.last_byte is not None:
            return sum(self.durations.values())
        return (self.last_byte or self.ended or time.perf_counter()) - self.started

    def phases_ms(self) -> dict[str, float | None]:
        """The phases of docs/reference.md in milliseconds; None for a phase not reached."""
        d = self.durations

        def ms(*steps: str) -> float | None:
            if not all(s in d for s in steps):
                return None
            return round(sum(d[s] for s in steps) * 1000, 3)

        send = (
            (Step.SEND, Step.SEND_BODY, Step.WAIT)
            if Step.SEND_BODY in d
            else (Step.SEND, Step.WAIT)
        )
        phases = {
            Phase.DNS.value: ms(Step.DNS),
            Phase.CONNECT.value: ms(Step.CONNECT),
            Phase.TLS.value: ms(Step.TLS),
            Phase.TTFB.value: ms(*send),
            Phase.TRANSFER.value: ms(Step.BODY),
        }
        if self.summed and self.last_byte is not None:
            # the phases as written add up to the total as written
            total = round(sum(v for v in phases.values() if v is not None), 3)
        else:
            total = round(self.total * 1000, 3)
        return {
            **phases,
            Phase.TOTAL.value: total,
        }
