"""The demo's WebSocket (RFC 6455, the little a server needs): ``/ws`` answers a message
containing "ping" with ``{"type":"pong"}`` and echoes anything else; ``/ws/wrong``
answers "nope" and closes; ``/ws/silent`` never answers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct

from synthprobe.demo.http import HttpRequest, respond

PATHS = ("/ws", "/ws/wrong", "/ws/silent")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def serve_websocket(
    req: HttpRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    key = req.headers.get("sec-websocket-key")
    if req.headers.get("upgrade", "").lower() != "websocket" or not key:
        await respond(writer, 426, b'{"error": "WebSocket upgrade required"}')
        return
    accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    writer.write(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    while True:
        opcode, payload = await _read_frame(reader)
        if opcode == 0x8:  # close: answer it and stop
            writer.write(_frame(0x8, payload[:2]))
            await writer.drain()
            return
        if opcode == 0x9:
            writer.write(_frame(0xA, payload))
        elif opcode in (0x1, 0x2):
            if req.path == "/ws/silent":
                continue
            if req.path == "/ws/wrong":
                writer.write(_frame(0x1, b"nope") + _frame(0x8, struct.pack("!H", 1000)))
                await writer.drain()
                return
            reply = b'{"type":"pong"}' if b"ping" in payload else payload
            writer.write(_frame(opcode, reply))
        await writer.drain()


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One client frame (RFC 6455 §5.2): (opcode, unmasked payload)."""
    head = await reader.readexactly(2)
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", await reader.readexactly(8))[0]
    if length > 1024 * 1024:
        raise ConnectionError("frame too large")
    mask = await reader.readexactly(4) if head[1] & 0x80 else b"\0\0\0\0"
    data = await reader.readexactly(length)
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def _frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked server frame."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return head + payload
