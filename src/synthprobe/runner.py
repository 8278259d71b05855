"""Runs probes: concurrency, pacing, the total deadline of each attempt, retries and
the result record. Probers keep their own waits within an attempt (a reload, a poll, a
quiet reply) and its clock (timing.py); the deadline that bounds them all is set here."""

from __future__ import annotations

import asyncio
import gc
import os
import secrets
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from synthprobe.bugs import Bugs
from synthprobe.classify import Classified, classify_deadline, classify_exception
from synthprobe.expect import OBSERVED, Observation, Response, Segments, judge
from synthprobe.models import Failure, Phase, ProbeResult, ProbeSpec
from synthprobe.probers import KINDS, prober_for
from synthprobe.probers.attempt import Attempt
from synthprobe.probers.base import DNS_THREADS, Network, ProbeOutcome
from synthprobe.redact import Redactor, printable
from synthprobe.tracing import Trace
from synthprobe.units import format_utc

DEFAULT_PACE = 1000.0
"""Most probe starts per second. A start costs us CPU; a burst of them keeps the event
loop from noticing responses that have already arrived, which then show as latency of
the server's. Spread starts instead (bench/fidelity.py measures the effect)."""
LAG_GUARD = 0.010
"""Loop lag above which the pacer slows new starts down (a young-generation garbage
collection alone can take 5 ms), when a run has probes our own loop clocks."""
BUSY_GUARD = 0.100
"""The same when every probe is timed by the kernel: lag no longer skews a timing, but
deadlines, retries and signals still need a loop that answers."""
RETRY_PAUSE = 0.2
"""Seconds between attempts: long enough to step past a blip, short enough for cron."""

