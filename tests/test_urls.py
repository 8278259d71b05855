"""urls.py: one rule for a server-given URL's usability (one host grammar) and one for
default ports, as redirects, journeys and live use them."""

from __future__ import annotations

import httpx
import pytest

from synthprobe.classify import ProbeFailure
from synthprobe.models import JourneyStep
from synthprobe.probers.journey import step_url
from synthprobe.probers.live.integrity import check_fetchable
from synthprobe.probers.redirects import redirect_target
from synthprobe.probers.urls import Flaw, Unusable, default_port, is_host_name, port_of, usable

GOOD = [
    pytest.param("http://a.invalid/", "a.invalid", id="name"),
    pytest.param("https://a.invalid./x", "a.invalid.", id="trailing-dot"),
    pytest.param("http://127.0.0.1:8080/", "127.0.0.1", id="ipv4"),
    pytest.param("http://[::1]:8080/", "::1", id="ipv6-bracketed"),
    pytest.param("http://bücher.invalid/", "bücher.invalid", id="idna"),
    pytest.param("http://xn--bcher-kva.invalid/", "bücher.invalid", id="idna-a-label"),
    pytest.param("http://user:secret@a.invalid/", "a.invalid", id="userinfo"),
    pytest.param("http://_dmarc.a.invalid/", "_dmarc.a.invalid", id="underscore"),
    pytest.param(f"http://{'a' * 63}.invalid/", f"{'a' * 63}.invalid", id="label-63"),
    pytest.param("HTTPS://A.INVALID:443/", "a.invalid", id="upper-case"),
]


@pytest.mark.parametrize(("text", "host"), GOOD)
def test_a_usable_url_is_parsed_once(text: str, host: str) -> None:
    assert usable(text).host == host


BAD = [
    pytest.param("", Flaw.SCHEME, "unsupported scheme ''", id="empty"),
    pytest.param("https:///a.ts", Flaw.NO_HOST, "no host", id="empty-host"),
    pytest.param("http://a b.invalid/", Flaw.HOST, "invalid host name 'a%20b.invalid'", id="space"),
    pytest.param("http://a\x01b.invalid/", Flaw.INVALID, "non-printable", id="control"),
    pytest.param("http://a\tb.invalid/", Flaw.INVALID, "non-printable", id="tab"),
    pytest.param("http://[::1/", Flaw.INVALID, "", id="broken-ipv6"),
    pytest.param("http://xn--zz.invalid/", Flaw.INVALID, "", id="bad-a-label"),
    pytest.param("http://☃☃.invalid/", Flaw.INVALID, "", id="bad-idna"),
    pytest.param(f"http://{'a' * 64}.invalid/", Flaw.HOST, "invalid host name", id="label-64"),
    pytest.param(f"http://{'a.' * 127}invalid/", Flaw.HOST, "invalid host name", id="name-261"),
    pytest.param("http://-a.invalid/", Flaw.HOST, "invalid host name '-a.invalid'", id="hyphen"),
    pytest.param("http://a..invalid/", Flaw.HOST, "invalid host name", id="empty-label"),
    pytest.param("http://%41.invalid/", Flaw.HOST, "invalid host name '%41.invalid'", id="pct"),
    pytest.param("http://a.invalid:0/", Flaw.PORT, "port 0 out of range", id="port-0"),
    pytest.param("http://a.invalid:99999/", Flaw.PORT, "port 99999 out of range", id="port-99999"),
    pytest.param("ftp://a.invalid/", Flaw.SCHEME, "unsupported scheme 'ftp'", id="ftp"),
    pytest.param("file:///etc/passwd", Flaw.SCHEME, "unsupported scheme 'file'", id="file"),
    pytest.param("ws://a.invalid/", Flaw.SCHEME, "unsupported scheme 'ws'", id="ws"),
    pytest.param("data:video/mp2t;base64,R0dH", Flaw.SCHEME, "'data'", id="data"),
]


@pytest.mark.parametrize(("text", "flaw", "words"), BAD)
def test_an_unusable_url_says_why(text: str, flaw: Flaw, words: str) -> None:
    with pytest.raises(Unusable) as info:
        usable(text)
    assert info.value.flaw is flaw
    assert words in info.value.why and info.value.why


