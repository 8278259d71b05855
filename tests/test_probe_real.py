"""Every reason this version can give, provoked against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme

from synthprobe.demo import DemoPlatform, PlatformThread
from synthprobe.models import Failure
from synthprobe.probers.base import Network

from .conftest import probe_once, run_specs, specs_from_yaml
from .procwatch import probe_url_watching_peak

# (id, path on the demo platform, extra probe fields, failure, reason)
FAULTS = [
    ("reset", "/fault/reset", {}, Failure.NETWORK, "network.reset"),
    ("closed-no-reply", "/fault/close", {}, Failure.NETWORK, "network.closed"),
    ("garbage", "/fault/garbage", {}, Failure.NETWORK, "network.protocol"),
    (
        "slow-headers",
        "/fault/slow-headers?delay=5",
        {"timeout": "400ms"},
        Failure.TIMEOUT,
        "timeout.read",
    ),
    (
        "trickle-past-deadline",
        "/fault/trickle?interval=0.1&bytes=100",
        {"timeout": "600ms"},
        Failure.TIMEOUT,
        "timeout.total",
    ),
    ("5xx", "/fault/status/503", {}, Failure.SERVER, "server.status"),
    ("wrong-status", "/v1/feed", {"expect": {"status": [201]}}, Failure.SERVER, "server.status"),
    (
        "body-contains",
        "/v1/feed",
        {"expect": {"body_contains": "nope"}},
        Failure.SERVER,
        "server.assertion",
    ),
    (
        "body-regex",
        "/v1/feed",
        {"expect": {"body_regex": "^<html"}},
        Failure.SERVER,
        "server.assertion",
    ),
    (
        "header",
        "/v1/feed",
        {"expect": {"headers": {"content-type": "text/html"}}},
        Failure.SERVER,
        "server.assertion",
    ),
    (
        "header-missing",
        "/v1/feed",
        {"expect": {"headers": {"x-request-id": "."}}},
        Failure.SERVER,
        "server.assertion",
    ),
    (
        "json",
        "/v1/feed?limit=0",
        {"expect": {"json": [{"path": "items", "min_items": 1}]}},
        Failure.SERVER,
        "server.assertion",
    ),
    (
        "json-equals",
        "/v1/feed",
        {"expect": {"json": [{"path": "status", "equals": "down"}]}},
        Failure.SERVER,
        "server.assertion",
    ),
    (
        "slower-than-max-latency",
        "/fault/slow?delay=0.3",
        {"expect": {"max_latency": "100ms"}},
        Failure.SERVER,
        "server.slow",
    ),
    ("redirect-loop", "/fault/redirect-loop", {}, Failure.SERVER, "server.redirects"),
    (
        "redirect-to-file-scheme",
        "/fault/redirect?to=file:///etc/passwd",
        {},
        Failure.SERVER,
        "server.redirects",
    ),
]


@pytest.mark.parametrize(
    ("path", "fields", "failure", "reason"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS]
)
def test_fault_is_labelled(
    platform: DemoPlatform, path: str, fields: dict[str, object], failure: Failure, reason: str
) -> None:
    result = probe_once(platform.base_url + path, **fields)
    assert (result.ok, result.failure, result.reason) == (False, failure, reason), result.error
    assert result.error
    assert result.timings_ms["total"] is not None


def test_healthy_feed_passes_with_phase_timings(platform: DemoPlatform) -> None:
    result = probe_once(
        platform.base_url + "/v1/feed?limit=3",
        expect={
            "status": [200, "2xx"],
            "body_contains": '"items"',
            "body_regex": "post-2",
            "headers": {"content-type": "application/json.*"},
            "json": [
                {"path": "items", "min_items": 3, "max_items": 3},
                {"path": "items[0].id", "exists": True},
                {"path": "items[-1].id", "equals": "post-2"},
                {"path": "missing", "exists": False},
                {"path": "status", "matches": "^ok$"},
            ],
        },
    )
    assert result.ok, result.error
    assert (result.failure, result.reason, result.error, result.status) == (None, None, None, 200)
    t = result.timings_ms
    assert t["dns"] is None  # an IP literal: no lookup
    assert t["tls"] is None  # plain http
    assert t["connect"] is not None and t["ttfb"] is not None and t["transfer"] is not None
    # the phases of a plain HTTP probe add up to its total (each rounded to 1 µs)
    assert t["total"] == pytest.approx(t["connect"] + t["ttfb"] + t["transfer"], abs=0.002)
    assert result.bytes_in > 0
    assert result.details["remote_ip"] == "127.0.0.1"
    assert result.details["truncated"] is False


def test_dns_is_its_own_phase_for_names(platform: DemoPlatform) -> None:
    url = platform.base_url.replace("127.0.0.1", "localhost") + "/v1/feed"
    result = probe_once(url)
    assert result.ok, result.error
    assert result.timings_ms["dns"] is not None


def test_unresolvable_name_is_nxdomain() -> None:
    result = probe_once("http://feed.synthprobe-test.invalid/v1/feed")
    assert (result.failure, result.reason) == (Failure.DNS, "dns.nxdomain")
    assert "feed.synthprobe-test.invalid" in (result.error or "")
    assert result.timings_ms["connect"] is None


@pytest.mark.slow
def test_upload_to_a_server_that_never_reads_is_write_timeout(non_reading_server: str) -> None:
    result = probe_once(
        non_reading_server + "/v1/media", kind="upload", timeout="700ms", upload={"size": "64MiB"}
    )
    assert (result.failure, result.reason) == (Failure.TIMEOUT, "timeout.write"), result.error
    assert "not sent within" in (result.error or "")
    assert result.timings_ms["connect"] is not None


def test_resolver_failure_is_dns_error() -> None:
    async def servfail(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    result = probe_once("http://api.example.invalid/", network=Network(resolver=servfail))
    assert (result.failure, result.reason) == (Failure.DNS, "dns.error")
    assert "api.example.invalid" in (result.error or "")


def test_unreachable_network() -> None:
    # the loopback broadcast address: connect() fails with ENETUNREACH, and it stays
    # inside 127.0.0.0/8
    probe_sock = socket.socket()
    try:
        probe_sock.connect(("127.255.255.255", 9))
    except OSError as exc:
        if exc.errno != errno.ENETUNREACH:
            pytest.skip(f"this kernel answers 127.255.255.255 with {exc}, not ENETUNREACH")
    else:
        pytest.skip("this kernel connects to 127.255.255.255")
    finally:
        probe_sock.close()
    result = probe_once("http://127.255.255.255:9/")
    assert (result.failure, result.reason) == (Failure.NETWORK, "network.unreachable")


def test_refused(refused_url: str) -> None:
    result = probe_once(refused_url + "/v1/feed")
    assert (result.failure, result.reason) == (Failure.NETWORK, "network.refused")
    assert result.timings_ms["connect"] is not None  # reached, and failed fast


def test_full_backlog_is_a_connect_timeout(backlog_full_url: str) -> None:
    result = probe_once(backlog_full_url + "/", timeout="500ms")
    assert (result.failure, result.reason) == (Failure.TIMEOUT, "timeout.connect"), result.error
    assert result.timings_ms["connect"] is None
    assert 450 <= result.timings_ms["total"] < 2000  # the total deadline, not httpx's


def test_slow_resolver_is_dns_timeout_not_connect_timeout(platform: DemoPlatform) -> None:
    async def slow_resolver(host: str, port: int) -> list[str]:
        await asyncio.sleep(5)
        return ["127.0.0.1"]

    result = probe_once(
        f"http://feed.example.invalid:{platform.port}/v1/feed",
        network=Network(resolver=slow_resolver),
        timeout="300ms",
    )
    assert (result.failure, result.reason) == (Failure.DNS, "dns.timeout")


def test_resolver_without_address_is_no_address(platform: DemoPlatform) -> None:
    async def no_address(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NODATA, "No address associated with hostname")

    result = probe_once("http://empty.invalid/", network=Network(resolver=no_address))
    assert (result.failure, result.reason) == (Failure.DNS, "dns.no_address")


def test_name_resolving_to_a_dead_then_live_address_falls_back(platform: DemoPlatform) -> None:
    # the premise, checked: the first address really refuses
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", platform.port), timeout=5).close()

    async def two_addresses(host: str, port: int) -> list[str]:
        return ["127.0.0.2", "127.0.0.1"] if port == platform.port else ["127.0.0.1"]

    # 127.0.0.2 is loopback too, but nothing listens there on this port: refused
    result = probe_once(
        f"http://feed.test.invalid:{platform.port}/v1/feed", network=Network(resolver=two_addresses)
    )
    assert result.ok, result.error
    assert result.details["remote_ip"] == "127.0.0.1"


def test_self_signed_tls_is_network_tls(tls_platform: DemoPlatform) -> None:
    url = f"https://localhost:{tls_platform.port}/v1/feed"
    result = probe_once(url)
    assert (result.failure, result.reason) == (Failure.NETWORK, "network.tls")
    assert "certificate" in (result.error or "")


def test_tls_with_trusted_ca_keeps_host_and_sni(
    tls_platform: DemoPlatform, trusting_network: Network
) -> None:
    # we connect to the resolved IP: the certificate is only valid if SNI and the
    # host-name check still use "localhost"
    result = probe_once(f"https://localhost:{tls_platform.port}/v1/feed", network=trusting_network)
    assert result.ok, result.error
    assert result.timings_ms["tls"] is not None
    assert result.timings_ms["dns"] is not None


def test_tls_wrong_host_name(tls_platform: DemoPlatform, trusting_network: Network) -> None:
    result = probe_once(f"https://127.0.0.1:{tls_platform.port}/v1/feed", network=trusting_network)
    assert (result.failure, result.reason) == (Failure.NETWORK, "network.tls")


def test_verify_tls_false_accepts_untrusted(tls_platform: DemoPlatform) -> None:
    result = probe_once(f"https://localhost:{tls_platform.port}/v1/feed", verify_tls=False)
    assert result.ok, result.error


def test_https_url_on_a_silent_plain_server_is_a_tls_handshake_timeout(
    platform: DemoPlatform,
) -> None:
    # the demo server waits for an HTTP head that a ClientHello never completes
    result = probe_once(f"https://localhost:{platform.port}/v1/feed", timeout="500ms")
    assert (result.failure, result.reason) == (Failure.TIMEOUT, "timeout.connect")
    assert "TLS handshake" in (result.error or "")
    assert result.timings_ms["connect"] is not None


def test_https_url_on_a_plain_http_server_that_answers(
    plain_answering_server: str,
) -> None:
    result = probe_once(plain_answering_server.replace("http://", "https://") + "/")
    assert (result.failure, result.reason) == (Failure.NETWORK, "network.tls")


def test_redirect_is_followed_and_counted(platform: DemoPlatform) -> None:
    result = probe_once(platform.base_url + "/fault/redirect?to=/v1/feed")
    assert result.ok, result.error
    assert result.details["redirects"] == 1
    assert result.details["final_url"].endswith("/v1/feed")


def test_redirect_not_followed_when_disabled(platform: DemoPlatform) -> None:
    result = probe_once(
        platform.base_url + "/fault/redirect?to=/v1/feed",
        follow_redirects=False,
        expect={"status": [302]},
    )
    assert result.ok, result.error
    assert result.status == 302


def test_big_body_is_truncated_at_max_body(platform: DemoPlatform) -> None:
    result = probe_once(platform.base_url + "/fault/big?size=3000000", max_body="1MiB")
    assert result.ok, result.error
    assert result.details["truncated"] is True
    assert result.bytes_in >= 1024 * 1024


def test_trickled_body_keeps_status(platform: DemoPlatform) -> None:
    result = probe_once(platform.base_url + "/fault/trickle?interval=0.1&bytes=50", timeout="400ms")
    assert result.reason == "timeout.total"
    assert result.status == 200
    assert result.timings_ms["ttfb"] is not None
    assert result.timings_ms["transfer"] is None


def test_upload_sends_payload_and_reports_throughput(platform: DemoPlatform) -> None:
    [result] = run_specs(
        specs_from_yaml(f"""
