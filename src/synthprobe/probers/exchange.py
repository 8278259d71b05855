"""One HTTP exchange the way a prober must do it, shared by every HTTP-based kind.

- DNS is resolved first, as its own timed step, then we connect to the address with
  the original Host header and SNI name, so a slow resolver is never a connect timeout.
- Each request opens a fresh connection: a probe measures the cold path, and a shared
  pool costs O(connections) CPU per request (encode/httpcore#1035).
- Redirects are followed hop by hop here, because httpx copies the previous hop's
  ``sni_hostname`` into the next request (docs/httpx.md).
- The body is read up to ``max_body``, decoded through up to MAX_CODINGS stacked
  Content-Encodings; the runner's deadline bounds the time.
- An HTTP/2 response head is checked as curl checks it (``h2_response_head``): httpcore
  turns h2's checks off.
- Whatever a server sends (a Location, a :status, a coded body) fails here as a
  classified ``ProbeFailure`` naming the value, never as an exception of ours.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import ipaddress
import re
import socket
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import h2.events
import httpcore
import httpx
from httpcore._async.http2 import AsyncHTTP2Connection

from synthprobe import __version__
from synthprobe.classify import ProbeFailure, classify_exception
from synthprobe.expect import Observation
from synthprobe.models import HttpVersion, ProbeSpec, Reason
from synthprobe.probers.base import Network
from synthprobe.probers.netstream import BACKEND
from synthprobe.steps import Step
from synthprobe.timing import Timeline

_REDIRECTS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 10
"""Hops followed before ``server.redirects``, as browsers and curl allow."""
DEFAULT_HEADERS = (
    ("User-Agent", f"synthprobe/{__version__}"),
    ("Accept", "*/*"),
    ("Accept-Encoding", "gzip, deflate"),
)
"""Sent unless the probe sets them: what an ordinary client sends (a transport adds none)."""
T = TypeVar("T")
_NO_LIMITS = httpx.Limits(max_connections=1, max_keepalive_connections=0)


@dataclass(slots=True)
class Exchange:
    """The final response of an exchange and what it took."""

    observation: Observation
    bytes_in: int
    bytes_out: int
    details: dict[str, Any]


@dataclass(slots=True)
class Request:
    """What to send on the first hop."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    content: bytes | None = None
    content_type: str | None = None


@functools.lru_cache(maxsize=4096)
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def exchange(
    request: Request,
    timeline: Timeline,
    net: Network,
    *,
    follow_redirects: bool,
    verify_tls: bool,
    max_body: int,
    ip_version: int | None = None,
    http_version: HttpVersion = HttpVersion.AUTO,
    resolver: tuple[str, int] | None = None,
) -> Exchange:
    """Send ``request``, following redirects if asked; raise on transport faults.

    URL credentials become HTTP Basic authentication, sent only to the URL's own origin
    (a redirect elsewhere never gets them, as curl and httpx do). Cookies a response sets
    go into the attempt's jar and come back on its later hops and steps."""
    url = httpx.URL(request.url)
    auth, origin = _basic_auth(url), _origin(url)
    if url.userinfo:
        url = url.copy_with(userinfo=b"")
    method, content = request.method, request.content
    visited = [str(url)]
    bytes_out = 0
    while True:
        # the common probe has no credentials and meets no cookie: send it as it is
        extra = _hop_headers(request.headers, url, method, timeline.jar, auth, origin)
        hop = request if extra is request.headers else replace(request, headers=extra)
        try:
            response_data = await _one_hop(
                method,
                url,
                hop,
                content,
                timeline,
                net,
                verify_tls,
                max_body,
                follow_redirects,
                ip_version,
                http_version,
                resolver,
            )
        except Exception as exc:
            # the server sent us there: a refused port or an unknown name is that hop's
            failure = _after_redirect(exc, url) if len(visited) > 1 else None
            if failure is None:
                raise
            raise failure from exc
        status, headers, body, truncated, wire_in, sent = response_data
        bytes_out += sent
        _keep_cookies(headers, method, url, timeline)
        location = dict(headers).get("location")
        if not follow_redirects or status not in _REDIRECTS or location is None:
            break
        nxt = redirect_target(url, location)
        if str(nxt) in visited:
            first = visited.index(str(nxt))
            where = "the URL asked for" if first == 0 else f"the URL of redirect {first}"
            raise ProbeFailure(
                Reason.SERVER_REDIRECTS,
                f"redirect loop: redirect {len(visited)} leads back to {shown(nxt)}, {where}",
            )
        if len(visited) > MAX_REDIRECTS:
            raise ProbeFailure(Reason.SERVER_REDIRECTS, f"more than {MAX_REDIRECTS} redirects")
        visited.append(str(nxt))
        # as browsers and httpx do: 303 (and 301/302 after POST) become a GET without body
        if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
            method, content = "GET", None
        url = nxt
    details: dict[str, Any] = {"truncated": truncated, "body_bytes": len(body)}
    proxy = net.proxy_for(url)
    if proxy is not None:
        details["proxy"] = proxy
    if len(visited) > 1:
        details["redirects"] = len(visited) - 1
        details["final_url"] = shown(url)
    return Exchange(
        Observation(
            status=status,
            headers=headers,
            body=body,
            truncated=truncated,
            undecoded=undecodable(content_encoding(headers)),
        ),
        bytes_in=wire_in,
        bytes_out=bytes_out,
        details=details,
    )


