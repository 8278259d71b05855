"""The dns kind against a real DNS server (dnsmasq, Debian) serving a zone of our own
on 127.0.0.1, and a UDP socket that never answers."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from synthprobe.models import ProbeResult

from .conftest import probe_once
from .realprograms import dnsmasq


@pytest.fixture(scope="module")
def dns_port() -> Iterator[int]:
    with dnsmasq() as port:
        yield port


@pytest.fixture
def silent_udp() -> Iterator[int]:
    """A UDP port that receives and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def ask(port: int, name: str, rdtype: str = "A", **fields: object) -> ProbeResult:
    return probe_once(f"dns://127.0.0.1:{port}/{name}?type={rdtype}", kind="dns", **fields)


@pytest.mark.parametrize(
    ("name", "rdtype", "reason", "rcode"),
    [
        ("web.synth.invalid", "A", None, "NOERROR"),
        ("v6only.synth.invalid", "AAAA", None, "NOERROR"),
        ("synth.invalid", "MX", None, "NOERROR"),
        ("synth.invalid", "TXT", None, "NOERROR"),
        ("nothing.synth.invalid", "A", "dns.nxdomain", "NXDOMAIN"),
        ("v6only.synth.invalid", "A", "dns.no_address", "NOERROR"),
        ("x.broken.invalid", "A", "dns.error", "REFUSED"),
    ],
    ids=["a", "aaaa", "mx", "txt", "nxdomain", "nodata", "refused"],
)
def test_each_answer_is_told_apart(
    dns_port: int, name: str, rdtype: str, reason: str | None, rcode: str
) -> None:
    r = ask(dns_port, name, rdtype)
    assert r.reason == reason, r.error
    assert r.details["rcode"] == rcode
    assert r.details["server"] == f"127.0.0.1:{dns_port}"
    assert r.timings_ms["dns"] is not None and r.timings_ms["connect"] is None
    if reason is None:
        assert r.details["answers"] and r.details["ttl"] is not None


def test_answers_as_text(dns_port: int) -> None:
    assert ask(dns_port, "web.synth.invalid").details["answers"] == ["127.0.0.7"]
    assert ask(dns_port, "synth.invalid", "MX").details["answers"] == ["10 mail.synth.invalid."]
    assert sorted(ask(dns_port, "multi.synth.invalid").details["answers"]) == [
        "127.0.0.8",
        "127.0.0.9",
    ]


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        ({"contains": ["127.0.0.7"]}, None),
        ({"contains": ["127.0.0.99"]}, "dns.answer"),
        ({"min": 2}, "dns.answer"),
        ({"matches": r"^127\.0\.0\.\d$"}, None),
        ({"matches": r"^10\."}, "dns.answer"),
    ],
    ids=["contains", "contains-wrong", "min", "matches", "matches-wrong"],
)
def test_expect_answers(dns_port: int, answers: dict[str, object], reason: str | None) -> None:
    r = ask(dns_port, "web.synth.invalid", expect={"answers": answers})
    assert r.reason == reason, r.error
    if reason:
        assert r.failure is not None and r.failure.value == "dns"


def test_tcp_transport(dns_port: int) -> None:
    r = ask(dns_port, "web.synth.invalid", dns={"transport": "tcp"})
    assert r.ok, r.error
    assert r.details["transport"] == "tcp"


@pytest.mark.slow
def test_a_server_that_never_answers_is_dns_timeout(silent_udp: int) -> None:
    r = ask(silent_udp, "web.synth.invalid", timeout="1s")
    assert r.reason == "dns.timeout", r.error
    assert "not answered within 1s" in (r.error or "")


# --------------------------------------------------------------------------- resolver


@pytest.mark.parametrize(
    ("host", "ip_version", "reason"),
    [
        ("nothing.synth.invalid", None, "dns.nxdomain"),
        ("v6only.synth.invalid", 4, "dns.no_address"),
        ("x.broken.invalid", None, "dns.error"),
    ],
    ids=["nxdomain", "nodata", "refused"],
)
def test_resolver_tells_dns_failures_apart_for_an_http_probe(
    dns_port: int, host: str, ip_version: int | None, reason: str
) -> None:
    fields: dict[str, object] = {"resolver": f"127.0.0.1:{dns_port}"}
    if ip_version:
        fields["ip_version"] = ip_version
    r = probe_once(f"http://{host}:8080/v1/feed", **fields)
    assert r.reason == reason, r.error
    assert r.details["resolver"] == f"127.0.0.1:{dns_port}"
    assert r.timings_ms["dns"] is not None and r.timings_ms["connect"] is None


@pytest.mark.slow
def test_resolver_that_never_answers_is_dns_timeout(silent_udp: int) -> None:
    r = probe_once("http://web.synth.invalid/", resolver=f"127.0.0.1:{silent_udp}", timeout="1s")
    assert r.reason == "dns.timeout", r.error


def test_resolver_finds_the_address_and_the_probe_connects(dns_port: int) -> None:
    # web.synth.invalid is 127.0.0.7 in our zone: loopback, and nothing listens there on
    # this port, so the connect is refused: proof the address came from dnsmasq
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = probe_once(f"http://web.synth.invalid:{port}/", resolver=f"127.0.0.1:{dns_port}")
    assert r.reason == "network.refused", r.error
    assert r.details["remote_ip"] == "127.0.0.7"


@pytest.mark.parametrize("kind", ["tcp", "messaging", "live", "upload"])
def test_resolver_works_for_every_kind(dns_port: int, kind: str) -> None:
    url = {
        "tcp": "tcp://nothing.synth.invalid:6379",
        "messaging": "ws://nothing.synth.invalid/ws",
        "live": "http://nothing.synth.invalid/live.m3u8",
        "upload": "http://nothing.synth.invalid/v1/media",
    }[kind]
    extra: dict[str, object] = (
        {"messaging": {"send": "x", "expect": "y"}} if kind == "messaging" else {}
    )
    r = probe_once(url, kind=kind, resolver=f"127.0.0.1:{dns_port}", **extra)
    assert r.reason == "dns.nxdomain", (kind, r.error)
    assert r.details["resolver"] == f"127.0.0.1:{dns_port}"


@pytest.fixture
def servfail_server() -> Iterator[int]:
    """A DNS server of our own (dnspython messages) that answers every question SERVFAIL."""
    import threading

    import dns.message
    import dns.rcode

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except OSError:
                continue
            response = dns.message.make_response(dns.message.from_wire(data))
            response.set_rcode(dns.rcode.SERVFAIL)
            sock.sendto(response.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join(2)
        sock.close()


def test_servfail_is_dns_error(servfail_server: int) -> None:
    r = ask(servfail_server, "web.synth.invalid")
    assert (r.reason, r.details["rcode"]) == ("dns.error", "SERVFAIL"), r.error
    via = probe_once("http://web.synth.invalid/", resolver=f"127.0.0.1:{servfail_server}")
    assert via.reason == "dns.error" and "SERVFAIL" in (via.error or "")


def test_a_dns_server_that_refuses_the_connection_is_dns_error() -> None:
    # over TCP a dead server refuses at once (over UDP it is only silence: dns.timeout)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        r = ask(port, "web.synth.invalid", dns={"transport": "tcp"})
    assert r.reason == "dns.error", r.error
    assert f"127.0.0.1:{port}" in (r.error or "") and "refused" in (r.error or "").lower()