probes:
  - name: up
    kind: upload
    url: {platform.base_url}/v1/media
    upload: {{size: 300KiB, filename: clip.mp4, content_type: video/mp4}}
    expect: {{status: [201], json: [{{path: bytes, exists: true}}]}}
""")
    )
    assert result.ok, result.error
    assert result.method == "POST"
    assert result.bytes_out > 300 * 1024  # the payload plus the multipart framing
    assert result.details["upload_bytes"] == 300 * 1024
    assert result.details["upload_ms"] >= 0


def test_upload_server_counts_every_byte(platform: DemoPlatform) -> None:
    spec = specs_from_yaml(f"""
probes:
  - {{name: up, kind: upload, url: "{platform.base_url}/v1/media", upload: {{size: 1000}}}}
""")
    [result] = run_specs(spec)
    assert result.ok, result.error
    # what we report sent is what the server read: payload plus the multipart framing
    assert platform.upload_bytes[-1] == result.bytes_out > 1000


@pytest.mark.parametrize(
    ("retry_on", "url_path", "attempts"),
    [
        (None, "/fault/status/500", 1),
        (["server"], "/fault/status/500", 3),
        (None, "/fault/reset", 3),
        (["server"], "/fault/reset", 1),
    ],
    ids=[
        "server-not-retried",
        "server-retried-when-asked",
        "network-retried",
        "network-not-retried-when-not-listed",
    ],
)
def test_retries_are_class_aware(
    platform: DemoPlatform, retry_on: list[str] | None, url_path: str, attempts: int
) -> None:
    fields: dict[str, object] = {"retries": 2}
    if retry_on is not None:
        fields["retry_on"] = retry_on
    result = probe_once(platform.base_url + url_path, **fields)
    assert result.attempts == attempts
    assert not result.ok


def test_many_probes_all_recorded_and_classified(platform: DemoPlatform, refused_url: str) -> None:
    probes = []
    for i in range(150):
        if i % 3 == 0:
            probes.append(f'  - {{name: ok-{i}, url: "{platform.base_url}/v1/feed"}}')
        elif i % 3 == 1:
            probes.append(f'  - {{name: bad-{i}, url: "{platform.base_url}/fault/status/502"}}')
        else:
            probes.append(f'  - {{name: ref-{i}, url: "{refused_url}/"}}')
    results = run_specs(specs_from_yaml("probes:\n" + "\n".join(probes)), concurrency=50)
    assert len(results) == 150
    assert len({r.probe for r in results}) == 150
    for r in results:
        expected = {"ok": None, "bad": "server.status", "ref": "network.refused"}[
            r.probe.split("-")[0]
        ]
        assert r.reason == expected, (r.probe, r.error)


@pytest.mark.slow
def test_200_mib_body_is_read_with_bounded_memory(platform: DemoPlatform, tmp_path: Path) -> None:
    """A real `probe run` process against a 200 MiB body: it stops at max_body, says so,
    and its peak RSS stays far below the body's size."""
    size = 200 * 1024 * 1024
    url = f"{platform.base_url}/fault/big?size={size}"
    record, peak_kib = probe_url_watching_peak(url, tmp_path, 30)
    assert record["ok"] and record["details"]["truncated"] is True
    assert 10 * 1024 * 1024 <= record["bytes_in"] < size
    assert peak_kib / 1024 < 150, f"peak RSS {peak_kib / 1024:.0f} MiB"


