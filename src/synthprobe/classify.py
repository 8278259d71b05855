"""Pure functions: what went wrong -> exactly one ``(reason, error)``; the reason names
its failure class.

Exceptions arrive wrapped: httpx error <- httpcore error <- OS error, often re-raised
``from None`` so the root is only in ``__context__`` or ``args`` (docs/httpx.md).
We collect the whole chain first and then decide most-specific first.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from synthprobe.models import Failure, Reason
from synthprobe.steps import KindStep, Step
from synthprobe.units import format_duration


@dataclass(frozen=True, slots=True)
class Classified:
    """One failed attempt, labelled."""

    reason: Reason
    """Dotted reason (docs/reference.md); its prefix is the class."""
    error: str
    """What happened, for a human (not yet masked)."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """Figures the record should carry about it (``newest_age_s`` of a stale feed)."""

    @property
    def failure(self) -> Failure:
        """The failure class, from the reason."""
        return self.reason.failure


class ProbeFailure(Exception):
    """Raised by a prober that has already decided what went wrong (e.g. a redirect loop)."""

    def __init__(
        self, reason: Reason, error: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(error)
        self.classified = Classified(reason, error, details or {})


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes, contexts, exception args and group members; each once."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)


_STEP_TIMEOUTS: dict[Step, tuple[Reason, str]] = {
    Step.DNS: (Reason.DNS_TIMEOUT, "DNS lookup not answered within {t}"),
    Step.CONNECT: (Reason.TIMEOUT_CONNECT, "TCP connection not established within {t}"),
    Step.TLS: (Reason.TIMEOUT_CONNECT, "TLS handshake not complete within {t}"),
    Step.SEND: (Reason.TIMEOUT_WRITE, "request not sent within {t}"),
    Step.SEND_BODY: (Reason.TIMEOUT_WRITE, "request body not sent within {t}"),
    Step.WAIT: (Reason.TIMEOUT_READ, "no response headers within {t}"),
    Step.BODY: (Reason.TIMEOUT_TOTAL, "response body not complete within {t}"),
}
"""What a deadline that cut each shared step means; a kind's own steps carry theirs."""


def classify_deadline(step: Step | KindStep | None, timeout: float) -> Classified:
    """The attempt's total deadline passed while ``step`` was in progress."""
    if isinstance(step, KindStep):
        reason, text = step.timeout_reason, step.timeout_text
    elif step is None:
        reason, text = Reason.TIMEOUT_TOTAL, "attempt not complete within {t}"
    else:
        reason, text = _STEP_TIMEOUTS[step]
    return Classified(reason, text.format(t=format_duration(timeout)))


_GAI_REASONS = {
    socket.EAI_NONAME: (Reason.DNS_NXDOMAIN, "name does not exist"),
    socket.EAI_AGAIN: (Reason.DNS_ERROR, "temporary resolver failure"),
    socket.EAI_FAIL: (Reason.DNS_ERROR, "resolver failure"),
}
for _name in ("EAI_NODATA", "EAI_ADDRFAMILY"):
    if hasattr(socket, _name):  # glibc extensions, absent on some platforms
        _GAI_REASONS[getattr(socket, _name)] = (Reason.DNS_NO_ADDRESS, "name has no address")

_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.EADDRNOTAVAIL}
_RESET = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}


def _http2_abort(exc: BaseException) -> Classified | None:
    """HTTP/2's own ways to end an exchange: httpcore raises RemoteProtocolError with the
    h2 event as its argument. RST_STREAM resets one request, as a TCP RST resets a
    connection: network.reset. GOAWAY closes the connection, as a FIN does: network.closed.
    (Matched by name: classify never imports h2.)"""
    if not isinstance(exc, httpx.RemoteProtocolError | httpcore.RemoteProtocolError):
        return None
    event = exc.args[0] if exc.args else None
    name = type(event).__name__
    code = getattr(event, "error_code", None)
    code_name = getattr(code, "name", code)
    if name == "StreamReset":
        return Classified(
            Reason.NETWORK_RESET, f"HTTP/2 stream reset by the server (RST_STREAM {code_name})"
        )
    if name == "ConnectionTerminated":
        return Classified(
            Reason.NETWORK_CLOSED, f"HTTP/2 connection closed by the server (GOAWAY {code_name})"
        )
    return None


def classify_exception(exc: BaseException) -> Classified | None:
    """An exception raised by a prober -> its label, or None when it is not a probe fault
    (a bug in synthprobe, which must not be disguised as an outage)."""
    chain = list(exception_chain(exc))
    for e in chain:
        if isinstance(e, ProbeFailure):
            return e.classified
    for e in chain:
        if isinstance(e, socket.gaierror):
            reason, text = _GAI_REASONS.get(e.errno or 0, (Reason.DNS_ERROR, "resolver error"))
            return Classified(reason, f"{text} ({e.strerror or e})")
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            detail = e.verify_message or getattr(e, "reason", None) or str(e)
            return Classified(Reason.NETWORK_TLS, f"certificate rejected: {detail}")
    for e in chain:
        if isinstance(e, ssl.SSLError):
            detail = getattr(e, "reason", None) or str(e)
            return Classified(Reason.NETWORK_TLS, f"TLS handshake failed: {detail}")
    # httpx's own timeouts: we set none, but a transport may still raise them
    for e in chain:
        if isinstance(e, httpx.ConnectTimeout | httpx.PoolTimeout):
            return Classified(Reason.TIMEOUT_CONNECT, "connect timed out")
        if isinstance(e, httpx.ReadTimeout):
            return Classified(Reason.TIMEOUT_READ, "read timed out")
        if isinstance(e, httpx.WriteTimeout):
            return Classified(Reason.TIMEOUT_WRITE, "write timed out")
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return Classified(Reason.NETWORK_REFUSED, "connection refused")
        if isinstance(e, OSError) and e.errno in _RESET:
            return Classified(Reason.NETWORK_RESET, "connection reset by peer")
        if isinstance(e, OSError) and e.errno in _UNREACHABLE:
            return Classified(Reason.NETWORK_UNREACHABLE, f"unreachable: {e.strerror or e}")
    for e in chain:
        found = _http2_abort(e)
        if found is not None:
            return found
    for e in chain:
        if isinstance(e, httpx.RemoteProtocolError):
            text = str(e) or "protocol error"
            lowered = text.lower()
            if "disconnected" in lowered or "peer closed" in lowered or "incomplete" in lowered:
                return Classified(Reason.NETWORK_CLOSED, text)
            return Classified(Reason.NETWORK_PROTOCOL, text)
        if isinstance(e, httpx.LocalProtocolError | httpx.DecodingError):
            return Classified(Reason.NETWORK_PROTOCOL, str(e) or type(e).__name__)
        if isinstance(e, httpx.TooManyRedirects):
            return Classified(Reason.SERVER_REDIRECTS, str(e))
    for e in chain:
        if isinstance(e, httpx.ConnectError):
            return Classified(Reason.NETWORK_UNREACHABLE, str(e) or "connect failed")
        if isinstance(e, httpx.ReadError | httpx.WriteError):
            return Classified(Reason.NETWORK_RESET, str(e) or "connection broken")
        if isinstance(e, httpx.TransportError):
            return Classified(Reason.NETWORK_PROTOCOL, str(e) or type(e).__name__)
        if isinstance(e, OSError):
            return Classified(Reason.NETWORK_UNREACHABLE, e.strerror or str(e))
    return None
