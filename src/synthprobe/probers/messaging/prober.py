"""``messaging`` probes: open a WebSocket, send a message, wait for the matching reply.

The upgrade runs on the same httpx stack as every HTTP probe, so DNS, connect and TLS
are timed and classified the same way. The session itself is driven here with wsproto's
frame layer (the protocol library httpx-ws uses) rather than through httpx-ws, because a
prober must see what a browser sees and httpx-ws hides it: it accepts a 101 whose
``Sec-WebSocket-Accept`` is wrong or missing, reports the server's protocol violations as
a close with the code *we* would send, and buffers a fragmented message without limit
(its ``max_message_size_bytes`` only sizes reads; the pieces are concatenated until the
last frame). wsproto itself hands a data frame on in pieces as its bytes arrive, so the
only buffer of server-sized data is ours, bounded by the probe's ``max_body``.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpcore
import httpx
from wsproto.frame_protocol import (
    LOCAL_ONLY_CLOSE_REASONS,
    CloseReason,
    Frame,
    FrameProtocol,
    Opcode,
    ParseFailed,
)
from wsproto.utilities import generate_accept_token

from synthprobe.classify import ProbeFailure
from synthprobe.expect import Reply, reply_matches
from synthprobe.models import ProbeSpec, Reason
from synthprobe.probers.attempt import Attempt
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
from synthprobe.units import format_size

READ = 65536
"""Bytes asked of the socket at a time: also the most wsproto ever holds unparsed."""


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


_PROTOCOL_CODES = frozenset(CloseReason) - frozenset(LOCAL_ONLY_CLOSE_REASONS)
"""Close codes 1000-2999 a peer may send (RFC 6455 7.4, as wsproto knows them)."""


def close_code_fault(code: int) -> str | None:
    """Why a close code must not be on the wire (RFC 6455 7.4), or None if it may be."""
    if code in LOCAL_ONLY_CLOSE_REASONS:
        return "reserved to report a close locally, never sent"
    if code < 1000 or code > 4999:
        return "outside 1000-4999"
    if code < 3000 and code not in _PROTOCOL_CODES:
        return "reserved by RFC 6455"
    return None


class _ServerFrames(FrameProtocol):
    """wsproto's client frame layer, keeping the close code the server put on the wire:
    wsproto reports 1005 for a close without a code, and rejects a bad code without
    naming it."""

    def __init__(self) -> None:
        super().__init__(client=True, extensions=[])
        self.close_code: int | None = None

    def _process_close(self, frame: Frame) -> Frame:
        payload = frame.payload
        if isinstance(payload, bytes | bytearray) and len(payload) >= 2:
            (self.close_code,) = struct.unpack("!H", payload[:2])
            fault = close_code_fault(self.close_code)
            if fault is not None:
                raise ParseFailed(
                    f"the server sent close code {self.close_code}, which is not allowed "
                    f"on the wire ({fault})"
                )
        return super()._process_close(frame)


_VIOLATIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(wsproto_says), ours)
    for wsproto_says, ours in (
        (
            r"^client received unexpected masked frame",
            "the server sent a masked frame (a server must never mask, RFC 6455 5.1)",
        ),
        (r"^Invalid opcode (0x[0-9a-f]+)", "the server sent reserved opcode {0}"),
        (
            r"^Reserved bit set unexpectedly",
            "the server set a reserved bit (RSV1-3) with no extension agreed",
        ),
        (r"^Invalid attempt to fragment control frame", "the server fragmented a control frame"),
        (
            r"^Control frame with payload len > 125",
            "the server sent a control frame longer than 125 bytes",
        ),
        (
            r"^(Payload length used .*|8-byte payload length with non-zero MSB)",
            "the server sent a malformed frame length ({0})",
        ),
        (
            r"^unexpected CONTINUATION",
            "the server sent a continuation frame with no message to continue",
        ),
        (
            r"^expected CONTINUATION",
            "the server began a new message before it finished the previous one",
        ),
        (r"^CLOSE with 1 byte payload", "the server sent a close frame of 1 byte (a code takes 2)"),
        (r"^Error decoding CLOSE reason: (.*)", "invalid UTF-8 in the server's close reason ({0})"),
        (r"^(.*codec can't decode.*)", "invalid UTF-8 in a text message ({0})"),
    )
)
"""wsproto's words for a frame it refuses, and ours (what the server did); a message
wsproto adds later still reaches the user, in wsproto's words."""


def violation(exc: ParseFailed) -> str:
    """What the server did wrong, from wsproto's refusal of its frames."""
    text = str(exc)
    for pattern, ours in _VIOLATIONS:
        found = pattern.match(text)
        if found is not None:
            return ours.format(*(int(g, 16) if g.startswith("0x") else g for g in found.groups()))
    return text