@pytest.fixture(scope="module")
def expiring_tls_platform(ca: trustme.CA) -> Iterator[DemoPlatform]:
    """TLS whose (trusted) certificate ends in 5 days."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    soon = datetime.now(UTC) + timedelta(days=5)
    ca.issue_cert("localhost", not_after=soon).configure_cert(ctx)
    with PlatformThread(DemoPlatform(tls=ctx)) as running:
        yield running


@pytest.mark.parametrize(
    ("min_days", "reason"),
    [(14, "server.cert_expiring"), (3, None)],
    ids=["too-soon", "long-enough"],
)
def test_certificate_expiry(
    expiring_tls_platform: DemoPlatform,
    trusting_network: Network,
    min_days: int,
    reason: str | None,
) -> None:
    result = probe_once(
        f"https://localhost:{expiring_tls_platform.port}/v1/feed",
        network=trusting_network,
        expect={"cert_min_days": min_days},
    )
    assert result.reason == reason, result.error
    assert 4 < result.details["cert_expires_in_days"] <= 5


def test_plain_http_has_no_certificate_figure(platform: DemoPlatform) -> None:
    result = probe_once(platform.base_url + "/v1/feed", expect={"cert_min_days": 14})
    assert result.ok and "cert_expires_in_days" not in result.details