async def fetch(
    spec: ProbeSpec,
    request: Request,
    timeline: Timeline,
    net: Network,
    *,
    max_body: int | None = None,
    follow_redirects: bool | None = None,
) -> Exchange:
    """``exchange`` with the probe's own settings: redirects, TLS verification, body
    limit and IP version; a caller may narrow the body limit or the redirects."""
    return await exchange(
        request,
        timeline,
        net,
        follow_redirects=spec.follow_redirects if follow_redirects is None else follow_redirects,
        verify_tls=spec.verify_tls,
        max_body=spec.max_body if max_body is None else max_body,
        ip_version=spec.ip_version,
        http_version=spec.http_version,
        resolver=spec.resolver,
    )


MAX_SHOWN = 200
"""Characters of a server's value quoted in an error: enough to recognise it."""


def quoted(value: str) -> str:
    """A server's value as an error message quotes it: repr, cut at MAX_SHOWN."""
    if len(value) <= MAX_SHOWN:
        return repr(value)
    return f"{value[:MAX_SHOWN]!r}... ({len(value)} characters)"


def shown(url: httpx.URL) -> str:
    """A URL for a message: without credentials (the redactor masks known secrets, not
    a password a redirect made up)."""
    return str(url.copy_with(userinfo=b"")) if url.userinfo else str(url)


_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?")
"""One label of a host name as resolvers take it (underscores occur in real names)."""


def checked_url(text: str, base: httpx.URL | None = None) -> tuple[httpx.URL | None, str]:
    """``text`` (resolved against ``base``) as a URL we can send to, or None and why
    not. Everything later code asks of a URL is asked here once (its IDNA host, its
    port), so a value from a server can fail here and nowhere else."""
    try:
        url = base.join(text) if base is not None else httpx.URL(text)
        host, port, scheme = url.host, url.port, url.scheme
        url.netloc.decode("ascii")
    except (httpx.InvalidURL, ValueError) as exc:  # IDNAError and UnicodeError are ValueErrors
        return None, str(exc) or type(exc).__name__
    if scheme not in ("http", "https"):
        return None, f"unsupported scheme {scheme!r}"
    if not host:
        return None, "no host"
    if port is not None and not 0 < port < 65536:
        return None, f"port {port} out of range"
    labels = url.raw_host.decode("ascii").removesuffix(".").split(".")
    if not _is_ip(host) and not all(_HOSTNAME.fullmatch(label) for label in labels):
        return None, f"invalid host name {host!r}"
    return url, ""


def redirect_target(url: httpx.URL, location: str) -> httpx.URL:
    """Where a redirect from ``url`` with this ``Location`` leads; ``server.redirects``
    naming the value when it leads nowhere we can go."""
    nxt, why = checked_url(location, url)
    if nxt is None:
        raise ProbeFailure(
            Reason.SERVER_REDIRECTS,
            f"redirect to an unusable URL ({why}): Location {quoted(location)}",
        )
    return nxt


def _after_redirect(exc: Exception, url: httpx.URL) -> ProbeFailure | None:
    """A hop after a redirect failed: the same label, saying which hop it was (None for
    a bug of ours, which stays one)."""
    found = classify_exception(exc)
    if found is None:
        return None
    return ProbeFailure(
        found.reason, f"after a redirect to {shown(url)}: {found.error}", found.details
    )


