"""One attempt's state: its clock, and what the attempt learns on the way.

The runner makes one ``Attempt`` per attempt and hands it to the prober. The clock
(``timing.Clock``) only times; everything else an attempt finds out lives here, typed:
the connection it reached (address, protocol, certificate), the last status seen, the
cookie jar, values to mask, and the details the record keeps even when the attempt then
fails. The runner reads it once, to make the record (``runner._record``).

``trace`` is httpcore's ``trace`` extension callback. It only records: it runs inside
httpcore's I/O path and must never await anything (docs/httpx.md).

``tracing`` is the probe's W3C trace (tracing.py), shared by all its attempts: every
request is announced by ``sending`` (the headers it returns carry ``traceparent``),
which opens the request's span; a kind that speaks no HTTP headers (gRPC metadata)
asks ``traceparent`` for the value alone.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synthprobe.probers.netstream import ARRIVAL, HANDSHAKE_RTT
from synthprobe.steps import Step
from synthprobe.timing import Clock
from synthprobe.tracing import TRACEPARENT, OpenRequest, Trace, has_traceparent, traceparent

if TYPE_CHECKING:
    import httpx

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


@dataclass(slots=True, eq=False)
class Attempt:
    """Everything one attempt knows besides its timings."""

    clock: Clock = field(default_factory=Clock)
    target: tuple[str, int] | None = None
    """(ip, port) the last connection attempt went to, even if it failed."""
    remote: tuple[str, int] | None = None
    """(ip, port) of the last TCP connection, as the socket reports it."""
    stream: Any = None
    """The last network stream opened (httpcore's, or an asyncio writer): to close it if
    a deadline cuts in, and to read the kernel's receive times from."""
    _protocol: str | None = None
    """``protocol``'s value."""
    cert_not_after: float | None = None
    """Epoch seconds when the last verified peer certificate expires."""
    _status: int | None = None
    """``status``'s value."""
    jar: httpx.Cookies | None = None
    """The attempt's cookie jar, made by its first cookie: most probes never need one."""
    secrets: set[str] = field(default_factory=set)
    """Values captured during the attempt that must be masked like ${VAR} secrets."""
    details: dict[str, Any] = field(default_factory=dict)
    """The kind's figures for the record, kept even when the attempt then fails (a TCP
    reply so far, a journey's steps). The one ``details`` a prober writes."""
    tracing: Trace | None = None
    """The probe's trace (one per probe per run); None: requests are not traced."""
    request: OpenRequest | None = None
    """The request under way on this attempt's clock, as its span will tell it."""

    @property
    def protocol(self) -> str | None:
        """``HTTP/1.1`` or ``HTTP/2`` once a connection is made: from ALPN after TLS,
        then from the response itself (``HTTP/3`` over QUIC)."""
        return self._protocol

    @protocol.setter
    def protocol(self, value: str | None) -> None:
        self._protocol = value
        if self.request is not None and value is not None:
            self.request.protocol = value.removeprefix("HTTP/")

    @property
    def status(self) -> int | None:
        """HTTP status of the last response headers received, even if the body then
        failed."""
        return self._status

    @status.setter
    def status(self, value: int | None) -> None:
        self._status = value
        if self.request is not None:
            self.request.status = value

    def sending(
        self, method: str, url: object, headers: tuple[tuple[str, str], ...]
    ) -> tuple[tuple[str, str], ...]:
        """A request is about to go (called where its headers are made for the wire):
        its span begins, and the headers gain ``traceparent`` unless ``trace_context``
        is off or the probe's own headers carry one, which is sent as written."""
        value = self.traceparent(method, url, headers)
        return headers if value is None else (*headers, (TRACEPARENT, value))

    def traceparent(
        self, method: str, url: object, headers: tuple[tuple[str, str], ...] = ()
    ) -> str | None:
        """A request is about to go: its span begins; the ``traceparent`` value it must
        carry, or None when it must carry none (``trace_context: false``, no trace, or
        ``headers`` already have one)."""
        trace = self.tracing
        if trace is None:
            return None
        if self.request is not None:
            self.request.next_began()
        self.request = trace.begin(self.clock, method, str(url))
        if not trace.send or has_traceparent(headers):
            return None
        return traceparent(trace.trace_id, self.request.span_id)

    def cookies(self) -> httpx.Cookies:
        """The attempt's jar, made on first use."""
        if self.jar is None:
            import httpx

            self.jar = httpx.Cookies()
        return self.jar

    def _arrived(self) -> float:
        """When the last bytes read arrived: the kernel's receive time where the stream
        has one (probers/netstream.py), else now."""
        now = time.perf_counter()
        arrival = _extra(self.stream, ARRIVAL)
        return now if arrival is None else min(float(arrival), now)

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore ``trace`` extension callback: record, never wait."""
        prefix, _, state = event.rpartition(".")
        step = _TRACE_STEPS.get(prefix.rpartition(".")[2])
        if step is None:
            return
        clock = self.clock
        if state == "started":
            # the wait starts as the request is sent, the body as its headers arrived:
            # not when our loop got round to the next line
            follows = step is Step.WAIT or step is Step.BODY
            clock.begin(step, clock.last_end if follows else None)
        elif state == "complete":
            # a response is timed by when it arrived, not by when the loop read it; a
            # connection by the kernel's own handshake time
            at: float | None = None
            if step is Step.WAIT or step is Step.BODY or step is Step.TLS:
                at = self._arrived()
            elif step is Step.CONNECT:
                rtt = _extra(info.get("return_value"), HANDSHAKE_RTT)
                if rtt is not None:
                    at = min(clock.since + float(rtt), time.perf_counter())
            clock.end(step, at)
            if step is Step.BODY:
                clock.last_byte = at
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
            clock.fail(step)


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
