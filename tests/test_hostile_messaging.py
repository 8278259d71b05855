"""Hostile WebSocket servers: a handshake a browser refuses, protocol violations, an RST
after the upgrade, an over-long message and a 400 MB frame each get their class and a
message naming what the server did; a healthy probe of the same run is recorded. A
WebSocket server of this file's own on 127.0.0.1 (raw socket: it must be able to
misbehave), wsproto on its side only to read the client's masked message."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import TextMessage

from synthprobe.classify import ProbeFailure
from synthprobe.models import ProbeResult
from synthprobe.probers.messaging.prober import check_handshake

from .commands import probe_cmd
from .conftest import run_specs, specs_from_yaml
from .probing import probes_text, run_beside_healthy, write_config
from .procwatch import sigterm_when, wait_watching_peak
from .sockets import accepting

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DEADLINE = 3
"""Seconds: each probe's timeout here; a hostile case must end within it plus 1 s."""


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


def _close(code: int, reason: bytes = b"") -> bytes:
    return _frame(0x8, struct.pack("!H", code) + reason)


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


def _switching(key: str, extra: str = "", *, accept: str | None = "right") -> bytes:
    head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    if accept == "right":
        head += f"Sec-WebSocket-Accept: {_accept(key)}\r\n"
    elif accept is not None:
        head += f"Sec-WebSocket-Accept: {accept}\r\n"
    return (head + extra + "\r\n").encode()


def upgrade(extra: str = "", *, accept: str | None = "right") -> Behaviour:
    def send(conn: socket.socket, key: str) -> None:
        conn.sendall(_switching(key, extra, accept=accept))

    return send


def greeting(conn: socket.socket, key: str) -> None:
    """The 101 and a first message in one write: httpx must not lose the bytes that
    came with the response head."""
    conn.sendall(_switching(key) + _frame(0x9, b"hi") + _frame(0x1, b"ping"))
    _hold(conn)


def echo_after(handshake: Behaviour) -> Behaviour:
    """A handshake, then the client's message echoed correctly."""

    def run(conn: socket.socket, key: str) -> None:
        handshake(conn, key)
        message = _read_client_message(conn)
        conn.sendall(_frame(0x1, message.encode()))
        _hold(conn)

    return run


def frames_after_upgrade(raw: bytes) -> Behaviour:
    """A right handshake, then (once the client's message is in) these bytes, then a FIN:
    whatever the bytes are, the client learns at once that nothing more comes."""

    def run(conn: socket.socket, key: str) -> None:
        upgrade()(conn, key)
        _read_client_message(conn)
        conn.sendall(raw)
        conn.shutdown(socket.SHUT_WR)
        _hold(conn)

    return run


def instead_of_upgrade(raw: bytes) -> Behaviour:
    """These bytes as the whole answer to the upgrade (``{accept}`` becomes the right
    token), then a FIN."""

    def run(conn: socket.socket, key: str) -> None:
        conn.sendall(raw.replace(b"{accept}", _accept(key).encode()))
        conn.shutdown(socket.SHUT_WR)
        _hold(conn)

    return run


def rst_after_upgrade(conn: socket.socket, key: str) -> None:
    upgrade()(conn, key)
    _read_client_message(conn)  # the client now waits for a reply: the RST finds it reading
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def fragments(count: int, size: int) -> Behaviour:
    """A right handshake, then one text message in ``count`` frames of ``size`` bytes."""

    def run(conn: socket.socket, key: str) -> None:
        upgrade()(conn, key)
        _read_client_message(conn)
        try:
            for i in range(count):
                first = (0x1 if i == 0 else 0x0) | (0x80 if i == count - 1 else 0)
                conn.sendall(_frame(0, b"f" * size, first=first))
        except OSError:
            pass  # the client stopped reading at its cap
        _hold(conn)

    return run


def huge_frame(conn: socket.socket, key: str) -> None:
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


