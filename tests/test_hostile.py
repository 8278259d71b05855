"""Hostile servers: each gets exactly one class and reason, memory stays bounded, and the
run goes on to the next probe."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme

from synthprobe.demo import DemoPlatform, PlatformThread
from synthprobe.models import ProbeResult
from synthprobe.probers.base import Network

from .conftest import run_specs, specs_from_yaml
from .probing import probes_text
from .procwatch import probe_url_watching_peak


@pytest.fixture(scope="module")
def expired_tls_platform(ca: trustme.CA) -> Iterator[DemoPlatform]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    past = datetime.now(UTC) - timedelta(days=2)
    ca.issue_cert("localhost", not_before=past - timedelta(days=30), not_after=past).configure_cert(
        ctx
    )
    with PlatformThread(DemoPlatform(tls=ctx)) as running:
        yield running


CASES = [
    # id, which server, path, extra probe keys, reason (None: passes)
    pytest.param("plain", "/fault/endless", {"max_body": "1MiB"}, None, id="endless-chunked"),
    pytest.param(
        "plain", "/fault/huge-headers?size=1048576", {}, "network.protocol", id="huge-headers"
    ),
    pytest.param("plain", "/fault/cookies?n=1000", {}, None, id="thousand-cookies"),
    pytest.param(
        "plain",
        "/fault/gzip-bomb?size=268435456",
        {"max_body": "1MiB"},
        None,
        id="gzip-bomb",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "plain",
        "/fault/redirect?to=file:///etc/passwd",
        {},
        "server.redirects",
        id="redirect-to-file",
    ),
    pytest.param("plain", "/fault/redirect-loop", {}, "server.redirects", id="redirect-loop"),
    pytest.param("plain", "/fault/silent", {"timeout": "500ms"}, "timeout.read", id="never-speaks"),
    pytest.param("expired", "/v1/feed", {}, "network.tls", id="expired-cert"),
    pytest.param("wrong-name", "/v1/feed", {}, "network.tls", id="wrong-host-name"),
    pytest.param(
        "http-on-https",
        "/v1/feed",
        {"timeout": "500ms"},
        "timeout.connect",
        id="plain-http-on-https",
    ),
    pytest.param("plain", "/v1/feed", {}, None, id="after-all-that"),
]


def _base(server: str, request: pytest.FixtureRequest) -> str:
    """The URL base of each kind of server in the table."""
    if server == "plain":
        return str(request.getfixturevalue("platform").base_url)
    if server == "expired":
        return f"https://localhost:{request.getfixturevalue('expired_tls_platform').port}"
    if server == "wrong-name":
        return f"https://127.0.0.1:{request.getfixturevalue('tls_platform').port}"
    assert server == "http-on-https"
    return f"https://localhost:{request.getfixturevalue('platform').port}"


def _check(name: str, r: ProbeResult, reason: str | None) -> None:
    assert r.reason == reason, (name, r.error)
    assert (r.failure is None) == (reason is None), name
    if reason:
        assert r.reason is not None and r.failure is not None
        assert r.reason.split(".")[0] == r.failure.value and r.error, name


@pytest.mark.parametrize(("server", "path", "extra", "reason"), CASES)
def test_each_hostile_server_alone(
    request: pytest.FixtureRequest,
    trusting_network: Network,
    server: str,
    path: str,
    extra: dict[str, str],
    reason: str | None,
) -> None:
    probe = {"name": "p", "url": _base(server, request) + path, "timeout": "10s", **extra}
    [r] = run_specs(specs_from_yaml(probes_text(probe)), trusting_network)
    _check(request.node.callspec.id, r, reason)


def test_every_hostile_server_in_one_run(
    request: pytest.FixtureRequest, trusting_network: Network
) -> None:
    cases = {
        c.id: (_base(c.values[0], request) + str(c.values[1]), c.values[2], c.values[3])
        for c in CASES
    }
    text = probes_text(
        *(
            {"name": name, "url": url, "timeout": "10s", **extra}
            for name, (url, extra, _reason) in cases.items()
        )
    )
    results = {r.probe: r for r in run_specs(specs_from_yaml(text), trusting_network)}
    assert set(results) == set(cases)  # the run went on past every one of them
    for name, (_url, _extra, reason) in cases.items():
        _check(name, results[name], reason)  # type: ignore[arg-type]
    assert results["endless-chunked"].details["truncated"] is True
    assert results["endless-chunked"].details["body_bytes"] == 1024 * 1024
    bomb = results["gzip-bomb"]
    assert bomb.details["truncated"] is True and bomb.details["body_bytes"] == 1024 * 1024
    assert bomb.bytes_in < 1024 * 1024  # a little compressed data went this far
    assert "expired" in (results["expired-cert"].error or "")


@pytest.mark.slow
def test_gzip_bomb_memory_is_bounded(platform: DemoPlatform, tmp_path: Path) -> None:
    """1 GiB of zeros as ~1 MB of gzip, through the real CLI: peak RSS stays small."""
    url = f"{platform.base_url}/fault/gzip-bomb?size={1024**3}"
    record, peak = probe_url_watching_peak(url, tmp_path, 60)
    assert record["details"]["truncated"] and record["details"]["body_bytes"] == 10 * 1024**2
    assert 0 < peak / 1024 < 150, f"peak RSS {peak / 1024:.0f} MiB"