async def resolve(
    url: httpx.URL,
    timeline: Timeline,
    net: Network,
    ip_version: int | None = None,
    resolver: tuple[str, int] | None = None,
) -> list[str]:
    """The addresses to try for ``url``, resolved as the timed ``dns`` step; only IPv4 or
    only IPv6 ones when ``ip_version`` says. With a ``resolver`` (host, port), that DNS
    server is asked (dnspython) instead of the system's getaddrinfo."""
    host = url.host
    if _is_ip(host):
        return _family([host], host, ip_version)
    if resolver is not None:
        from synthprobe.probers.dnsquery import resolve_with

        return await resolve_with(resolver[0], resolver[1], host, ip_version, timeline)
    port = url.port or (443 if url.scheme in ("https", "wss") else 80)
    timeline.begin(Step.DNS)
    try:
        addresses = await net.resolve(host, port)
    except socket.gaierror as exc:
        timeline.fail(Step.DNS)
        found = classify_exception(exc)
        assert found is not None
        raise ProbeFailure(found.reason, f"{host}: {found.error}") from exc
    timeline.end(Step.DNS, getattr(addresses, "resolved_at", None))
    if not addresses:
        raise ProbeFailure(Reason.DNS_NO_ADDRESS, f"{host} has no address")
    return _family(addresses, host, ip_version)


def _family(addresses: list[str], host: str, ip_version: int | None) -> list[str]:
    if ip_version is None:
        return addresses
    kept = [a for a in addresses if (":" in a) == (ip_version == 6)]
    if not kept:
        raise ProbeFailure(Reason.DNS_NO_ADDRESS, f"{host} has no IPv{ip_version} address")
    return kept


@dataclass(slots=True)
class Route:
    """How to reach one address of a URL while the server still sees the name."""

    url: httpx.URL
    """The URL with the host replaced by the address (ws/wss mapped to http/https)."""
    headers: list[tuple[str, str]]
    """``Host`` first, then the caller's headers."""
    extensions: dict[str, Any]
    """httpcore extensions: our trace callback, and the SNI name for TLS."""


def route(
    url: httpx.URL, ip: str, headers: tuple[tuple[str, str], ...], timeline: Timeline
) -> Route:
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    port = url.port or (443 if scheme == "https" else 80)
    # this hop's address, not the previous hop's peer, is the one an error names
    timeline.target, timeline.remote = (ip, port), None
    all_headers = [("Host", url.netloc.decode("ascii"))]
    all_headers += [(k, v) for k, v in headers if k.lower() != "host"]
    given = {k.lower() for k, _ in all_headers}
    all_headers += [(k, v) for k, v in DEFAULT_HEADERS if k.lower() not in given]
    extensions: dict[str, Any] = {"trace": timeline.trace}
    if scheme == "https" and not _is_ip(url.host):
        extensions["sni_hostname"] = url.host
    return Route(url.copy_with(scheme=scheme, host=ip), all_headers, extensions)


def proxied(url: httpx.URL, headers: tuple[tuple[str, str], ...], timeline: Timeline) -> Route:
    """The request as sent through a proxy: to the name, which the proxy resolves."""
    given = {k.lower() for k, _ in headers}
    all_headers = [*headers, *((k, v) for k, v in DEFAULT_HEADERS if k.lower() not in given)]
    return Route(url, all_headers, {"trace": timeline.trace})


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
    """The status and headers of an HTTP/2 response, refused (``network.protocol``) where
    curl (nghttp2) refuses it: ``:status`` missing, twice, or not three digits; an
    unknown or misplaced pseudo-header; an upper-case header name (RFC 9113 8.2.1 and
    8.3.2); a connection-specific header (8.2.2); NUL, CR or LF in a value. httpcore
    turns h2's own checks off, reads ``:status`` with int() (a ValueError on ``abc``,
    ``2_00`` as 200) and takes a missing one for 200."""
    status: int | None = None
    regular: list[tuple[bytes, bytes]] = []

    def refuse(what: str) -> ProbeFailure:
        return ProbeFailure(Reason.NETWORK_PROTOCOL, f"HTTP/2 response {what}")

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
) -> httpx.AsyncHTTPTransport:
    """A transport for one attempt: one connection, no keep-alive; no timeouts of its
    own (requests carry none: the runner's deadline is the only clock); a proxy only
    when the Network chose one for this URL. With ``h2`` it offers HTTP/2 and HTTP/1.1
    by ALPN over TLS and the server chooses; over plain http it speaks HTTP/1.1.
    ``tls`` False: the target is plain http (or ws), so no verifying context is needed.
    ``to``: the only URL (scheme, address, port) the transport will be asked for, which
    lets it skip the connection pool."""
    context = net.ssl_context(verify_tls, h2=h2) if tls else net.no_tls
    if to is not None and proxy is None:
        port = to.port or (443 if to.scheme == "https" else 80)
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
    """A client around ``transport``, for libraries that need one (httpx-ws)."""
    return httpx.AsyncClient(
        transport=transport(net, verify_tls, tls=tls), timeout=None, trust_env=False
    )


