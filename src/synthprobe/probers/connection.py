"""The one connection an attempt sends its request on, and where its exchange reaches
into httpx's and httpcore's internals (pinned in pyproject: httpcore 1.0.x); beside it
only a warm-up import (base.py ``Network.prepare``) and the CLI's ``httpx._main`` stub
name private modules (docs/httpx.md).

- ``_OneConnection``: httpx's transport around a single httpcore connection, not a
  pool (no public seam: httpx keeps what it sends through in ``_pool``).
- ``_StrictConnection``/``_StrictHTTP2``: HTTP/2 response heads checked as curl checks
  them (``h2_response_head``); httpcore turns h2's own checks off.
- ``transport`` with ``h3``: probers/quic.py's, imported only then (qh3 costs ~90 ms).
- ``transport``: a pool's network backend set to ours (httpx takes none).
"""

from __future__ import annotations

import re

import h2.events
import httpcore
import httpx
from httpcore._async.http2 import AsyncHTTP2Connection

from synthprobe.classify import ProbeFailure
from synthprobe.models import Reason
from synthprobe.probers.attempt import Attempt
from synthprobe.probers.base import Network
from synthprobe.probers.netstream import BACKEND
from synthprobe.probers.redirects import quoted
from synthprobe.probers.urls import port_of

_NO_LIMITS = httpx.Limits(max_connections=1, max_keepalive_connections=0)


class _OneConnection(httpx.AsyncHTTPTransport):
    """httpx's transport around a single httpcore connection instead of a pool.

    An attempt sends one request on one fresh connection: the pool's request queue,
    locks and cancellation shields only cost CPU (a third of a probe's, measured with
    cProfile on bench/fidelity.py). httpx's transport maps requests, responses and
    errors; the connection emits the same trace events as it does inside a pool."""

    def __init__(self, connection: httpcore.AsyncHTTPConnection) -> None:
        # httpx keeps what it sends through in ``_pool``: any object with
        # handle_async_request and aclose (a single connection has both)
        self._pool = connection  # type: ignore[assignment]


_CONNECTION_SPECIFIC = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)

_STATUS = re.compile(rb"[1-9][0-9][0-9]")


def h2_response_head(headers: list[tuple[bytes, bytes]]) -> tuple[int, list[tuple[bytes, bytes]]]:
    """``response_head`` of an HTTP/2 response."""
    return response_head(headers, "HTTP/2")


def response_head(
    headers: list[tuple[bytes, bytes]], protocol: str
) -> tuple[int, list[tuple[bytes, bytes]]]:
    """The status and headers of an HTTP/2 or HTTP/3 response (the same head rules: RFC
    9114 4.3 refers to RFC 9113's), refused (``network.protocol``) where curl (nghttp2,
    nghttp3) refuses it: ``:status`` missing, twice, or not three digits; an
    unknown or misplaced pseudo-header; an upper-case header name (RFC 9113 8.2.1 and
    8.3.2); a connection-specific header (8.2.2); NUL, CR or LF in a value. httpcore
    turns h2's own checks off, reads ``:status`` with int() (a ValueError on ``abc``,
    ``2_00`` as 200) and takes a missing one for 200."""
    status: int | None = None
    regular: list[tuple[bytes, bytes]] = []

    def refuse(what: str) -> ProbeFailure:
        return ProbeFailure(Reason.NETWORK_PROTOCOL, f"{protocol} response {what}")

    for name, value in headers:
        if name.startswith(b":"):
            if name != b":status":
                raise refuse(f"with pseudo-header {quoted(name.decode('latin-1'))}")
            if regular:
                raise refuse("with :status after other headers")
            if status is not None:
                raise refuse("with :status twice")
            if not _STATUS.fullmatch(value) or value == b"101":
                shown_value = quoted(value.decode("latin-1"))
                raise refuse(f"with an invalid :status {shown_value} (three digits expected)")
            status = int(value)
            continue
        if name != name.lower():
            raise refuse(f"header name {quoted(name.decode('latin-1'))} has upper-case letters")
        if name in _CONNECTION_SPECIFIC or (name == b"te" and value.lower() != b"trailers"):
            raise refuse(f"with connection-specific header {quoted(name.decode('latin-1'))}")
        if any(c in value for c in b"\0\r\n"):
            shown_value = quoted(value.decode("latin-1"))
            raise refuse(f"header {name.decode('latin-1')!r} with NUL, CR or LF: {shown_value}")
        regular.append((name, value))
    if status is None:
        raise refuse("without :status")
    return status, regular


