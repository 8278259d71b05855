"""Journeys whose captured values are hostile: a server of our own on 127.0.0.1 gives a
value that the next step cannot use. Each is ``server.assertion`` naming the step and
the capture and where it was put, within the deadline + 1 s, and a healthy journey of
the same run is recorded."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import dns.message
import dns.rcode
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_hostile_dns_tcp import DnsServer, run_and_time

DEADLINE = 3.0

BODIES: dict[str, bytes] = {
    "ok": json.dumps({"v": "ok"}).encode(),
    "big": json.dumps({"v": "a" * 10_000_000}).encode(),
    "long": json.dumps({"v": "é" * 40_000}).encode(),
    "ftp": json.dumps({"v": "ftp://127.0.0.1/x"}).encode(),
    "space": json.dumps({"v": "a b"}).encode(),
    "emoji": json.dumps({"v": "💩"}).encode(),
    "crlf": json.dumps({"v": "x\r\nInjected: 1"}).encode(),
    "nul": json.dumps({"v": "x\x00y"}).encode(),
    "accent": json.dumps({"v": "é"}).encode(),
    "port": json.dumps({"v": "http://127.0.0.1:99999/"}).encode(),
    "surrogate": b'{"v": "\\ud800"}',
    "xs": b"x" * 5000,
    "deep": b"[" * 100_000,
}
"""What ``/give?v=KEY`` answers."""


class _Handler(BaseHTTPRequestHandler):
    fuzz: ClassVar[list[str]] = [""]
    """What ``/fuzz`` answers as ``{"v": ...}`` (set by the hypothesis test)."""

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._answer()

    def _answer(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/give":
            body = BODIES[parse_qs(parts.query)["v"][0]]
        elif parts.path == "/fuzz":
            body = json.dumps({"v": self.fuzz[0]}).encode()
        else:
            body = b"fine"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def app() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)


def _journey(
    name: str,
    first: str,
    url: str,
    headers: dict[str, str] | None = None,
    capture: str = "json:v",
    **step: object,
) -> dict[str, object]:
    return {
        "name": name,
        "url": first,
        "timeout": f"{DEADLINE:g}s",
        "retries": 0,
        "max_body": "20MiB",
        "capture": {"v": capture},
        "steps": [{"name": "next", "url": url, "headers": headers or {}, **step}],
    }


CASES = [
    pytest.param(
        "big",
        "{base}/x/{{{{v}}}}",
        {},
        "main: capture v (json:v) is 10,000,000 characters, over the 65,536 a captured "
        "value may hold",
        id="10mb-capture-in-path",
    ),
    pytest.param(
        "big",
        "{base}/x?q={{{{v}}}}",
        {},
        "main: capture v (json:v) is 10,000,000 characters",
        id="10mb-capture-in-query",
    ),
    pytest.param(
        "long",
        "{base}/x?q={{{{v}}}}",
        {},
        "next: the URL built from capture v is not a valid URL (URL too long)",
        id="url-too-long",
    ),
    pytest.param(
        "ftp",
        "{{{{v}}}}",
        {},
        "next: captured URL is not http(s): 'ftp://127.0.0.1/x' (capture v)",
        id="ftp-url",
    ),
    pytest.param(
        "space",
        "http://{{{{v}}}}.invalid/",
        {},
        "next: capture v put into the URL's host gives 'a b.invalid', not a host name",
        id="space-in-host",
    ),
    pytest.param(
        "emoji",
        "http://{{{{v}}}}.invalid/",
        {},
        "next: the URL built from capture v is not a valid URL (Invalid IDNA hostname",
        id="emoji-in-host",
    ),
    pytest.param(
        "port",
        "{{{{v}}}}",
        {},
        "next: capture v put into the URL gives port 99999, not 1 to 65535",
        id="port-out-of-range",
    ),
    pytest.param(
        "crlf",
        "{base}/",
        {"X-V": "{{{{v}}}}"},
        "next: capture v put into header X-V holds a line break (CR/LF)",
        id="crlf-in-header",
    ),
    pytest.param(
        "nul",
        "{base}/",
        {"X-V": "a {{{{v}}}}"},
        "next: capture v put into header X-V holds '\\x00'",
        id="nul-in-header",
    ),
    pytest.param(
        "accent",
        "{base}/",
        {"X-V": "{{{{v}}}}"},
        "next: capture v put into header X-V is not ASCII",
        id="non-ascii-in-header",
    ),
    pytest.param(
        "surrogate",
        "{base}/{{{{v}}}}",
        {},
        "main: capture v (json:v) is not text (it holds a lone surrogate)",
        id="lone-surrogate",
    ),
]


@pytest.mark.parametrize(("key", "url", "headers", "words"), CASES)
def test_captured_data_the_next_step_cannot_use_is_server_assertion(
    app: str, key: str, url: str, headers: dict[str, str], words: str
) -> None:
    fill = {"base": app}
    found, took = run_and_time(
        [
            _journey(
                "hostile",
                f"{app}/give?v={key}",
                url.format(**fill),
                {k: v.format(**fill) for k, v in headers.items()},
            ),
            _journey("healthy", f"{app}/give?v=ok", f"{app}/echo/{{{{v}}}}", {"X-V": "{{v}}"}),
        ]
    )
    r = found["hostile"]
    assert r.reason == "server.assertion", r.error
    assert (r.error or "").startswith(words), r.error
    assert r.details["step"] == words.partition(":")[0]
    assert took < DEADLINE + 1
    healthy = found["healthy"]
    assert healthy.ok, healthy.error
    assert [s["status"] for s in healthy.details["steps"]] == [200, 200]


@pytest.mark.parametrize(
    ("key", "capture", "words"),
    [
        pytest.param(
            "xs",
            "regex:(x+x+)+y",
            "main: capture v (regex:(x+x+)+y): /(x+x+)+y/ gave up",
            id="regex",
        ),
        pytest.param("deep", "json:v", "main: capture v (json:v) found nothing", id="deep-json"),
    ],
)
def test_a_capture_that_cannot_be_taken_is_server_assertion(
    app: str, key: str, capture: str, words: str
) -> None:
    found, took = run_and_time(
        [
            _journey("hostile", f"{app}/give?v={key}", f"{app}/{{{{v}}}}", capture=capture),
            _journey("healthy", f"{app}/give?v=ok", f"{app}/echo/{{{{v}}}}"),
        ]
    )
    r = found["hostile"]
    assert r.reason == "server.assertion", r.error
    assert (r.error or "").startswith(words), r.error
    assert took < DEADLINE + 1
    assert found["healthy"].ok, found["healthy"].error


# --------------------------------------------------------------------------- hypothesis

VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "\ud800",
            "a\r\nX-Evil: 1",
            "ftp://127.0.0.1/x",
            "http://127.0.0.1:1/",
            " ",
            "",
            "💩",
            "%",
            "#",
            "?",
            "../..",
            "[::1]",
            "@x.invalid",
            "a:b",
            "x" * 70_000,
            "é" * 30_000,
        ]
    ),
)


def _nxdomain(query: bytes) -> bytes:
    response = dns.message.make_response(dns.message.from_wire(query))
    response.set_rcode(dns.rcode.NXDOMAIN)
    return response.to_wire()


@pytest.mark.slow
def test_random_captured_values_are_always_classified(app: str) -> None:
    port = app.rsplit(":", 1)[1]
    templates = [
        ("{{v}}", {}, None),
        (f"{app}/p/{{{{v}}}}", {}, None),
        (f"{app}/p?q={{{{v}}}}", {}, None),
        (f"http://{{{{v}}}}.invalid:{port}/", {}, None),
        ("{{v}}/x", {}, None),
        (f"{app}/", {"X-V": "Bearer {{v}}"}, None),
        (f"{app}/", {}, {"json": {"a": "{{v}}"}}),
        (f"{app}/", {}, {"body": "a={{v}}", "method": "POST"}),
    ]
    # every name a step may look up goes to a DNS server of our own on 127.0.0.1
    names = DnsServer()
    names.fallback = _nxdomain
    with names.running():

        @settings(
            max_examples=150,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        )
        @given(value=VALUES, where=st.integers(0, len(templates) - 1))
        def check(value: str, where: int) -> None:
            _Handler.fuzz[0] = value
            url, headers, extra = templates[where]
            probe = _journey("fuzz", f"{app}/fuzz", url, headers, **(extra or {}))
            probe["resolver"] = f"127.0.0.1:{names.port}"
            found, took = run_and_time([probe])
            r = found["fuzz"]
            assert r.reason in (
                None,
                "server.assertion",
                "dns.nxdomain",
                "network.refused",
            ), (r.reason, r.error)
            assert took < DEADLINE + 1

        check()
