"""Hostile HLS servers: each playlist a real player would refuse, or that would cost us
the run, gets one class and reason with a message naming the cause, within the probe's
deadline + 1 s, and the healthy probe beside it is still recorded.

Every playlist comes from a small HTTP server of our own on 127.0.0.1 (``PlaylistServer``).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from synthprobe.models import Failure, ProbeResult
from synthprobe.probers.live.integrity import MAX_TARGET_DURATION
from synthprobe.probers.live.playlist import MAX_SEGMENTS

from .commands import probe_cmd, results
from .conftest import run_specs, specs_from_yaml
from .probing import run_beside_healthy, write_config
from .procwatch import sigterm_when, wait_watching_peak

Route = Callable[[int], bytes]
"""A playlist path's body for its n-th request (0 first)."""
SEGMENT = b"G" + bytes(187)  # one MPEG-TS packet
TIMEOUT = 3.0


def media(
    sequence: int,
    uris: list[str] | None = None,
    *,
    target: str = "1",
    pdt: str | None = None,
    extra: str = "",
) -> bytes:
    """A live media playlist; its segments under /seg/ unless ``uris`` says."""
    uris = uris if uris is not None else [f"/seg/{sequence + i}.ts" for i in range(3)]
    stamp = pdt or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    lines = [
        "#EXTM3U",
        f"#EXT-X-TARGETDURATION:{target}",
        f"#EXT-X-MEDIA-SEQUENCE:{sequence}",
        f"#EXT-X-PROGRAM-DATE-TIME:{stamp}",
    ]
    for uri in uris:
        lines += [extra, "#EXTINF:1.000,", uri] if extra else ["#EXTINF:1.000,", uri]
    return ("\n".join(lines) + "\n").encode()


def many_segments(n: int) -> bytes:
    """A playlist of ``n`` tiny segments (about 25 bytes each)."""
    return b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n" + b"#EXTINF:1,\n/seg/0.ts\n" * n


def moving(hit: int) -> bytes:
    """A healthy stream: one segment newer on every request."""
    return media(100 + hit)


class PlaylistServer(http.server.ThreadingHTTPServer):
    """Serves ``routes`` (path -> body by request count), ``redirects`` (path -> where
    to) and media segments under /seg/; /slow/ answers only when the server stops."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.redirects: dict[str, str] = {}
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def body(self, path: str) -> bytes | None:
        if path.startswith("/seg/"):
            return SEGMENT * 10
        route = self.routes.get(path)
        if route is None:
            return None
        with self.lock:
            hit = self.hits.get(path, 0)
            self.hits[path] = hit + 1
        return route(hit)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A probe that stopped reading at its cap closes mid-body: not our concern."""


