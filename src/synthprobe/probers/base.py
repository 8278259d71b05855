"""The prober interface and what every prober shares (TLS contexts, the resolver)."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from synthprobe.expect import Observation
from synthprobe.models import ProbeSpec
from synthprobe.timing import Timeline

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) -> IP addresses in preference order; raises socket.gaierror."""


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """What a prober returns when an exchange completed (right or wrong)."""

    observation: Observation | None
    """The final response, for the runner's expectation checks; None if not HTTP."""
    bytes_in: int = 0
    """Response body bytes on the wire."""
    bytes_out: int = 0
    """Request body bytes sent."""
    details: dict[str, Any] = field(default_factory=dict)
    """Kind-specific figures for the record."""


class Prober(Protocol):
    """Probes one target once. Raises on a transport fault (the runner classifies it),
    or ``ProbeFailure`` for a fault it has already labelled."""

    def prepare(self, spec: ProbeSpec) -> None:
        """Build, before any clock starts, what the probe needs (e.g. an upload payload)."""

    async def probe(self, spec: ProbeSpec, timeline: Timeline, net: Network) -> ProbeOutcome: ...


async def system_resolver(host: str, port: int) -> list[str]:
    """getaddrinfo in the loop's executor; addresses de-duplicated, order kept."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        ip = str(sockaddr[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses


def _trusted_context() -> ssl.SSLContext:
    # Same trust as httpx: $SSL_CERT_FILE / $SSL_CERT_DIR when set, else certifi's bundle.
    cafile = os.environ.get("SSL_CERT_FILE")
    capath = os.environ.get("SSL_CERT_DIR")
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class Network:
    """Shared, reusable pieces of every attempt. Nothing here holds a connection:
    each attempt opens its own, so a probe always measures the cold path."""

    def __init__(
        self,
        resolver: Resolver = system_resolver,
        trusted: ssl.SSLContext | None = None,
    ) -> None:
        self.resolve = resolver
        self._trusted = trusted
        self._unverified: ssl.SSLContext | None = None

    def prepare(self, specs: Iterable[ProbeSpec]) -> None:
        """Build what the first probe would otherwise build on its own clock: the TLS
        contexts, and httpx's lazily imported HTTP/1.1 machinery."""
        for verify in {s.verify_tls for s in specs if s.url.startswith(("https:", "wss:"))}:
            self.ssl_context(verify)
        # imported on the first connection otherwise, inside the first probe's clock
        import anyio._backends._asyncio  # noqa: F401
        import h11  # noqa: F401
        import httpcore._backends.anyio  # noqa: F401
        import httpx

        transport = httpx.AsyncHTTPTransport(verify=self.ssl_context(False))
        httpx.AsyncClient(transport=transport).build_request("GET", "http://x/")

    def ssl_context(self, verify: bool) -> ssl.SSLContext:
        """One context per verify setting, built once: building one loads the whole CA
        bundle (about 19 ms, HTTPX-NOTES.md)."""
        if verify:
            if self._trusted is None:
                self._trusted = _trusted_context()
            return self._trusted
        if self._unverified is None:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self._unverified = ctx
        return self._unverified