class MessagingProber:
    """WebSocket round trip: connect, send ``messaging.send``, await ``messaging.expect``."""

    def prepare(self, spec: ProbeSpec[MessagingSpec]) -> None:
        """Nothing to build."""

    async def probe(
        self, spec: ProbeSpec[MessagingSpec], attempt: Attempt, net: Network
    ) -> ProbeOutcome:
        options = spec.options
        url = httpx.URL(spec.url)
        # WebSockets go direct: most HTTP proxies do not pass an Upgrade through
        headers = attempt.sending("GET", url, spec.headers)  # the upgrade's traceparent
        addresses = await resolve(url, attempt, net, spec.ip_version, spec.resolver)

        async def at_address(ip: str) -> ProbeOutcome:
            via = route(url, ip, headers, attempt)
            async with client(net, spec.verify_tls, tls=url.scheme == "wss") as http:
                return await self._round_trip(options, via, http, attempt, spec.max_body)

        return await each_address(addresses, attempt, at_address)

    async def _round_trip(
        self,
        m: MessagingSpec,
        via: Route,
        http: httpx.AsyncClient,
        attempt: Attempt,
        cap: int,
    ) -> ProbeOutcome:
        seen = _Seen()
        rtt = await self._exchange(m, via, http, attempt, seen, cap)
        attempt.details.update(rtt_ms=round(rtt * 1000, 3), skipped=seen.skipped)
        return ProbeOutcome(Reply(), bytes_in=seen.bytes_in, bytes_out=len(m.send.encode()))

    async def _exchange(
        self,
        m: MessagingSpec,
        via: Route,
        http: httpx.AsyncClient,
        attempt: Attempt,
        seen: _Seen,
        cap: int,
    ) -> float:
        """Upgrade, send, and return the seconds from send to the matching reply; a
        message longer than ``cap`` bytes fails the probe."""
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
            attempt.status = response.status_code
            if response.status_code != 101:
                raise ProbeFailure(
                    Reason.SERVER_STATUS,
                    f"WebSocket upgrade refused: status {response.status_code}",
                )
            check_handshake(response.headers, key)
            stream = response.extensions["network_stream"]
            try:
                return await _session(m, stream, attempt, seen, cap)
            finally:
                await close_quietly(stream)


async def _session(
    m: MessagingSpec, stream: httpcore.AsyncNetworkStream, attempt: Attempt, seen: _Seen, cap: int
) -> float:
    frames = _ServerFrames()
    sent_at = time.perf_counter()
    await stream.write(bytes(frames.send_data(m.send, fin=True)))
    attempt.clock.begin(REPLY)
    parts: list[str | bytes | bytearray] = []
    size = 0
    while True:
        data = await stream.read(READ)
        if not data:
            raise _closed(None, seen)
        frames.receive_bytes(data)
        try:
            # wsproto hands a data frame on in pieces as its bytes arrive, so at most
            # READ bytes wait in its buffer; the message is ours to bound (``cap``)
            for frame in frames.received_frames():
                if frame.opcode is Opcode.PING:
                    assert isinstance(frame.payload, bytes | bytearray)
                    await stream.write(bytes(frames.pong(bytes(frame.payload))))
                    continue
                if frame.opcode is Opcode.CLOSE:
                    assert isinstance(frame.payload, tuple)
                    raise _closed((frames.close_code, str(frame.payload[1])), seen)
                if frame.opcode not in (Opcode.TEXT, Opcode.BINARY):
                    continue  # a pong
                piece = frame.payload
                assert isinstance(piece, str | bytes | bytearray)
                size += len(piece.encode()) if isinstance(piece, str) else len(piece)
                if size > cap:
                    raise ProbeFailure(
                        Reason.SERVER_REPLY,
                        f"a WebSocket message longer than {format_size(cap)} (max_body, "
                        "our cap for one WebSocket message): not read further",
                    )
                parts.append(piece)
                if not frame.message_finished:
                    continue
                text, parts, size = _text(parts), [], 0
                seen.bytes_in += len(text.encode())
                if reply_matches(text, m):
                    rtt = time.perf_counter() - sent_at
                    attempt.clock.end(REPLY)
                    return rtt
                seen.skipped += 1
                seen.last = text
                # one read can hold thousands of replies, each searched for up to the
                # pattern's budget: let the deadline (and signals) act between them
                await asyncio.sleep(0)
        except ParseFailed as exc:
            raise _protocol(f"WebSocket protocol error: {violation(exc)}") from None


def _text(parts: list[str | bytes | bytearray]) -> str:
    """A whole message as text: a binary one decoded once whole, so a character split
    between two frames is not mangled."""
    if all(isinstance(p, str) for p in parts):
        return "".join(str(p) for p in parts)
    return b"".join(p for p in parts if not isinstance(p, str)).decode("utf-8", "replace")


@dataclass
class _Seen:
    """Replies that did not match, kept to explain a close."""

    skipped: int = 0
    bytes_in: int = 0
    last: str | None = None


def _closed(close: tuple[int | None, str] | None, seen: _Seen) -> ProbeFailure:
    """The server ended the session before a matching reply: after a wrong reply that is
    the server's answer (``server.reply``); with no reply at all, the connection failed.
    ``close`` is the code (None: none on the wire) and reason of the server's close
    frame; None: the connection ended without one."""
    if close is None:
        how = "connection closed by the server"
    else:
        code, reason = close
        said = f"code {code}" if code is not None else "no close code"
        how = f"socket closed by the server ({said}{', ' + _short(reason) if reason else ''})"
    if seen.last is not None:
        return ProbeFailure(
            Reason.SERVER_REPLY,
            f"{how} before a matching reply; last reply {_short(seen.last)}",
        )
    return ProbeFailure(Reason.NETWORK_CLOSED, f"{how} without any reply")