async def each_address(
    addresses: list[str], timeline: Timeline, attempt: Callable[[str], Awaitable[T]]
) -> T:
    """``attempt`` each address in turn while the previous one failed to connect
    (refused, unreachable), as happy eyeballs would; the deadline still covers them all.
    Any other fault, or the last address's, is raised."""
    for index, ip in enumerate(addresses):
        try:
            return await attempt(ip)
        except (httpx.ConnectError, OSError):
            # httpx wraps a failed connect in ConnectError; a raw socket raises OSError
            if index + 1 < len(addresses) and timeline.current is Step.CONNECT:
                continue
            raise
        except asyncio.CancelledError:
            # httpcore closes a half-made connection on Exception but not on
            # cancellation (our deadline during the TLS handshake): close it here
            await close_quietly(timeline.stream)
            raise
    raise AssertionError("unreachable: the last address raises")


_Hop = tuple[int, tuple[tuple[str, str], ...], bytes, bool, int, int]
"""status, headers, body, truncated, bytes on the wire, bytes sent."""


async def _one_hop(
    method: str,
    url: httpx.URL,
    request: Request,
    content: bytes | None,
    timeline: Timeline,
    net: Network,
    verify_tls: bool,
    max_body: int,
    follow_redirects: bool,
    ip_version: int | None = None,
    http_version: HttpVersion = HttpVersion.AUTO,
    resolver: tuple[str, int] | None = None,
) -> _Hop:
    headers = request.headers
    if content is not None and request.content_type:
        headers = (*headers, ("Content-Type", request.content_type))
    proxy = net.proxy_for(url)
    if proxy is not None:
        # through a proxy: it resolves the name, so there is no DNS phase of ours
        addresses = [url.host]
    else:
        addresses = await resolve(url, timeline, net, ip_version, resolver)

    async def attempt(ip: str) -> _Hop:
        via = (
            route(url, ip, headers, timeline) if proxy is None else proxied(url, headers, timeline)
        )
        # the transport alone, not a Client: no cookie jar, auth flow or event hooks to
        # run for every probe (a thousand Set-Cookie headers cost nothing here)
        h2 = url.scheme == "https" and http_version is not HttpVersion.HTTP1
        tls = url.scheme in ("https", "wss")
        async with transport(net, verify_tls, proxy, h2=h2, tls=tls, to=via.url) as http:
            req = httpx.Request(
                method, via.url, headers=via.headers, content=content, extensions=via.extensions
            )
            response = await http.handle_async_request(req)
            response.request = req
            timeline.protocol = _version(response)
            timeline.status = response.status_code
            if http_version is HttpVersion.HTTP2 and timeline.protocol != "HTTP/2":
                await response.aclose()
                raise ProbeFailure(
                    Reason.NETWORK_PROTOCOL,
                    f"{url.host} does not offer HTTP/2 (ALPN chose {timeline.protocol}); "
                    'http_version is "2"',
                )
            try:
                timeline.begin(Step.BODY)
                body, truncated = b"", False
                # a redirect we will follow: its body is of no interest
                if not (follow_redirects and response.status_code in _REDIRECTS):
                    body, truncated = await read_body(response, max_body)
                timeline.end(Step.BODY)
                return (
                    response.status_code,
                    tuple((k.lower(), v) for k, v in response.headers.multi_items()),
                    bytes(body),
                    truncated,
                    response.num_bytes_downloaded,
                    len(content or b""),
                )
            finally:
                await response.aclose()

    return await each_address(addresses, timeline, attempt)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)


