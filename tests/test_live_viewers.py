"""Live streams as viewers see them, against ffmpeg's own output: an HLS ladder of three
renditions and live DASH, served on 127.0.0.1 by a small server of ours that breaks one
rendition on request (the fault is the URL's first path segment, so one session of
encoders serves every case):

- ``/ok/...``            as ffmpeg wrote it
- ``/dead-mid/...``      the ``mid`` rendition's segments answer 404 (its encoder died)
- ``/slow-mid/...``      ``mid``'s segments trickle over twice their duration
- ``/html-mid/...``      ``mid``'s segments are an HTML error page, with 200
- ``/long-mid/...``      ``mid``'s playlist says its newest segment lasts 3 s (target 1)
- ``/html-0/dash/...``   the DASH Representation ``0``'s segments are an HTML page

Each hostile probe runs beside a healthy one; the run's wall time stays within the
hostile probe's deadline + 1 s.
"""

from __future__ import annotations

import contextlib
import http.server
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from synthprobe.models import Failure, ProbeResult

from .conftest import run_specs, specs_from_yaml
from .probing import probes_text
from .realprograms import FFMPEG, need, segments_in, stop, wait_until

pytestmark = pytest.mark.slow  # real programs started per module: seconds each

FFPROBE = shutil.which("ffprobe")
TIMEOUT = 5.0
SLOW_FACTOR = 2.0
"""A slow segment takes this many times its duration to arrive."""
HTML = b"<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1></body></html>\n"
_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
}
_ENCODE = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "10"]
_SOURCE = ["-nostdin", "-loglevel", "error", "-re", "-f", "lavfi"]


