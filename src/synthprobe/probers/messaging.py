"""``messaging`` probes: open a WebSocket, send a message, wait for the matching reply.

The upgrade runs on the same httpx stack as every HTTP probe (httpx-ws), so DNS,
connect and TLS are timed and classified the same way.
"""

from __future__ import annotations

import asyncio
import re
import time
from contextlib import AbstractAsyncContextManager

import httpx
import wsproto.events
from httpx_ws import (
    AsyncWebSocketSession,
    WebSocketDisconnect,
    WebSocketNetworkError,
    WebSocketUpgradeError,
    aconnect_ws,
)

from synthprobe.classify import ProbeFailure
from synthprobe.models import Failure, MessagingSpec, ProbeSpec
from synthprobe.probers.base import Network, ProbeOutcome
from synthprobe.probers.exchange import (
    Route,
    client,
    close_quietly,
    next_address,
    resolve,
    route,
)
from synthprobe.timing import Timeline

MAX_MESSAGE = 1024 * 1024


def matches(message: str, spec: MessagingSpec) -> bool:
    if spec.expect is not None and spec.expect not in message:
        return False
    return spec.expect_regex is None or re.search(spec.expect_regex, message) is not None


def _short(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


class MessagingProber:
    """WebSocket round trip: connect, send ``messaging.send``, await ``messaging.expect``."""

    def prepare(self, spec: ProbeSpec) -> None:
        """Nothing to build."""

    async def probe(self, spec: ProbeSpec, timeline: Timeline, net: Network) -> ProbeOutcome:
        assert spec.messaging is not None  # config.py requires the block for this kind
        url = httpx.URL(spec.url)
        addresses = await resolve(url, timeline, net)
        for index, ip in enumerate(addresses):
            via = route(url, ip, spec.headers, timeline)
            async with client(net, spec.verify_tls) as http:
                try:
                    return await self._round_trip(spec.messaging, via, http, timeline)
                except httpx.ConnectError as exc:
                    if next_address(exc, timeline, index, addresses):
                        continue
                    raise
                except asyncio.CancelledError:
                    # see exchange.py: a handshake cut by our deadline leaves the socket open
                    await close_quietly(timeline.stream)
                    raise
        raise AssertionError("unreachable: the last address raises")

    async def _round_trip(
        self, m: MessagingSpec, via: Route, http: httpx.AsyncClient, timeline: Timeline
    ) -> ProbeOutcome:
        try:
            connect: AbstractAsyncContextManager[AsyncWebSocketSession] = aconnect_ws(
                str(via.url),
                http,
                headers=dict(via.headers),  # httpx-ws adds its upgrade headers with .update
                extensions=via.extensions,
                max_message_size_bytes=MAX_MESSAGE,
                keepalive_ping_interval_seconds=None,  # one round trip: no keep-alive pings
            )
            async with connect as ws:
                timeline.status = 101
                sent_at = time.perf_counter()
                await ws.send_text(m.send)
                timeline.begin("reply")
                skipped, received = 0, 0
                last: str | None = None
                while True:
                    try:
                        event = await ws.receive()
                    except WebSocketDisconnect as exc:
                        seen = f"; last reply {_short(last)}" if last is not None else ""
                        raise ProbeFailure(
                            Failure.SERVER,
                            "server.reply",
                            f"socket closed (code {exc.code}) before a matching reply{seen}",
                        ) from None
                    if isinstance(event, wsproto.events.TextMessage):
                        text = str(event.data)
                    elif isinstance(event, wsproto.events.BytesMessage):
                        text = bytes(event.data).decode("utf-8", "replace")
                    else:
                        continue
                    received += len(text.encode())
                    if matches(text, m):
                        rtt = time.perf_counter() - sent_at
                        timeline.end("reply")
                        break
                    skipped += 1
                    last = text
        except WebSocketUpgradeError as exc:
            status = exc.response.status_code
            timeline.status = status
            raise ProbeFailure(
                Failure.SERVER, "server.status", f"WebSocket upgrade refused: status {status}"
            ) from None
        except WebSocketNetworkError as exc:
            raise ProbeFailure(
                Failure.NETWORK, "network.closed", f"WebSocket connection lost: {exc}"
            ) from None
        return ProbeOutcome(
            observation=None,
            bytes_in=received,
            bytes_out=len(m.send.encode()),
            details={"rtt_ms": round(rtt * 1000, 3), "skipped": skipped},
        )
