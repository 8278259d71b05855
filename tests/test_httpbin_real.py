"""HTTP as a server nobody here wrote speaks it: httpbin (pytest-httpbin serves it on
127.0.0.1) for credentials, cookies, encodings, redirects, ranges, streams and bodies;
small servers of our own for markup and escape sequences in what a server sends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from synthprobe.models import ProbeResult

from .commands import run_probe
from .conftest import probe_once
from .probing import write_config
from .sockets import accepting


def probe(url: str, **fields: Any) -> ProbeResult:
    return probe_once(url, **{"timeout": "5s", **fields})


def test_url_credentials_are_basic_authentication(httpbin: Any) -> None:
    base = httpbin.url.replace("http://", "http://probe:s3cr%40t@")
    ok = probe(f"{base}/basic-auth/probe/s3cr@t")
    assert ok.ok, ok.error
    assert ok.url.startswith("http://***@")  # the userinfo never shows
    wrong = probe(f"{base}/basic-auth/probe/other")
    assert (wrong.reason, wrong.status) == ("server.status", 401)


def test_credentials_follow_a_redirect_only_to_the_same_origin(httpbin: Any) -> None:
    base = httpbin.url.replace("http://", "http://probe:pw@")
    same = probe(f"{base}/redirect-to?url=/basic-auth/probe/pw")
    assert same.ok and same.details["redirects"] == 1, same.error
    # localhost is the same server, but another origin: the credentials stay behind
    other = httpbin.url.replace("127.0.0.1", "localhost")
    leaked = probe(
        f"{base}/redirect-to?url={other}/headers",
        ip_version=4,
        expect={"json": [{"path": "headers.Authorization", "exists": False}]},
    )
    assert leaked.ok, leaked.error


def test_cookies_set_on_a_hop_come_back_on_the_next(httpbin: Any) -> None:
    r = probe(
        f"{httpbin.url}/cookies/set?session=abc123xyz",
        expect={"json": [{"path": "cookies.session", "equals": "abc123xyz"}]},
    )
    assert r.ok, r.error
    assert r.details["redirects"] == 1


def test_cookies_never_cross_probes(httpbin: Any) -> None:
    probe(f"{httpbin.url}/cookies/set?session=abc123xyz")
    r = probe(f"{httpbin.url}/cookies", expect={"json": [{"path": "cookies", "max_items": 0}]})
    assert r.ok, r.error


@pytest.mark.parametrize(
    ("path", "flag"), [("/gzip", "gzipped"), ("/deflate", "deflated"), ("/brotli", "brotli")]
)
def test_encodings_are_decoded(httpbin: Any, path: str, flag: str) -> None:
    r = probe(f"{httpbin.url}{path}", expect={"json": [{"path": flag, "equals": True}]})
    assert r.ok, r.error


def test_an_encoding_we_cannot_decode_is_named(platform_url: str) -> None:
    url = f"{platform_url}/fault/headers?Content-Encoding=zstd"
    r = probe(url, expect={"json": [{"path": "status", "exists": True}]})
    assert r.reason == "network.protocol"
    assert (r.error or "").startswith(
        "body sent with Content-Encoding: zstd, which synthprobe cannot decode"
    )
    assert probe(url).ok  # a status-only probe does not need the body


@pytest.mark.parametrize(
    ("path", "redirects"),
    [("/redirect/3", 3), ("/relative-redirect/4", 4), ("/absolute-redirect/2", 2)],
)
def test_redirects_are_followed_hop_by_hop(httpbin: Any, path: str, redirects: int) -> None:
    r = probe(f"{httpbin.url}{path}", expect={"json": [{"path": "url", "exists": True}]})
    assert r.ok and r.details["redirects"] == redirects, r.error


def test_too_many_redirects(httpbin: Any) -> None:
    r = probe(f"{httpbin.url}/redirect/12")
    assert (r.reason, r.error) == ("server.redirects", "more than 10 redirects")


def test_a_redirect_loop_says_where_it_loops(platform_url: str) -> None:
    r = probe(f"{platform_url}/fault/redirect-loop")
    assert r.reason == "server.redirects"
    assert r.error == (
        f"redirect loop: redirect 2 leads back to {platform_url}/fault/redirect-loop, "
        "the URL asked for"
    )


@pytest.mark.parametrize(
    ("path", "fields", "reason"),
    [
        ("/status/418", {}, "server.status"),
        ("/delay/1", {"expect": {"max_latency": "300ms"}}, "server.slow"),
        ("/drip?duration=4&numbytes=4&delay=0", {"timeout": "1500ms"}, "timeout.total"),
        ("/stream/20", {"expect": {"body_regex": '"id": 19'}}, None),
        (
            "/range/1024",
            {"headers": {"Range": "bytes=0-99"}, "expect": {"status": [206]}},
            None,
        ),
        (
            "/response-headers?X-Probe=hello",
            {"expect": {"headers": {"X-Probe": "^hello$"}}},
            None,
        ),
        (
            "/anything",
            {
                "method": "POST",
                "json": {"user": "probe"},
                "expect": {"json": [{"path": "json.user", "equals": "probe"}]},
            },
            None,
        ),
    ],
    ids=["status-418", "delay", "drip", "stream", "range", "response-headers", "anything"],
)
@pytest.mark.slow
def test_what_already_works_keeps_working(
    httpbin: Any, path: str, fields: dict[str, Any], reason: str | None
) -> None:
    r = probe(f"{httpbin.url}{path}", **fields)
    assert r.reason == reason, r.error
    if path.startswith("/range"):
        assert r.details["body_bytes"] == 100


def test_an_upload_to_httpbin(httpbin: Any) -> None:
    r = probe(
        f"{httpbin.url}/post",
        kind="upload",
        upload={"size": "1KiB"},
        expect={"json": [{"path": "files.file", "exists": True}]},
    )
    assert r.ok, r.error


@pytest.mark.slow
def test_server_text_is_shown_as_it_came(tmp_path: Path) -> None:
    def answer(conn: Any) -> None:
        conn.sendall(b"[red]MARK[/red]\x1b[2J\x07 gone\r\n")

    with accepting(answer) as port:
        config = write_config(
            tmp_path,
            f'probes:\n  - {{name: t, kind: tcp, url: "tcp://127.0.0.1:{port}", '
            'tcp: {expect: "+OK"}}\n',
            "p.yaml",
        )
        out = str(tmp_path / "r.jsonl")
        done = run_probe("run", str(config), "-o", out, "--no-state", env={"COLUMNS": "250"})
    assert done.returncode == 1
    assert "[red]MARK[/red]" in done.stdout  # markup shown, not obeyed
    assert "\x1b" not in done.stdout + done.stderr and "\x07" not in done.stdout
    line = json.loads((tmp_path / "r.jsonl").read_text())
    assert "[red]MARK[/red]\\x1b[2J\\x07 gone" in line["error"]


@pytest.mark.parametrize("command", ["run", "validate", "list", "report", "demo"])
def test_help_has_clean_metavars(command: str) -> None:
    done = run_probe(command, "--help")
    assert done.returncode == 0
    for noise in ("<int", "<str>", "<list", "{CONFIG", "{RESULTS"):
        assert noise not in done.stdout, (command, noise)


@pytest.mark.parametrize(
    ("value", "reason", "words"),
    [
        ("2099-01-01T00:00:00Z", "server.assertion", "in the future"),
        ("1999-01-01T00:00:00Z", "server.stale", "old, expected under 15m00s"),
        ("not-a-time", "server.assertion", "is not a time"),
        ("2026-01-01T00:00:00", "server.assertion", "is not a time"),  # no zone: ambiguous
    ],
    ids=["future", "stale", "garbage", "no-zone"],
)
def test_freshness_against_a_server_that_echoes_times(
    httpbin: Any, value: str, reason: str, words: str
) -> None:
    r = probe(
        f"{httpbin.url}/response-headers?t={value}",
        expect={"json": [{"path": "t", "max_age": "15m"}]},
    )
    assert r.reason == reason and words in (r.error or ""), r.error