def ffmpeg_ladder(out: Path) -> subprocess.Popen[bytes]:
    """Live HLS in three renditions (hi 320x180, mid 160x90, low 96x54): 1 s segments, 4
    in each list, old ones deleted, no ENDLIST."""
    command = [
        need(FFMPEG, "ffmpeg"),
        *_SOURCE,
        "-i",
        "testsrc=size=320x180:rate=10",
        "-filter_complex",
        "[0:v]split=3[a][b][c];[b]scale=160:90[b1];[c]scale=96:54[c1]",
        *("-map", "[a]", "-map", "[b1]", "-map", "[c1]"),
        *_ENCODE,
        *("-b:v:0", "300k", "-b:v:1", "150k", "-b:v:2", "60k"),
        *("-f", "hls", "-hls_time", "1", "-hls_list_size", "4"),
        *("-hls_flags", "delete_segments+program_date_time"),
        *("-master_pl_name", "master.m3u8"),
        *("-var_stream_map", "v:0,name:hi v:1,name:mid v:2,name:low"),
        *("-hls_segment_filename", str(out / "%v" / "seg-%d.ts")),
        str(out / "%v" / "index.m3u8"),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def ffmpeg_dash(
    out: Path, seconds: float | None = None, media: str | None = None
) -> subprocess.Popen[bytes]:
    """Live DASH (a dynamic MPD, SegmentTemplate with SegmentTimeline, 1 s segments, a
    window of 5); with ``seconds`` it ends cleanly, and ffmpeg rewrites it static."""
    command = [need(FFMPEG, "ffmpeg"), *_SOURCE, "-i", "testsrc=size=160x90:rate=10"]
    if seconds is not None:
        command += ["-t", str(seconds)]
    command += [*_ENCODE, "-f", "dash", "-seg_duration", "1", "-window_size", "5"]
    command += ["-extra_window_size", "5"]
    if media is not None:
        command += ["-media_seg_name", media]
    command.append(str(out / "manifest.mpd"))
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class FaultServer(http.server.ThreadingHTTPServer):
    """Serves ``root``; the first path segment names a fault and its rendition."""

    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.stopping = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A probe cut by its deadline closes mid-body: not our concern."""


def _is_segment_of(rest: str, rendition: str) -> bool:
    """Whether ``rest`` (a path under the root) is a media segment of ``rendition``: an
    HLS variant's directory, or a DASH Representation's chunks (not its init segment)."""
    name = rest.rsplit("/", 1)[-1]
    if rest.startswith(f"ladder/{rendition}/"):
        return name.endswith(".ts")
    return name.startswith((f"chunk-stream{rendition}-", f"chunk-{rendition}-"))


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FaultServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        fault, _, rest = self.path.lstrip("/").partition("/")
        kind, _, rendition = fault.partition("-")
        path = (self.server.root / rest).resolve()
        if not path.is_relative_to(self.server.root) or not path.is_file():
            self._send(404, b"no such file", "text/plain")
            return
        body = path.read_bytes()
        content_type = _TYPES.get(path.suffix, "application/octet-stream")
        hit = rendition and _is_segment_of(rest, rendition)
        if kind == "dead" and hit:
            self._send(404, b"no such segment", "text/plain")
        elif kind == "html" and hit:
            self._send(200, HTML, "text/html")
        elif kind == "slow" and hit:
            self._trickle(body, content_type, SLOW_FACTOR * _duration_of(rest))
        elif kind == "long" and rest == f"ladder/{rendition}/index.m3u8":
            self._send(200, _lengthen_newest(body), content_type)
        else:
            self._send(200, body, content_type)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def _trickle(self, body: bytes, content_type: str, seconds: float) -> None:
        """The whole segment, in ten pieces spread over ``seconds``: below real time."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        pieces = 10
        step = max(1, -(-len(body) // pieces))
        with contextlib.suppress(OSError):
            for start in range(0, len(body), step):
                if self.server.stopping.wait(seconds / pieces):
                    return
                self.wfile.write(body[start : start + step])
                self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def _duration_of(rest: str) -> float:
    """Our streams' segments last 1 s (ffmpeg's -hls_time / -seg_duration)."""
    return 1.0


def _lengthen_newest(playlist: bytes) -> bytes:
    """The newest #EXTINF made 3 s: over the target duration of 1."""
    head, sep, tail = playlist.rpartition(b"#EXTINF:")
    if not sep:
        return playlist
    _old, comma, rest = tail.partition(b",")
    return head + b"#EXTINF:3.000000" + comma + rest


@dataclass
class Streams:
    base: str


@pytest.fixture(scope="module")
def streams() -> Iterator[Streams]:
    need(FFMPEG, "ffmpeg")
    root = Path(tempfile.mkdtemp(prefix="synthprobe-viewers-")).resolve()
    procs: list[subprocess.Popen[bytes]] = []
    server = FaultServer(root)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    try:
        for name in ("ladder", "dash", "dash-time", "ended"):
            (root / name).mkdir()
        procs.append(ffmpeg_ladder(root / "ladder"))
        procs.append(ffmpeg_dash(root / "dash"))
        procs.append(ffmpeg_dash(root / "dash-time", media="chunk-$RepresentationID$-$Time$.m4s"))
        ended = ffmpeg_dash(root / "ended", seconds=3)
        procs.append(ended)
        thread.start()
        for rendition in ("hi", "mid", "low"):
            wait_until(
                lambda r=rendition: segments_in(root / "ladder" / r / "index.m3u8") >= 2,  # type: ignore[misc]
                30,
                f"ffmpeg to write two segments of {rendition}",
            )
        for name in ("dash", "dash-time"):
            wait_until(
                lambda n=name: _live_mpd_segments(root / n / "manifest.mpd") >= 2,  # type: ignore[misc]
                30,
                f"ffmpeg to write two DASH segments ({name})",
            )
        ended.wait(30)  # a clean finish rewrites the MPD as type="static"
        assert 'type="static"' in (root / "ended" / "manifest.mpd").read_text()
        if FFPROBE is not None:
            # the fixture's segments are real media, which ffprobe decodes
            for sample in (next((root / "ladder" / "hi").glob("seg-*.ts")), root / "dash"):
                target = sample if sample.is_file() else sample / "manifest.mpd"
                done = subprocess.run(
                    [FFPROBE, "-v", "error", str(target)], capture_output=True, timeout=30
                )
                assert done.returncode == 0, done.stderr
        yield Streams(server.base)
    finally:
        server.stopping.set()
        if thread.is_alive():
            server.shutdown()
        server.server_close()
        for proc in procs:
            stop(proc)
            if proc.stderr is not None:
                proc.stderr.close()
        shutil.rmtree(root, ignore_errors=True)


def _live_mpd_segments(mpd: Path) -> int:
    """Segments a dynamic ffmpeg MPD's timeline lists (each <S> counts 1 + its r)."""
    try:
        text = mpd.read_text()
    except OSError:
        return 0
    if 'type="dynamic"' not in text:
        return 0

    entries = re.findall(r"<S [^>]*>", text)
    return sum(1 + int(m.group(1)) if (m := re.search(r' r="(\d+)"', e)) else 1 for e in entries)


def run_beside_healthy(
    streams: Streams, url: str, live: dict[str, Any]
) -> tuple[ProbeResult, ProbeResult, float]:
    """The probe at ``url`` and a healthy ladder probe (every variant), in one run; the
    healthy one must be recorded and pass."""
    probes = [
        {"name": "probe", "kind": "live", "url": url, "timeout": f"{TIMEOUT:g}s", "live": live},
        {
            "name": "healthy",
            "kind": "live",
            "url": streams.base + "/ok/ladder/master.m3u8",
            "timeout": f"{TIMEOUT:g}s",
            "live": {"variant": "all"},
        },
    ]
    text = probes_text(*probes)
    started = time.monotonic()
    probed, healthy = run_specs(specs_from_yaml(text))
    wall = time.monotonic() - started
    assert healthy.probe == "healthy" and healthy.ok, healthy.error
    assert healthy.details["format"] == "hls"
    assert wall < TIMEOUT + 1
    return probed, healthy, wall


def test_every_variant_of_a_healthy_ladder_passes(streams: Streams) -> None:
    r, healthy, _ = run_beside_healthy(
        streams, streams.base + "/ok/ladder/master.m3u8", {"variant": "all", "segments": 2}
    )
    assert r.ok, r.error
    assert r.details["format"] == "hls"
    rows = r.details["variants"]
    assert [row["resolution"] for row in rows] == ["320x180", "160x90", "96x54"]
    for row in rows:
        assert row["ok"] is True and row["reason"] is None
        assert row["uri"].endswith("/index.m3u8") and row["bandwidth"] > 0
        assert row["segment_ms"] > 0 and 0 < row["realtime"] < 1
    assert r.details["realtime"] == max(row["realtime"] for row in rows)
    assert healthy.details["variants"][1]["ok"] is True


@pytest.mark.parametrize(
    ("fault", "live", "reason", "words"),
    [
        pytest.param(
            "dead-mid",
            {"variant": "all"},
            "server.status",
            ["variant 160x90: segment ", "/ladder/mid/seg-", "status 404"],
            id="dead-variant",
        ),
        pytest.param(
            "slow-mid",
            {"variant": "all"},
            "server.live_slow",
            ["variant 160x90: segment of 1.0s took ", "(realtime 1.0): viewers would buffer"],
            id="slow-variant",
        ),
        pytest.param(
            "html-mid",
            {"variant": "all"},
            "server.assertion",
            [
                "variant 160x90: segment is not media (starts with '<!DOCTYPE html'): ",
                "/ladder/mid/seg-",
            ],
            id="html-variant",
        ),
        pytest.param(
            "long-mid",
            {"variant": "all"},
            "server.assertion",
            ["variant 160x90: ", "#EXTINF:3 is longer than #EXT-X-TARGETDURATION:1"],
            id="extinf-over-target",
        ),
    ],
)
def test_one_broken_rendition_fails_the_ladder_naming_it(
    streams: Streams, fault: str, live: dict[str, Any], reason: str, words: list[str]
) -> None:
    r, _, _ = run_beside_healthy(streams, f"{streams.base}/{fault}/ladder/master.m3u8", live)
    assert (r.failure, r.reason) == (Failure.SERVER, reason), r.error
    for word in words:
        assert word in (r.error or ""), r.error
    rows = {row["resolution"]: row for row in r.details["variants"]}
    assert rows["160x90"]["ok"] is False and rows["160x90"]["reason"] == reason
    assert rows["320x180"]["ok"] is True and rows["96x54"]["ok"] is True
    assert r.details["format"] == "hls"


@pytest.mark.parametrize(
    ("variant", "ok"),
    [
        pytest.param("first", True, id="first-is-hi"),
        pytest.param("lowest", True, id="lowest-is-low"),
        pytest.param("highest", True, id="highest-is-hi"),
    ],
)
def test_one_variant_modes_miss_a_dead_mid_rendition(
    streams: Streams, variant: str, ok: bool
) -> None:
    """Why ``all`` exists: following one variant, a dead rendition goes unseen."""
    r, _, _ = run_beside_healthy(
        streams, streams.base + "/dead-mid/ladder/master.m3u8", {"variant": variant}
    )
    assert r.ok is ok, r.error
    assert isinstance(r.details["variants"], int)  # the old meaning: how many there are


def test_slow_segment_passes_with_a_looser_realtime(streams: Streams) -> None:
    r, _, _ = run_beside_healthy(
        streams,
        streams.base + "/slow-mid/ladder/mid/index.m3u8",
        {"realtime": SLOW_FACTOR * 2},
    )
    assert r.ok, r.error
    assert r.details["realtime"] >= SLOW_FACTOR * 0.9  # the ten pauses, measured


def test_realtime_zero_turns_the_check_off(streams: Streams) -> None:
    r, _, _ = run_beside_healthy(
        streams, streams.base + "/slow-mid/ladder/mid/index.m3u8", {"realtime": 0}
    )
    assert r.ok, r.error
    assert r.details["realtime"] > 1


def test_media_check_false_counts_the_html_page(streams: Streams) -> None:
    r, _, _ = run_beside_healthy(
        streams, streams.base + "/html-mid/ladder/mid/index.m3u8", {"media_check": False}
    )
    assert r.ok, r.error
    assert r.details["segment_bytes"] > 0


@pytest.mark.parametrize(
    "stream", [pytest.param("dash", id="number"), pytest.param("dash-time", id="time")]
)
def test_ffmpeg_live_dash_passes(streams: Streams, stream: str) -> None:
    r, _, _ = run_beside_healthy(
        streams, f"{streams.base}/ok/{stream}/manifest.mpd", {"check_advancing": True}
    )
    assert r.ok, r.error
    d = r.details
    assert d["format"] == "dash"
    assert d["representation"] == "0" and d["representations"] == 1
    assert d["segment_bytes"] > 0 and 0 < d["realtime"] < 1
    assert "publish_time" in d
    assert d.get("advanced_by", 1) >= 1


def test_ffmpeg_dash_every_representation(streams: Streams) -> None:
    r, _, _ = run_beside_healthy(
        streams, streams.base + "/ok/dash/manifest.mpd", {"variant": "all"}
    )
    assert r.ok, r.error
    [row] = r.details["variants"]
    assert row["ok"] is True and row["resolution"] == "160x90" and row["name"] == "0"


def test_static_mpd_is_live_ended(streams: Streams) -> None:
    r, _, _ = run_beside_healthy(streams, streams.base + "/ok/ended/manifest.mpd", {})
    assert (r.failure, r.reason) == (Failure.SERVER, "server.live_ended"), r.error
    assert 'MPD is type="static"' in (r.error or "")
    assert r.details["format"] == "dash"


def test_dash_segment_that_is_html_is_server_assertion(streams: Streams) -> None:
    r, _, _ = run_beside_healthy(streams, streams.base + "/html-0/dash/manifest.mpd", {})
    assert (r.failure, r.reason) == (Failure.SERVER, "server.assertion"), r.error
    assert "is not media (starts with '<!DOCTYPE html')" in (r.error or "")


def test_slow_dash_segment_is_live_slow(streams: Streams) -> None:
    r, _, _ = run_beside_healthy(streams, streams.base + "/slow-0/dash/manifest.mpd", {})
    assert (r.failure, r.reason) == (Failure.SERVER, "server.live_slow"), r.error
    assert "viewers would buffer" in (r.error or "")
    assert r.details["realtime"] > 1
