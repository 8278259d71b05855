"""live and messaging probes against real programs (ffmpeg + nginx, websocketd) and the
demo platform; upload verification against the demo platform."""

from __future__ import annotations

import time
from typing import Any

import pytest

from synthprobe.demo import DemoPlatform
from synthprobe.models import Failure, ProbeResult
from synthprobe.probers.base import Network

from .conftest import probe_once
from .realprograms import HlsServer

pytestmark = pytest.mark.slow  # real programs started per module: seconds each


def live(url: str, **options: object) -> ProbeResult:
    return probe_once(url, kind="live", timeout="5s", live=options)


def chat(url: str, send: str, network: Network | None = None, **fields: Any) -> ProbeResult:
    messaging = {"send": send, **fields.pop("messaging", {})}
    return probe_once(url, network=network, kind="messaging", messaging=messaging, **fields)


def test_advancing_ffmpeg_stream_passes(hls: HlsServer) -> None:
    r = live(hls.base_url + "/live/index.m3u8", check_advancing=True, segments=2)
    assert r.ok, r.error
    d = r.details
    assert d["target_duration"] >= 1 and d["segments"] >= 2
    assert d["advanced_by"] >= 1
    assert d["segment_bytes"] > 0 and d["segment_ms"] > 0
    assert isinstance(d["media_sequence"], int)
    assert r.bytes_in > d["segment_bytes"]  # two playlists and two segments


def test_ended_ffmpeg_stream_is_live_ended(hls: HlsServer) -> None:
    r = live(hls.base_url + "/ended/index.m3u8")
    assert (r.failure, r.reason) == (Failure.SERVER, "server.live_ended"), r.error


def test_killed_ffmpeg_stream_is_live_stalled(hls: HlsServer) -> None:
    r = live(hls.base_url + "/stalled/index.m3u8", check_advancing=True)
    assert (r.failure, r.reason) == (Failure.SERVER, "server.live_stalled"), r.error
    assert "did not advance" in (r.error or "")


def test_killed_stream_is_too_old_by_program_date_time(hls: HlsServer) -> None:
    time.sleep(1.2)  # the killed stream's newest segment is now older than 1 s
    r = live(hls.base_url + "/stalled/index.m3u8", max_age="1s")
    assert (r.failure, r.reason) == (Failure.SERVER, "server.live_stalled"), r.error
    assert "old" in (r.error or "")


def test_missing_stream_is_server_status(hls: HlsServer) -> None:
    r = live(hls.base_url + "/nope/index.m3u8")
    assert (r.failure, r.reason) == (Failure.SERVER, "server.status")


def test_timeout_shorter_than_target_duration_says_so(platform: DemoPlatform) -> None:
    r = probe_once(
        platform.base_url + "/live/main/index.m3u8",
        kind="live",
        timeout="300ms",
        live={"check_advancing": True},
    )
    assert (r.failure, r.reason) == (Failure.TIMEOUT, "timeout.total")
    assert "target duration" in (r.error or "")


@pytest.mark.parametrize(
    ("path", "options", "reason"),
    [
        ("/live/master.m3u8", {"variant": "highest", "check_advancing": True}, None),
        ("/live/stalled/index.m3u8", {"check_advancing": True}, "server.live_stalled"),
        ("/live/ended/index.m3u8", {}, "server.live_ended"),
        ("/v1/feed", {}, "server.assertion"),
    ],
    ids=["master-advancing", "stalled", "ended", "not-a-playlist"],
)
def test_demo_live(
    platform: DemoPlatform, path: str, options: dict[str, object], reason: str | None
) -> None:
    r = live(platform.base_url + path, **options)
    assert r.reason == reason, r.error
    if path.startswith("/live/master"):
        assert r.details["variant_url"].endswith("/live/hd/index.m3u8")


def test_websocket_echo_round_trip(ws_echo: str) -> None:
    r = chat(ws_echo + "/", "ping-42", messaging={"expect": "ping-42"})
    assert r.ok, r.error
    assert r.details["rtt_ms"] > 0 and r.status == 101
    assert r.timings_ms["connect"] is not None and r.timings_ms["ttfb"] is not None


def test_websocket_wrong_expectation_times_out(ws_echo: str) -> None:
    r = chat(ws_echo + "/", "hello", messaging={"expect": "goodbye"}, timeout="700ms")
    assert (r.failure, r.reason) == (Failure.TIMEOUT, "timeout.read"), r.error
    assert "no matching reply" in (r.error or "")


def test_websocket_wrong_reply_then_close_is_server_reply(ws_wrong_then_close: str) -> None:
    r = chat(ws_wrong_then_close + "/", "hello", messaging={"expect": "welcome"})
    assert (r.failure, r.reason) == (Failure.SERVER, "server.reply"), r.error
    assert "'nope'" in (r.error or "")


def test_websocket_closed_port_is_refused(refused_url: str) -> None:
    r = chat(refused_url.replace("http", "ws") + "/", "hello", messaging={"expect": "hello"})
    assert (r.failure, r.reason) == (Failure.NETWORK, "network.refused"), r.error


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/ws", None),
        ("/ws/wrong", "server.reply"),
        ("/ws/silent", "timeout.read"),
        ("/fault/status/403", "server.status"),
    ],
    ids=["ok", "wrong-reply", "silent", "upgrade-refused"],
)
def test_demo_websocket(platform: DemoPlatform, path: str, reason: str | None) -> None:
    url = platform.base_url.replace("http", "ws") + path
    r = chat(url, "ping", messaging={"expect_regex": '"pong"'}, timeout="700ms")
    assert r.reason == reason, r.error


def test_websocket_over_tls_with_sni(tls_platform: DemoPlatform, trusting_network: Network) -> None:
    r = chat(
        f"wss://localhost:{tls_platform.port}/ws",
        "ping",
        trusting_network,
        messaging={"expect": "pong"},
        expect={"cert_min_days": 1},
    )
    assert r.ok, r.error
    assert r.timings_ms["tls"] is not None
    assert r.details["cert_expires_in_days"] > 1


def test_upload_verify_url_and_cleanup(platform: DemoPlatform) -> None:
    base = platform.base_url
    r = probe_once(
        f"{base}/v1/media",
        kind="upload",
        upload={
            "size": "10KiB",
            "verify_url": f"{base}/v1/media/{{id}}",
            "cleanup": {"method": "DELETE", "url": f"{base}/v1/media/{{id}}"},
        },
    )
    assert r.ok, r.error
    assert r.details["available_ms"] >= 200  # the demo serves it 200 ms after the upload
    assert r.details["cleanup_status"] == 204


def test_upload_verify_url_missing_field(platform: DemoPlatform) -> None:
    base = platform.base_url
    r = probe_once(
        f"{base}/v1/media", kind="upload", upload={"verify_url": f"{base}/v1/media/{{nope}}"}
    )
    assert (r.failure, r.reason) == (Failure.SERVER, "server.assertion")
    assert "{nope}" in (r.error or "")
