"""probers/redirects.py, pure: where the next hop goes, whether it may, and what goes
with it. Tables with ids; the same rules against real servers are in
test_hostile_http.py and test_probe_real.py."""

from __future__ import annotations

import httpx
import pytest

from synthprobe.classify import ProbeFailure
from synthprobe.probers.redirects import (
    MAX_REDIRECTS,
    basic_auth,
    check_hop,
    hop_headers,
    next_method,
    origin,
    redirect_target,
)


@pytest.mark.parametrize(
    ("status", "method", "content", "expected"),
    [
        pytest.param(303, "POST", b"x", ("GET", None), id="303-post-becomes-get"),
        pytest.param(303, "PUT", b"x", ("GET", None), id="303-put-becomes-get"),
        pytest.param(303, "HEAD", None, ("HEAD", None), id="303-head-stays"),
        pytest.param(301, "POST", b"x", ("GET", None), id="301-post-becomes-get"),
        pytest.param(302, "POST", b"x", ("GET", None), id="302-post-becomes-get"),
        pytest.param(302, "PUT", b"x", ("PUT", b"x"), id="302-put-stays"),
        pytest.param(307, "POST", b"x", ("POST", b"x"), id="307-keeps-method-and-body"),
        pytest.param(308, "POST", b"x", ("POST", b"x"), id="308-keeps-method-and-body"),
        pytest.param(301, "GET", None, ("GET", None), id="301-get-stays"),
    ],
)
def test_next_method(
    status: int, method: str, content: bytes | None, expected: tuple[str, bytes | None]
) -> None:
    assert next_method(status, method, content) == expected


@pytest.mark.parametrize(
    ("base", "location", "expected"),
    [
        pytest.param("http://a.invalid/x/y", "z", "http://a.invalid/x/z", id="relative"),
        pytest.param("http://a.invalid/x/y", "/z", "http://a.invalid/z", id="absolute-path"),
        pytest.param("https://a.invalid/", "//b.invalid/p", "https://b.invalid/p", id="scheme"),
        pytest.param("http://a.invalid/", "http://b.invalid:81/", "http://b.invalid:81/", id="url"),
    ],
)
def test_redirect_target_resolves_against_the_hop(base: str, location: str, expected: str) -> None:
    assert str(redirect_target(httpx.URL(base), location)) == expected


@pytest.mark.parametrize(
    ("location", "words"),
    [
        pytest.param("ftp://a.invalid/", "unsupported scheme", id="ftp"),
        pytest.param("file:///etc/passwd", "unsupported scheme", id="file"),
        pytest.param("http://[::1", "unusable URL", id="broken-ipv6"),
        pytest.param("http://a.invalid:99999/", "unusable URL", id="port-out-of-range"),
        pytest.param("http://a b.invalid/", "invalid host name", id="space-in-host"),
    ],
)
def test_redirect_target_refuses_what_we_cannot_go_to(location: str, words: str) -> None:
    with pytest.raises(ProbeFailure) as info:
        redirect_target(httpx.URL("http://a.invalid/"), location)
    assert info.value.classified.reason == "server.redirects"
    assert words in info.value.classified.error and "Location" in info.value.classified.error


def test_check_hop_stops_loops_and_long_chains() -> None:
    start = "http://a.invalid/"
    check_hop([start], httpx.URL("http://a.invalid/next"))  # a new URL: fine
    with pytest.raises(ProbeFailure, match="redirect loop: redirect 1 leads back"):
        check_hop([start], httpx.URL(start))
    chain = [f"http://a.invalid/{i}" for i in range(MAX_REDIRECTS + 1)]
    with pytest.raises(ProbeFailure, match=f"more than {MAX_REDIRECTS} redirects"):
        check_hop(chain, httpx.URL("http://a.invalid/last"))


@pytest.mark.parametrize(
    ("to", "sent"),
    [
        pytest.param("http://a.invalid/other", True, id="same-origin"),
        pytest.param("http://a.invalid:80/other", True, id="same-origin-default-port"),
        pytest.param("https://a.invalid/", False, id="other-scheme"),
        pytest.param("http://b.invalid/", False, id="other-host"),
        pytest.param("http://a.invalid:8080/", False, id="other-port"),
    ],
)
def test_credentials_go_to_their_own_origin_only(to: str, sent: bool) -> None:
    first = httpx.URL("http://user:secret@a.invalid/")
    auth = basic_auth(first)
    assert auth == "Basic dXNlcjpzZWNyZXQ="
    headers = hop_headers((), httpx.URL(to), "GET", None, auth, origin(first))
    assert (("Authorization", auth) in headers) is sent


def test_the_probes_own_authorization_and_cookie_win() -> None:
    jar = httpx.Cookies()
    jar.set("sid", "abc", domain="a.invalid")
    own = (("authorization", "Bearer mine"), ("cookie", "x=1"))
    url = httpx.URL("http://a.invalid/")
    assert hop_headers(own, url, "GET", jar, "Basic zzz", origin(url)) == own
    added = dict(hop_headers((), url, "GET", jar, None, origin(url)))
    assert added == {"Cookie": "sid=abc"}
