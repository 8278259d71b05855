"""live and messaging probes against real programs: ffmpeg + nginx, websocketd."""

from __future__ import annotations

import pytest

from synthprobe.models import Failure

from .conftest import probe_once, run_specs, specs_from_yaml


def live_probe(url: str, **live: object) -> object:
    [result] = run_specs(
        specs_from_yaml(
            "probes:\n  - "
            + __import__("json").dumps(
                {"name": "live", "kind": "live", "url": url, "timeout": "5s", "live": live}
            )
        )
    )
    return result


def test_advancing_ffmpeg_stream_passes(hls) -> None:  # type: ignore[no-untyped-def]
    r = live_probe(hls.base_url + "/live/index.m3u8", check_advancing=True, segments=2)
    assert r.ok, r.error
    d = r.details
    assert d["target_duration"] >= 1 and d["segments"] >= 2
    assert d["advanced_by"] >= 1
    assert d["segment_bytes"] > 0 and d["segment_ms"] > 0
    assert isinstance(d["media_sequence"], int)
    assert r.bytes_in > d["segment_bytes"]  # two playlists and two segments


def test_ended_ffmpeg_stream_is_live_ended(hls) -> None:  # type: ignore[no-untyped-def]
    r = live_probe(hls.base_url + "/ended/index.m3u8")
    assert (r.failure, r.reason) == (Failure.SERVER, "server.live_ended"), r.error


def test_killed_ffmpeg_stream_is_live_stalled(hls) -> None:  # type: ignore[no-untyped-def]
    r = live_probe(hls.base_url + "/stalled/index.m3u8", check_advancing=True)
    assert (r.failure, r.reason) == (Failure.SERVER, "server.live_stalled"), r.error
    assert "did not advance" in r.error


def test_killed_stream_is_too_old_by_program_date_time(hls) -> None:  # type: ignore[no-untyped-def]
    import time

    time.sleep(1.2)  # the killed stream's newest segment is now older than 1 s
    r = live_probe(hls.base_url + "/stalled/index.m3u8", max_age="1s")
    assert (r.failure, r.reason) == (Failure.SERVER, "server.live_stalled"), r.error
    assert "old" in r.error


def test_missing_stream_is_server_status(hls) -> None:  # type: ignore[no-untyped-def]
    r = live_probe(hls.base_url + "/nope/index.m3u8")
    assert (r.failure, r.reason) == (Failure.SERVER, "server.status")


def test_websocket_echo_round_trip(ws_echo: str) -> None:
    [r] = run_specs(
        specs_from_yaml(f"""
probes:
  - name: chat
    kind: messaging
    url: {ws_echo}/
    messaging: {{send: ping-42, expect: ping-42}}
""")
    )
    assert r.ok, r.error
    assert r.details["rtt_ms"] > 0 and r.status == 101
    assert r.timings_ms["connect"] is not None and r.timings_ms["ttfb"] is not None


def test_websocket_wrong_expectation_times_out(ws_echo: str) -> None:
    [r] = run_specs(
        specs_from_yaml(f"""
probes:
  - name: chat
    kind: messaging
    url: {ws_echo}/
    timeout: 700ms
    messaging: {{send: hello, expect: goodbye}}
""")
    )
    assert (r.failure, r.reason) == (Failure.TIMEOUT, "timeout.read"), r.error


def test_websocket_wrong_reply_then_close_is_server_reply(ws_wrong_then_close: str) -> None:
    [r] = run_specs(
        specs_from_yaml(f"""
probes:
  - name: chat
    kind: messaging
    url: {ws_wrong_then_close}/
    messaging: {{send: hello, expect: welcome}}
""")
    )
    assert (r.failure, r.reason) == (Failure.SERVER, "server.reply"), r.error
    assert "'nope'" in r.error


def test_websocket_closed_port_is_refused(refused_url: str) -> None:
    [r] = run_specs(
        specs_from_yaml(f"""
probes:
  - name: chat
    kind: messaging
    url: {refused_url.replace("http", "ws")}/
    messaging: {{send: hello, expect: hello}}
""")
    )
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
def test_demo_websocket(platform, path: str, reason: str | None) -> None:  # type: ignore[no-untyped-def]
    url = platform.base_url.replace("http", "ws") + path
    [r] = run_specs(
        specs_from_yaml(f"""
probes:
  - {{name: c, kind: messaging, url: "{url}", timeout: 700ms,
      messaging: {{send: ping, expect_regex: '"pong"'}}}}
""")
    )
    assert r.reason == reason, r.error


def test_websocket_over_tls_with_sni(tls_platform, trusting_network) -> None:  # type: ignore[no-untyped-def]
    [r] = run_specs(
        specs_from_yaml(f"""
probes:
  - {{name: c, kind: messaging, url: "wss://localhost:{tls_platform.port}/ws",
      messaging: {{send: ping, expect: pong}}, expect: {{cert_min_days: 1}}}}
"""),
        trusting_network,
    )
    assert r.ok, r.error
    assert r.timings_ms["tls"] is not None
    assert r.details["cert_expires_in_days"] > 1


def test_upload_verify_url_and_cleanup(platform) -> None:  # type: ignore[no-untyped-def]
    base = platform.base_url
    [r] = run_specs(
        specs_from_yaml(f"""
probes:
  - name: up
    kind: upload
    url: {base}/v1/media
    upload: {{size: 10KiB, verify_url: "{base}/v1/media/{{id}}",
              cleanup: {{method: DELETE, url: "{base}/v1/media/{{id}}"}}}}
""")
    )
    assert r.ok, r.error
    assert r.details["available_ms"] >= 200  # the demo serves it 200 ms after the upload
    assert r.details["cleanup_status"] == 204


def test_upload_verify_url_missing_field(platform) -> None:  # type: ignore[no-untyped-def]
    base = platform.base_url
    r = probe_once(
        f"{base}/v1/media", kind="upload", upload={"verify_url": f"{base}/v1/media/{{nope}}"}
    )
    assert (r.failure, r.reason) == (Failure.SERVER, "server.assertion")
    assert "{nope}" in r.error
