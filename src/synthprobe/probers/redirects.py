"""Redirects, decided without I/O: where the next hop goes, whether it may, and what
goes with it (credentials to the URL's own origin only, the attempt's cookies).

A ``Location`` is checked by ``urls.usable``, the one check of every URL a server hands
us, so it fails as a classified ``ProbeFailure`` naming it, and nowhere later. Pure:
table-tested in tests/test_redirects.py.
"""

from __future__ import annotations

import base64

import httpx

from synthprobe.classify import ProbeFailure
from synthprobe.models import Reason
from synthprobe.probers.urls import Unusable, port_of, usable

REDIRECTS = {301, 302, 303, 307, 308}

MAX_REDIRECTS = 10
"""Hops followed before ``server.redirects``, as browsers and curl allow."""

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


def checked_url(text: str, base: httpx.URL | None = None) -> tuple[httpx.URL | None, str]:
    """``text`` (resolved against ``base``) as a URL we can send to, or None and why
    not (``urls.usable``, as a pair for callers that word their own failure)."""
    try:
        return usable(text, base), ""
    except Unusable as exc:
        return None, exc.why


def redirect_target(url: httpx.URL, location: str) -> httpx.URL:
    """Where a redirect from ``url`` with this ``Location`` leads; ``server.redirects``
    naming the value when it leads nowhere we can go."""
    try:
        return usable(location, url)
    except Unusable as exc:
        raise ProbeFailure(
            Reason.SERVER_REDIRECTS,
            f"redirect to an unusable URL ({exc.why}): Location {quoted(location)}",
        ) from None


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, port_of(url)


def basic_auth(url: httpx.URL) -> str | None:
    """``Basic ...`` from the URL's userinfo (percent-decoded), or None."""
    if not url.userinfo:
        return None
    pair = f"{url.username}:{url.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def hop_headers(
    headers: tuple[tuple[str, str], ...],
    url: httpx.URL,
    method: str,
    jar: httpx.Cookies | None,
    auth: str | None,
    auth_origin: tuple[str, str, int | None],
) -> tuple[tuple[str, str], ...]:
    """The probe's headers, plus its credentials (to ``auth_origin`` only: the URL's
    own, never a redirect elsewhere) and its cookies."""
    given = {k.lower() for k, _ in headers}
    extra: list[tuple[str, str]] = []
    if auth and "authorization" not in given and origin(url) == auth_origin:
        extra.append(("Authorization", auth))
    if "cookie" not in given and jar:
        probe = httpx.Request(method, url)
        jar.set_cookie_header(probe)
        cookie = probe.headers.get("cookie")
        if cookie:
            extra.append(("Cookie", cookie))
    return (*headers, *extra) if extra else headers


def next_method(status: int, method: str, content: bytes | None) -> tuple[str, bytes | None]:
    """The method and body of the hop after a redirect with ``status``: as browsers and
    httpx do, 303 (and 301/302 after POST) become a GET without body."""
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        return "GET", None
    return method, content


def check_hop(visited: list[str], nxt: httpx.URL) -> None:
    """``server.redirects`` when ``nxt`` leads back to a URL already visited, or when
    one more hop would pass MAX_REDIRECTS."""
    if str(nxt) in visited:
        first = visited.index(str(nxt))
        where = "the URL asked for" if first == 0 else f"the URL of redirect {first}"
        raise ProbeFailure(
            Reason.SERVER_REDIRECTS,
            f"redirect loop: redirect {len(visited)} leads back to {shown(nxt)}, {where}",
        )
    if len(visited) > MAX_REDIRECTS:
        raise ProbeFailure(Reason.SERVER_REDIRECTS, f"more than {MAX_REDIRECTS} redirects")