BEHAVIOURS: dict[str, Behaviour] = {
    "echo": echo_after(upgrade()),
    "bad-accept": echo_after(upgrade(accept="dGhlIHNhbXBsZSBub25jZQ==")),
    "no-accept": echo_after(upgrade(accept=None)),
    "extension": echo_after(upgrade("Sec-WebSocket-Extensions: permessage-deflate\r\n")),
    "subprotocol": echo_after(upgrade("Sec-WebSocket-Protocol: chat\r\n")),
    "rst": rst_after_upgrade,
    "close-999": frames_after_upgrade(_close(999)),
    "close-1005": frames_after_upgrade(_close(1005)),
    "close-2000": frames_after_upgrade(_close(2000)),
    "close-1-byte": frames_after_upgrade(_frame(0x8, b"\x03")),
    "close-bad-reason": frames_after_upgrade(_close(1000, b"\xff")),
    "masked": frames_after_upgrade(
        bytes([0x81, 0x85, 1, 2, 3, 4])
        + bytes(b ^ m for b, m in zip(b"hello", b"\x01\x02\x03\x04\x01", strict=True))
    ),
    "rsv1": frames_after_upgrade(_frame(0x1, b"hello", first=0xC1)),
    "opcode-3": frames_after_upgrade(_frame(0x3, b"hello")),
    "bad-utf8": frames_after_upgrade(_frame(0x1, b"\xff\xfe")),
    "fragmented-ping": frames_after_upgrade(_frame(0, b"", first=0x09)),
    "long-ping": frames_after_upgrade(bytes([0x89, 126]) + struct.pack("!H", 200) + b"p" * 200),
    "lone-continuation": frames_after_upgrade(_frame(0x0, b"hello")),
    "interleaved": frames_after_upgrade(_frame(0, b"he", first=0x01) + _frame(0x1, b"llo")),
    "long-length": frames_after_upgrade(bytes([0x81, 126]) + struct.pack("!H", 5) + b"hello"),
    "wrong-then-close": frames_after_upgrade(_frame(0x1, b"not it") + _close(1001, b"bye")),
    "wrong-then-bare-close": frames_after_upgrade(_frame(0x1, b"not it") + _frame(0x8, b"")),
    "wrong-then-fin": frames_after_upgrade(_frame(0x1, b"not it")),
    "bare-close": frames_after_upgrade(_frame(0x8, b"")),
    "fin": frames_after_upgrade(b""),
    "fragmented-2mib": fragments(40, 60000),
    "huge": huge_frame,
    "greeting": greeting,
    # a binary reply whose "é" is split between two frames
    "binary-split": frames_after_upgrade(_frame(0, b"p\xc3", first=0x02) + _frame(0, b"\xa9ng")),
    # 200 replies, each costing `(a|aa)+c` about 0.1 s (under the search's budget): in
    # one read of the socket, so only a pause between replies lets the deadline act
    "slow-replies": frames_after_upgrade(_frame(0x1, b"a" * 25 + b"!") * 200),
    "slower-replies": frames_after_upgrade(_frame(0x1, b"a" * 25 + b"!") * 2000),
}


class WsServer:
    """One port; the request path names the behaviour (``/echo``, ``/rst``...); a
    behaviour queued in ``replay`` is used instead (hypothesis examples)."""

    def __init__(self) -> None:
        self.replay: list[Behaviour] = []
        self.lock = threading.Lock()

    def handle(self, conn: socket.socket) -> None:
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            request = _read_request(conn)
            key = request.get("sec-websocket-key", "")
            with self.lock:
                queued = self.replay.pop(0) if self.replay else None
            (queued or BEHAVIOURS[request["_path"]])(conn, key)
        except (OSError, KeyError):
            pass


@pytest.fixture(scope="module")
def ws_server() -> Iterator[tuple[WsServer, int]]:
    server = WsServer()
    with accepting(server.handle) as port:
        yield server, port


def _probe(name: str, port: int, path: str, **fields: object) -> dict[str, object]:
    return {
        "name": name,
        "kind": "messaging",
        "url": f"ws://127.0.0.1:{port}/{path}",
        "timeout": f"{DEADLINE}s",
        "messaging": {"send": "ping", "expect": "ping"},
        **fields,
    }


