"""The demo's HTTP/2: a TLS listener that offers h2 and http/1.1 by ALPN, as a real
platform's edge does. Clients that choose h2 get the feed over HTTP/2 (the h2 library);
those that choose HTTP/1.1 get the whole platform as on the plain port.

The certificate is a throwaway, self-signed one shipped with the package (its key is
public on purpose): no trust store knows it, so the bundled config sets
``verify_tls: false`` for the probes that use it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from importlib.resources import as_file, files

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from synthprobe.demo.http import HttpRequest
from synthprobe.units import is_whole_number


def throwaway_tls() -> ssl.SSLContext:
    """A server context with the packaged throwaway certificate, offering h2 and http/1.1."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    package = files("synthprobe.demo")
    with (
        as_file(package.joinpath("throwaway-cert.pem")) as cert,
        as_file(package.joinpath("throwaway-key.pem")) as key,
    ):
        ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


def feed_body(limit: int) -> bytes:
    """The platform's feed: ``limit`` items (at most 100)."""
    items = [
        {"id": f"post-{i}", "author": f"creator{i % 7}", "likes": i * 17}
        for i in range(max(0, min(limit, 100)))
    ]
    return json.dumps({"status": "ok", "items": items, "next": None}).encode()


def _answer(req: HttpRequest) -> tuple[int, bytes]:
    if req.path in ("/v1/feed", "/v1/feed/trending"):
        limit = req.query.get("limit", "10")
        return 200, feed_body(int(limit) if is_whole_number(limit) else 10)
    if req.path == "/healthz":
        return 200, b"ok\n"
    return 404, b'{"error": "not found over HTTP/2"}'


async def serve_h2(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One HTTP/2 connection: answer every request, until the client goes away."""
    from urllib.parse import parse_qsl, urlsplit

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    writer.write(conn.data_to_send())
    await writer.drain()
    while True:
        data = await reader.read(65536)
        if not data:
            return
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            writer.write(conn.data_to_send())
            await writer.drain()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                headers = {k.decode(): v.decode() for k, v in event.headers}
                parts = urlsplit(headers.get(":path", "/"))
                req = HttpRequest(
                    headers.get(":method", "GET"), parts.path, dict(parse_qsl(parts.query)), {}
                )
                status, body = _answer(req)
                conn.send_headers(
                    event.stream_id,
                    [
                        (":status", str(status)),
                        ("content-type", "application/json"),
                        ("content-length", str(len(body))),
                        ("server", "synthprobe-demo"),
                    ],
                )
                conn.send_data(event.stream_id, body, end_stream=True)
        writer.write(conn.data_to_send())
        await writer.drain()
