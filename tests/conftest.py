"""Real servers on 127.0.0.1 for the network paths, and helpers to run probes.

Nothing here reaches beyond loopback: every URL is 127.0.0.1, localhost or *.invalid.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import socket
import ssl
import time
from collections.abc import Generator, Iterator
from typing import Any

import pytest
import trustme
from respx.mocks import HTTPCoreMocker

from synthprobe.config import load_sources
from synthprobe.demo import DemoPlatform, PlatformThread, refused_port
from synthprobe.models import ProbeResult, ProbeSpec
from synthprobe.probers.base import Network
from synthprobe.redact import Redactor
from synthprobe.runner import Runner

from .realprograms import HlsServer, hls_server, websocketd
from .sockets import accepting

# respx mocks httpcore's connection classes by name; the exchange's own connection (a
# subclass that checks HTTP/2 heads as curl does) is one more, so mocked tests reach it
HTTPCoreMocker.add_targets("synthprobe.probers.connection._StrictConnection")

# the tests talk to 127.0.0.1 only: a proxy from the CI environment must not get between
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_name, None)


SLOW_LIMIT = float(os.environ.get("SYNTHPROBE_SLOW_LIMIT", "1.5"))
"""Seconds a test's call may take unless it is marked ``slow``, so ``-m 'not slow'``
stays a quick loop. A slow CI machine raises it: ``SYNTHPROBE_SLOW_LIMIT=3 make test``.
Tests are marked ``slow`` from about half the limit here, so noise does not flip them."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if (
        report.when == "call"
        and report.passed
        and report.duration > SLOW_LIMIT
        and item.get_closest_marker("slow") is None
    ):
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} took {report.duration:.2f}s, over {SLOW_LIMIT}s "
            "(SYNTHPROBE_SLOW_LIMIT): mark it @pytest.mark.slow or make it quicker"
        )
    return report


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    """What a run froze (``Runner.run`` calls ``gc.freeze`` for its short collections)
    is thawed and collected after the test: frozen, an event loop or socket a test left
    open is never collected, so its ResourceWarning would come out in some later test,
    or never."""
    yield
    if gc.get_freeze_count():
        gc.unfreeze()
        gc.collect()


@pytest.fixture(scope="session")
def platform() -> Iterator[DemoPlatform]:
    """The demo platform over plain HTTP: feed, upload and every fault path."""
    with PlatformThread(DemoPlatform()) as running:
        yield running


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_platform(ca: trustme.CA) -> Iterator[DemoPlatform]:
    """The demo platform over TLS, with a certificate for "localhost" only, issued by a
    CA that no trust store has: self-signed as far as any client knows."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(ctx)
    with PlatformThread(DemoPlatform(tls=ctx)) as running:
        yield running


@pytest.fixture(scope="session")
def trusting_network(ca: trustme.CA) -> Network:
    """A Network that trusts the test CA."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return Network(trusted=ctx)


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A port that is bound but not listening: connecting is refused."""
    sock, port = refused_port()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        sock.close()


@pytest.fixture
def backlog_full_url() -> Iterator[str]:
    """A listener that never accepts and whose backlog is full: SYNs go unanswered,
    so a connect can only time out."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(64):  # bounded: the queue of a listen(0) socket holds one or two
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
            time.sleep(0.05)
            try:
                filler.getpeername()
            except OSError:
                break  # this one is left pending: the queue is full
        else:
            pytest.skip("could not fill the listen backlog on this kernel")
        yield f"http://127.0.0.1:{port}"
    finally:
        for filler in fillers:
            filler.close()
        server.close()


@pytest.fixture
def non_reading_server() -> Iterator[str]:
    """Accepts connections and never reads from them: an upload fills the socket buffers
    and then cannot be sent (what an overloaded upload backend does)."""
    with accepting(lambda conn: None, rcvbuf=4096) as port:  # kept open, never read
        yield f"http://127.0.0.1:{port}"


def _answer_400(conn: socket.socket) -> None:
    """Read what the client sent (all of it: a ClientHello may come in pieces), answer,
    then FIN with shutdown: closing with unread bytes would send an RST instead, and the
    probe would see a reset, not the 400."""
    with conn:
        conn.settimeout(0.3)
        with contextlib.suppress(OSError):
            for _ in range(64):  # bounded: at most 64 reads until the client pauses
                if not conn.recv(65536):
                    break
        with contextlib.suppress(OSError):
            conn.sendall(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(1)
            conn.recv(65536)  # until the client closes: nothing left unread at close


@pytest.fixture
def plain_answering_server() -> Iterator[str]:
    """A plain-HTTP server that answers anything, at once, with a 400: what nginx does
    when a TLS ClientHello reaches a plain port."""
    with accepting(_answer_400) as port:
        yield f"http://localhost:{port}"


def specs_from_yaml(text: str, env: dict[str, str] | None = None) -> list[ProbeSpec]:
    return list(load_sources([("test.yaml", text.encode())], env=env or {}).probes)


def run_specs(
    specs: list[ProbeSpec],
    network: Network | None = None,
    secrets: frozenset[str] = frozenset(),
    concurrency: int = 10,
) -> list[ProbeResult]:
    """Run specs through the real runner; return results in spec order."""
    runner = Runner(
        concurrency=concurrency,
        location="test",
        redactor=Redactor(secrets),
        network=network,
    )
    seen: list[ProbeResult] = []
    results = asyncio.run(runner.run(specs, seen.append))
    assert len(seen) == len(results)
    return results


def probe_once(url: str, network: Network | None = None, **fields: Any) -> ProbeResult:
    """Run a single probe (http unless ``kind`` says) at ``url`` with extra config fields."""
    probe = {"name": "p", "url": url, "timeout": "2s", **fields}
    text = "probes:\n  - " + json.dumps(probe)
    [result] = run_specs(specs_from_yaml(text), network)
    return result


@pytest.fixture(scope="session")
def hls() -> Iterator[HlsServer]:
    """ffmpeg making live, ended and killed (stalled) HLS streams, served by nginx."""
    with hls_server() as server:
        yield server


@pytest.fixture(scope="session")
def ws_echo() -> Iterator[str]:
    """websocketd running `cat`: a real WebSocket echo."""
    with websocketd("cat") as url:
        yield url


@pytest.fixture(scope="session")
def ws_wrong_then_close() -> Iterator[str]:
    """websocketd running a script that answers one wrong line and exits (socket closes)."""
    with websocketd("sh", "-c", "read line; echo nope") as url:
        yield url


@pytest.fixture
def platform_url(platform: DemoPlatform) -> str:
    """The shared demo platform's base URL."""
    return platform.base_url
