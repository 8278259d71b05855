"""One HTTP exchange the way a prober must do it, shared by every HTTP-based kind.

- DNS is resolved first, as its own timed step, then we connect to the address with
  the original Host header and SNI name, so a slow resolver is never a connect timeout.
- Each request opens a fresh connection: a probe measures the cold path, and a shared
  pool costs O(connections) CPU per request (encode/httpcore#1035).
- Redirects are followed hop by hop here, because httpx copies the previous hop's
  ``sni_hostname`` into the next request (docs/httpx.md); where each hop goes and what
  goes with it is decided in ``redirects`` (pure).
- The body is read up to ``max_body`` by ``decoding``; the runner's deadline bounds the
  time. The connection (one per attempt, HTTP/2 heads checked as curl checks them) is
  ``connection``'s.
- Whatever a server sends (a Location, a :status, a coded body) fails here as a
  classified ``ProbeFailure`` naming the value, never as an exception of ours.
- ``http_version: "3"``: every hop over QUIC (probers/quic.py), never through a proxy
  (an HTTP proxy carries no UDP); a response head advertising h3 in ``Alt-Svc`` is
  recorded (``details.alt_svc_h3``) over any protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import httpx

from synthprobe import __version__
from synthprobe.classify import ProbeFailure, classify_exception
from synthprobe.expect import Response
from synthprobe.models import HttpVersion, ProbeSpec, Reason
from synthprobe.probers.attempt import Attempt
from synthprobe.probers.base import Network
from synthprobe.probers.connection import client as client  # re-exported: messaging uses it
from synthprobe.probers.connection import transport
from synthprobe.probers.decoding import content_encoding, read_body, undecodable
from synthprobe.probers.redirects import (
    REDIRECTS,
    basic_auth,
    check_hop,
    hop_headers,
    next_method,
    origin,
    redirect_target,
    shown,
)
from synthprobe.probers.urls import is_ip, port_of
from synthprobe.steps import Step

DEFAULT_HEADERS = (
    ("User-Agent", f"synthprobe/{__version__}"),
    ("Accept", "*/*"),
    ("Accept-Encoding", "gzip, deflate"),
)
"""Sent unless the probe sets them: what an ordinary client sends (a transport adds none)."""

T = TypeVar("T")


@dataclass(slots=True)
class Exchange:
    """The final response of an exchange and what it took."""

    observation: Response
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


@dataclass(frozen=True, slots=True)
class HopOptions:
    """How every hop of an exchange is made: the probe's settings, decided once."""

    follow_redirects: bool
    verify_tls: bool
    max_body: int
    ip_version: int | None = None
    http_version: HttpVersion = HttpVersion.AUTO
    resolver: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class Hop:
    """One request and its response, as the next decision needs them."""

    status: int
    headers: tuple[tuple[str, str], ...]
    """Names lower-cased, in order."""
    body: bytes
    """Decoded, at most ``max_body``; empty for a redirect that will be followed."""
    truncated: bool
    bytes_in: int
    """Body bytes on the wire."""
    bytes_out: int


