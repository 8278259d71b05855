"""The one accept loop behind the tests' small socket servers (a service that never
reads, never answers, closes at once, or answers garbage)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def accepting(
    handle: Callable[[socket.socket], None], *, rcvbuf: int | None = None
) -> Iterator[int]:
    """Listen on 127.0.0.1; call ``handle`` with each connection, in the accepting thread
    (a handler that takes long starts its own). Yields the port; at the end every
    accepted connection is closed."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.1)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)
            handle(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        server.close()
