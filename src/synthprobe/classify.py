"""Pure functions: what went wrong -> exactly one ``(Failure, reason, error)``.

Exceptions arrive wrapped: httpx error <- httpcore error <- OS error, often re-raised
``from None`` so the root is only in ``__context__`` or ``args`` (HTTPX-NOTES.md).
We collect the whole chain first and then decide most-specific first.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from synthprobe.models import Failure
from synthprobe.units import format_duration


@dataclass(frozen=True, slots=True)
class Classified:
    """One failed attempt, labelled."""

    failure: Failure
    """The class."""
    reason: str
    """Dotted reason from SPEC › Failure classes."""
    error: str
    """What happened, for a human (not yet masked)."""


class ProbeFailure(Exception):
    """Raised by a prober that has already decided what went wrong (e.g. a redirect loop)."""

    def __init__(self, failure: Failure, reason: str, error: str) -> None:
        super().__init__(error)
        self.classified = Classified(failure, reason, error)


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


_STEP_TIMEOUTS = {
    "dns": (Failure.DNS, "dns.timeout", "DNS lookup not answered within {t}"),
    "connect": (Failure.TIMEOUT, "timeout.connect", "TCP connection not established within {t}"),
    "tls": (Failure.TIMEOUT, "timeout.connect", "TLS handshake not complete within {t}"),
    "send": (Failure.TIMEOUT, "timeout.write", "request not sent within {t}"),
    "send_body": (Failure.TIMEOUT, "timeout.write", "request body not sent within {t}"),
    "wait": (Failure.TIMEOUT, "timeout.read", "no response headers within {t}"),
    "body": (Failure.TIMEOUT, "timeout.total", "response body not complete within {t}"),
    "refresh": (
        Failure.TIMEOUT,
        "timeout.total",
        "live playlist re-check not complete within {t} (allow 1.5 target durations)",
    ),
    "reply": (Failure.TIMEOUT, "timeout.read", "no matching reply within {t}"),
    "verify": (Failure.TIMEOUT, "timeout.total", "uploaded media not available within {t}"),
}


def classify_deadline(step: str | None, timeout: float) -> Classified:
    """The attempt's total deadline passed while ``step`` was in progress."""
    failure, reason, text = _STEP_TIMEOUTS.get(
        step or "", (Failure.TIMEOUT, "timeout.total", "attempt not complete within {t}")
    )
    return Classified(failure, reason, text.format(t=format_duration(timeout)))


_GAI_REASONS = {
    socket.EAI_NONAME: ("dns.nxdomain", "name does not exist"),
    socket.EAI_AGAIN: ("dns.error", "temporary resolver failure"),
    socket.EAI_FAIL: ("dns.error", "resolver failure"),
}
for _name in ("EAI_NODATA", "EAI_ADDRFAMILY"):
    if hasattr(socket, _name):  # glibc extensions, absent on some platforms
        _GAI_REASONS[getattr(socket, _name)] = ("dns.no_address", "name has no address")

_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.EADDRNOTAVAIL}
_RESET = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}


def classify_exception(exc: BaseException) -> Classified | None:
    """An exception raised by a prober -> its label, or None when it is not a probe fault
    (a bug in synthprobe, which must not be disguised as an outage)."""
    chain = list(exception_chain(exc))
    for e in chain:
        if isinstance(e, ProbeFailure):
            return e.classified
    for e in chain:
        if isinstance(e, socket.gaierror):
            reason, text = _GAI_REASONS.get(e.errno or 0, ("dns.error", "resolver error"))
            return Classified(Failure.DNS, reason, f"{text} ({e.strerror or e})")
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            detail = e.verify_message or getattr(e, "reason", None) or str(e)
            return Classified(Failure.NETWORK, "network.tls", f"certificate rejected: {detail}")
    for e in chain:
        if isinstance(e, ssl.SSLError):
            detail = getattr(e, "reason", None) or str(e)
            return Classified(Failure.NETWORK, "network.tls", f"TLS handshake failed: {detail}")
    # httpx's own timeouts: we set none, but a transport may still raise them
    for e in chain:
        if isinstance(e, httpx.ConnectTimeout | httpx.PoolTimeout):
            return Classified(Failure.TIMEOUT, "timeout.connect", "connect timed out")
        if isinstance(e, httpx.ReadTimeout):
            return Classified(Failure.TIMEOUT, "timeout.read", "read timed out")
        if isinstance(e, httpx.WriteTimeout):
            return Classified(Failure.TIMEOUT, "timeout.write", "write timed out")
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return Classified(Failure.NETWORK, "network.refused", "connection refused")
        if isinstance(e, OSError) and e.errno in _RESET:
            return Classified(Failure.NETWORK, "network.reset", "connection reset by peer")
        if isinstance(e, OSError) and e.errno in _UNREACHABLE:
            return Classified(
                Failure.NETWORK, "network.unreachable", f"unreachable: {e.strerror or e}"
            )
    for e in chain:
        if isinstance(e, httpx.RemoteProtocolError):
            text = str(e) or "protocol error"
            lowered = text.lower()
            if "disconnected" in lowered or "peer closed" in lowered or "incomplete" in lowered:
                return Classified(Failure.NETWORK, "network.closed", text)
            return Classified(Failure.NETWORK, "network.protocol", text)
        if isinstance(e, httpx.LocalProtocolError | httpx.DecodingError):
            return Classified(Failure.NETWORK, "network.protocol", str(e) or type(e).__name__)
        if isinstance(e, httpx.TooManyRedirects):
            return Classified(Failure.SERVER, "server.redirects", str(e))
    for e in chain:
        if isinstance(e, httpx.ConnectError):
            return Classified(Failure.NETWORK, "network.unreachable", str(e) or "connect failed")
        if isinstance(e, httpx.ReadError | httpx.WriteError):
            return Classified(Failure.NETWORK, "network.reset", str(e) or "connection broken")
        if isinstance(e, httpx.TransportError):
            return Classified(Failure.NETWORK, "network.protocol", str(e) or type(e).__name__)
        if isinstance(e, OSError):
            return Classified(Failure.NETWORK, "network.unreachable", e.strerror or str(e))
    return None