async def exchange(
    request: Request,
    attempt: Attempt,
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
    options = HopOptions(follow_redirects, verify_tls, max_body, ip_version, http_version, resolver)
    url = httpx.URL(request.url)
    auth, first = basic_auth(url), origin(url)
    if url.userinfo:
        url = url.copy_with(userinfo=b"")
    method, content = request.method, request.content
    visited = [str(url)]
    bytes_out = 0
    while True:
        # the common probe has no credentials and meets no cookie: send it as it is
        extra = hop_headers(request.headers, url, method, attempt.jar, auth, first)
        sending = replace(request, method=method, headers=extra, content=content)
        try:
            hop = await _one_hop(sending, url, attempt, net, options)
        except Exception as exc:
            # the server sent us there: a refused port or an unknown name is that hop's
            failure = _after_redirect(exc, url) if len(visited) > 1 else None
            if failure is None:
                raise
            raise failure from exc
        bytes_out += hop.bytes_out
        _keep_cookies(hop.headers, method, url, attempt)
        location = dict(hop.headers).get("location")
        if not follow_redirects or hop.status not in REDIRECTS or location is None:
            break
        nxt = redirect_target(url, location)
        check_hop(visited, nxt)
        visited.append(str(nxt))
        method, content = next_method(hop.status, method, content)
        url = nxt
    details: dict[str, Any] = {"truncated": hop.truncated, "body_bytes": len(hop.body)}
    proxy = None if http_version is HttpVersion.HTTP3 else net.proxy_for(url)
    if proxy is not None:
        details["proxy"] = proxy
    if len(visited) > 1:
        details["redirects"] = len(visited) - 1
        details["final_url"] = shown(url)
    return Exchange(
        Response(
            status=hop.status,
            headers=hop.headers,
            body=hop.body,
            truncated=hop.truncated,
            undecoded=undecodable(content_encoding(hop.headers)),
        ),
        bytes_in=hop.bytes_in,
        bytes_out=bytes_out,
        details=details,
    )


async def fetch(
    spec: ProbeSpec,
    request: Request,
    attempt: Attempt,
    net: Network,
    *,
    max_body: int | None = None,
    follow_redirects: bool | None = None,
) -> Exchange:
    """``exchange`` with the probe's own settings: redirects, TLS verification, body
    limit and IP version; a caller may narrow the body limit or the redirects."""
    return await exchange(
        request,
        attempt,
        net,
        follow_redirects=spec.follow_redirects if follow_redirects is None else follow_redirects,
        verify_tls=spec.verify_tls,
        max_body=spec.max_body if max_body is None else max_body,
        ip_version=spec.ip_version,
        http_version=spec.http_version,
        resolver=spec.resolver,
    )


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
    attempt: Attempt,
    net: Network,
    ip_version: int | None = None,
    resolver: tuple[str, int] | None = None,
) -> list[str]:
    """The addresses to try for ``url``, resolved as the timed ``dns`` step; only IPv4 or
    only IPv6 ones when ``ip_version`` says. With a ``resolver`` (host, port), that DNS
    server is asked (dnspython) instead of the system's getaddrinfo."""
    host = url.host
    if is_ip(host):
        return _family([host], host, ip_version)
    if resolver is not None:
        from synthprobe.probers.dnsquery import resolve_with

        return await resolve_with(resolver[0], resolver[1], host, ip_version, attempt)
    port = port_of(url)
    attempt.clock.begin(Step.DNS)
    try:
        addresses = await net.resolve(host, port)
    except socket.gaierror as exc:
        attempt.clock.fail(Step.DNS)
        found = classify_exception(exc)
        assert found is not None
        raise ProbeFailure(found.reason, f"{host}: {found.error}") from exc
    attempt.clock.end(Step.DNS, getattr(addresses, "resolved_at", None))
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


def route(url: httpx.URL, ip: str, headers: tuple[tuple[str, str], ...], attempt: Attempt) -> Route:
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    port = port_of(url)
    # this hop's address, not the previous hop's peer, is the one an error names
    attempt.target, attempt.remote = (ip, port), None
    all_headers = [("Host", url.netloc.decode("ascii"))]
    all_headers += [(k, v) for k, v in headers if k.lower() != "host"]
    given = {k.lower() for k, _ in all_headers}
    all_headers += [(k, v) for k, v in DEFAULT_HEADERS if k.lower() not in given]
    extensions: dict[str, Any] = {"trace": attempt.trace}
    if scheme == "https" and not is_ip(url.host):
        extensions["sni_hostname"] = url.host
    return Route(url.copy_with(scheme=scheme, host=ip), all_headers, extensions)


def proxied(url: httpx.URL, headers: tuple[tuple[str, str], ...], attempt: Attempt) -> Route:
    """The request as sent through a proxy: to the name, which the proxy resolves."""
    given = {k.lower() for k, _ in headers}
    all_headers = [*headers, *((k, v) for k, v in DEFAULT_HEADERS if k.lower() not in given)]
    return Route(url, all_headers, {"trace": attempt.trace})


async def each_address(
    addresses: list[str], attempt: Attempt, at_address: Callable[[str], Awaitable[T]]
) -> T:
    """``at_address`` each address in turn while the previous one failed to connect
    (refused, unreachable), as happy eyeballs would; the deadline still covers them all.
    Any other fault, or the last address's, is raised."""
    for index, ip in enumerate(addresses):
        try:
            return await at_address(ip)
        except (httpx.ConnectError, OSError, ProbeFailure) as exc:
            # httpx wraps a failed connect in ConnectError; a raw socket raises OSError;
            # QUIC says refused (ICMP) as a ProbeFailure
            if isinstance(exc, ProbeFailure) and exc.classified.reason not in _NEXT_ADDRESS:
                raise
            if index + 1 < len(addresses) and _connecting(attempt):
                continue
            raise
        except asyncio.CancelledError:
            # httpcore closes a half-made connection on Exception but not on
            # cancellation (our deadline during the TLS handshake): close it here
            await close_quietly(attempt.stream)
            raise
    raise AssertionError("unreachable: the last address raises")


_NEXT_ADDRESS = frozenset((Reason.NETWORK_REFUSED, Reason.NETWORK_UNREACHABLE))


def _connecting(attempt: Attempt) -> bool:
    """The attempt failed while connecting (TCP, or QUIC's handshake step, which counts
    as connect)."""
    current = attempt.clock.current
    return current is Step.CONNECT or getattr(current, "counts_as", None) is Step.CONNECT


