"""The demo's TCP service: a cache that speaks a line of Redis's protocol (``PING`` is
answered ``+PONG``, anything else ``-ERR unknown command``), for ``kind: tcp`` probes."""

from __future__ import annotations

import asyncio


async def serve_cache(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        line = await reader.readline()
        if not line:
            return
        command = line.strip().upper()
        writer.write(b"+PONG\r\n" if command == b"PING" else b"-ERR unknown command\r\n")
        await writer.drain()
