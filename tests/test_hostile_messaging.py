"""Hostile WebSocket servers: a handshake a browser refuses, protocol violations, an RST
after the upgrade and a 400 MB frame each get their class and a message naming what the
server did; a healthy probe of the same run is recorded. A WebSocket server of this
file's own on 127.0.0.1 (raw socket: it must be able to misbehave), wsproto on its side
for the frames it sends correctly."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import TextMessage

from synthprobe.probers.messaging.prober import check_handshake

from .commands import probe_cmd
from .conftest import run_specs, specs_from_yaml
from .procwatch import wait_watching_peak
from .sockets import accepting

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def _read_request(conn: socket.socket) -> dict[str, str]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    request_line, *lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    parts = request_line.split(" ")
    headers["_path"] = parts[1].lstrip("/") if len(parts) > 1 else ""
    return headers


def _read_client_message(conn: socket.socket) -> str:
    """The client's first text message (masked, as clients send), via wsproto."""
    server = Connection(ConnectionType.SERVER)
    for _ in range(100):  # bounded
        data = conn.recv(65536)
        if not data:
            return ""
        server.receive_data(data)
        for event in server.events():
            if isinstance(event, TextMessage):
                return str(event.data)
    return ""


def _frame(opcode: int, payload: bytes, *, first: int | None = None) -> bytes:
    """A server frame as the wire carries it (unmasked, final), or a first byte given."""
    head = bytes([first if first is not None else 0x80 | opcode])
    if len(payload) < 126:
        return head + bytes([len(payload)]) + payload
    return head + bytes([126]) + struct.pack("!H", len(payload)) + payload


def _hold(conn: socket.socket) -> None:
    """Wait for the client to go (its close), so our close never races its reading."""
    conn.settimeout(5)
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass


Behaviour = Callable[[socket.socket, str], None]
"""After the request was read: what the server does, given the client's key."""


def upgrade(
    extra: str = "", *, accept: str | None = "right"
) -> Callable[[socket.socket, str], None]:
    def send(conn: socket.socket, key: str) -> None:
        head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        if accept == "right":
            head += f"Sec-WebSocket-Accept: {_accept(key)}\r\n"
        elif accept is not None:
            head += f"Sec-WebSocket-Accept: {accept}\r\n"
        conn.sendall((head + extra + "\r\n").encode())

    return send


def echo_after(handshake: Behaviour) -> Behaviour:
    """A handshake, then the client's message echoed correctly."""

    def run(conn: socket.socket, key: str) -> None:
        handshake(conn, key)
        message = _read_client_message(conn)
        conn.sendall(_frame(0x1, message.encode()))
        _hold(conn)

    return run


def frames_after_upgrade(raw: bytes) -> Behaviour:
    """A right handshake, then (once the client's message is in) these bytes."""

    def run(conn: socket.socket, key: str) -> None:
        upgrade()(conn, key)
        _read_client_message(conn)
        conn.sendall(raw)
        _hold(conn)

    return run


def rst_after_upgrade(conn: socket.socket, key: str) -> None:
    upgrade()(conn, key)
    _read_client_message(conn)  # the client now waits for a reply: the RST finds it reading
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def wrong_reply_then_close(conn: socket.socket, key: str) -> None:
    upgrade()(conn, key)
    _read_client_message(conn)
    conn.sendall(_frame(0x1, b"not it") + _frame(0x8, struct.pack("!H", 1001) + b"bye"))
    _hold(conn)


BEHAVIOURS: dict[str, Behaviour] = {
    "echo": echo_after(upgrade()),
    "bad-accept": echo_after(upgrade(accept="dGhlIHNhbXBsZSBub25jZQ==")),
    "no-accept": echo_after(upgrade(accept=None)),
    "extension": echo_after(upgrade("Sec-WebSocket-Extensions: permessage-deflate\r\n")),
    "subprotocol": echo_after(upgrade("Sec-WebSocket-Protocol: chat\r\n")),
    "rst": rst_after_upgrade,
    "close-999": frames_after_upgrade(_frame(0x8, struct.pack("!H", 999))),
    "close-1005": frames_after_upgrade(_frame(0x8, struct.pack("!H", 1005))),
    "masked": frames_after_upgrade(
        bytes([0x81, 0x85, 1, 2, 3, 4])
        + bytes(b ^ m for b, m in zip(b"hello", b"\x01\x02\x03\x04\x01", strict=True))
    ),
    "rsv1": frames_after_upgrade(_frame(0x1, b"hello", first=0xC1)),
    "opcode-3": frames_after_upgrade(_frame(0x3, b"hello")),
    "bad-utf8": frames_after_upgrade(_frame(0x1, b"\xff\xfe")),
    "wrong-then-close": wrong_reply_then_close,
}


class WsServer:
    """One port; the request path names the behaviour (``/echo``, ``/rst``...); bytes
    queued in ``replay`` are sent after a right handshake instead (hypothesis)."""

    def __init__(self) -> None:
        self.replay: list[bytes] = []
        self.lock = threading.Lock()

    def handle(self, conn: socket.socket) -> None:
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            request = _read_request(conn)
            key = request.get("sec-websocket-key", "")
            path = request.get("_path", "")
            with self.lock:
                raw = self.replay.pop(0) if self.replay else None
            if raw is not None:
                frames_after_upgrade(raw)(conn, key)
            else:
                BEHAVIOURS[path](conn, key)
        except (OSError, KeyError):
            pass


@pytest.fixture(scope="module")
def ws_server() -> Iterator[tuple[WsServer, int]]:
    server = WsServer()
    with accepting(server.handle) as port:
        yield server, port