def beside_healthy(port: int, path: str, **fields: object) -> ProbeResult:
    """The probe at ``path`` beside a healthy echo probe, in one run that ends within the
    deadline + 1 s and records the healthy one passing; the hostile result."""
    hostile = _probe("hostile", port, path, max_body="1MiB", **fields)
    healthy = _probe("healthy", port, "echo", messaging={"send": "ping", "expect_regex": "^pi"})
    return run_beside_healthy(hostile, healthy, within=DEADLINE + 1)["hostile"]


CASES = [
    pytest.param(
        "bad-accept",
        "network.protocol",
        "Sec-WebSocket-Accept 'dGhlIHNhbXBsZSBub25jZQ==' does not answer our key (expected '",
        id="wrong-accept",
    ),
    pytest.param("no-accept", "network.protocol", "without Sec-WebSocket-Accept", id="no-accept"),
    pytest.param("extension", "network.protocol", "extension 'permessage-deflate'", id="extension"),
    pytest.param("subprotocol", "network.protocol", "subprotocol 'chat'", id="subprotocol"),
    pytest.param("rst", "network.reset", "reset", id="rst-after-upgrade"),
    pytest.param(
        "close-999",
        "network.protocol",
        "the server sent close code 999, which is not allowed on the wire",
        id="close-999",
    ),
    pytest.param(
        "close-1005",
        "network.protocol",
        "the server sent close code 1005, which is not allowed on the wire",
        id="close-1005",
    ),
    pytest.param("close-2000", "network.protocol", "close code 2000", id="close-2000"),
    pytest.param("close-1-byte", "network.protocol", "close frame of 1 byte", id="close-1-byte"),
    pytest.param(
        "close-bad-reason",
        "network.protocol",
        "invalid UTF-8 in the server's close reason",
        id="close-reason-utf8",
    ),
    pytest.param("masked", "network.protocol", "the server sent a masked frame", id="masked"),
    pytest.param("rsv1", "network.protocol", "reserved bit (RSV1-3)", id="rsv1"),
    pytest.param(
        "opcode-3", "network.protocol", "the server sent reserved opcode 3", id="opcode-3"
    ),
    pytest.param(
        "bad-utf8", "network.protocol", "invalid UTF-8 in a text message", id="invalid-utf8"
    ),
    pytest.param(
        "fragmented-ping", "network.protocol", "fragmented a control frame", id="fragmented-ping"
    ),
    pytest.param("long-ping", "network.protocol", "longer than 125 bytes", id="long-ping"),
    pytest.param(
        "lone-continuation", "network.protocol", "no message to continue", id="lone-continuation"
    ),
    pytest.param(
        "interleaved", "network.protocol", "before it finished the previous one", id="interleaved"
    ),
    pytest.param("long-length", "network.protocol", "malformed frame length", id="long-length"),
    pytest.param(
        "wrong-then-close",
        "server.reply",
        "socket closed by the server (code 1001, 'bye') before a matching reply; "
        "last reply 'not it'",
        id="wrong-reply-then-close",
    ),
    pytest.param(
        "wrong-then-bare-close",
        "server.reply",
        "(no close code) before a matching reply",
        id="wrong-reply-then-close-without-code",
    ),
    pytest.param(
        "wrong-then-fin",
        "server.reply",
        "connection closed by the server before a matching reply; last reply 'not it'",
        id="wrong-reply-then-fin",
    ),
    pytest.param(
        "bare-close",
        "network.closed",
        "socket closed by the server (no close code) without any reply",
        id="close-without-reply",
    ),
    pytest.param(
        "fin", "network.closed", "connection closed by the server without any reply", id="fin"
    ),
    pytest.param(
        "fragmented-2mib",
        "server.reply",
        "a WebSocket message longer than 1MiB (max_body, our cap for one WebSocket message)",
        id="fragments-over-max-body",
    ),
]


@pytest.mark.parametrize(("path", "reason", "words"), CASES)
def test_hostile_websocket_server(
    ws_server: tuple[WsServer, int], path: str, reason: str, words: str
) -> None:
    _server, port = ws_server
    hostile = beside_healthy(port, path)
    assert hostile.reason == reason, hostile.error
    assert hostile.error is not None and words in hostile.error, hostile.error
    assert "code 1002" not in hostile.error  # never the code we would have sent