_OURS = frozenset({"remote_ip", "http_version"})
"""Details that are our own facts, never masked (a server's cookie value must not blank
the address we connected to)."""
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_run_id(now: float | None = None) -> str:
    """A ULID: 48 bits of milliseconds, 80 random bits, Crockford base32 (sortable)."""
    value = (int((time.time() if now is None else now) * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def supported(spec: ProbeSpec) -> bool:
    """Whether this version has a prober for the spec's kind."""
    return spec.kind in KINDS


class LoopMonitor:
    """How late the event loop runs: a heartbeat every INTERVAL notes its own lateness.

    A response that arrives while the loop is busy waits just as long before we see it,
    so a probe's timings are only as good as the loop lag while it ran.
    """

    INTERVAL = 0.01

    def __init__(self) -> None:
        self.samples = array("d")
        """Lateness of each heartbeat, in seconds, in order."""
        self.latest = 0.0
        self.on_sample: Callable[[float], None] | None = None

    async def run(self) -> None:
        # perf_counter, not loop.time(): uvloop's clock moves in whole milliseconds
        clock = time.perf_counter
        while True:
            due = clock() + self.INTERVAL
            await asyncio.sleep(self.INTERVAL)
            self.latest = max(0.0, clock() - due)
            self.samples.append(self.latest)
            if self.on_sample is not None:
                self.on_sample(self.latest)

    def mark(self) -> int:
        return len(self.samples)

    def worst_since(self, mark: int) -> float:
        """The largest lag seen since ``mark`` (including the current one)."""
        seen = self.samples[mark:]
        return max(max(seen, default=0.0), self.latest)


class Pacer:
    """Spaces probe starts: at most ``rate`` a second, and slower while the loop lags.

    Starts are reserved one after another on a schedule (never a burst). Every loop-lag
    sample (10 ms apart) adjusts the rate: cut by 10% while the loop runs later than
    ``guard``, raised by 5% of the maximum while it keeps up. Our own CPU then stays
    below the point where it would delay what the loop clocks; a run that asks for more
    than the machine can serve gets slower, not wrong.
    """

    MIN_RATE = 50.0

    def __init__(self, rate: float, monitor: LoopMonitor, guard: float = LAG_GUARD) -> None:
        self.max_rate = rate
        self.rate = rate
        self.guard = guard
        self._next = 0.0
        self._turns = asyncio.Lock()
        monitor.on_sample = self.adapt

    def adapt(self, lag: float) -> None:
        if lag > self.guard:
            self.rate = max(self.MIN_RATE, self.rate * 0.9)
        else:
            self.rate = min(self.max_rate, self.rate + self.max_rate * 0.05)

    async def turn(self) -> None:
        if self.max_rate <= 0:
            return
        loop = asyncio.get_running_loop()
        # one worker at a time waits for the clock, the others queue on the lock: the
        # next start is spaced from the last *actual* one, so workers do not start in a
        # burst after a busy spell, and each start wakes one worker, not all of them
        async with self._turns:
            wait = self._next - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next = loop.time() + 1.0 / self.rate


def kernel_timed(spec: ProbeSpec) -> bool:
    """Whether a busy loop cannot skew the probe's timings (``KindInfo.kernel_timed``)."""
    return KINDS[spec.kind].kernel_timed and spec.journey is None and spec.resolver is None


@dataclass(slots=True)
class _Tried:
    """One attempt, over: what the prober returned (if it did), the verdict, and the
    attempt's state."""

    outcome: ProbeOutcome | None
    classified: Classified | None
    attempt: Attempt


class Runner:
    """Runs a set of probes once and reports each result as soon as it is final."""

    def __init__(
        self,
        *,
        concurrency: int,
        location: str,
        redactor: Redactor,
        network: Network | None = None,
        run_id: str | None = None,
        pace: float = DEFAULT_PACE,
        bugs: Bugs | None = None,
        spans: bool = True,
    ) -> None:
        self.concurrency = max(1, concurrency)
        self.pace = pace
        self.monitor = LoopMonitor()
        self.location = location
        self.redactor = redactor
        self.network = network or Network()
        self.run_id = run_id or new_run_id()
        self.spans = spans
        """Keep each request's span on the result, for an OTLP export (otel.py); a run
        that exports nothing skips that work on every request (the traceparent and the
        trace id do not need it)."""
        self.bugs = bugs or Bugs()
        """The bugs this runner has told of (``probe watch`` keeps one across rounds)."""

    async def run(
        self, specs: Sequence[ProbeSpec], on_result: Callable[[ProbeResult], None]
    ) -> list[ProbeResult]:
        """Run every spec; call ``on_result`` as each finishes; return results in spec order.

        Cancelling this coroutine cancels every probe in flight; results already passed
        to ``on_result`` stay written.
        """
        DNS_THREADS.grow(min(self.concurrency, 256))
        self.network.prepare(specs)
        for spec in specs:
            prober_for(spec.kind).prepare(spec)
        # what exists now (modules, config, specs) lives for the whole run: keep it out
        # of the collector's way, so full collections during the run stay short
        if gc.get_freeze_count():
            # a run before this one in this process (`probe watch`): what it froze may
            # be garbage now, and freezing again would keep it for good. Thawing at the
            # end of every run instead costs `probe run` a full collection at exit (15 ms)
            gc.unfreeze()
            gc.collect()
        gc.freeze()
        results: dict[int, ProbeResult] = {}
        queue = iter(enumerate(specs))
        guard = BUSY_GUARD if all(kernel_timed(s) for s in specs) else LAG_GUARD
        pacer = Pacer(self.pace, self.monitor, guard)

        async def worker() -> None:
            # a fixed pool of workers, not one task per probe: 10,000 probes must not
            # mean 10,000 waiting tasks
            for index, spec in queue:
                await pacer.turn()
                try:
                    result = await self.probe(spec)
                except Exception as exc:  # a bug of ours: that probe's result, not the run's end
                    result = self._bug(spec, exc)
                results[index] = result
                on_result(result)

        heartbeat = asyncio.create_task(self.monitor.run(), name="loop-lag")
        try:
            async with asyncio.TaskGroup() as group:
                for n in range(min(self.concurrency, len(specs))):
                    group.create_task(worker(), name=f"worker-{n}")
        finally:
            heartbeat.cancel()
        return [results[i] for i in sorted(results)]

    async def probe(self, spec: ProbeSpec) -> ProbeResult:
        """One probe with its retries; the record describes the last attempt."""
        started = time.time()
        trace = Trace(send=spec.trace_context)  # one per probe per run (tracing.py)
        attempts = 0
        while True:
            attempts += 1
            tried = await self._attempt(spec, trace)
            failed = tried.classified
            if self.spans:
                trace.attempt_over(
                    failed.reason if failed else None, _shown(self._mask(tried.attempt))
                )
            else:
                trace.open.clear()
            if failed is None or failed.failure not in spec.retry_on or attempts > spec.retries:
                break
            await asyncio.sleep(RETRY_PAUSE)
        return self._record(spec, started, attempts, tried, trace)

    def _mask(self, attempt: Attempt) -> Redactor:
        """The run's masks and the values this attempt captured."""
        return self.redactor.adding(attempt.secrets) if attempt.secrets else self.redactor

    async def _attempt(self, spec: ProbeSpec, trace: Trace | None = None) -> _Tried:
        prober = prober_for(spec.kind)
        attempt = Attempt(tracing=trace)
        clock = attempt.clock
        clock.summed = kernel_timed(spec)  # the pacer's guard rests on the same fact
        lag_mark = self.monitor.mark()
        # the deadline starts once the probe has its slot: our own queueing must
        # never show up as a timeout of theirs (docs/httpx.md)
        deadline = asyncio.timeout(spec.timeout)
        outcome: ProbeOutcome | None = None
        failed: Classified | None = None
        try:
            async with deadline:
                outcome = await prober.probe(spec, attempt, self.network)
        except TimeoutError:
            if deadline.expired():
                # httpx timeouts are per read (encode/httpx#1450): the total is enforced here
                failed = classify_deadline(clock.current, spec.timeout)
            else:
                failed = self._classify(TimeoutError("timed out"))
        except Exception as exc:
            failed = self._classify(exc)
        clock.stop()
        clock.loop_lag = self.monitor.worst_since(lag_mark)
        if outcome is None:
            return _Tried(None, failed, attempt)
        observes = KINDS[spec.kind].observes
        if not isinstance(outcome.observation, OBSERVED[observes]):
            # the prober broke its kind's word: a bug of ours, never a verdict on them
            wrong = type(outcome.observation).__name__
            bug = TypeError(f"a {spec.kind} prober returned {wrong}, not {observes.value}")
            return _Tried(outcome, self.bugs.internal(bug, self.redactor.text), attempt)
        # judged against the total the result reports, to the microsecond it shows
        total = (clock.phases_ms()[Phase.TOTAL.value] or 0.0) / 1000
        try:
            failed = judge(spec.expect, outcome.observation, total, attempt.cert_not_after)
        except Exception as exc:  # a pattern out of budget, or a bug of ours
            failed = self._classify(exc)
        return _Tried(outcome, failed, attempt)

    def _classify(self, exc: BaseException) -> Classified:
        classified = classify_exception(exc)
        if classified is None:
            # a bug of ours: never disguised as the target's fault (class internal, no
            # data), and never the end of the other probes
            return self.bugs.internal(exc, self.redactor.text)
        return classified

    def _bug(self, spec: ProbeSpec, exc: Exception) -> ProbeResult:
        """The result of a probe whose retries or record failed (a bug of ours)."""
        tried = _Tried(None, self.bugs.internal(exc, self.redactor.text), Attempt())
        try:
            return self._record(spec, time.time(), 1, tried)
        except Exception as again:  # the record itself is what fails: the bare facts
            failed = self.bugs.internal(again, self.redactor.text)
            error = printable(self.redactor.text(failed.error))
            return self._result(spec, time.time(), 1, failed, self.redactor, error=error)

    def _record(
        self,
        spec: ProbeSpec,
        started: float,
        attempts: int,
        tried: _Tried,
        trace: Trace | None = None,
    ) -> ProbeResult:
        outcome, failed, attempt = tried.outcome, tried.classified, tried.attempt
        clock = attempt.clock
        # the record's one details: the kind's figures, then our own facts
        details: dict[str, Any] = dict(attempt.details)
        if KINDS[spec.kind].negotiates_http:
            # null when no connection was made (a DNS failure, a refused port)
            details["http_version"] = attempt.protocol
        if attempt.cert_not_after is not None:
            details["cert_expires_in_days"] = round(
                (attempt.cert_not_after - time.time()) / 86400, 2
            )
        if failed is not None:
            details.update(failed.details)
        details["loop_lag_ms"] = round(clock.loop_lag * 1000, 1)
        remote = attempt.remote or attempt.target
        if remote is not None:
            details["remote_ip"] = remote[0]
        mask = self._mask(attempt)
        error = failed.error if failed else None
        step = details.get("step")
        if error and isinstance(step, str):
            error = f"{step}: {error}"  # a journey's step: named here, and only here
        error = printable(mask.text(error)) if error else None
        if failed and failed.failure in (Failure.NETWORK, Failure.TIMEOUT) and remote:
            # at 3 a.m. "refused" is half an answer: say by which address (after the
            # masking: the address is ours, no value a server set may blank it)
            host = f"[{remote[0]}]" if ":" in remote[0] else remote[0]
            error = f"{error} ({host}:{remote[1]})"
        seen = _status(outcome.observation) if outcome else None
        return self._result(
            spec,
            started,
            attempts,
            failed,
            mask,
            error=error,
            status=seen if seen is not None else attempt.status,
            timings_ms=clock.phases_ms(),
            bytes_in=outcome.bytes_in if outcome else 0,
            bytes_out=outcome.bytes_out if outcome else 0,
            trace=trace,
            # details stay as they came: JSON escapes control characters, and a TCP
            # reply's "\r\n" is information; the one-line texts are made printable
            details={
                k: mask.text(v) if isinstance(v, str) and k not in _OURS else v
                for k, v in details.items()
            },
        )

    def _result(
        self,
        spec: ProbeSpec,
        started: float,
        attempts: int,
        failed: Classified | None,
        mask: Redactor,
        *,
        error: str | None = None,
        status: int | None = None,
        timings_ms: dict[str, float | None] | None = None,
        bytes_in: int = 0,
        bytes_out: int = 0,
        details: dict[str, Any] | None = None,
        trace: Trace | None = None,
    ) -> ProbeResult:
        """The one place a ``ProbeResult`` is made: from a measured attempt
        (``_record``), or from the bare facts when making that record failed."""
        return ProbeResult(
            run_id=self.run_id,
            ts=format_utc(started),
            location=self.location,
            probe=spec.name,
            kind=spec.kind,
            method=spec.method,
            url=printable(mask.url(spec.url)),
            ok=failed is None,
            failure=failed.failure if failed else None,
            reason=failed.reason if failed else None,
            error=error,
            status=status,
            attempts=attempts,
            timings_ms=timings_ms or {},
            bytes_in=bytes_in,
            bytes_out=bytes_out,
            tags=spec.tags,
            details=details or {},
            trace_id=trace.shown_id if trace else None,
            trace=trace.finished() if trace and self.spans else None,
        )


def _shown(mask: Redactor) -> Callable[[str], str]:
    """A URL as the JSON line shows it: masked, printable."""
    return lambda url: printable(mask.url(url))


def _status(observation: Observation) -> int | None:
    """The HTTP status a result reports: the response's, or a live stream's playlist's."""
    match observation:
        case Response(status=status) | Segments(Response(status=status)):
            return status
        case _:
            return None


def default_location() -> str:
    """The host name: where a result was measured from, unless --location says."""
    return os.uname().nodename or "unknown"
