"""The demo platform's server: routing, the platform's own endpoints, switchable faults."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from synthprobe.demo.app import login, my_feed, video
from synthprobe.demo.faults import CONTENT_MODES, FAULT_MODES, LIVE_MODES, handler_for
from synthprobe.demo.h2 import feed_body, serve_h2, throwaway_tls
from synthprobe.demo.hls import VARIANT_MODES, serve_live
from synthprobe.demo.http import HttpRequest, int_arg, respond
from synthprobe.demo.tcp import serve_cache
from synthprobe.demo.websocket import PATHS as WEBSOCKET_PATHS
from synthprobe.demo.websocket import serve_websocket

MAX_HEAD = 64 * 1024
ENDPOINTS = {
    "/v1/feed": "feed",
    "/v1/feed/trending": "trending",
    "/v1/media": "upload",
    "/live/main/index.m3u8": "live",
    "/live/master.m3u8": "live",
    "/live/ladder/master.m3u8": "live-variant",
    "/ws": "chat",
    "/v1/me/feed": "myfeed",
    "/v1/videos/": "videos",
}
"""Platform paths -> the endpoint name a fault can be switched on."""


@dataclass
class DemoPlatform:
    """The server. ``await start()``, use ``base_url``, ``await close()``."""

    host: str = "127.0.0.1"
    port: int = 0
    tls: ssl.SSLContext | None = None
    extras: bool = False
    """Also listen on ``tls_port`` (TLS offering HTTP/2 and HTTP/1.1 by ALPN, with the
    throwaway certificate) and ``tcp_port`` (a cache that answers PING)."""
    tls_port: int = 0
    tcp_port: int = 0
    grpc_port: int = 0
    """The gRPC health service (demo/grpc.py, one service up, one down); with ``extras``."""
    faults: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    _server: asyncio.Server | None = None
    _extra_servers: list[asyncio.Server] = field(default_factory=list)
    _grpc: Any = None
    _quic: Any = None
    """The HTTP/3 listener (demo/h3.py) on UDP ``tls_port``; with ``extras``."""
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    upload_bytes: list[int] = field(default_factory=list)
    """Body bytes the server read, per upload, in order (what a prober sent)."""
    _uploads: int = 0
    _media: dict[str, float] = field(default_factory=dict)
    _tokens: set[str] = field(default_factory=set)
    _started: float = field(default_factory=time.time)

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept,
            self.host,
            self.port,
            ssl=self.tls,
            reuse_address=True,
            limit=MAX_HEAD,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.extras:
            tls = await asyncio.start_server(
                self._accept_tls, self.host, self.tls_port, ssl=throwaway_tls(), limit=MAX_HEAD
            )
            tcp = await asyncio.start_server(
                functools.partial(self._tracked, serve_cache), self.host, self.tcp_port
            )
            self._extra_servers += [tls, tcp]
            self.tls_port = tls.sockets[0].getsockname()[1]
            self.tcp_port = tcp.sockets[0].getsockname()[1]
            # HTTP/3 on the TLS port's number over UDP, as an app's edge serves it (qh3
            # imported only here: a demo without extras never loads it)
            from synthprobe.demo.h3 import serve_h3

            self._quic = await serve_h3(self.host, self.tls_port)
            # grpclib and protobuf imported only here, as qh3 is
            from synthprobe.demo.grpc import serve_grpc_health

            self._grpc, self.grpc_port = await serve_grpc_health(self.host, self.grpc_port)

    @property
    def tls_url(self) -> str:
        """The TLS port (HTTP/2 or HTTP/1.1, as the client offers); with ``extras``."""
        return f"https://{self.host}:{self.tls_port}"

    @property
    def grpc_url(self) -> str:
        """The gRPC health service's ``grpc://`` address; with ``extras``."""
        return f"grpc://{self.host}:{self.grpc_port}"

    @property
    def tcp_url(self) -> str:
        """The cache's ``tcp://`` address; with ``extras``."""
        return f"tcp://{self.host}:{self.tcp_port}"

    async def close(self) -> None:
        for extra in self._extra_servers:
            extra.close()
        if self._quic is not None:
            self._quic.close()
        if self._grpc is not None:
            self._grpc.close()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._tracked(self._serve, reader, writer)

    async def _accept_tls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        chosen = writer.get_extra_info("ssl_object").selected_alpn_protocol()
        await self._tracked(serve_h2 if chosen == "h2" else self._serve, reader, writer)

    async def _tracked(
        self,
        handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """Run a connection's handler; ``close`` cancels it; a client leaving is normal."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass  # the client left: normal for a prober that stops reading at max_body
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.LimitOverrunError, asyncio.IncompleteReadError, ValueError):
            return
        self.requests += 1
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            await respond(writer, 400, b"bad request line\n")
            return
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        parts = urlsplit(target)
        request = HttpRequest(method, parts.path, dict(parse_qsl(parts.query)), headers)
        length = int(headers.get("content-length", "0") or 0)
        remaining = length
        while remaining > 0:
            chunk = await reader.read(min(remaining, 256 * 1024))
            if not chunk:
                break
            remaining -= len(chunk)
            request.body_bytes += len(chunk)
            if len(request.body) < 64 * 1024:
                request.body += chunk[: 64 * 1024 - len(request.body)]
        await self._route(request, reader, writer)

    async def _route(
        self, req: HttpRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if req.path.startswith("/_demo/faults"):
            await self._switch(req, writer)
            return
        if req.path.startswith("/fault/"):
            mode = req.path[len("/fault/") :]
            await self._fault(mode, req, writer)
            return
        endpoint = ENDPOINTS.get(req.path, "")
        if req.path.startswith("/v1/videos/"):
            endpoint = "videos"
        switched = self.faults.get(endpoint)
        if (
            switched
            and endpoint != "live-variant"  # the ladder's modes are its own (hls.py)
            and switched not in LIVE_MODES
            and switched not in CONTENT_MODES
        ):
            await self._fault(switched, req, writer)
            return
        if req.path == "/v1/login" and req.method == "POST":
            await login(req, writer, self._tokens)
            return
        if req.path == "/v1/me/feed":
            await my_feed(req, writer, self._tokens, stale=switched == "stale")
            return
        if req.path.startswith("/v1/videos/"):
            await video(req, writer)
            return
        if req.path.startswith("/live/"):
            await serve_live(
                req,
                writer,
                self.faults.get("live"),
                self._started,
                self.faults.get("live-variant"),
            )
            return
        if req.path in WEBSOCKET_PATHS:
            await serve_websocket(req, reader, writer)
            return
        if req.path.startswith("/v1/media/"):
            await self._media_item(req, writer)
            return
        if req.path == "/healthz":
            await respond(writer, 200, b"ok\n", "text/plain")
        elif req.path in ("/v1/feed", "/v1/feed/trending"):
            if req.path.endswith("trending"):
                await asyncio.sleep(0.02)
            await respond(writer, 200, feed_body(int_arg(req.query.get("limit"), 10)))
        elif req.path == "/v1/media":
            if req.method != "POST":
                await respond(writer, 405, b'{"error": "POST only"}')
                return
            self._uploads += 1
            self.upload_bytes.append(req.body_bytes)
            media_id = f"media-{self._uploads}"
            self._media[media_id] = time.time() + 0.2  # "transcoding" before it is served
            body = json.dumps(
                {"id": media_id, "bytes": req.body_bytes, "url": f"/v1/media/{media_id}"}
            ).encode()
            await respond(writer, 201, body)
        else:
            await respond(writer, 404, b'{"error": "not found"}')

    async def _media_item(self, req: HttpRequest, writer: asyncio.StreamWriter) -> None:
        media_id = req.path.rsplit("/", 1)[1]
        ready = self._media.get(media_id)
        if req.method == "DELETE":
            self._media.pop(media_id, None)
            await respond(writer, 204 if ready else 404, b"")
        elif ready is None or time.time() < ready:
            await respond(writer, 404, b'{"error": "not available yet"}')
        else:
            await respond(writer, 200, json.dumps({"id": media_id, "ready": True}).encode())

    async def _switch(self, req: HttpRequest, writer: asyncio.StreamWriter) -> None:
        name = req.path[len("/_demo/faults") :].strip("/")
        if req.method == "GET" and not name:
            await respond(writer, 200, json.dumps(self.faults).encode())
            return
        if name not in ENDPOINTS.values():
            msg = {"error": f"unknown endpoint {name!r}", "endpoints": sorted(ENDPOINTS.values())}
            await respond(writer, 404, json.dumps(msg).encode())
            return
        if req.method == "DELETE":
            self.faults.pop(name, None)
        elif req.method in ("PUT", "POST"):
            mode = req.query.get("mode", "")
            modes = list(VARIANT_MODES) if name == "live-variant" else list(FAULT_MODES)
            if mode not in modes:
                msg = {"error": f"unknown mode {mode!r}", "modes": modes}
                await respond(writer, 400, json.dumps(msg).encode())
                return
            self.faults[name] = mode
        await respond(writer, 200, json.dumps(self.faults).encode())

    async def _fault(self, mode: str, req: HttpRequest, writer: asyncio.StreamWriter) -> None:
        handler = handler_for(mode)
        if handler is None:
            await respond(writer, 404, json.dumps({"error": f"unknown fault {mode!r}"}).encode())
            return
        await handler(req, writer)


def refused_port() -> tuple[socket.socket, int]:
    """A bound, non-listening socket: connecting to its port is refused, and nobody else
    can take the port while we hold it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


class PlatformThread:
    """Runs a ``DemoPlatform`` on its own event loop in a daemon thread, so a blocking
    caller (``probe demo``, the test suite) can probe it from its own loop."""

    def __init__(self, platform: DemoPlatform) -> None:
        self.platform = platform
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="synthprobe-demo"
        )

    def __enter__(self) -> DemoPlatform:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.platform.start(), self._loop).result(10)
        return self.platform

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.platform.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
