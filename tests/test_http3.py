"""HTTP/3's pure rules: Alt-Svc parsing, how a QUIC connection's end is classified, the
response head, the trust handed to qh3; and that qh3 is imported only when needed."""

from __future__ import annotations

import ssl
import subprocess
import sys
import textwrap

import pytest
import trustme
from qh3.quic.events import ConnectionTerminated

from synthprobe.classify import ProbeFailure
from synthprobe.models import Reason
from synthprobe.probers.connection import response_head
from synthprobe.probers.exchange import advertises_h3
from synthprobe.probers.quic import H3_ERRORS, QUIC_ERRORS, closed, code_name, trust_of


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (['h3=":443"; ma=86400'], True),
        (['h3-29=":443"; ma=86400, h3=":443"; ma=86400'], True),
        (['h2=":443", h3=":8443"'], True),
        (['H3=":443"'], True),
        (["clear"], False),
        (['h3-29=":443"'], False),
        (['h2="alt.example.com:443"; ma=60'], False),
        (['h2="a,h3=b:443"'], False),
        (["", 'h3=":443"'], True),
        ([], False),
    ],
    ids=[
        "h3",
        "draft-then-h3",
        "second-entry",
        "case",
        "clear",
        "draft-only",
        "h2-only",
        "h3-inside-quotes",
        "second-header",
        "no-header",
    ],
)
def test_alt_svc_advertising_h3(values: list[str], expected: bool) -> None:
    assert advertises_h3(values) is expected


@pytest.mark.parametrize(
    ("event", "handshaking", "by_us", "reason", "error"),
    [
        (
            ConnectionTerminated(0x12A, 0x6, "unable to get local issuer certificate"),
            True,
            False,
            Reason.NETWORK_TLS,
            "QUIC TLS handshake failed: alert bad_certificate: unable to get local issuer "
            "certificate",
        ),
        (
            ConnectionTerminated(0x150, 0, ""),
            True,
            False,
            Reason.NETWORK_TLS,
            "QUIC TLS handshake failed: alert internal_error",
        ),
        (
            ConnectionTerminated(0x102, None, "closing on purpose"),
            False,
            False,
            Reason.NETWORK_PROTOCOL,
            "QUIC connection closed by the server with H3_INTERNAL_ERROR (0x102): closing on "
            "purpose",
        ),
        (
            ConnectionTerminated(0x2, 0, ""),
            True,
            False,
            Reason.NETWORK_PROTOCOL,
            "QUIC connection closed by the server during the handshake with "
            "CONNECTION_REFUSED (0x2)",
        ),
        (
            ConnectionTerminated(0x107, None, "QPACK field section exceeds the configured limit"),
            False,
            True,
            Reason.NETWORK_PROTOCOL,
            "the server broke HTTP/3: H3_EXCESSIVE_LOAD (0x107): QPACK field section exceeds "
            "the configured limit",
        ),
        (
            ConnectionTerminated(0x0, 0, "Idle timeout"),
            True,
            False,
            Reason.TIMEOUT_CONNECT,
            "no answer to the QUIC handshake: Idle timeout",
        ),
        (
            ConnectionTerminated(0x1F2A, None, ""),
            False,
            False,
            Reason.NETWORK_PROTOCOL,
            "QUIC connection closed by the server with 0x1f2a",
        ),
    ],
    ids=[
        "tls-untrusted",
        "tls-alert-from-server",
        "h3-code",
        "transport-code",
        "h3-rule-broken",
        "idle-in-handshake",
        "grease-code",
    ],
)
def test_a_connections_end_is_classified(
    event: ConnectionTerminated, handshaking: bool, by_us: bool, reason: Reason, error: str
) -> None:
    found = closed(event, handshaking, by_us).classified
    assert (found.reason, found.error) == (reason, error)


@pytest.mark.parametrize(
    ("code", "table", "shown"),
    [
        (0x10B, H3_ERRORS, "H3_REQUEST_REJECTED (0x10b)"),
        (0xA, QUIC_ERRORS, "PROTOCOL_VIOLATION (0xa)"),
        (0x21, H3_ERRORS, "0x21"),
    ],
    ids=["h3", "quic", "unnamed"],
)
def test_error_codes_are_named(code: int, table: dict[int, str], shown: str) -> None:
    assert code_name(code, table) == shown


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ([(b":status", b"200"), (b"x", b"1")], None),
        ([(b"x", b"1")], "HTTP/3 response without :status"),
        ([(b":status", b"2000")], "HTTP/3 response with an invalid :status '2000'"),
        ([(b":status", b"200"), (b"Upper", b"1")], "HTTP/3 response header name 'Upper'"),
        ([(b":status", b"200"), (b"connection", b"close")], "connection-specific header"),
    ],
    ids=["ok", "no-status", "bad-status", "upper-case-name", "connection-specific"],
)
def test_an_http3_response_head_is_checked_as_http2s(
    headers: list[tuple[bytes, bytes]], error: str | None
) -> None:
    if error is None:
        assert response_head(headers, "HTTP/3") == (200, [(b"x", b"1")])
        return
    with pytest.raises(ProbeFailure) as info:
        response_head(headers, "HTTP/3")
    assert info.value.classified.reason is Reason.NETWORK_PROTOCOL
    assert error in info.value.classified.error


def test_qh3_gets_the_trust_of_the_ssl_context(ca: trustme.CA) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no system certificates
    ca.configure_trust(ctx)
    pem = trust_of(ctx)
    assert pem.count(b"-----BEGIN CERTIFICATE-----") == 1
    assert ssl.PEM_cert_to_DER_cert(pem.decode()) == ctx.get_ca_certs(binary_form=True)[0]
    assert trust_of(ctx) is pem  # read once per context


@pytest.mark.parametrize(
    ("http_version", "imported"),
    [("auto", False), ("2", False), ("3", True)],
    ids=["auto", "h2", "h3"],
)
def test_qh3_is_imported_only_for_an_http3_probe(http_version: str, imported: bool) -> None:
    # a probe's whole path up to its first request, in a fresh interpreter
    code = textwrap.dedent(
        f"""
        import sys
        from synthprobe.config import load_sources
        from synthprobe.probers import KINDS
        from synthprobe.probers.base import Network
        from synthprobe.probers.connection import transport
        from synthprobe.probers.attempt import Attempt
        text = 'probes: [{{name: p, url: "https://127.0.0.1:9/", http_version: "{http_version}"}}]'
        [spec] = load_sources([("t.yaml", text.encode())], env={{}}).probes
        net = Network()
        net.prepare([spec])
        h3 = Attempt() if spec.http_version.value == "3" else None
        transport(net, False, h3=h3)
        print("qh3" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == str(imported)
