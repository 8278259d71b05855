"""Hostile DNS and TCP servers of our own on 127.0.0.1: whatever they send, the probe gets
one class and reason naming the cause, within its deadline + 1 s, and a healthy probe
of the same run is recorded."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.rrset
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthprobe.models import ProbeResult

from .commands import results
from .probing import probes_text, run_together, write_config
from .procwatch import sigterm_when, wait_watching_peak
from .sockets import accepting

Reply = Callable[[bytes], bytes | None]
"""What a test server sends for a query's wire bytes (None: nothing)."""


def _answer(query: bytes, *addresses: str, name: str | None = None) -> dns.message.Message:
    q = dns.message.from_wire(query)
    response = dns.message.make_response(q)
    owner = name or q.question[0].name.to_text()
    if addresses:
        response.answer.append(dns.rrset.from_text_list(owner, 60, "IN", "A", list(addresses)))
    return response


def _tc(query: bytes) -> bytes:
    response = _answer(query)
    response.flags |= dns.flags.TC
    return response.to_wire()


class DnsServer:
    """UDP and TCP on one port. ``udp`` and ``tcp`` map the first label of the question
    to what is sent back; the TCP side reads the whole query before it answers or
    closes (a FIN, never an RST racing the query)."""

    def __init__(self) -> None:
        self.udp: dict[str, Reply] = {}
        self.tcp: dict[str, Callable[[socket.socket, bytes], None]] = {}
        self.fallback: Reply | None = None
        """For every question no table names (the hypothesis test)."""
        self.fallback_tcp_cut: int | None = None
        """Bytes of the fallback's TCP answer (length bytes included) sent, None: all."""
        self.port = 0
        self._stop = threading.Event()

    @staticmethod
    def label(query: bytes) -> str:
        try:
            return dns.message.from_wire(query).question[0].name.labels[0].decode()
        except Exception:
            return ""

    def _serve_udp(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                query, peer = sock.recvfrom(65535)
            except OSError:
                continue
            reply = self.udp.get(self.label(query), self.fallback or (lambda q: None))(query)
            if reply is not None:
                sock.sendto(reply, peer)

    def _serve_tcp(self, conn: socket.socket) -> None:
        conn.settimeout(2)
        with contextlib.suppress(OSError):
            (length,) = struct.unpack("!H", _read_exactly(conn, 2))
            query = _read_exactly(conn, length)
            handler = self.tcp.get(self.label(query))
            if handler is not None:
                handler(conn, query)
            elif self.fallback is not None:
                reply = self.fallback(query) or b""
                conn.sendall((struct.pack("!H", len(reply)) + reply)[: self.fallback_tcp_cut])
            conn.shutdown(socket.SHUT_WR)

    @contextlib.contextmanager
    def running(self) -> Iterator[DnsServer]:
        with accepting(self._serve_tcp) as port:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", port))  # the same number as TCP, as DNS servers listen
            udp.settimeout(0.1)
            self.port = port
            thread = threading.Thread(target=self._serve_udp, args=(udp,), daemon=True)
            thread.start()
            try:
                yield self
            finally:
                self._stop.set()
                thread.join(2)
                udp.close()


def _read_exactly(conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def _close_at_once(conn: socket.socket, query: bytes) -> None:
    """Nothing sent: the caller's shutdown is a clean FIN after the query was read."""


def _half_length(conn: socket.socket, query: bytes) -> None:
    conn.sendall(b"\x01")


def _cut_answer(conn: socket.socket, query: bytes) -> None:
    wire = _answer(query, "127.0.0.5").to_wire()
    conn.sendall(struct.pack("!H", len(wire) + 100) + wire)


def _wrong_id(query: bytes) -> bytes:
    response = _answer(query, "127.0.0.5")
    response.id = (response.id + 1) % 65536
    return response.to_wire()


def _other_question(query: bytes) -> bytes:
    other = dns.message.make_query("elsewhere.synth.invalid", "A")
    other.id = dns.message.from_wire(query).id
    response = dns.message.make_response(other)
    return response.to_wire()


def _a_query(query: bytes) -> bytes:
    return dns.message.from_wire(query).to_wire()  # QR not set: a query, not an answer


def _huge(query: bytes) -> bytes:
    # ~3,000 A records: a 48 KB datagram
    return _answer(query, *(f"127.0.{i // 250}.{i % 250}" for i in range(3000))).to_wire()


def _healthy(query: bytes) -> bytes:
    return _answer(query, "127.0.0.5").to_wire()


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer()
    server.udp = {
        "healthy": _healthy,
        "tc-close": _tc,
        "tc-half": _tc,
        "tc-cut": _tc,
        "wrong-id": _wrong_id,
        "other-question": _other_question,
        # the query's ID and an answer's flags, so the garbage is what gets read
        "garbage": lambda q: q[:2] + b"\x81\x80" + b"\xde\xad\xbe\xef" * 39,
        "short": lambda q: q[:2] + b"\x81",
        "cut-record": lambda q: _healthy(q)[:-3],
        "not-answer": _a_query,
        "huge": _huge,
        "tc-wrong-id": lambda q: _tc(q[:0] + bytes([q[0] ^ 1]) + q[1:]),
    }
    server.tcp = {
        "tc-close": _close_at_once,
        "tc-half": _half_length,
        "tc-cut": _cut_answer,
        "tcp-close": _close_at_once,
        "tcp-half": _half_length,
        "tcp-cut": _cut_answer,
    }
    with server.running():
        yield server


DEADLINE = 2.0


def run_and_time(probes: list[dict[str, object]]) -> tuple[dict[str, ProbeResult], float]:
    """Run the probes at once; their results by name, and the wall time of the run."""
    run = run_together(probes)
    return run.results, run.wall


def _dns_probe(port: int, label: str, **extra: object) -> dict[str, object]:
    return {
        "name": label,
        "kind": "dns",
        "url": f"dns://127.0.0.1:{port}/{label}.synth.invalid?type=A",
        "timeout": f"{DEADLINE:g}s",
        "retries": 0,
        **extra,
    }


DNS_CASES = [
    pytest.param(
        "tc-close",
        {},
        "truncated UDP answer; the TCP retry was closed by the server before an answer",
        id="tc-then-tcp-closed",
    ),
    pytest.param(
        "tc-half",
        {},
        "truncated UDP answer; the TCP retry was closed by the server after 1 of the 2 "
        "length bytes",
        id="tc-then-tcp-closed-mid-length",
    ),
    pytest.param(
        "tc-cut",
        {},
        "truncated UDP answer; the TCP retry was closed by the server after",
        id="tc-then-tcp-answer-cut",
    ),
    pytest.param(
        "tcp-close",
        {"dns": {"transport": "tcp"}},
        "TCP connection closed by the server before an answer",
        id="tcp-closed-at-once",
    ),
    pytest.param(
        "tcp-half",
        {"dns": {"transport": "tcp"}},
        "TCP connection closed by the server after 1 of the 2 length bytes",
        id="tcp-closed-mid-length",
    ),
    pytest.param(
        "tcp-cut",
        {"dns": {"transport": "tcp"}},
        "of the answer's",
        id="tcp-answer-cut",
    ),
    pytest.param("wrong-id", {}, "answer has ID", id="wrong-id"),
    pytest.param(
        "other-question",
        {},
        "answer is for elsewhere.synth.invalid. A, the question was other-question",
        id="wrong-question",
    ),
    pytest.param("garbage", {}, "malformed answer (160 bytes)", id="garbage"),
    pytest.param("short", {}, "malformed answer (3 bytes)", id="short-header"),
    pytest.param("cut-record", {}, "malformed answer", id="truncated-message"),
    pytest.param("not-answer", {}, "a query, not an answer (QR bit not set)", id="query-back"),
    pytest.param("tc-wrong-id", {}, "answer has ID", id="tc-on-wrong-id"),
]


@pytest.mark.parametrize(("label", "extra", "words"), DNS_CASES)
def test_a_dns_answer_that_cannot_be_used_is_dns_error(
    dns_server: DnsServer, label: str, extra: dict[str, object], words: str
) -> None:
    found, took = run_and_time(
        [_dns_probe(dns_server.port, label, **extra), _dns_probe(dns_server.port, "healthy")]
    )
    r = found[label]
    assert (r.failure and r.failure.value, r.reason) == ("dns", "dns.error"), r.error
    assert words in (r.error or ""), r.error
    assert f"127.0.0.1:{dns_server.port}" in (r.error or "")
    assert took < DEADLINE + 1
    assert found["healthy"].ok, found["healthy"].error
    assert found["healthy"].details["answers"] == ["127.0.0.5"]


@pytest.mark.slow
def test_a_huge_answer_is_checked_whole_and_kept_bounded(dns_server: DnsServer) -> None:
    found, took = run_and_time(
        [
            _dns_probe(dns_server.port, "huge", expect={"answers": {"contains": ["127.0.11.249"]}}),
            _dns_probe(dns_server.port, "huge", name="huge-min", expect={"answers": {"min": 5000}}),
            _dns_probe(dns_server.port, "healthy"),
        ]
    )
    r = found["huge"]
    assert r.ok, r.error  # the last of 3,000 answers is found
    assert len(r.details["answers"]) == 100 and r.details["answers_total"] == 3000
    failed = found["huge-min"]
    assert failed.reason == "dns.answer"
    assert failed.error == "huge.synth.invalid A: 3000 answers, expected at least 5000"
    assert took < DEADLINE + 1 and found["healthy"].ok


def test_answers_matches_has_a_time_budget(dns_server: DnsServer) -> None:
    dns_server.udp["txt"] = lambda q: _txt(q, "x" * 5000)
    found, took = run_and_time(
        [
            {
                **_dns_probe(dns_server.port, "txt"),
                "url": f"dns://127.0.0.1:{dns_server.port}/txt.synth.invalid?type=TXT",
                "expect": {"answers": {"matches": "(x+x+)+y"}},
            },
            _dns_probe(dns_server.port, "healthy"),
        ]
    )
    r = found["txt"]
    assert r.reason == "server.assertion", r.error
    assert "/(x+x+)+y/ gave up after 0.25s" in (r.error or "")
    assert "a DNS answer" in (r.error or "")
    assert took < DEADLINE + 1 and found["healthy"].ok


def _txt(query: bytes, text: str) -> bytes:
    q = dns.message.from_wire(query)
    response = dns.message.make_response(q)
    strings = " ".join(f'"{text[i : i + 255]}"' for i in range(0, len(text), 255))
    response.answer.append(
        dns.rrset.from_text_list(q.question[0].name.to_text(), 60, "IN", "TXT", [strings])
    )
    return response.to_wire()


def test_a_resolver_with_a_broken_tcp_retry_is_dns_error_for_an_http_probe(
    dns_server: DnsServer,
) -> None:
    found, took = run_and_time(
        [
            {
                "name": "via",
                "url": "http://tc-close.synth.invalid/",
                "resolver": f"127.0.0.1:{dns_server.port}",
                "timeout": f"{DEADLINE:g}s",
                "retries": 0,
            },
            _dns_probe(dns_server.port, "healthy"),
        ]
    )
    r = found["via"]
    assert r.reason == "dns.error", r.error
    assert "the TCP retry was closed by the server before an answer" in (r.error or "")
    assert took < DEADLINE + 1 and found["healthy"].ok


def _mutated(seed_kind: str, flips: list[tuple[int, int]], cut: int | None, tc: bool) -> Reply:
    """A valid answer to the very query (its ID kept, so parsing goes deep), then bytes
    flipped and the end cut; with ``tc`` the TC bit set (asked again over TCP)."""

    def reply(query: bytes) -> bytes:
        q = dns.message.from_wire(query)
        response = dns.message.make_response(q)
        owner = q.question[0].name.to_text()
        records = {
            "A": ("A", ["127.0.0.1", "127.0.0.2"]),
            "TXT": ("TXT", ['"hello" "world"']),
            "MX": ("MX", ["10 mail.synth.invalid."]),
            "CNAME": ("CNAME", ["other.synth.invalid."]),
            "SOA": ("SOA", ["ns.synth.invalid. host.synth.invalid. 1 2 3 4 5"]),
        }[seed_kind]
        response.answer.append(dns.rrset.from_text_list(owner, 60, "IN", *records))
        if tc:
            response.flags |= dns.flags.TC
        wire = bytearray(response.to_wire())
        for position, value in flips:
            wire[position % len(wire)] = value
        return bytes(wire[:cut] if cut is not None else wire)

    return reply


def _random_bytes(data: bytes, keep_id: bool) -> Reply:
    return lambda query: (query[:2] + data[2:]) if keep_id else data


REPLIES = st.one_of(
    st.builds(_random_bytes, st.binary(max_size=700), st.booleans()),
    st.builds(
        _mutated,
        st.sampled_from(["A", "TXT", "MX", "CNAME", "SOA"]),
        st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6),
        st.none() | st.integers(0, 120),
        st.booleans(),
    ),
)


@pytest.mark.slow
def test_random_and_mutated_dns_answers_are_always_classified() -> None:
    server = DnsServer()
    with server.running():

        @settings(
            max_examples=200,
            deadline=None,
            derandomize=True,  # the same examples on every run: CI is never red by chance
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(
            reply=REPLIES,
            tcp_cut=st.none() | st.integers(0, 40),
            rdtype=st.sampled_from(["A", "TXT", "MX", "CNAME", "SOA"]),
        )
        def check(reply: Reply, tcp_cut: int | None, rdtype: str) -> None:
            # a reply with TC set is asked again over TCP: the same bytes, maybe cut short
            server.fallback, server.fallback_tcp_cut = reply, tcp_cut
            probe = {
                **_dns_probe(server.port, "fuzz"),
                "url": f"dns://127.0.0.1:{server.port}/fuzz.synth.invalid?type={rdtype}",
                "expect": {"answers": {"contains": ["127.0.0.1"], "matches": "^1"}},
            }
            found, took = run_and_time([probe])
            r = found["fuzz"]
            assert r.reason in (
                None,
                "dns.error",
                "dns.answer",
                "dns.no_address",
                "dns.nxdomain",
            ), (
                r.reason,
                r.error,
            )
            assert took < DEADLINE + 1

        check()


# --------------------------------------------------------------------------- tcp


def _sends(payload: bytes, *, close: bool = True) -> Callable[[socket.socket], None]:
    """A TCP service that sends ``payload`` at once, then a FIN (or stays open)."""

    def handle(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(payload)
            if close:
                conn.shutdown(socket.SHUT_WR)

    return handle


def _streams(total: int) -> Callable[[socket.socket], None]:
    """Sends ``total`` bytes of 'a' in 64 KiB writes from its own thread, until the
    reader goes away."""

    def send(conn: socket.socket) -> None:
        chunk = b"a" * 65536
        conn.settimeout(10)
        with contextlib.suppress(OSError):
            for _ in range(total // len(chunk)):
                conn.sendall(chunk)

    return lambda conn: threading.Thread(target=send, args=(conn,), daemon=True).start()


@contextlib.contextmanager
def _tcp_service(handle: Callable[[socket.socket], None]) -> Iterator[str]:
    with accepting(handle) as port:
        yield f"tcp://127.0.0.1:{port}"


def _tcp_probe(name: str, url: str, **tcp: str) -> dict[str, object]:
    return {
        "name": name,
        "kind": "tcp",
        "url": url,
        "timeout": f"{DEADLINE:g}s",
        "retries": 0,
        "tcp": tcp,
    }


@pytest.fixture
def healthy_tcp() -> Iterator[str]:
    with _tcp_service(_sends(b"+PONG\r\n")) as url:
        yield url


def test_a_backtracking_expect_regex_fails_fast(healthy_tcp: str) -> None:
    with _tcp_service(_sends(b"x" * 5000, close=False)) as url:
        found, took = run_and_time(
            [
                _tcp_probe("regex", url, expect_regex="(x+x+)+y"),
                _tcp_probe("healthy", healthy_tcp, expect="+PONG"),
            ]
        )
    r = found["regex"]
    assert r.reason == "server.assertion", r.error
    assert "/(x+x+)+y/ gave up after 0.25s" in (r.error or "") and "the reply" in (r.error or "")
    assert took < DEADLINE + 1
    assert found["healthy"].ok, found["healthy"].error


def test_a_stream_past_our_cap_says_our_cap_stopped_reading(healthy_tcp: str) -> None:
    with _tcp_service(_streams(100 * 1024 * 1024)) as url:
        found, took = run_and_time(
            [
                _tcp_probe("stream", url, expect="OK"),
                _tcp_probe("healthy", healthy_tcp, expect="+PONG"),
            ]
        )
    r = found["stream"]
    assert r.reason == "server.reply", r.error
    assert "in its first 64 KiB (our cap: the rest was not read)" in (r.error or "")
    assert "server closed" not in (r.error or "")
    assert took < DEADLINE + 1 and found["healthy"].ok


def _probe_bin() -> str:
    return str(Path(sys.executable).parent / "probe")


def test_a_100_mb_stream_keeps_memory_bounded(tmp_path: Path) -> None:
    with _tcp_service(_streams(100 * 1024 * 1024)) as url:
        config = write_config(
            tmp_path,
            "probes:\n  - " + json.dumps(_tcp_probe("stream", url, expect="OK")) + "\n",
            "p.yaml",
        )
        out = tmp_path / "r.jsonl"
        proc = subprocess.Popen(
            [_probe_bin(), "run", str(config), "-o", str(out), "--format", "quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        peak = wait_watching_peak(proc, 30)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 1, stderr
    [record] = results(out)
    assert record["reason"] == "server.reply"
    assert 0 < peak / 1024 < 150, f"peak RSS {peak / 1024:.0f} MiB"


@pytest.mark.slow
def test_sigterm_during_a_regex_heavy_tcp_probe_exits_130_and_keeps_lines(
    healthy_tcp: str, tmp_path: Path
) -> None:
    with (
        _tcp_service(_sends(b"x" * 5000, close=False)) as regex_url,
        _tcp_service(lambda conn: None) as silent_url,
    ):
        probes = [
            _tcp_probe("quick", healthy_tcp, expect="+PONG"),
            # a connection that never says anything: the run cannot end before the signal
            {**_tcp_probe("silent", silent_url, expect="x"), "timeout": "60s"},
            *(
                {
                    **_tcp_probe(f"regex-{i}", regex_url, expect_regex="(x+x+)+y"),
                    "timeout": "60s",
                    "retries": 100,
                    "retry_on": ["server"],
                }
                for i in range(4)
            ),
        ]
        config = write_config(tmp_path, probes_text(*probes), "p.yaml")
        out = tmp_path / "r.jsonl"
        proc = subprocess.Popen(
            [_probe_bin(), "run", str(config), "-o", str(out), "--format", "quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        stderr, took = sigterm_when(proc, lambda: out.exists() and out.read_text().count("\n") >= 1)
    assert took < 5
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert [r["probe"] for r in results(out)] == ["quick"]


TCP_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "expect": st.text(min_size=1, max_size=8),
        "expect_regex": st.sampled_from(["^a", "(a|b)+c", "x{2,}", r"\d+", "(x+x+)+y", "é"]),
    },
)


TCP_REPLIES = st.one_of(
    st.binary(max_size=3000),
    # what a backtracking pattern chokes on
    st.builds(lambda n, end: b"x" * n + end, st.integers(0, 5000), st.binary(max_size=4)),
)


@pytest.mark.slow
def test_random_tcp_replies_are_always_classified() -> None:
    reply_to_send: list[bytes] = [b""]

    def handle(conn: socket.socket) -> None:
        _sends(reply_to_send[0])(conn)

    with _tcp_service(handle) as url:

        @settings(
            max_examples=150,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(reply=TCP_REPLIES, fields=TCP_FIELDS)
        def check(reply: bytes, fields: dict[str, str]) -> None:
            reply_to_send[0] = reply
            probe = _tcp_probe("fuzz", url, **fields)
            found, took = run_and_time([probe])
            r = found["fuzz"]
            if not fields:
                assert r.ok, r.error  # a connect check
            else:
                assert r.reason in (
                    None,
                    "server.reply",
                    "server.assertion",
                    "network.closed",
                ), (r.reason, r.error)
            assert took < DEADLINE + 1

        check()
