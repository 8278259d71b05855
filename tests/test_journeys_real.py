"""Journeys against the demo platform's app API (login, token feed, ranged videos):
captures, masks, freshness, the failing step named, one deadline over every step."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from synthprobe.demo import DemoPlatform, PlatformThread
from synthprobe.models import ProbeResult

from .commands import run_probe
from .conftest import run_specs, specs_from_yaml
from .probing import write_config


@pytest.fixture(scope="module")
def app() -> Iterator[DemoPlatform]:
    with PlatformThread(DemoPlatform()) as running:
        yield running


def fault(app: DemoPlatform, endpoint: str, mode: str | None) -> None:
    url = f"{app.base_url}/_demo/faults/{endpoint}"
    assert (httpx.put(url, params={"mode": mode}) if mode else httpx.delete(url)).is_success


def journey(
    app: DemoPlatform,
    password: str = "demo-password",
    feed_check: str = '{path: "items[0].created_at", max_age: 15m}',
    video_url: str = '"{{video}}"',
    capture: str = '{video: "json:items[0].video_url"}',
    timeout: str = "5s",
    extra_step: str = "",
) -> ProbeResult:
    text = f"""
probes:
  - name: watch
    kind: feed
    timeout: {timeout}
    url: {app.base_url}/v1/login
    method: POST
    json: {{user: probe, password: "{password}"}}
    capture: {{token: "json:access_token"}}
    mask: [token]
    steps:
      - name: feed
        url: {app.base_url}/v1/me/feed
        headers: {{Authorization: "Bearer {{{{token}}}}"}}
        expect: {{json: [{feed_check}]}}
        capture: {capture}
      - name: video
        url: {video_url}
        headers: {{Range: bytes=0-1023}}
        expect: {{status: [206], headers: {{content-type: 'video/.*'}}}}
{extra_step}
"""
    [result] = run_specs(specs_from_yaml(text))
    return result


def test_the_whole_path_passes(app: DemoPlatform) -> None:
    r = journey(app)
    assert r.ok, r.error
    assert [s["name"] for s in r.details["steps"]] == ["main", "feed", "video"]
    assert [s["status"] for s in r.details["steps"]] == [200, 200, 206]
    assert "step" not in r.details
    assert r.bytes_in >= 1024 and r.status == 206
    # phases are sums over the steps: each request connected once
    assert r.timings_ms["connect"] is not None and r.timings_ms["ttfb"] is not None


def test_a_wrong_password_fails_the_first_step(app: DemoPlatform) -> None:
    r = journey(app, password="nope")
    assert (r.reason, r.details["step"]) == ("server.status", "main")
    assert r.error == "main: status 401, expected 2xx"


@pytest.mark.parametrize("field", ["created_at", "created_s", "created_ms"])
def test_a_stale_feed_is_server_stale_in_every_time_format(app: DemoPlatform, field: str) -> None:
    fault(app, "myfeed", "stale")
    try:
        r = journey(app, feed_check=f'{{path: "items[0].{field}", max_age: 15m}}')
    finally:
        fault(app, "myfeed", None)
    assert (r.reason, r.details["step"]) == ("server.stale", "feed"), r.error
    assert r.error is not None and r.error.startswith(f"feed: items[0].{field} is 3h0")
    assert "expected under 15m00s" in r.error
    assert 3 * 3600 <= r.details["newest_age_s"] < 3 * 3600 + 120


def test_a_fresh_feed_passes_in_every_time_format(app: DemoPlatform) -> None:
    for field in ("created_at", "created_s", "created_ms"):
        r = journey(app, feed_check=f'{{path: "items[0].{field}", max_age: 15m}}')
        assert r.ok, (field, r.error)


def test_a_value_that_is_not_a_time_is_an_assertion(app: DemoPlatform) -> None:
    bad = run_specs(
        specs_from_yaml(f"""
probes:
  - name: times
    url: {app.base_url}/v1/login
    method: POST
    json: {{password: demo-password}}
    capture: {{token: "json:access_token"}}
    steps:
      - name: feed
        url: "{app.base_url}/v1/me/feed?times=bad"
        headers: {{Authorization: "Bearer {{{{token}}}}"}}
        expect: {{json: [{{path: "items[0].created_at", max_age: 15m}}]}}
