"""The prober interface and what every prober shares (TLS contexts, the resolver)."""

from __future__ import annotations

import asyncio
import functools
import os
import queue
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from synthprobe.expect import Observation
from synthprobe.models import HttpVersion, ProbeSpec
from synthprobe.probers.attempt import Attempt

if TYPE_CHECKING:
    import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) -> IP addresses in preference order; raises socket.gaierror."""


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """What a prober returns when an exchange completed (right or wrong)."""

    observation: Observation
    """What it saw, of the type its kind declares (``KindInfo.observes``), for the
    runner's judge (``expect.judge``)."""
    bytes_in: int = 0
    """Response body bytes on the wire."""
    bytes_out: int = 0
    """Request body bytes sent."""


KindOptions = TypeVar("KindOptions", contravariant=True)


class Prober(Protocol[KindOptions]):
    """Probes one target once. Raises on a transport fault (the runner classifies it),
    or ``ProbeFailure`` for a fault it has already labelled.

    Typed by the options its kind's block reads into (``Prober[TcpSpec]`` takes a
    ``ProbeSpec[TcpSpec]``): the config made them with the kind's own parser, so a
    prober never checks what it was given."""

    def prepare(self, spec: ProbeSpec[KindOptions]) -> None:
        """Build, before any clock starts, what the probe needs (e.g. an upload payload)."""

    async def probe(
        self, spec: ProbeSpec[KindOptions], attempt: Attempt, net: Network
    ) -> ProbeOutcome: ...


class DaemonThreads(Executor):
    """A thread pool whose threads never hold up exit.

    getaddrinfo cannot be cancelled: a lookup cut by our deadline keeps its thread until
    the resolver gives up (30 s and more). ThreadPoolExecutor joins its threads at
    interpreter exit, so one hung lookup would keep a SIGTERMed run alive; these threads
    are daemons and are abandoned instead.
    """

    def __init__(self, max_workers: int) -> None:
        self._max = max(1, max_workers)
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((future, lambda: fn(*args, **kwargs)))
        with self._lock:
            if self._idle == 0 and self._threads < self._max:
                self._threads += 1
                threading.Thread(target=self._work, daemon=True, name="synthprobe-dns").start()
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._queue.get()
            with self._lock:
                self._idle -= 1
            if item is None:
                return
            future, call = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:  # handed to the awaiting coroutine
                future.set_exception(exc)

    def grow(self, max_workers: int) -> None:
        """Allow up to ``max_workers`` threads: lookups must not queue behind each other
        (a queued lookup's wait would show as DNS time)."""
        with self._lock:
            self._max = max(self._max, max_workers)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Ask idle threads to stop; never wait for a busy one."""
        with self._lock:
            threads = self._threads
        for _ in range(threads):
            self._queue.put(None)

    def forget_threads(self) -> None:
        """After fork: the parent's threads do not exist in the child."""
        self._queue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = self._idle = 0


DNS_THREADS = DaemonThreads(64)
"""Shared by every lookup of the process: sized for concurrency, never joined at exit."""
os.register_at_fork(after_in_child=DNS_THREADS.forget_threads)


class Addresses(list[str]):
    """Addresses in the order to try, and when the lookup finished (perf_counter), as
    the thread that made it saw it: a busy event loop notices later."""

    resolved_at: float | None = None


async def system_resolver(host: str, port: int) -> list[str]:
    """getaddrinfo in daemon threads; addresses de-duplicated, order kept."""

    def lookup() -> tuple[list[Any], float]:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        return infos, time.perf_counter()

    loop = asyncio.get_running_loop()
    infos, done = await loop.run_in_executor(DNS_THREADS, lookup)
    addresses = Addresses()
    addresses.resolved_at = done
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


def offers_h2(spec: ProbeSpec) -> bool:
    """Whether the probe offers HTTP/2 by ALPN: over TLS, unless it asks for HTTP/1.1."""
    return spec.http_version is not HttpVersion.HTTP1 and spec.url.startswith("https:")