_QUOTED = re.compile(r'"[^"]*"')


def advertises_h3(values: list[str]) -> bool:
    """Whether ``Alt-Svc`` header values (RFC 7838) offer HTTP/3: an alternative whose
    protocol id is ``h3`` (``clear`` offers nothing; drafts such as ``h3-29`` are not
    the standard)."""
    for value in values:
        # a quoted authority may hold commas: blank it before splitting the list
        for entry in _QUOTED.sub('""', value).split(","):
            protocol_id = entry.split(";", 1)[0].partition("=")[0].strip()
            if protocol_id.lower() == "h3":
                return True
    return False


async def _one_hop(
    request: Request, url: httpx.URL, attempt: Attempt, net: Network, options: HopOptions
) -> Hop:
    """``request`` (its method, headers and body) sent to ``url``, each of its addresses
    in turn; the response read as ``options`` say."""
    method, content = request.method, request.content
    headers = attempt.sending(method, url, request.headers)  # traceparent (tracing.py)
    if content is not None and request.content_type:
        headers = (*headers, ("Content-Type", request.content_type))
    http_version = options.http_version
    h3 = http_version is HttpVersion.HTTP3
    proxy = None if h3 else net.proxy_for(url)
    if proxy is not None:
        # through a proxy: it resolves the name, so there is no DNS phase of ours
        addresses = [url.host]
    else:
        addresses = await resolve(url, attempt, net, options.ip_version, options.resolver)

    async def at_address(ip: str) -> Hop:
        via = route(url, ip, headers, attempt) if proxy is None else proxied(url, headers, attempt)
        # the transport alone, not a Client: no cookie jar, auth flow or event hooks to
        # run for every probe (a thousand Set-Cookie headers cost nothing here)
        h2 = url.scheme == "https" and http_version is not HttpVersion.HTTP1
        tls = url.scheme in ("https", "wss")
        async with transport(
            net, options.verify_tls, proxy, h2=h2, tls=tls, to=via.url, h3=attempt if h3 else None
        ) as http:
            req = httpx.Request(
                method, via.url, headers=via.headers, content=content, extensions=via.extensions
            )
            response = await http.handle_async_request(req)
            response.request = req
            attempt.protocol = _version(response)
            attempt.status = response.status_code
            if advertises_h3(response.headers.get_list("alt-svc")):
                attempt.details["alt_svc_h3"] = True
            if http_version is HttpVersion.HTTP2 and attempt.protocol != "HTTP/2":
                await response.aclose()
                raise ProbeFailure(
                    Reason.NETWORK_PROTOCOL,
                    f"{url.host} does not offer HTTP/2 (ALPN chose {attempt.protocol}); "
                    'http_version is "2"',
                )
            try:
                attempt.clock.begin(Step.BODY)
                body, truncated = b"", False
                # a redirect we will follow: its body is of no interest
                if not (options.follow_redirects and response.status_code in REDIRECTS):
                    body, truncated = await read_body(response, options.max_body)
                attempt.clock.end(Step.BODY)
                return Hop(
                    status=response.status_code,
                    headers=tuple((k.lower(), v) for k, v in response.headers.multi_items()),
                    body=bytes(body),
                    truncated=truncated,
                    bytes_in=response.num_bytes_downloaded,
                    bytes_out=len(content or b""),
                )
            finally:
                await response.aclose()

    return await each_address(addresses, attempt, at_address)


def _keep_cookies(
    headers: tuple[tuple[str, str], ...],
    method: str,
    url: httpx.URL,
    attempt: Attempt,
) -> None:
    """Cookies the response set, into the jar (domain and path rules of the standard
    library's cookie jar); their values are secrets in every output."""
    setters = [(k, v) for k, v in headers if k == "set-cookie"]
    if not setters:
        return
    jar = attempt.cookies()  # made on the first cookie: most probes never need one
    # httpx builds headers from str as ASCII only: a cookie in UTF-8 could neither be
    # stored nor sent back, so it is not kept (its value is still masked below)
    kept = [(k, v) for k, v in setters if v.isascii()]
    if kept:
        jar.extract_cookies(httpx.Response(200, headers=kept, request=httpx.Request(method, url)))
    for _name, value in setters:
        cookie_value = value.split(";", 1)[0].partition("=")[2].strip()
        if cookie_value:
            attempt.secrets.add(cookie_value)


def _version(response: httpx.Response) -> str:
    raw = response.extensions.get("http_version", b"HTTP/1.1")
    return raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)


async def close_quietly(stream: Any) -> None:
    if stream is not None:
        with contextlib.suppress(Exception):
            await stream.aclose()
