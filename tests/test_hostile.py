"""Hostile servers: each gets exactly one class and reason, memory stays bounded, and the
run goes on to the next probe."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme

from synthprobe.demo import DemoPlatform, PlatformThread
from synthprobe.probers.base import Network

from .conftest import run_specs, specs_from_yaml
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


def test_every_hostile_server_in_one_run(
    platform: DemoPlatform,
    tls_platform: DemoPlatform,
    expired_tls_platform: DemoPlatform,
    trusting_network: Network,
) -> None:
    base = platform.base_url
    cases = {
        # name: (url, extra probe keys, reason)
        "endless-chunked": (f"{base}/fault/endless", {"max_body": "1MiB"}, None),
        "huge-headers": (f"{base}/fault/huge-headers?size=1048576", {}, "network.protocol"),
        "thousand-cookies": (f"{base}/fault/cookies?n=1000", {}, None),
        "gzip-bomb": (f"{base}/fault/gzip-bomb?size=268435456", {"max_body": "1MiB"}, None),
        "redirect-to-file": (
            f"{base}/fault/redirect?to=file:///etc/passwd",
            {},
            "server.redirects",
        ),
        "redirect-loop": (f"{base}/fault/redirect-loop", {}, "server.redirects"),
        "never-speaks": (f"{base}/fault/silent", {"timeout": "500ms"}, "timeout.read"),
        "expired-cert": (
            f"https://localhost:{expired_tls_platform.port}/v1/feed",
            {},
            "network.tls",
        ),
        "wrong-host-name": (f"https://127.0.0.1:{tls_platform.port}/v1/feed", {}, "network.tls"),
        "plain-http-on-https": (
            f"https://localhost:{platform.port}/v1/feed",
            {"timeout": "500ms"},
            "timeout.connect",
        ),
        "after-all-that": (f"{base}/v1/feed", {}, None),
    }
    text = "probes:\n" + "".join(
        "  - " + json.dumps({"name": name, "url": url, "timeout": "10s", **extra}) + "\n"
        for name, (url, extra, _reason) in cases.items()
    )
    results = {r.probe: r for r in run_specs(specs_from_yaml(text), trusting_network)}
    assert set(results) == set(cases)  # the run went on past every one of them
    for name, (_url, _extra, reason) in cases.items():
        r = results[name]
        assert r.reason == reason, (name, r.error)
        assert (r.failure is None) == (reason is None), name
        if reason:
            assert r.reason.split(".")[0] == r.failure.value and r.error, name
    assert results["endless-chunked"].details["truncated"] is True
    assert results["endless-chunked"].details["body_bytes"] == 1024 * 1024
    bomb = results["gzip-bomb"]
    assert bomb.details["truncated"] is True and bomb.details["body_bytes"] == 1024 * 1024
    assert bomb.bytes_in < 1024 * 1024  # a little compressed data went this far
    assert "expired" in (results["expired-cert"].error or "")


def test_gzip_bomb_memory_is_bounded(platform: DemoPlatform, tmp_path: Path) -> None:
    """1 GiB of zeros as ~1 MB of gzip, through the real CLI: peak RSS stays small."""
    url = f"{platform.base_url}/fault/gzip-bomb?size={1024**3}"
    record, peak = probe_url_watching_peak(url, tmp_path, 60)
    assert record["details"]["truncated"] and record["details"]["body_bytes"] == 10 * 1024**2
    assert 0 < peak / 1024 < 150, f"peak RSS {peak / 1024:.0f} MiB"
