"""A small HTTP/2 server of our own (the h2 library over TLS), for what nginx will not do
on request: reset a stream or close the connection before answering.

    /rst      RST_STREAM (INTERNAL_ERROR) instead of a response
    /goaway   GOAWAY (ENHANCE_YOUR_CALM) instead of a response
    a path in ``crafted``: that header block, sent as it is (h2's own checks of what it
        sends are off), then {"status": "ok"}
    anything else: 200 {"status": "ok"}
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from .sockets import accepting

Crafted = dict[bytes, list[tuple[bytes, bytes]]]
"""Path -> the response header block to send for it, pseudo-headers included."""


def _serve(conn: ssl.SSLSocket, crafted: Crafted) -> None:
    config = h2.config.H2Configuration(
        client_side=False, validate_outbound_headers=False, normalize_outbound_headers=False
    )
    h2conn = h2.connection.H2Connection(config)
    h2conn.initiate_connection()
    conn.sendall(h2conn.data_to_send())
    while True:
        data = conn.recv(65536)
        if not data:
            return
        for event in h2conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                path = dict(event.headers).get(b":path", b"/")
                if path == b"/rst":
                    h2conn.reset_stream(event.stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
                elif path == b"/goaway":
                    h2conn.close_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
                elif path in crafted:
                    h2conn.send_headers(event.stream_id, crafted[path])
                    h2conn.send_data(event.stream_id, b'{"status": "ok"}', end_stream=True)
                else:
                    body = b'{"status": "ok"}'
                    h2conn.send_headers(
                        event.stream_id,
                        [(":status", "200"), ("content-length", str(len(body)))],
                    )
                    h2conn.send_data(event.stream_id, body, end_stream=True)
        conn.sendall(h2conn.data_to_send())


@contextlib.contextmanager
def h2_server(
    cert_chain_pem: bytes, key_pem: bytes, tmpdir: str, crafted: Crafted | None = None
) -> Iterator[int]:
    """Serve on 127.0.0.1 with TLS and ALPN h2 only; yields the port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with open(f"{tmpdir}/h2-cert.pem", "wb") as f:
        f.write(cert_chain_pem)
    with open(f"{tmpdir}/h2-key.pem", "wb") as f:
        f.write(key_pem)
    ctx.load_cert_chain(f"{tmpdir}/h2-cert.pem", f"{tmpdir}/h2-key.pem")
    ctx.set_alpn_protocols(["h2"])

    def handle(raw: socket.socket) -> None:
        raw.settimeout(5)

        def serve() -> None:
            with (
                contextlib.suppress(OSError, h2.exceptions.ProtocolError),
                ctx.wrap_socket(raw, server_side=True) as conn,
            ):
                _serve(conn, crafted or {})

        threading.Thread(target=serve, daemon=True).start()

    with accepting(handle) as port:
        yield port
