"""URLs a server hands us, decided without I/O: whether one is usable (one host grammar),
and which port a URL without one means.

A redirect's ``Location``, a journey step's URL filled from a capture, a segment or
variant URI of a live playlist and a URL the upload response names are all checked by
``usable`` here; each caller words the failure its own way from ``Unusable.flaw``.
Table-tested in tests/test_urls.py.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import re

import httpx

SCHEMES = ("http", "https")
"""What a server-given URL may use: what we (and players, browsers) can GET."""

MAX_HOST = 253
"""Characters of a host name (without its trailing dot) a resolver takes (RFC 1035)."""

_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
"""One label of a host name as resolvers take it: 1 to 63 characters, no hyphen at
either end; underscores occur in real names (``_dmarc``, some CDNs)."""


def default_port(scheme: str) -> int:
    """The port a URL of ``scheme`` means when it names none: 443 for https and wss,
    80 for http and ws."""
    return 443 if scheme in ("https", "wss") else 80


def port_of(url: httpx.URL) -> int:
    """``url``'s port, or its scheme's default."""
    return url.port or default_port(url.scheme)


@functools.lru_cache(maxsize=4096)
def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_host_name(host: str) -> bool:
    """``host`` (ASCII, IDNA-encoded: ``httpx.URL.raw_host``) as a resolver takes it: an
    IP address, or dot-separated labels, with one trailing dot allowed."""
    if is_ip(host):
        return True
    name = host.removesuffix(".")
    return 0 < len(name) <= MAX_HOST and all(_LABEL.fullmatch(label) for label in name.split("."))


class Flaw(enum.Enum):
    """Why a server-given URL is not usable."""

    INVALID = "invalid"
    """httpx (or IDNA) refuses it."""
    SCHEME = "scheme"
    """Not http(s)."""
    NO_HOST = "no host"
    PORT = "port"
    """Outside 1..65535."""
    HOST = "host"
    """Not a host name a resolver takes (a space, an over-long label...)."""


class Unusable(ValueError):
    """A URL a server gave that we cannot request; ``str()`` says why in a few words."""

    def __init__(self, flaw: Flaw, why: str, url: httpx.URL | None = None) -> None:
        super().__init__(why)
        self.flaw = flaw
        self.why = why
        self.url = url
        """The parsed URL (None for ``Flaw.INVALID``)."""

    @property
    def raw_host(self) -> str:
        """The host as sent, for a message (percent-encoded as httpx keeps it)."""
        return "" if self.url is None else self.url.raw_host.decode("ascii", "replace")


def usable(text: str, base: httpx.URL | None = None) -> httpx.URL:
    """``text`` (resolved against ``base``) as a URL we can send to, else ``Unusable``.
    Everything later code asks of a URL is asked here once (its IDNA host, its port, its
    netloc), so a value from a server can fail here and nowhere later."""
    try:
        url = base.join(text) if base is not None else httpx.URL(text)
        host, port, scheme = url.host, url.port, url.scheme
        url.netloc.decode("ascii")
    except (httpx.InvalidURL, ValueError) as exc:  # IDNAError and UnicodeError are ValueErrors
        raise Unusable(Flaw.INVALID, str(exc) or type(exc).__name__) from None
    if scheme not in SCHEMES:
        raise Unusable(Flaw.SCHEME, f"unsupported scheme {scheme!r}", url)
    if not host:
        raise Unusable(Flaw.NO_HOST, "no host", url)
    if port is not None and not 0 < port < 65536:
        raise Unusable(Flaw.PORT, f"port {port} out of range", url)
    # httpx keeps what a resolver would refuse (a space becomes %20): refuse it here
    if not is_host_name(url.raw_host.decode("ascii")):
        raise Unusable(Flaw.HOST, f"invalid host name {host!r}", url)
    return url