@pytest.mark.parametrize(
    ("path", "messaging", "reason", "words"),
    [
        pytest.param(
            "echo",
            # echoed back: 5,000 x's make this pattern backtrack for minutes in `re`
            {"send": "x" * 5000, "expect_regex": "(x+x+)+y"},
            "server.assertion",
            "/(x+x+)+y/ gave up after",
            id="catastrophic-regex",
        ),
        pytest.param(
            "echo",
            {"send": "ping", "expect_regex": "^pong$"},
            "timeout.read",
            "no matching reply",
            id="regex-no-match",
        ),
        pytest.param(
            "echo", {"send": "ping", "expect_regex": "^pi(?=ng)"}, None, "", id="regex-match"
        ),
        pytest.param(
            "greeting", {"send": "ping", "expect": "ping"}, None, "", id="reply-with-the-101"
        ),
        pytest.param(
            "binary-split", {"send": "ping", "expect": "p\u00e9ng"}, None, "", id="binary-reply"
        ),
        pytest.param(
            "slow-replies",
            {"send": "ping", "expect_regex": "(a|aa)+c"},
            "timeout.read",
            "no matching reply within 3s",
            id="many-slow-searches",
        ),
    ],
)
@pytest.mark.slow
def test_replies_are_matched_within_budget(
    ws_server: tuple[WsServer, int],
    path: str,
    messaging: dict[str, str],
    reason: str | None,
    words: str,
) -> None:
    _server, port = ws_server
    hostile = beside_healthy(port, path, messaging=messaging)
    assert hostile.reason == reason, hostile.error
    assert words in (hostile.error or ""), hostile.error


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        pytest.param({"upgrade": "h2c", "connection": "upgrade"}, "Upgrade 'h2c'", id="upgrade"),
        pytest.param({"upgrade": "websocket", "connection": "close"}, "Connection", id="conn"),
    ],
)
def test_a_101_must_say_websocket_upgrade(headers: dict[str, str], words: str) -> None:
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