class _Handler(http.server.BaseHTTPRequestHandler):
    server: PlaylistServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.startswith("/slow/"):
            self.server.stopping.wait(60)
            return
        to = self.server.redirects.get(self.path)
        if to is not None:
            self.send_response(302)
            self.send_header("Location", to)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            return
        body = self.server.body(self.path)
        status = 200 if body is not None else 404
        body = body if body is not None else b"no such path"
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.apple.mpegurl")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def server() -> Iterator[PlaylistServer]:
    running = PlaylistServer()
    running.routes["/ok/index.m3u8"] = moving
    thread = threading.Thread(target=running.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.stopping.set()
        running.shutdown()
        running.server_close()
        thread.join(5)


def beside_healthy(server: PlaylistServer, route: Route, live: dict[str, Any]) -> ProbeResult:
    """The hostile playlist (``route``) beside a healthy one, in one run that ends within
    the deadline + 1 s and records the healthy one passing; the hostile result."""
    server.routes["/hostile/index.m3u8"] = route
    hostile = {
        "name": "hostile",
        "kind": "live",
        "url": server.base + "/hostile/index.m3u8",
        "timeout": f"{TIMEOUT:g}s",
        "live": live,
    }
    healthy = {"kind": "live", "url": server.base + "/ok/index.m3u8", "timeout": "3s"}
    return run_beside_healthy(hostile, healthy, within=TIMEOUT + 1)["hostile"]


def _back_to_90(hit: int) -> bytes:
    return media(100 if hit == 0 else 90)


def _lost_newest(hit: int) -> bytes:
    return media(100, None if hit == 0 else ["/seg/100.ts"])


def _discontinuity(sequence: int, discontinuity_sequence: int, tagged: set[int]) -> bytes:
    lines = [
        "#EXTM3U",
        "#EXT-X-TARGETDURATION:1",
        f"#EXT-X-MEDIA-SEQUENCE:{sequence}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}",
    ]
    for n in range(sequence, sequence + 3):
        lines += [*(["#EXT-X-DISCONTINUITY"] if n in tagged else []), "#EXTINF:1.000,"]
        lines.append(f"/seg/{n}.ts")
    return ("\n".join(lines) + "\n").encode()


def _discontinuity_jumps(hit: int) -> bytes:
    # one segment left the window, with no #EXT-X-DISCONTINUITY: the count must stay 5
    return _discontinuity(100, 5, set()) if hit == 0 else _discontinuity(101, 7, set())


def _discontinuity_stays(hit: int) -> bytes:
    # the segment that left carried the tag: the count must become 6
    return _discontinuity(100, 5, {100}) if hit == 0 else _discontinuity(101, 5, set())


def _constant(body: bytes) -> Route:
    return lambda _hit: body


ADVANCING = {"check_advancing": True}


@pytest.mark.parametrize(
    ("route", "live", "words"),
    [
        pytest.param(
            _constant(media(1, ["ftp://127.0.0.1/a.ts"])),
            {},
            ["segment URI is not http(s): ftp://127.0.0.1/a.ts"],
            id="ftp-segment",
        ),
        pytest.param(
            _constant(media(1, ["file:///etc/passwd"])),
            {},
            ["segment URI is not http(s): file:///etc/passwd"],
            id="file-segment",
        ),
        pytest.param(
            _constant(media(1, ["data:video/mp2t;base64,R0dH"])),
            {},
            ["segment URI is not http(s): data:video/mp2t"],
            id="data-segment",
        ),
        pytest.param(
            # an old segment nobody downloads: a viewer still reaches it
            _constant(media(1, ["ftp://127.0.0.1/old.ts", "/seg/2.ts"])),
            {"segments": 1},
            ["segment URI is not http(s): ftp://127.0.0.1/old.ts"],
            id="ftp-old-segment",
        ),
        pytest.param(
            _constant(b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nftp://127.0.0.1/v.m3u8\n"),
            {},
            ["variant URI is not http(s): ftp://127.0.0.1/v.m3u8"],
            id="ftp-variant",
        ),
        pytest.param(
            _constant(media(1, ["http://[x/a.ts"])),
            {},
            ["segment URI http://[x/a.ts is not a URL"],
            id="bad-ipv6-segment",
        ),
        pytest.param(
            _constant(media(1, ["http://xn--zz.invalid/a.ts"])),
            {},
            ["segment URI is not a valid URL", "xn--zz.invalid"],
            id="bad-idna-segment",
        ),
        pytest.param(
            _constant(media(1, ["https:///a.ts"])),
            {},
            ["segment URI has no host: https:///a.ts"],
            id="empty-host-segment",
        ),
        pytest.param(
            _constant(media(1, extra="#EXT-X-BYTERANGE:abc@xyz")),
            {},
            ["#EXT-X-BYTERANGE:abc@xyz"],
            id="byterange-abc",
        ),
        pytest.param(
            _constant(media(1, extra="#EXT-X-BYTERANGE:0@10")),
            {},
            ["#EXT-X-BYTERANGE:0@10", "length 1 or more"],
            id="byterange-empty",
        ),
        pytest.param(
            _constant(media(1).replace(b"#EXTINF:1.000", b"#EXTINF:nan")),
            {},
            ["#EXTINF:nan"],
            id="extinf-nan",
        ),
        pytest.param(
            _constant(media(1).replace(b"SEQUENCE:1", b"SEQUENCE:" + b"9" * 5000)),
            {},
            ["line 3 holds a number of more than 4,300 digits"],
            id="sequence-5000-digits",
        ),
        pytest.param(
            _constant(media(1).replace(b"SEQUENCE:1", b"SEQUENCE:1e5")),
            {},
            ["#EXT-X-MEDIA-SEQUENCE:1e5"],
            id="sequence-not-integer",
        ),
        pytest.param(
            _constant(media(1, pdt="0001-01-01T00:00:00+14:00")),
            {},
            ["#EXT-X-PROGRAM-DATE-TIME:0001-01-01T00:00:00+14:00"],
            id="date-year-1",
        ),
        pytest.param(
            _constant(media(1, pdt="tomorrow")),
            {},
            ["#EXT-X-PROGRAM-DATE-TIME:tomorrow", "ISO 8601"],
            id="date-not-a-date",
        ),
        pytest.param(
            _constant(media(1, pdt="2099-01-01T00:00:00Z")),
            {"max_age": "30s"},
            ["#EXT-X-PROGRAM-DATE-TIME", "2099-01-01T00:00:02+00:00", "in the future"],
            id="date-2099",
        ),
        pytest.param(
            _back_to_90,
            ADVANCING,
            ["#EXT-X-MEDIA-SEQUENCE went back from 100 to 90"],
            id="sequence-back",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            _lost_newest,
            ADVANCING,
            [
                "shrank at #EXT-X-MEDIA-SEQUENCE:100 from 3 to 1 segments",
                "lost its newest segments",
                "ended at segment 102, then at 100",
            ],
            id="newest-segments-gone",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            _discontinuity_jumps,
            ADVANCING,
            [
                "#EXT-X-DISCONTINUITY-SEQUENCE went from 5 to 7 between two fetches",
                "carried 0 #EXT-X-DISCONTINUITY tag(s): expected 5",
            ],
            id="discontinuity-sequence-jumps",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            _discontinuity_stays,
            ADVANCING,
            ["#EXT-X-DISCONTINUITY-SEQUENCE went from 5 to 5", "carried 1", "expected 6"],
            id="discontinuity-sequence-stays",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            _constant(media(1).replace(b"#EXTINF:1.000,\n/seg/3.ts", b"#EXTINF:1.5,\n/seg/3.ts")),
            {},
            ["#EXTINF:1.5 is longer than #EXT-X-TARGETDURATION:1", "/seg/3.ts"],
            id="extinf-over-target",
        ),
        pytest.param(
            _constant(b'<?xml version="1.0"?><!DOCTYPE MPD [<!ENTITY a "aaaaaaaa">]><MPD/>'),
            {},
            ["<!DOCTYPE declaration (refused: entity expansion)"],
            id="mpd-entity-expansion",
        ),
        pytest.param(
            _constant(b'<MPD type="dynamic"><Period><AdaptationSet>'),
            {},
            ["MPD is not well-formed XML"],
            id="mpd-truncated",
        ),
        pytest.param(
            _constant(media(1, target="-5")),
            ADVANCING,
            ["#EXT-X-TARGETDURATION:-5 is not a positive number"],
            id="target-negative",
        ),
        pytest.param(
            _constant(media(1, target="0")),
            ADVANCING,
            ["#EXT-X-TARGETDURATION:0 is not a positive number"],
            id="target-zero",
        ),
        pytest.param(
            _constant(media(1, target="1000000000")),
            ADVANCING,
            [f"#EXT-X-TARGETDURATION:1000000000 is more than the {MAX_TARGET_DURATION}s"],
            id="target-absurd",
        ),
        pytest.param(
            _constant(media(1).replace(b"#EXT-X-TARGETDURATION:1\n", b"")),
            ADVANCING,
            ["no #EXT-X-TARGETDURATION"],
            id="target-missing",
        ),
        pytest.param(
            _constant(many_segments(MAX_SEGMENTS + 5000)),
            {},
            [f"playlist has 25,000 segments, more than the cap of {MAX_SEGMENTS:,}"],
            id="too-many-segments",
        ),
        pytest.param(
            _constant(many_segments(400_000)),
            {},
            ["playlist is larger than 4MiB (the cap for a playlist)"],
            id="ten-megabytes",
        ),
        pytest.param(
            _constant(b"#EXTM3U\n" + b"\r" * 200_000),
            {},
            ["playlist has 200,001 lines, more than the cap of 100,000"],
            id="too-many-lines",
        ),
    ],
)
def test_hostile_playlist_is_server_assertion(
    server: PlaylistServer, route: Route, live: dict[str, Any], words: list[str]
) -> None:
    r = beside_healthy(server, route, live)
    assert (r.failure, r.reason) == (Failure.SERVER, "server.assertion"), r.error
    for word in words:
        assert word in (r.error or ""), r.error


def test_small_max_body_names_it(server: PlaylistServer) -> None:
    server.routes["/hostile/index.m3u8"] = _constant(media(1, ["/seg/1.ts"] * 50))
    text = "probes:\n  - " + json.dumps(
        {"name": "p", "kind": "live", "url": server.base + "/hostile/index.m3u8", "max_body": 512}
    )
    [r] = run_specs(specs_from_yaml(text))
    assert (r.failure, r.reason) == (Failure.SERVER, "server.assertion"), r.error
    assert "playlist is larger than 512B (max_body)" in (r.error or "")


def test_redirected_variant_resolves_segments_against_where_it_was_found(
    server: PlaylistServer,
) -> None:
    server.routes["/master.m3u8"] = _constant(
        b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n/moved/index.m3u8\n"
    )
    # /moved/ redirects to /real/, whose playlist names its segments relative to itself
    server.routes["/real/index.m3u8"] = lambda hit: media(5 + hit, ["seg.ts"])
    server.routes["/real/seg.ts"] = _constant(SEGMENT)
    server.redirects["/moved/index.m3u8"] = "/real/index.m3u8"
    text = "probes:\n  - " + json.dumps(
        {"name": "p", "kind": "live", "url": server.base + "/master.m3u8"}
    )
    [r] = run_specs(specs_from_yaml(text))
    assert r.ok, r.error
    assert r.details["segment_bytes"] > 0


@pytest.mark.slow
def test_ten_megabyte_playlist_fails_fast_in_bounded_memory(
    server: PlaylistServer, tmp_path: Path
) -> None:
    server.routes["/huge/index.m3u8"] = _constant(many_segments(400_000))
    # the largest playlist we parse, twice (check_advancing), beside it
    at_cap = many_segments(MAX_SEGMENTS - 1)
    server.routes["/at-cap/index.m3u8"] = lambda hit: (
        at_cap + f"#EXTINF:1,\n/seg/{hit}.ts\n".encode()
    )
    live = {"kind": "live", "timeout": "5s"}
    config = write_config(
        tmp_path,
        {
            "probes": [
                {"name": "huge", "url": server.base + "/huge/index.m3u8", **live},
                {
                    "name": "at-cap",
                    "url": server.base + "/at-cap/index.m3u8",
                    "live": ADVANCING,
                    **live,
                },
                {"name": "healthy", "url": server.base + "/ok/index.m3u8", **live},
            ]
        },
    )
    out = tmp_path / "r.jsonl"
    started = time.monotonic()
    proc = subprocess.Popen(
        probe_cmd("run", str(config), "-o", str(out), "--no-state"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    peak_kib = wait_watching_peak(proc, 30)
    _, stderr = proc.communicate(timeout=10)
    wall = time.monotonic() - started
    assert proc.returncode == 1, stderr
    assert peak_kib > 0, "could not read /proc/PID/status"
    assert peak_kib < 300 * 1024
    assert wall < 5 + 1 + 2  # the deadline + 1 s, and the interpreter's start and exit
    got = {r["probe"]: r for r in results(out)}
    assert (got["huge"]["failure"], got["huge"]["reason"]) == ("server", "server.assertion")
    assert "larger than 4MiB" in got["huge"]["error"]
    assert got["at-cap"]["ok"], got["at-cap"]["error"]
    assert got["at-cap"]["details"]["segments"] == MAX_SEGMENTS
    assert got["healthy"]["ok"], got["healthy"]["error"]


@pytest.mark.slow
def test_sigterm_during_parse_heavy_live_probes_exits_130_and_keeps_lines(
    server: PlaylistServer, tmp_path: Path
) -> None:
    heavy = many_segments(MAX_SEGMENTS)  # never advances: each probe parses it 3 times
    server.routes["/heavy/index.m3u8"] = _constant(heavy)
    probes: list[dict[str, Any]] = [
        {"name": "quick", "kind": "live", "url": server.base + "/ok/index.m3u8", "timeout": "5s"},
        {"name": "slow", "url": server.base + "/slow/x", "timeout": "60s"},
        *(
            {
                "name": f"heavy-{i}",
                "kind": "live",
                "url": server.base + "/heavy/index.m3u8",
                "timeout": "60s",
                "live": ADVANCING,
            }
            for i in range(8)
        ),
    ]
    out = tmp_path / "r.jsonl"
    proc = subprocess.Popen(
        probe_cmd(
            "run", str(write_config(tmp_path, {"probes": probes})), "-o", str(out), "--no-state"
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # ready when every heavy probe has its playlist: eight parses queued for two threads
    stderr, took = sigterm_when(
        proc,
        lambda: (
            out.exists()
            and "quick" in out.read_text()
            and server.hits.get("/heavy/index.m3u8", 0) >= 8
        ),
        exit=15,
    )
    assert proc.returncode == 130, stderr
    assert took < 5
    assert b"Traceback" not in stderr
    names = {r["probe"] for r in results(out)}
    assert "quick" in names and "slow" not in names


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            _discontinuity(100, 5, {100}),
            _discontinuity(101, 6, set()),
            id="rfc-count",
            marks=pytest.mark.slow,
        ),
        # the tag dropped (and counted) as soon as its segment heads the window
        pytest.param(
            _discontinuity(100, 5, {101}),
            _discontinuity(101, 6, set()),
            id="early",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            _discontinuity(100, 5, {102}),
            _discontinuity(101, 5, {102}),
            id="kept",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_consistent_discontinuity_sequence_passes(
    server: PlaylistServer, before: bytes, after: bytes
) -> None:
    r = beside_healthy(server, lambda hit: before if hit == 0 else after, ADVANCING)
    assert r.ok, r.error


def test_html_segment_with_200_is_server_assertion(server: PlaylistServer) -> None:
    server.routes["/page/1.ts"] = _constant(b"<!DOCTYPE html><html><body>Error 503</body></html>")
    r = beside_healthy(server, _constant(media(1, ["/page/1.ts"])), {})
    assert (r.failure, r.reason) == (Failure.SERVER, "server.assertion"), r.error
    assert "segment is not media (starts with '<!DOCTYPE html')" in (r.error or ""), r.error
    assert "/page/1.ts" in (r.error or "")


def test_encrypted_segment_is_not_sniffed(server: PlaylistServer) -> None:
    # AES-128 encrypts the whole segment: its bytes cannot look like anything
    server.routes["/enc/1.ts"] = _constant(bytes(range(256)) * 4)
    body = media(1, ["/enc/1.ts"]).replace(
        b"#EXTINF", b'#EXT-X-KEY:METHOD=AES-128,URI="/enc/key"\n#EXTINF', 1
    )
    r = beside_healthy(server, _constant(body), {})
    assert r.ok, r.error


def test_static_mpd_is_live_ended(server: PlaylistServer) -> None:
    body = b'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"/>'
    r = beside_healthy(server, _constant(body), {})
    assert (r.failure, r.reason) == (Failure.SERVER, "server.live_ended"), r.error
    assert r.details["format"] == "dash"


@pytest.mark.slow
def test_deadline_during_every_variant_says_which_were_pending(server: PlaylistServer) -> None:
    server.routes["/all/master.m3u8"] = _constant(
        b'#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,NAME="quick"\n/ok/index.m3u8\n'
        b"#EXT-X-STREAM-INF:BANDWIDTH=2,RESOLUTION=1280x720\n/slow/index.m3u8\n"
    )
    r = beside_healthy(server, server.routes["/all/master.m3u8"], {"variant": "all"})
    assert (r.failure, r.reason) == (Failure.TIMEOUT, "timeout.total"), r.error
    assert "live variants not all checked within 3s" in (r.error or "")
    quick, slow = r.details["variants"]
    assert (quick["name"], quick["ok"]) == ("quick", True)
    assert (slow["resolution"], slow["ok"], slow["step"]) == ("1280x720", None, "wait")
    assert r.details["format"] == "hls"
