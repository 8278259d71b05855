"""``messaging`` probes: open a WebSocket, send a message, wait for the matching reply.

The upgrade runs on the same httpx stack as every HTTP probe (httpx-ws), so DNS,
connect and TLS are timed and classified the same way.
"""

from __future__ import annotations

import re
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import httpx
import wsproto.events
from httpx_ws import (
    AsyncWebSocketSession,
    WebSocketDisconnect,
    WebSocketNetworkError,
    WebSocketUpgradeError,
    aconnect_ws,
)

from synthprobe.classify import ProbeFailure, exception_chain
from synthprobe.models import ProbeSpec, Reason
from synthprobe.probers.base import Network, ProbeOutcome
from synthprobe.probers.exchange import (
    Route,
    client,
    each_address,
    resolve,
    route,
)
from synthprobe.probers.messaging import REPLY, MessagingSpec
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
        try:
            rtt = await self._exchange(m, via, http, timeline, seen)
        except WebSocketUpgradeError as exc:
            status = exc.response.status_code
            timeline.status = status
            raise ProbeFailure(
                Reason.SERVER_STATUS, f"WebSocket upgrade refused: status {status}"
            ) from None
        except (WebSocketDisconnect, WebSocketNetworkError, BaseExceptionGroup) as exc:
            failure = _closed(exc, seen)
            if failure is None:
                raise  # not a close: the runner classifies it (or reports a bug of ours)
            raise failure from exc
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
        """Connect, send, and return the seconds from send to the matching reply."""
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
            timeline.begin(REPLY)
            while True:
                event = await ws.receive()
                if isinstance(event, wsproto.events.TextMessage):
                    text = str(event.data)
                elif isinstance(event, wsproto.events.BytesMessage):
                    text = bytes(event.data).decode("utf-8", "replace")
                else:
                    continue
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


def _closed(exc: BaseException, seen: _Seen) -> ProbeFailure | None:
    """The server ended the session before a matching reply: after a wrong reply that is
    the server's answer (``server.reply``); with no reply at all, the connection failed."""
    leaves = list(exception_chain(exc))
    for leaf in leaves:
        if isinstance(leaf, ProbeFailure):
            return leaf
    code = next((e.code for e in leaves if isinstance(e, WebSocketDisconnect)), None)
    how = f"socket closed (code {code})" if code is not None else "connection closed"
    if seen.last is not None:
        return ProbeFailure(
            Reason.SERVER_REPLY,
            f"{how} before a matching reply; last reply {_short(seen.last)}",
        )
    if not any(isinstance(e, WebSocketDisconnect | WebSocketNetworkError) for e in leaves):
        return None
    return ProbeFailure(Reason.NETWORK_CLOSED, f"{how} without any reply")
