"""A minimal HTTP server for benchmarks: every request is answered after a fixed delay.

    python bench/delay_server.py PORT DELAY_MS

asyncio Protocol callbacks, no per-request task, `Connection: close`: it must never be
the bottleneck of what it measures. Prints "ready" once listening.
"""

from __future__ import annotations

import asyncio
import sys

BODY = b'{"status": "ok", "items": [1, 2, 3]}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
    + f"Content-Length: {len(BODY)}\r\n\r\n".encode()
    + BODY
)


class Delayed(asyncio.Protocol):
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.answered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.answered and b"\r\n\r\n" in self.buffer:
            self.answered = True
            asyncio.get_running_loop().call_later(self.delay, self.respond)

    def respond(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(RESPONSE)
            self.transport.close()


async def main(port: int, delay_ms: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Delayed(delay_ms / 1000), "127.0.0.1", port, backlog=8192, reuse_address=True
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
