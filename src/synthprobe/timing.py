"""The clock of one attempt: step timestamps from httpcore's ``trace`` extension.

The runner creates one ``Timeline`` per attempt and hands it to the prober, which
passes ``timeline.trace`` to httpx and marks the steps httpx cannot see (DNS, the
body read). The callback only records a timestamp: it runs inside httpcore's I/O
path and must never await anything (docs/httpx.md).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

from synthprobe.models import Phase
from synthprobe.probers.netstream import ARRIVAL, HANDSHAKE_RTT
from synthprobe.steps import KindStep, Step

AnyStep = Step | KindStep

# httpcore trace step -> our step. http2 names mirror the http11 ones.
_TRACE_STEPS = {
    "connect_tcp": Step.CONNECT,
    "start_tls": Step.TLS,
    # HTTP/2's client preface and SETTINGS: sent before the first request, without
    # waiting for an answer, so it counts as sending the request
    "send_connection_init": Step.SEND,
    "send_request_headers": Step.SEND,
    "send_request_body": Step.SEND_BODY,
    "receive_response_headers": Step.WAIT,
    # the body's end is when its last byte arrived, not after we closed the connection
    "receive_response_body": Step.BODY,
}


def _key(step: AnyStep) -> str:
    return step.key if isinstance(step, KindStep) else step.value


class Timeline:
    """Accumulated step durations of one attempt (summed across redirect hops)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.ended: float | None = None
        self.last_byte: float | None = None
        """When the final response's body completed: the end of ``total``, so closing
        our own connection is not counted as the server's time."""
        self.durations: dict[str, float] = {}
        """step name -> seconds, for steps that completed."""
        self.current: AnyStep | None = None
        """The step in progress: where a deadline cut the attempt, if it did."""
        self.remote: tuple[str, int] | None = None
        """(ip, port) of the last TCP connection, as the socket reports it."""
        self.cert_not_after: float | None = None
        """Epoch seconds when the last verified peer certificate expires."""
        self.stream: Any = None
        """The last network stream httpcore opened (to close it if a deadline cuts in)."""
        self.target: tuple[str, int] | None = None
        """(ip, port) the last connection attempt went to, even if it failed."""
        self.loop_lag = 0.0
        """Worst event-loop lag (seconds) while the attempt ran: how late we may have
        noticed what the network did."""
        self.status: int | None = None
        """HTTP status of the last response headers received, even if the body then failed."""
        self.protocol: str | None = None
        """``HTTP/1.1`` or ``HTTP/2`` once a connection is made: from ALPN after TLS,
        then from the response itself."""
        self.jar: Any = None
        """The attempt's cookie jar (``httpx.Cookies``), made by its first request."""
        self.secrets: set[str] = set()
        """Values captured during the attempt that must be masked like ${VAR} secrets."""
        self.details: dict[str, Any] = {}
        """Figures known even when the attempt then fails (a TCP reply so far): the
        runner records them under the prober's own."""
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

    def _add(self, step: AnyStep, at: float | None = None) -> None:
        key = _key(step)
        end = time.perf_counter() if at is None else max(at, self._since)
        self.durations[key] = self.durations.get(key, 0.0) + (end - self._since)
        self._last_end = end

    def _arrived(self) -> float:
        """When the last bytes read arrived: the kernel's receive time where the stream
        has one (probers/netstream.py), else now."""
        now = time.perf_counter()
        arrival = _extra(self.stream, ARRIVAL)
        return now if arrival is None else min(float(arrival), now)

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

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore ``trace`` extension callback: record, never wait."""
        prefix, _, state = event.rpartition(".")
        step = _TRACE_STEPS.get(prefix.rpartition(".")[2])
        if step is None:
            return
        if state == "started":
            # the wait starts as the request is sent, the body as its headers arrived:
            # not when our loop got round to the next line
            follows = step is Step.WAIT or step is Step.BODY
            self.begin(step, self._last_end if follows else None)
        elif state == "complete":
            # a response is timed by when it arrived, not by when the loop read it; a
            # connection by the kernel's own handshake time
            at: float | None = None
            if step is Step.WAIT or step is Step.BODY or step is Step.TLS:
                at = self._arrived()
            elif step is Step.CONNECT:
                rtt = _extra(info.get("return_value"), HANDSHAKE_RTT)
                if rtt is not None:
                    at = min(self._since + float(rtt), time.perf_counter())
            self.end(step, at)
            if step is Step.BODY:
                self.last_byte = at
            if step is Step.TLS:
                self.cert_not_after = cert_not_after(info.get("return_value"))
                self.protocol = "HTTP/2" if alpn(info.get("return_value")) == "h2" else "HTTP/1.1"
            if step is Step.CONNECT:
                self.protocol = "HTTP/1.1"
                stream = info.get("return_value")
                self.stream = stream
                addr = stream.get_extra_info("server_addr") if stream is not None else None
                if isinstance(addr, tuple) and len(addr) >= 2:
                    self.remote = (str(addr[0]), int(addr[1]))
        elif state == "failed" and not isinstance(info.get("exception"), asyncio.CancelledError):
            # keep `current`, so the classifier knows which step failed; a step our
            # deadline cut stays null, one the peer failed reports its time until then
            self.fail(step)

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


def _extra(stream: Any, key: str) -> Any:
    """A figure of the stream's (httpcore's ``get_extra_info``); None from a stream of
    another backend, which knows no such key."""
    return stream.get_extra_info(key) if stream is not None else None


def alpn(stream: Any) -> str | None:
    """The protocol ALPN chose on a TLS stream, if any."""
    try:
        chosen: str | None = stream.get_extra_info("ssl_object").selected_alpn_protocol()
    except AttributeError:
        return None
    return chosen


def cert_not_after(stream: Any) -> float | None:
    """Expiry of the peer certificate. Only a verified handshake exposes it: with
    ``verify_tls: false`` Python returns no decoded certificate."""
    try:
        cert = stream.get_extra_info("ssl_object").getpeercert()
        return float(ssl.cert_time_to_seconds(cert["notAfter"]))
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