def test_a_400_mb_frame_costs_no_memory(ws_server: tuple[WsServer, int], tmp_path: Path) -> None:
    _server, port = ws_server
    config = write_config(
        tmp_path,
        "probes:\n"
        f"  - {{name: huge, kind: messaging, url: 'ws://127.0.0.1:{port}/huge', timeout: 20s,"
        " messaging: {send: ping, expect: never}}\n"
        f"  - {{name: healthy, kind: messaging, url: 'ws://127.0.0.1:{port}/echo',"
        " messaging: {send: ping, expect: ping}}\n",
        "p.yaml",
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
    huge = lines["huge"]
    assert (huge["failure"], huge["reason"]) == ("server", "server.reply"), huge
    assert huge["error"].startswith(
        "a WebSocket message longer than 10MiB (max_body, our cap for one WebSocket message)"
    ), huge
    assert huge["timings_ms"]["total"] <= (20 + 1) * 1000
    assert lines["healthy"]["ok"], lines["healthy"]
    assert 0 < peak / 1024 < 300, f"peak RSS {peak / 1024:.0f} MiB"


@pytest.mark.slow
def test_sigterm_ends_a_run_busy_matching_replies(
    ws_server: tuple[WsServer, int], tmp_path: Path
) -> None:
    """2,000 replies of about 0.1 s of searching each: SIGTERM still ends the run within
    5 s (exit 130), and the line of the probe that had finished is kept."""
    _server, port = ws_server
    busy = _probe(
        "busy",
        port,
        "slower-replies",
        timeout="60s",
        messaging={"send": "ping", "expect_regex": "(a|aa)+c"},
    )
    config = write_config(
        tmp_path,
        "probes:\n"
        + "".join(f"  - {json.dumps(p)}\n" for p in (_probe("quick", port, "echo"), busy)),
        "p.yaml",
    )
    out = tmp_path / "r.jsonl"
    proc = subprocess.Popen(
        probe_cmd("run", str(config), "-o", str(out), "--no-state", "--format", "quiet"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr, took = sigterm_when(proc, lambda: out.exists() and out.read_text().count("\n") > 0)
    assert took < 5
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert [r["probe"] for r in map(json.loads, out.read_text().splitlines())] == ["quick"]


def _frames() -> st.SearchStrategy[bytes]:
    """Server frames with any first byte (FIN, RSV, opcode) and short payloads, and
    lengths in forms long and short, mixed with well-formed pings and texts."""
    frame = st.one_of(
        st.tuples(st.integers(0, 255), st.binary(max_size=140)).map(
            lambda f: _frame(0, f[1], first=f[0])
        ),
        st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=20)).map(
            lambda f: bytes(f[:2]) + f[2]
        ),
        st.sampled_from([_frame(0x9, b"hi"), _frame(0x1, b"not it"), _close(1000)]),
    )
    return st.binary(max_size=300) | st.lists(frame, min_size=1, max_size=5).map(b"".join)


RIGHT_HEADERS = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"


def _answers() -> st.SearchStrategy[bytes]:
    """Answers to the upgrade: bytes of any kind, or a status line and headers drawn
    from what a handshake holds, perhaps followed by frames."""
    latin1 = st.text(st.characters(max_codepoint=255), max_size=30)
    header = st.tuples(
        st.sampled_from(
            [
                "Upgrade",
                "Connection",
                "Sec-WebSocket-Accept",
                "Sec-WebSocket-Extensions",
                "Sec-WebSocket-Protocol",
                "Content-Length",
                "Transfer-Encoding",
                "X-Other",
            ]
        ),
        st.sampled_from(["websocket", "Upgrade", "{accept}", "", "chunked", "5"]) | latin1,
    )
    head = st.tuples(
        st.sampled_from(
            [
                "HTTP/1.1 101 Switching Protocols",
                "HTTP/1.1 101",
                "HTTP/1.0 101 x",
                "HTTP/1.1 200 OK",
                "HTTP/1.1 100 Continue",
                "HTTP/1.1 1010 x",
                "HTTP/2 101",
            ]
        ),
        # half the time, the headers of a right handshake come first: the rest then
        # reaches the checks after h11's (an extension, a second accept) and the frames
        st.sampled_from(["", RIGHT_HEADERS]),
        st.lists(header, max_size=6),
        _frames(),
    ).map(
        lambda h: (
            (h[0] + "\r\n" + h[1] + "".join(f"{k}: {v}\r\n" for k, v in h[2]) + "\r\n").encode(
                "latin-1"
            )
            + h[3]
        )
    )
    return st.binary(max_size=300) | head


def _replayed(ws_server: tuple[WsServer, int], behaviour: Behaviour) -> ProbeResult:
    server, port = ws_server
    with server.lock:
        server.replay.append(behaviour)
    [result] = run_specs(specs_from_yaml(probes_text(_probe("fuzz", port, "x"))))
    return result


def _classified(result: ProbeResult) -> None:
    # a pass (the bytes happened to hold "ping"), or a target's failure: never our bug
    assert result.failure != "internal", result.error
    assert result.ok or (result.reason is not None and result.error)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(raw=_frames())
@pytest.mark.slow
def test_any_bytes_after_the_upgrade_are_classified(
    ws_server: tuple[WsServer, int], raw: bytes
) -> None:
    _classified(_replayed(ws_server, frames_after_upgrade(raw)))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(raw=_answers())
@pytest.mark.slow
def test_any_answer_to_the_upgrade_is_classified(
    ws_server: tuple[WsServer, int], raw: bytes
) -> None:
    _classified(_replayed(ws_server, instead_of_upgrade(raw)))


@pytest.mark.slow
@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    headers=st.dictionaries(
        st.sampled_from(
            [
                "upgrade",
                "connection",
                "sec-websocket-accept",
                "sec-websocket-extensions",
                "sec-websocket-protocol",
            ]
        ),
        st.text(max_size=40)
        | st.sampled_from(["websocket", "Upgrade", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="]),
    )
)
def test_check_handshake_fails_only_as_protocol(headers: dict[str, str]) -> None:
    try:
        check_handshake(headers, "dGhlIHNhbXBsZSBub25jZQ==")
    except ProbeFailure as failure:
        assert failure.classified.reason == "network.protocol"
        assert failure.classified.error.startswith("WebSocket handshake: ")