class _StrictHTTP2(AsyncHTTP2Connection):
    """httpcore's HTTP/2 connection, reading the response head with ``h2_response_head``."""

    async def _receive_response(
        self, request: httpcore.Request, stream_id: int
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        while True:
            event = await self._receive_stream_event(request, stream_id)
            if isinstance(event, h2.events.ResponseReceived):
                return h2_response_head(list(event.headers or ()))


class _StrictConnection(httpcore.AsyncHTTPConnection):
    """httpcore's connection, speaking HTTP/2 through ``_StrictHTTP2`` when ALPN chose it
    (httpcore picks its own class inside ``handle_async_request``: this is that method
    for one request, as of httpcore 1.0.9, which pyproject pins)."""

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        if self._connection is None:
            try:
                stream = await self._connect(request)
            except BaseException:
                self._connect_failed = True
                raise
            ssl_object = stream.get_extra_info("ssl_object")
            # we always offer HTTP/1.1 too: HTTP/2 only when the server chose it by ALPN
            if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
                self._connection = _StrictHTTP2(self._origin, stream, self._keepalive_expiry)
            else:
                self._connection = httpcore.AsyncHTTP11Connection(
                    self._origin, stream, self._keepalive_expiry
                )
        return await self._connection.handle_async_request(request)


def transport(
    net: Network,
    verify_tls: bool,
    proxy: str | None = None,
    *,
    h2: bool = False,
    tls: bool = True,
    to: httpx.URL | None = None,
    h3: Attempt | None = None,
) -> httpx.AsyncBaseTransport:
    """A transport for one attempt: one connection, no keep-alive; no timeouts of its
    own (requests carry none: the runner's deadline is the only clock); a proxy only
    when the Network chose one for this URL. With ``h2`` it offers HTTP/2 and HTTP/1.1
    by ALPN over TLS and the server chooses; over plain http it speaks HTTP/1.1.
    ``tls`` False: the target is plain http (or ws), so no verifying context is needed.
    ``to``: the only URL (scheme, address, port) the transport will be asked for, which
    lets it skip the connection pool. ``h3``: the attempt to speak HTTP/3 for, over QUIC
    only (a proxy is not used: an HTTP proxy carries no UDP)."""
    if h3 is not None:
        from synthprobe.probers.quic import H3Transport, trust_of

        trust = trust_of(net.ssl_context(True)) if verify_tls else None
        return H3Transport(h3, trust)
    context = net.ssl_context(verify_tls, h2=h2) if tls else net.no_tls
    if to is not None and proxy is None:
        port = port_of(to)
        origin = httpcore.Origin(to.raw_scheme, to.raw_host, port)
        return _OneConnection(
            _StrictConnection(origin, context, http1=True, http2=h2, network_backend=BACKEND)
        )
    made = httpx.AsyncHTTPTransport(
        verify=context,
        limits=_NO_LIMITS,
        retries=0,
        proxy=proxy,
        http1=True,
        http2=h2,
    )
    # httpx takes no network backend; its pool (direct or through a proxy) does
    made._pool._network_backend = BACKEND
    return made


def client(net: Network, verify_tls: bool, *, tls: bool = True) -> httpx.AsyncClient:
    """A client around ``transport``, for the WebSocket upgrade (``client.stream``)."""
    return httpx.AsyncClient(
        transport=transport(net, verify_tls, tls=tls), timeout=None, trust_env=False
    )