""")
    )[0]
    assert bad.reason == "server.assertion" and "is not a time" in (bad.error or "")


def test_a_capture_that_finds_nothing_names_it(app: DemoPlatform) -> None:
    r = journey(app, capture='{video: "json:items[0].trailer_url"}')
    assert (r.reason, r.details["step"]) == ("server.assertion", "feed")
    assert r.error == "feed: capture video (json:items[0].trailer_url) found nothing"


def test_videos_that_do_not_play_fail_the_video_step(app: DemoPlatform) -> None:
    fault(app, "videos", "404")
    try:
        r = journey(app)
    finally:
        fault(app, "videos", None)
    assert (r.reason, r.details["step"], r.status) == ("server.status", "video", 404)
    assert r.error == "video: status 404, expected 206"


@pytest.mark.slow
def test_one_deadline_covers_every_step(app: DemoPlatform) -> None:
    slow = f"""      - name: slow
        url: {app.base_url}/fault/slow-headers?delay=30
"""
    r = journey(app, timeout="1500ms", extra_step=slow)
    assert r.reason == "timeout.read", r.error
    assert r.details["step"] == "slow"
    assert r.error is not None and r.error.startswith("slow: no response headers within 1.5s")
    # the attempt ends at the deadline, not 30 s later and not before it
    assert r.timings_ms["total"] is not None and r.timings_ms["total"] >= 1500


def test_secrets_and_captured_tokens_never_appear(app: DemoPlatform, tmp_path: Path) -> None:
    password = "demo-password"  # the demo's; from the environment, so a secret
    config = write_config(
        tmp_path,
        f"""
probes:
  - name: watch
    kind: feed
    url: {app.base_url}/v1/login
    method: POST
    json: {{user: probe, password: "${{PROBE_PASSWORD}}"}}
    capture: {{token: "json:access_token"}}
    mask: [token]
    steps:
      - name: feed
        url: "{app.base_url}/v1/me/feed?token={{{{token}}}}"
        headers: {{Authorization: "Bearer {{{{token}}}}"}}
      - name: echo
        url: "{app.base_url}/fault/headers?x={{{{token}}}}"
        expect: {{headers: {{x: "^nothing-like-it$"}}}}
""",
        "j.yaml",
    )
    before = set(app._tokens)
    done = run_probe(
        "run",
        str(config),
        "-o",
        str(tmp_path / "r.jsonl"),
        "--junit",
        str(tmp_path / "j.xml"),
        "--prom",
        str(tmp_path / "m.prom"),
        "--no-state",
        env={"PROBE_PASSWORD": password},
    )
    assert done.returncode == 1, done.stderr
    [token] = app._tokens - before  # the demo issued this run's token: it must not show
    outputs = [done.stdout, done.stderr]
    outputs += [p.read_text() for p in tmp_path.iterdir() if p.name != "j.yaml"]
    assert all(token not in text and password not in text for text in outputs)
    line = json.loads((tmp_path / "r.jsonl").read_text())
    # the server echoed the token into the failing check's message: masked there too
    assert line["details"]["step"] == "echo"
    assert line["error"] == "echo: header x '***' does not match /^nothing-like-it$/"


def test_a_json_body_on_a_single_request_probe(app: DemoPlatform) -> None:
    [ok] = run_specs(
        specs_from_yaml(f"""
probes:
  - name: login-api
    url: {app.base_url}/v1/login
    method: POST
    json: {{user: probe, password: demo-password}}
    expect: {{json: [{{path: access_token, exists: true}}]}}
""")
    )
    assert ok.ok, ok.error
    assert ok.bytes_out == len(b'{"user": "probe", "password": "demo-password"}')


@pytest.mark.parametrize(
    ("template", "value", "kwargs", "expected"),
    [
        ("{{v}}", "http://x/a b?c", {"url": True}, "http://x/a b?c"),  # a whole URL stays
        ("http://h/p/{{v}}?q={{v}}", "a b?c", {"url": True}, "http://h/p/a b?c?q=a%20b%3Fc"),
        ('{"t": "{{v}}"}', 'say "hi"', {"as_json": True}, '{"t": "say \\"hi\\""}'),
        ("Bearer {{ v }}", "tok", {}, "Bearer tok"),
    ],
    ids=["whole-url", "query-encoded", "json-escaped", "header"],
)
def test_placeholders_are_filled_where_they_stand(
    template: str, value: str, kwargs: dict[str, bool], expected: str
) -> None:
    from synthprobe.probers.journey import fill

    assert fill(template, {"v": value}, **kwargs) == expected