def env_proxies() -> dict[str, str]:
    """HTTP_PROXY, HTTPS_PROXY and NO_PROXY (either case) from the environment."""
    return {
        k: v
        for k, v in urllib.request.getproxies_environment().items()
        if k in ("http", "https", "no")
    }


class Network:
    """Shared, reusable pieces of every attempt. Nothing here holds a connection:
    each attempt opens its own, so a probe always measures the cold path."""

    def __init__(
        self,
        resolver: Resolver = system_resolver,
        trusted: ssl.SSLContext | None = None,
        proxies: dict[str, str] | None = None,
    ) -> None:
        self.resolve = resolver
        self.proxies = proxies or {}
        """scheme -> proxy URL, and "no" -> the NO_PROXY list, as urllib reads them."""
        self._trusted = trusted
        self._contexts: dict[tuple[bool, bool], ssl.SSLContext] = {}

    def proxy_for(self, url: httpx.URL) -> str | None:
        """The proxy for an http(s) URL, honouring NO_PROXY; None to go direct."""
        proxy = self.proxies.get(url.scheme)
        # proxy_bypass_environment is urllib's NO_PROXY matcher (public, not in typeshed)
        bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
        if not proxy or bypass(url.host, self.proxies):
            return None
        return proxy

    def prepare(self, specs: Iterable[ProbeSpec]) -> None:
        """Build what the first probe would otherwise build on its own clock: the TLS
        contexts, and httpx's lazily imported HTTP/1.1 (and, if used, HTTP/2) machinery."""
        tls = [s for s in specs if s.url.startswith(("https:", "wss:", "tls:"))]
        for spec in tls:
            self.ssl_context(spec.verify_tls, h2=offers_h2(spec))
        # imported on the first connection otherwise, inside the first probe's clock
        import anyio._backends._asyncio  # noqa: F401
        import h11  # noqa: F401
        import httpcore._backends.anyio
        import httpx

        if tls:
            "localhost".encode("idna")  # ssl encodes SNI names with it: a lazy codec import
        if any(s.http_version is HttpVersion.HTTP3 for s in tls):
            # qh3, and its first ClientHello's one-off set-up: ~90 ms of a busy loop
            from synthprobe.probers.quic import trust_of

            if any(s.verify_tls for s in tls):
                trust_of(self.ssl_context(True))
        if any(offers_h2(s) for s in tls):
            import h2.connection  # noqa: F401
            import httpcore._async.http2  # noqa: F401
        transport = httpx.AsyncHTTPTransport(verify=self.no_tls)
        httpx.AsyncClient(transport=transport).build_request("GET", "http://x/")

    @functools.cached_property
    def no_tls(self) -> ssl.SSLContext:
        """For connections without TLS, which httpx still gives a context: a bare one,
        since building a verifying one loads the whole CA bundle."""
        return self._new_context(verify=False)

    def ssl_context(self, verify: bool, *, h2: bool = False) -> ssl.SSLContext:
        """One context per verify setting and ALPN offer, built once: building one loads
        the whole CA bundle (about 19 ms), and httpcore sets the ALPN protocols on the
        context at every connect, so HTTP/1.1-only and HTTP/2 attempts must not share
        one (docs/httpx.md)."""
        key = (verify, h2)
        found = self._contexts.get(key)
        if found is None:
            found = self._contexts[key] = self._new_context(verify)
        return found

    def _new_context(self, verify: bool) -> ssl.SSLContext:
        if not verify:
            # create_default_context would load the CA bundle only to never use it
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        if self._trusted is None:
            return _trusted_context()
        # a caller's trust (a test CA): the same certificates in a context of our own
        ctx = ssl.create_default_context()
        ders = self._trusted.get_ca_certs(binary_form=True)
        ctx.load_verify_locations(cadata=b"".join(ders))
        return ctx