def _basic_auth(url: httpx.URL) -> str | None:
    """``Basic ...`` from the URL's userinfo (percent-decoded), or None."""
    if not url.userinfo:
        return None
    pair = f"{url.username}:{url.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _hop_headers(
    headers: tuple[tuple[str, str], ...],
    url: httpx.URL,
    method: str,
    jar: httpx.Cookies | None,
    auth: str | None,
    origin: tuple[str, str, int | None],
) -> tuple[tuple[str, str], ...]:
    """The probe's headers, plus its credentials (same origin only) and its cookies."""
    given = {k.lower() for k, _ in headers}
    extra: list[tuple[str, str]] = []
    if auth and "authorization" not in given and _origin(url) == origin:
        extra.append(("Authorization", auth))
    if "cookie" not in given and jar:
        probe = httpx.Request(method, url)
        jar.set_cookie_header(probe)
        cookie = probe.headers.get("cookie")
        if cookie:
            extra.append(("Cookie", cookie))
    return (*headers, *extra) if extra else headers


def _keep_cookies(
    headers: tuple[tuple[str, str], ...],
    method: str,
    url: httpx.URL,
    timeline: Timeline,
) -> None:
    """Cookies the response set, into the jar (domain and path rules of the standard
    library's cookie jar); their values are secrets in every output."""
    setters = [(k, v) for k, v in headers if k == "set-cookie"]
    if not setters:
        return
    if timeline.jar is None:  # made on the first cookie: most probes never need one
        timeline.jar = httpx.Cookies()
    jar: httpx.Cookies = timeline.jar
    # httpx builds headers from str as ASCII only: a cookie in UTF-8 could neither be
    # stored nor sent back, so it is not kept (its value is still masked below)
    kept = [(k, v) for k, v in setters if v.isascii()]
    if kept:
        jar.extract_cookies(httpx.Response(200, headers=kept, request=httpx.Request(method, url)))
    for _name, value in setters:
        cookie_value = value.split(";", 1)[0].partition("=")[2].strip()
        if cookie_value:
            timeline.secrets.add(cookie_value)


def _version(response: httpx.Response) -> str:
    raw = response.extensions.get("http_version", b"HTTP/1.1")
    return raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)


DECODED = ("gzip", "x-gzip", "deflate", "br")
"""Content-Encodings read as bodies: we ask for gzip and deflate; br comes anyway from
some servers. zstd is not decoded: its streaming API cannot bound the output of one
chunk, so a zstd bomb could not be stopped at max_body."""
MAX_CODINGS = 5
"""Stacked Content-Encodings decoded at most, as curl (CVE-2022-32206): each costs a
decoder's memory. A longer list is kept as it came, like an unknown coding."""
_PULL = 65536
"""Bytes one decoding stage hands the next at a time."""


def content_encoding(headers: tuple[tuple[str, str], ...]) -> str:
    """Every Content-Encoding header of a response, joined as one list (RFC 9110 5.3)."""
    return ", ".join(v for k, v in headers if k == "content-encoding")


def codings(encoding: str) -> list[str]:
    """The Content-Encoding list in the order applied, lower-cased, without identity."""
    listed = (part.strip().lower() for part in encoding.split(","))
    return [coding for coding in listed if coding not in ("", "identity")]


def undecodable(encoding: str) -> str | None:
    """The Content-Encoding, when synthprobe cannot read a body sent with it."""
    listed = codings(encoding)
    if len(listed) > MAX_CODINGS or any(coding not in DECODED for coding in listed):
        return ", ".join(listed)
    return None


