"""The demo's faults: one table from mode to handler. ``/fault/MODE`` runs one on any
request; ``PUT /_demo/faults/ENDPOINT?mode=MODE`` makes a platform endpoint run it.

Every list of modes (the package docstring, the switch endpoint's answer, its
validation) is derived from ``FAULTS``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from synthprobe.demo.http import REASONS, HttpRequest, float_arg, head, int_arg, respond
from synthprobe.units import is_whole_number

Handler = Callable[[HttpRequest, asyncio.StreamWriter], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Fault:
    handler: Handler
    usage: str
    """How to call it, for the docs: ``ANY /fault/slow?delay=S  answers 200 after...``."""
    switchable: bool = False
    """Whether a platform endpoint can be switched to it."""


async def _reset(req: HttpRequest, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # linger 0: close() sends RST instead of FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _close(req: HttpRequest, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def _garbage(req: HttpRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.2 this is not http\r\n\r\n")
    await writer.drain()


async def _slow_headers(req: HttpRequest, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(float_arg(req.query.get("delay"), 30.0))
    await respond(writer, 200, b"finally\n", "text/plain")


async def _slow(req: HttpRequest, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(float_arg(req.query.get("delay"), 1.0))
    await respond(writer, 200, b'{"status": "ok", "items": []}')


async def _trickle(req: HttpRequest, writer: asyncio.StreamWriter) -> None:
    q = req.query
    size, interval = int_arg(q.get("bytes"), 100), float_arg(q.get("interval"), 0.3)
    writer.write(head(200, size, "text/plain"))
    for _ in range(size):
        await writer.drain()
        await asyncio.sleep(interval)
        writer.write(b"x")
    await writer.drain()


async def _big(req: HttpRequest, writer: asyncio.StreamWriter) -> None:
    size = int_arg(req.query.get("size"), 200 * 1024 * 1024)
    writer.write(head(200, size, "application/octet-stream"))
    block = b"\0" * (256 * 1024)
    sent = 0
    while sent < size:
        piece = block[: min(len(block), size - sent)]
        writer.write(piece)
        await writer.drain()
        sent += len(piece)


def _redirect_to(target: str | None) -> Handler:
    async def redirect(req: HttpRequest, writer: asyncio.StreamWriter) -> None:
        where = target if target is not None else req.query.get("to", "/")
        await respond(writer, 302, b"", extra=[("Location", where)])

    return redirect


async def _headers(req: HttpRequest, writer: asyncio.StreamWriter) -> None:
    await respond(writer, 200, b"{}", extra=list(req.query.items()))


async def _endless(req: HttpRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"e" * 64 * 1024)
    while True:  # until the client goes away
        writer.write(chunk)
        await writer.drain()


async def _huge_headers(req: HttpRequest, writer: asyncio.StreamWriter) -> None:
    pad = "p" * int_arg(req.query.get("size"), 1024 * 1024)
    await respond(writer, 200, b"{}", extra=[("X-Pad", pad)])


async def _cookies(req: HttpRequest, writer: asyncio.StreamWriter) -> None:
    count = int_arg(req.query.get("n"), 1000)
    cookies = [("Set-Cookie", f"c{i}=v{i}; Path=/") for i in range(count)]
    await respond(writer, 200, b'{"status": "ok"}', extra=cookies)


async def _gzip_bomb(req: HttpRequest, writer: asyncio.StreamWriter) -> None:
    body = gzip_of_zeros(int_arg(req.query.get("size"), 1024**3))
    await respond(writer, 200, body, "text/plain", extra=[("Content-Encoding", "gzip")])


async def _silent(req: HttpRequest, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)


def status(code: int) -> Handler:
    """Answers ``code`` with a small JSON body."""

    async def answer(req: HttpRequest, writer: asyncio.StreamWriter) -> None:
        await respond(writer, code, json.dumps({"error": REASONS.get(code, "")}).encode())

    return answer


FAULTS: dict[str, Fault] = {
    "reset": Fault(_reset, "reads the request, then resets the connection (RST)", True),
    "close": Fault(_close, "reads the request, then closes without a reply", True),
    "garbage": Fault(_garbage, "answers something that is not HTTP", True),
    "slow-headers": Fault(
        _slow_headers, "?delay=S  waits S seconds (default 30) before answering", True
    ),
    "slow": Fault(_slow, "?delay=S  answers 200 after S seconds (default 1)", True),
    "trickle": Fault(
        _trickle, "?interval=S&bytes=N  a body of N bytes, one byte every S seconds", True
    ),
    "big": Fault(_big, "?size=N  a body of N bytes (default 200 MiB)", True),
    "redirect": Fault(_redirect_to(None), "?to=PATH  302 to PATH"),
    "redirect-loop": Fault(
        _redirect_to("/fault/redirect-loop-b"),
        "302 to /fault/redirect-loop-b, which 302s back",
        True,
    ),
    "redirect-loop-b": Fault(_redirect_to("/fault/redirect-loop"), "the other half of the loop"),
    "headers": Fault(_headers, "?x=v  200 with the query as response headers"),
    "endless": Fault(_endless, "a chunked body that never ends"),
    "huge-headers": Fault(
        _huge_headers, "?size=N  one response header N bytes long (default 1 MiB)"
    ),
    "cookies": Fault(_cookies, "?n=N  N Set-Cookie headers (default 1000)"),
    "gzip-bomb": Fault(_gzip_bomb, "?size=N  gzip that inflates to N zero bytes (default 1 GiB)"),
    "silent": Fault(_silent, "accepts, reads the request, never answers"),
}
"""``/fault/MODE`` -> its handler; ``/fault/status/CODE`` (or ``/fault/CODE``) answers CODE."""
SWITCHABLE_STATUSES = ("500", "502", "503", "504", "429", "404")
"""Statuses a platform endpoint can be switched to."""
LIVE_MODES = {"stall": "the live playlist stops advancing", "end": "the live playlist ends"}
"""Modes only the live endpoint understands (served by ``hls.py``)."""
CONTENT_MODES = {"stale": "the feed answers 200 with items hours old"}
"""Modes the app's feed understands (served by ``app.py``)."""
FAULT_MODES = (
    *(mode for mode, fault in FAULTS.items() if fault.switchable),
    *SWITCHABLE_STATUSES,
    *LIVE_MODES,
    *CONTENT_MODES,
)
"""What ``PUT /_demo/faults/ENDPOINT?mode=MODE`` accepts."""


def handler_for(mode: str) -> Handler | None:
    """The handler of ``/fault/MODE`` (``status/CODE`` and bare codes included)."""
    if mode.startswith("status/"):
        mode = mode[len("status/") :]
    if is_whole_number(mode):
        return status(int(mode))
    fault = FAULTS.get(mode)
    return fault.handler if fault else None


def usage() -> str:
    """The fault endpoints, one line each, for the package docstring."""
    lines = ["    ANY  /fault/status/CODE       answers CODE"]
    for mode, fault in FAULTS.items():
        query, _, text = fault.usage.rpartition("  ")
        lines.append(f"    ANY  /fault/{mode + query:<24} {text}")
    return "\n".join(lines)


@functools.lru_cache(maxsize=4)
def gzip_of_zeros(size: int) -> bytes:
    """gzip of ``size`` zero bytes, made in 1 MiB steps (never holding ``size`` bytes)."""
    out = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    parts = []
    for start in range(0, size, len(block)):
        parts.append(out.compress(block[: min(len(block), size - start)]))
    parts.append(out.flush())
    return b"".join(parts)