def test_a_relative_url_resolves_against_its_base() -> None:
    assert str(usable("../b", httpx.URL("http://a.invalid/x/y/z"))) == "http://a.invalid/x/b"
    with pytest.raises(Unusable, match="invalid host name"):
        usable("//a b.invalid/", httpx.URL("https://a.invalid/"))


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        pytest.param("a.invalid", True, id="name"),
        pytest.param("a.invalid.", True, id="trailing-dot"),
        pytest.param("::1", True, id="ipv6"),
        pytest.param("", False, id="empty"),
        pytest.param(".", False, id="dot-only"),
        pytest.param("a_b-c.invalid", True, id="underscore-hyphen"),
        pytest.param("a-.invalid", False, id="trailing-hyphen"),
        pytest.param("a%20b", False, id="percent"),
        pytest.param("a" * 63, True, id="label-63"),
        pytest.param("a" * 64, False, id="label-64"),
        pytest.param(".".join(["a" * 63] * 4)[:253], True, id="name-253"),
        pytest.param(".".join(["a" * 63] * 4)[:253] + "a", False, id="name-254"),
    ],
)
def test_one_host_grammar(host: str, ok: bool) -> None:
    assert is_host_name(host) is ok


# each caller words the one rule's answer its own way (the messages tests elsewhere pin)
CALLERS = [
    pytest.param(
        "http://a b.invalid/",
        "redirect to an unusable URL (invalid host name 'a%20b.invalid'): "
        "Location 'http://a b.invalid/'",
        "capture v put into the URL's host gives 'a b.invalid', not a host name",
        "segment URI has invalid host name 'a%20b.invalid': http://a b.invalid/",
        id="space",
    ),
    pytest.param(
        f"http://{'a' * 64}.invalid/",
        f"redirect to an unusable URL (invalid host name '{'a' * 64}.invalid')",
        f"capture v put into the URL's host gives '{'a' * 64}.invalid', not a host name",
        f"segment URI has invalid host name '{'a' * 64}.invalid'",
        id="label-64",
    ),
    pytest.param(
        "http://a.invalid:0/",
        "redirect to an unusable URL (port 0 out of range)",
        "capture v put into the URL gives port 0, not 1 to 65535",
        "segment URI has port 0, outside 1..65535: http://a.invalid:0/",
        id="port-0",
    ),
    pytest.param(
        "http://xn--zz.invalid/",
        "redirect to an unusable URL (",
        "the URL built from capture v is not a valid URL (",
        "segment URI is not a valid URL (",
        id="bad-a-label",
    ),
    pytest.param(
        "https:///a.ts",
        "redirect to an unusable URL (no host)",
        "capture v put into the URL's host gives '', not a host name",
        "segment URI has no host: https:///a.ts",
        id="empty-host",
    ),
]


def _error(call: object) -> str:
    assert callable(call)
    with pytest.raises(ProbeFailure) as info:
        call()
    return info.value.classified.error


@pytest.mark.parametrize(("text", "redirect", "journey", "live"), CALLERS)
def test_every_caller_refuses_the_same_urls(
    text: str, redirect: str, journey: str, live: str
) -> None:
    step = JourneyStep(name="next", url="{{v}}")
    assert redirect in _error(lambda: redirect_target(httpx.URL("http://a.invalid/"), text))
    assert journey in _error(lambda: step_url(step, {"v": text}))
    assert live in _error(lambda: check_fetchable(text, "segment"))


@pytest.mark.parametrize(
    ("url", "port"),
    [
        pytest.param("http://a.invalid/", 80, id="http"),
        pytest.param("https://a.invalid/", 443, id="https"),
        pytest.param("ws://a.invalid/", 80, id="ws"),
        pytest.param("wss://a.invalid/", 443, id="wss"),
        pytest.param("https://a.invalid:8443/", 8443, id="given"),
        pytest.param("http://a.invalid:443/", 443, id="given-443-on-http"),
    ],
)
def test_default_ports(url: str, port: int) -> None:
    parsed = httpx.URL(url)
    assert port_of(parsed) == port
    assert default_port(parsed.scheme) == (443 if parsed.scheme in ("https", "wss") else 80)