class _Stage:
    """One coding of a body, decoded on demand: never more than asked for per call."""

    def __init__(self, coding: str, cap: int | None) -> None:
        self.coding = coding
        self.cap = cap
        """Bytes this stage may produce in all (None: its caller bounds it)."""
        self.produced = 0
        self.ended = False
        """The coded stream ended: later input is ignored (curl ignores it too)."""
        self.cut = False
        """The cap was reached: a bomb inside the stack."""
        self._input = b""
        self._output = b""
        """Decoded bytes beyond what was asked (brotli hands out whole blocks)."""
        self._deflate = coding == "deflate"
        self._fresh = True
        self._z: Any = None
        self._br: Any = None
        if coding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self._deflate:
            self._z = zlib.decompressobj()
        else:
            import brotli

            self._br = brotli.Decompressor()

    @property
    def done(self) -> bool:
        return (self.ended or self.cut) and not self._output

    def feed(self, data: bytes) -> None:
        if not (self.ended or self.cut):
            self._input += data

    def take(self, limit: int) -> bytes:
        """Up to ``limit`` (> 0) decoded bytes of the input fed so far; b"" when it
        needs more."""
        if self.cap is not None:
            limit = min(limit, self.cap - self.produced)
        if limit <= 0:  # zlib reads a max_length of 0 as "no limit"
            self.cut = self.cut or self.cap is not None
            return b""
        if self._output:
            out, self._output = self._output[:limit], self._output[limit:]
        elif self.ended or self.cut:
            return b""
        else:
            out = self._brotli(limit) if self._br is not None else self._zlib(limit)
            out, self._output = out[:limit], out[limit:]
        self.produced += len(out)
        if self.cap is not None and self.produced >= self.cap:
            self.cut = True
        return out

    def _zlib(self, limit: int) -> bytes:
        data, self._input = self._input, b""
        try:
            out: bytes = self._z.decompress(data, limit)
        except zlib.error:
            if self._deflate and self._fresh:
                # "deflate" is often sent without its zlib header: raw deflate
                self._z, self._fresh, self._input = zlib.decompressobj(-zlib.MAX_WBITS), False, data
                return self._zlib(limit)
            raise self._invalid() from None
        self._fresh = False
        self._input = self._z.unconsumed_tail
        # bytes after the stream's end would pile up in unused_data: take no more
        self.ended = self._z.eof
        return out

    def _brotli(self, limit: int) -> bytes:
        data, self._input = self._input, b""
        if data and not self._br.can_accept_more_data():
            data, self._input = b"", data  # it must hand out what it holds first
        try:
            out: bytes = self._br.process(data, output_buffer_limit=limit)
            self.ended = not out and self._br.is_finished()
        except Exception:  # brotli.error, whose module may be absent for mypy
            raise self._invalid() from None
        return out

    def _invalid(self) -> ProbeFailure:
        return ProbeFailure(
            Reason.NETWORK_PROTOCOL,
            f"body is not valid {self.coding} data, as its Content-Encoding says",
        )


class BoundedDecoder:
    """Content-Encoding gzip, deflate and br, stacked up to MAX_CODINGS deep, decoded
    with a hard limit on the output: httpx inflates each network chunk whole, so a gzip
    bomb's 64 KiB chunk becomes 64 MB before any limit applies. A stage inside a stack
    produces at most ``max_body`` plus an eighth and 64 KiB (more than the coded form of
    ``max_body`` bytes can take), so a bomb inside a stack is bounded as well. Other
    encodings are kept as they came (and said so)."""

    def __init__(self, encoding: str, max_body: int) -> None:
        listed = [] if undecodable(encoding) else codings(encoding)
        inner = max_body + max_body // 8 + _PULL
        # decoded in the reverse of the order applied; the last stage is bounded by room
        self._stages = [
            _Stage(coding, None if n == 0 else inner) for n, coding in enumerate(listed)
        ][::-1]

    @property
    def finished(self) -> bool:
        """A stage's stream ended: nothing more can come out, so read no more."""
        return any(stage.done for stage in self._stages)

    @property
    def cut(self) -> bool:
        """A stage inside the stack reached its cap: the body was not read whole."""
        return any(stage.cut for stage in self._stages)

    def decode(self, data: bytes, room: int) -> tuple[bytes, bool]:
        """Up to ``room`` decoded bytes; True when more would have followed."""
        if not self._stages:
            return data[:room], len(data) > room
        self._stages[0].feed(data)
        out = self._pull(len(self._stages) - 1, room + 1)
        return out[:room], len(out) > room

    def _pull(self, index: int, limit: int) -> bytes:
        stage = self._stages[index]
        out = bytearray()
        while len(out) < limit:
            got = stage.take(limit - len(out))
            if got:
                out += got
                continue
            if index == 0 or stage.done:
                break
            upstream = self._pull(index - 1, _PULL)
            if not upstream:
                break
            stage.feed(upstream)
        return bytes(out)


async def read_body(response: httpx.Response, max_body: int) -> tuple[bytes, bool]:
    """The first ``max_body`` bytes of the decoded body, and whether there was more."""
    decoder = BoundedDecoder(response.headers.get("content-encoding", ""), max_body)
    body = bytearray()
    async for chunk in response.aiter_raw():
        piece, more = decoder.decode(chunk, max_body - len(body))
        body += piece
        if more:
            return bytes(body), True
        if decoder.finished:
            # the coded stream ended: what follows is ignored, as curl does; or a bomb
            # inside a stack was cut
            return bytes(body), decoder.cut
    return bytes(body), False


async def close_quietly(stream: Any) -> None:
    if stream is not None:
        with contextlib.suppress(Exception):
            await stream.aclose()