CASES = [
    pytest.param("bad-accept", "network.protocol", "does not answer our key", id="wrong-accept"),
    pytest.param("no-accept", "network.protocol", "without Sec-WebSocket-Accept", id="no-accept"),
    pytest.param("extension", "network.protocol", "permessage-deflate", id="extension"),
    pytest.param("subprotocol", "network.protocol", "subprotocol 'chat'", id="subprotocol"),
    pytest.param("rst", "network.reset", "reset", id="rst-after-upgrade"),
    pytest.param("close-999", "network.protocol", "CLOSE with invalid code", id="close-999"),
    pytest.param("close-1005", "network.protocol", "local-only", id="close-1005"),
    pytest.param("masked", "network.protocol", "masked frame", id="masked-frame"),
    pytest.param("rsv1", "network.protocol", "Reserved bit", id="rsv1"),
    pytest.param("opcode-3", "network.protocol", "Invalid opcode 0x3", id="opcode-3"),
    pytest.param("bad-utf8", "network.protocol", "utf-8", id="invalid-utf8"),
    pytest.param("wrong-then-close", "server.reply", "code 1001", id="server-close-code"),
]


@pytest.mark.parametrize(("path", "reason", "words"), CASES)
def test_hostile_websocket_server(
    ws_server: tuple[WsServer, int], path: str, reason: str, words: str
) -> None:
    _server, port = ws_server
    probes = [
        {
            "name": "hostile",
            "kind": "messaging",
            "url": f"ws://127.0.0.1:{port}/{path}",
            "timeout": "3s",
            "messaging": {"send": "ping", "expect": "ping"},
        },
        {
            "name": "healthy",
            "kind": "messaging",
            "url": f"ws://127.0.0.1:{port}/echo",
            "timeout": "3s",
            "messaging": {"send": "ping", "expect": "ping"},
        },
    ]
    text = "probes:\n" + "".join(f"  - {json.dumps(p)}\n" for p in probes)
    started = time.monotonic()
    hostile, healthy = run_specs(specs_from_yaml(text))
    assert time.monotonic() - started < 3 + 1
    assert hostile.reason == reason, hostile.error
    assert hostile.error is not None and words.lower() in hostile.error.lower(), hostile.error
    assert "code 1002" not in hostile.error  # never the code we would have sent
    assert healthy.ok, healthy.error


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        pytest.param({"upgrade": "h2c", "connection": "upgrade"}, "Upgrade 'h2c'", id="upgrade"),
        pytest.param({"upgrade": "websocket", "connection": "close"}, "Connection", id="conn"),
    ],
)
def test_a_101_must_say_websocket_upgrade(headers: dict[str, str], words: str) -> None:
    from synthprobe.classify import ProbeFailure

    key = "dGhlIHNhbXBsZSBub25jZQ=="
    with pytest.raises(ProbeFailure) as info:
        check_handshake({**headers, "sec-websocket-accept": _accept(key)}, key)
    assert words in info.value.classified.error
    check_handshake(
        {
            "upgrade": "WebSocket",
            "connection": "keep-alive, Upgrade",
            "sec-websocket-accept": _accept(key),
        },
        key,
    )  # case and lists as RFC 6455 allows


def _huge_frame(conn: socket.socket, key: str) -> None:
    """A 400 MB text frame, streamed until the client stops reading."""
    upgrade()(conn, key)
    _read_client_message(conn)
    size = 400 * 1024 * 1024
    conn.sendall(bytes([0x81, 127]) + struct.pack("!Q", size))
    chunk = b"a" * 65536
    try:
        for _ in range(size // len(chunk)):
            conn.sendall(chunk)
    except OSError:
        pass


def test_a_400_mb_frame_costs_no_memory(ws_server: tuple[WsServer, int], tmp_path: Path) -> None:
    BEHAVIOURS["huge"] = _huge_frame
    _server, port = ws_server
    config = tmp_path / "p.yaml"
    config.write_text(
        "probes:\n"
        f"  - {{name: huge, kind: messaging, url: 'ws://127.0.0.1:{port}/huge', timeout: 30s,"
        " messaging: {send: ping, expect: never}}\n"
        f"  - {{name: healthy, kind: messaging, url: 'ws://127.0.0.1:{port}/echo',"
        " messaging: {send: ping, expect: ping}}\n"
    )
    out = tmp_path / "r.jsonl"
    proc = subprocess.Popen(
        probe_cmd("run", str(config), "-o", str(out), "--no-state", "--format", "quiet"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = wait_watching_peak(proc, 60)
    assert proc.wait(10) == 1
    lines = {r["probe"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert lines["huge"]["reason"] == "server.reply", lines["huge"]
    assert "our cap for one WebSocket message" in lines["huge"]["error"]
    assert lines["healthy"]["ok"]
    assert 0 < peak / 1024 < 300, f"peak RSS {peak / 1024:.0f} MiB"


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    raw=st.binary(max_size=300)
    | st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), min_size=1, max_size=4).map(
        lambda frames: b"".join(_frame(0, p, first=b) for b, p in frames)
    )
)
def test_any_bytes_after_the_upgrade_are_classified(
    ws_server: tuple[WsServer, int], raw: bytes
) -> None:
    server, port = ws_server
    with server.lock:
        server.replay.append(raw)
    probe = {
        "name": "fuzz",
        "kind": "messaging",
        "url": f"ws://127.0.0.1:{port}/replay",
        "timeout": "2s",
        "messaging": {"send": "ping", "expect": "ping"},
    }
    [result] = run_specs(specs_from_yaml(f"probes:\n  - {json.dumps(probe)}\n"))
    # a pass (the bytes happened to hold "ping"), or a target's failure: never our bug
    assert result.failure != "internal", result.error
    assert result.ok or (result.reason is not None and result.error)
