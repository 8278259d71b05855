"""`probe demo` shows every failure class; `probe demo --serve` runs the example config."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from synthprobe.demo import DemoPlatform

from .commands import probe_cmd
from .conftest import run_specs, specs_from_yaml
from .probing import probes_text, write_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_demo_shows_every_failure_class(tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    result = subprocess.run(
        probe_cmd("demo", "-o", str(out)),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 1, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["failure"] for r in records} == {None, "dns", "network", "server", "timeout"}
    kinds = {"feed", "upload", "live", "messaging", "tcp", "grpc"}
    assert {r["kind"] for r in records} == kinds
    assert {r["kind"] for r in records if r["ok"]} == kinds
    grpc = {r["probe"]: r for r in records if r["kind"] == "grpc"}
    assert grpc["ranker-grpc"]["details"]["serving_status"] == "SERVING"
    assert (grpc["chat-grpc"]["reason"], grpc["chat-grpc"]["error"]) == (
        "server.status",
        "serving status NOT_SERVING",
    )
    assert any(r["ok"] for r in records)
    for needle in (
        "dns.nxdomain",
        "network.refused",
        "network.reset",
        "timeout.read",
        "server.status",
        "server.assertion",
        "server.live_stalled",
        "server.live_ended",
        "server.reply",
        "✓ up",
    ):
        assert needle in result.stdout, needle
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_example_config_passes_against_demo_serve(tmp_path: Path) -> None:
    server = subprocess.Popen(
        probe_cmd("demo", "--serve", "--port", "0"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()  # "demo platform on http://127.0.0.1:PORT ..."
        base = line.split(" on ", 1)[1].split()[0]
        assert base.startswith("http://127.0.0.1:")
        tls = re.findall(r"https://\S+", server.stderr.readline())[0]
        tcp = re.findall(r"tcp://\S+", server.stderr.readline())[0]
        hosts = {"TLS_HOST": tls.split("://")[1], "INGEST_HOST": tls.split("://")[1]}
        hosts["CACHE_HOST"] = tcp.split("://")[1]
        result = subprocess.run(
            probe_cmd("run", str(ROOT / "probes.example.yaml"), "-o", str(tmp_path / "r.jsonl")),
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "BASE_URL": base, "WS_URL": base.replace("http", "ws"), **hosts},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        records = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
        kinds = {"feed", "upload", "http", "live", "messaging", "tcp"}
        assert {r["kind"] for r in records} == kinds
        by_name = {r["probe"]: r for r in records}
        assert by_name["feed-h2"]["details"]["http_version"] == "HTTP/2"
        assert by_name["cache-ping"]["details"]["reply"] == "+PONG\r\n"
        # public_vars: not masked
        assert all("***" not in r["url"] for r in records)
        assert by_name["feed-home"]["url"].startswith(base)
    finally:
        server.terminate()
        server.communicate(timeout=10)  # also closes the stderr pipe
    assert server.returncode == 0  # SIGTERM is a clean stop for --serve


@pytest.mark.slow
def test_demo_shows_a_live_ladder_with_one_slow_rendition_and_live_dash(tmp_path: Path) -> None:
    """`make demo`'s live ladder: every rendition checked, the slow one named; DASH live."""
    out = tmp_path / "demo.jsonl"
    done = subprocess.run(
        probe_cmd("demo", "-o", str(out), "--format", "quiet"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    lines = {r["probe"]: r for r in map(json.loads, out.read_text().splitlines())}
    ladder = lines["live-ladder"]
    assert ladder["reason"] == "server.live_slow", ladder
    assert ladder["error"].startswith("variant 854x480: segment of 1.0s took ")
    rows = {v["resolution"]: v for v in ladder["details"]["variants"]}
    assert set(rows) == {"426x240", "854x480", "1280x720"}
    assert [rows[r]["ok"] for r in ("426x240", "854x480", "1280x720")] == [True, False, True]
    assert ladder["details"]["realtime"] > 1.0
    dash = lines["live-dash"]
    assert dash["ok"] and dash["details"]["format"] == "dash", dash
    assert dash["details"]["advanced_by"] >= 1
    assert all(
        r["details"]["format"] in ("hls", "dash") for r in lines.values() if r["kind"] == "live"
    )
    # HTTP/3: the feed over QUIC passes, a UDP port that answers nothing fails in time
    h3 = lines["feed-h3"]
    assert h3["ok"] and h3["details"]["http_version"] == "HTTP/3", h3
    assert h3["timings_ms"]["connect"] is not None and h3["timings_ms"]["tls"] is None
    blocked = lines["feed-h3-blocked"]
    assert blocked["reason"] == "timeout.connect", blocked
    assert blocked["error"].startswith("no answer to the QUIC handshake within 1s")


def test_probe_list_shows_the_live_options(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        "probes:\n  - {name: l, kind: live, url: 'http://127.0.0.1:1/m.m3u8',"
        " live: {variant: all, realtime: 1.5, media_check: false}}\n",
        "l.yaml",
    )
    done = subprocess.run(
        probe_cmd("list", str(config)),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    assert "l live: check_advancing=false, variant=all, segments=1, realtime=1.5, " in done.stdout
    assert "media_check=false" in done.stdout


@pytest.mark.parametrize(
    ("mode", "reason", "words"),
    [
        pytest.param("404", "server.status", "status 404", id="404"),
        pytest.param("html", "server.assertion", "segment is not media", id="html"),
        pytest.param("slow", "server.live_slow", "viewers would buffer", id="slow"),
    ],
)
@pytest.mark.slow
def test_the_demo_ladder_breaks_one_rendition_on_demand(
    platform: DemoPlatform, mode: str, reason: str, words: str
) -> None:
    """`PUT /_demo/faults/live-variant?mode=...` breaks the ladder's middle rendition."""
    url = f"{platform.base_url}/_demo/faults/live-variant"
    assert httpx.put(url, params={"mode": mode}).status_code == 200
    try:
        probe = {
            "name": "ladder",
            "kind": "live",
            "url": f"{platform.base_url}/live/ladder/master.m3u8",
            "timeout": "5s",
            "live": {"variant": "all"},
        }
        [result] = run_specs(specs_from_yaml(probes_text(probe)))
    finally:
        httpx.delete(url)
    assert result.reason == reason, result.error
    assert result.error is not None and result.error.startswith("variant 854x480: ")
    assert words in result.error
    [healthy] = run_specs(specs_from_yaml(probes_text(probe)))
    assert healthy.ok, healthy.error


@pytest.mark.parametrize(
    ("raw", "status"),
    [(b"\xb2", b"404"), (b"%C2%B2", b"404"), (b"503", b"503")],
    ids=["latin-1-superscript-two", "percent-encoded", "ascii"],
)
def test_a_fault_path_with_odd_digits_is_not_found_not_a_crash(
    platform: DemoPlatform, raw: bytes, status: bytes
) -> None:
    """The demo platform takes any client's bytes. Byte 0xB2 is "²" in the request
    line's Latin-1, a digit to ``str.isdigit`` that ``int`` refuses: it once crashed the
    handler (no answer at all)."""
    import socket

    with socket.create_connection(("127.0.0.1", platform.port), timeout=5) as sock:
        sock.sendall(b"GET /fault/" + raw + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = sock.recv(200)
    assert answer.startswith(b"HTTP/1.1 " + status), answer
