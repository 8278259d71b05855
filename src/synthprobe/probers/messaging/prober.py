"""``messaging`` probes: open a WebSocket, send a message, wait for the matching reply.

The upgrade runs on the same httpx stack as every HTTP probe, so DNS, connect and TLS
are timed and classified the same way. The session itself is driven here with wsproto
(the protocol library httpx-ws uses) rather than through httpx-ws's session, because a
prober must see what a browser sees and httpx-ws hides it: it accepts a 101 whose
``Sec-WebSocket-Accept`` is wrong or missing, reports the server's protocol violations as
a close with the code *we* sent, and buffers a fragmented message without limit.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import wsproto.events
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.utilities import generate_accept_token

from synthprobe.classify import ProbeFailure
from synthprobe.models import ProbeSpec, Reason
from synthprobe.patterns import search
from synthprobe.probers.base import Network, ProbeOutcome
from synthprobe.probers.exchange import (
    Route,
    client,
    close_quietly,
    each_address,
    resolve,
    route,
)
from synthprobe.probers.messaging import REPLY, MessagingSpec
from synthprobe.timing import Timeline

MAX_MESSAGE = 1024 * 1024
"""Bytes of one message (all its fragments) kept at most: a larger one fails the probe
as ``server.reply`` and is not read further, so a 400 MB frame costs no memory."""
READ = 65536
"""Bytes asked of the socket at a time."""


def matches(message: str, spec: MessagingSpec) -> bool:
    if spec.expect is not None and spec.expect not in message:
        return False
    return spec.expect_regex is None or search(spec.expect_regex, message, "the reply")


def _short(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _protocol(error: str) -> ProbeFailure:
    return ProbeFailure(Reason.NETWORK_PROTOCOL, error)


def check_handshake(headers: Mapping[str, str], key: str) -> None:
    """A 101 a browser would accept (RFC 6455 4.1), else ``network.protocol`` saying
    what is wrong: ``Upgrade: websocket``, ``Connection: Upgrade``, the accept token of
    our key, and no extension or subprotocol we never offered (we offer none)."""
    upgrade = headers.get("upgrade", "")
    if upgrade.strip().lower() != "websocket":
        raise _protocol(f"WebSocket handshake: 101 with Upgrade {_short(upgrade)}, not websocket")
    connection = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if "upgrade" not in connection:
        raise _protocol("WebSocket handshake: 101 without Connection: Upgrade")
    expected = generate_accept_token(key.encode("ascii")).decode("ascii")
    accept = headers.get("sec-websocket-accept")
    if accept is None:
        raise _protocol("WebSocket handshake: 101 without Sec-WebSocket-Accept")
    if accept.strip() != expected:
        raise _protocol(
            f"WebSocket handshake: Sec-WebSocket-Accept {_short(accept)} does not answer "
            f"our key (expected {expected!r})"
        )
    extensions = headers.get("sec-websocket-extensions")
    if extensions:
        raise _protocol(
            f"WebSocket handshake: the server accepted extension {_short(extensions)}, "
            "which we never offered"
        )
    protocol = headers.get("sec-websocket-protocol")
    if protocol:
        raise _protocol(
            f"WebSocket handshake: the server chose subprotocol {_short(protocol)}, "
            "which we never offered"
        )


class MessagingProber:
    """WebSocket round trip: connect, send ``messaging.send``, await ``messaging.expect``."""

    def prepare(self, spec: ProbeSpec) -> None:
        """Nothing to build."""

    async def probe(self, spec: ProbeSpec, timeline: Timeline, net: Network) -> ProbeOutcome:
        options = spec.options
        assert isinstance(options, MessagingSpec)  # the kind's parser requires the block
        url = httpx.URL(spec.url)
        # WebSockets go direct: most HTTP proxies do not pass an Upgrade through
        addresses = await resolve(url, timeline, net, spec.ip_version, spec.resolver)

        async def attempt(ip: str) -> ProbeOutcome:
            via = route(url, ip, spec.headers, timeline)
            async with client(net, spec.verify_tls, tls=url.scheme == "wss") as http:
                return await self._round_trip(options, via, http, timeline)

        return await each_address(addresses, timeline, attempt)

    async def _round_trip(
        self, m: MessagingSpec, via: Route, http: httpx.AsyncClient, timeline: Timeline
    ) -> ProbeOutcome:
        seen = _Seen()
        rtt = await self._exchange(m, via, http, timeline, seen)
        return ProbeOutcome(
            observation=None,
            bytes_in=seen.bytes_in,
            bytes_out=len(m.send.encode()),
            details={"rtt_ms": round(rtt * 1000, 3), "skipped": seen.skipped},
        )

    async def _exchange(
        self,
        m: MessagingSpec,
        via: Route,
        http: httpx.AsyncClient,
        timeline: Timeline,
        seen: _Seen,
    ) -> float:
        """Upgrade, send, and return the seconds from send to the matching reply."""
        key = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
        headers = [
            *via.headers,
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
        ]
        async with http.stream(
            "GET", str(via.url), headers=headers, extensions=via.extensions
        ) as response:
            timeline.status = response.status_code
            if response.status_code != 101:
                raise ProbeFailure(
                    Reason.SERVER_STATUS,
                    f"WebSocket upgrade refused: status {response.status_code}",
                )
            check_handshake(response.headers, key)
            stream = response.extensions["network_stream"]
            try:
                return await _session(m, stream, timeline, seen)
            finally:
                await close_quietly(stream)


async def _session(m: MessagingSpec, stream: Any, timeline: Timeline, seen: _Seen) -> float:
    ws = Connection(ConnectionType.CLIENT)
    sent_at = time.perf_counter()
    await stream.write(ws.send(wsproto.events.TextMessage(data=m.send)))
    timeline.begin(REPLY)
    parts: list[str] = []
    size = 0
    while True:
        data = await stream.read(READ)
        if not data:
            raise _closed(None, seen)
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, wsproto.events.Ping):
                await stream.write(ws.send(event.response()))
                continue
            if isinstance(event, wsproto.events.CloseConnection):
                if ws.state is ConnectionState.OPEN:
                    # wsproto reports a frame it could not accept as a close of its own
                    # (with the code it would send): the server broke the protocol
                    raise _protocol(f"the server broke the WebSocket protocol: {event.reason}")
                raise _closed(event.code, seen)
            if not isinstance(event, wsproto.events.Message):
                continue
            piece = event.data if isinstance(event.data, str) else None
            raw = event.data if isinstance(event.data, bytes | bytearray) else b""
            size += len(piece.encode()) if piece is not None else len(raw)
            if size > MAX_MESSAGE:
                raise ProbeFailure(
                    Reason.SERVER_REPLY,
                    f"a reply longer than {MAX_MESSAGE // 1024} KiB (our cap for one "
                    "WebSocket message): not read further",
                )
            parts.append(piece if piece is not None else bytes(raw).decode("utf-8", "replace"))
            if not event.message_finished:
                continue
            text, parts, size = "".join(parts), [], 0
            seen.bytes_in += len(text.encode())
            if matches(text, m):
                rtt = time.perf_counter() - sent_at
                timeline.end(REPLY)
                return rtt
            seen.skipped += 1
            seen.last = text


@dataclass
class _Seen:
    """Replies that did not match, kept to explain a close."""

    skipped: int = 0
    bytes_in: int = 0
    last: str | None = None


def _closed(code: int | None, seen: _Seen) -> ProbeFailure:
    """The server ended the session before a matching reply: after a wrong reply that is
    the server's answer (``server.reply``); with no reply at all, the connection failed.
    ``code`` is the close code the server sent (None: it closed the connection)."""
    how = f"socket closed by the server (code {code})" if code is not None else "connection closed"
    if seen.last is not None:
        return ProbeFailure(
            Reason.SERVER_REPLY,
            f"{how} before a matching reply; last reply {_short(seen.last)}",
        )
    return ProbeFailure(Reason.NETWORK_CLOSED, f"{how} without any reply")
