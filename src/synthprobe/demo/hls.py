"""The demo's live streams: an HLS master playlist and media playlists that advance every
second, freeze (``stalled``, or the ``stall`` mode) or end (``ended``, or ``end``); a
3-rendition ladder (``/live/ladder/``) whose middle rendition the ``live-variant`` fault
breaks (``404``, ``slow``: below real time, ``html``: an error page with 200), the same
ladder with that rendition always slow (``/live/ladder-slow/``, for ``probe demo``), and
a live DASH stream (``/live/dash/manifest.mpd``)."""

from __future__ import annotations

import asyncio
import time

from synthprobe.demo.http import HttpRequest, head, respond

LIVE_TARGET = 1.0
"""Seconds per segment (#EXT-X-TARGETDURATION)."""
LIVE_WINDOW = 4
"""Segments in a media playlist."""
SEGMENT_BYTES = 16 * 1024
_MPEGURL = "application/vnd.apple.mpegurl"
_MASTER = (
    "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n"
    "main/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2400000,RESOLUTION=1280x720\n"
    "hd/index.m3u8\n"
)


_LADDER = (
    "#EXTM3U\n"
    "#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=426x240\nlow/index.m3u8\n"
    "#EXT-X-STREAM-INF:BANDWIDTH=1200000,RESOLUTION=854x480\nmid/index.m3u8\n"
    "#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720\nhigh/index.m3u8\n"
)
VARIANT_MODES = {
    "404": "the middle rendition's segments answer 404",
    "slow": "the middle rendition's segments arrive below real time",
    "html": "the middle rendition's segments are an HTML error page with 200",
}
"""Modes of the ``live-variant`` endpoint (the ``/live/ladder/`` ladder)."""
SLOW_FACTOR = 1.6
"""A slow segment takes this many times its duration to arrive: viewers would buffer."""


async def serve_live(
    req: HttpRequest,
    writer: asyncio.StreamWriter,
    mode: str | None,
    started: float,
    variant_mode: str | None = None,
) -> None:
    """``/live/...``; ``mode`` is the live endpoint's switched fault, ``variant_mode`` the
    ladder's, ``started`` when the platform started (the streams count from it)."""
    parts = req.path.split("/")  # ["", "live", NAME, FILE] or ["", "live", LADDER, RENDITION, FILE]
    if req.path == "/live/master.m3u8":
        await respond(writer, 200, _MASTER.encode(), _MPEGURL)
        return
    if len(parts) >= 3 and parts[2] == "dash":
        await serve_dash(req, writer, started)
        return
    if len(parts) >= 3 and parts[2] in ("ladder", "ladder-slow"):
        fault = "slow" if parts[2] == "ladder-slow" else variant_mode
        await _serve_ladder(parts[3:], writer, fault, started)
        return
    if len(parts) != 4 or parts[2] not in ("main", "hd", "stalled", "ended"):
        await respond(writer, 404, b'{"error": "no such stream"}')
        return
    name, file = parts[2], parts[3]
    if file.startswith("seg-") and file.endswith(".ts"):
        await respond(writer, 200, b"G" * SEGMENT_BYTES, "video/mp2t")
        return
    if file != "index.m3u8":
        await respond(writer, 404, b'{"error": "no such file"}')
        return
    if name == "stalled" or (name in ("main", "hd") and mode == "stall"):
        newest, ended, now = 100, False, started - 3600
    elif name == "ended" or mode == "end":
        newest, ended, now = 100, True, started - 3600
    else:
        now, ended = time.time(), False
        newest = int((now - started) / LIVE_TARGET) + LIVE_WINDOW
    await respond(writer, 200, hls_playlist(newest, now, ended).encode(), _MPEGURL)


def hls_playlist(newest: int, now: float, ended: bool) -> str:
    """A media playlist whose newest segment is number ``newest``, starting at ``now``."""
    first = max(0, newest - LIVE_WINDOW + 1)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{int(LIVE_TARGET)}",
        f"#EXT-X-MEDIA-SEQUENCE:{first}",
    ]
    for n in range(first, newest + 1):
        start = now - (newest - n + 1) * LIVE_TARGET
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start))
        lines += [
            f"#EXT-X-PROGRAM-DATE-TIME:{stamp}.{int(start % 1 * 1000):03d}Z",
            f"#EXTINF:{LIVE_TARGET:.3f},",
            f"seg-{n}.ts",
        ]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


async def _serve_ladder(
    rest: list[str], writer: asyncio.StreamWriter, fault: str | None, started: float
) -> None:
    if rest == ["master.m3u8"]:
        await respond(writer, 200, _LADDER.encode(), _MPEGURL)
        return
    if len(rest) != 2 or rest[0] not in ("low", "mid", "high"):
        await respond(writer, 404, b'{"error": "no such rendition"}')
        return
    rendition, file = rest
    if file == "index.m3u8":
        now = time.time()
        newest = int((now - started) / LIVE_TARGET) + LIVE_WINDOW
        await respond(writer, 200, hls_playlist(newest, now, False).encode(), _MPEGURL)
        return
    if not (file.startswith("seg-") and file.endswith(".ts")):
        await respond(writer, 404, b'{"error": "no such file"}')
        return
    broken = fault if rendition == "mid" else None
    if broken == "404":
        await respond(writer, 404, b'{"error": "segment gone"}')
    elif broken == "html":
        page = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>\n"
        await respond(writer, 200, page, "text/html")
    elif broken == "slow":
        await trickle(writer, ts_segment(), "video/mp2t", LIVE_TARGET * SLOW_FACTOR)
    else:
        await respond(writer, 200, ts_segment(), "video/mp2t")


def ts_segment() -> bytes:
    """Bytes that start as MPEG-TS does: a sync byte every 188 bytes (not decodable video,
    but what the prober's media check looks at)."""
    packet = b"G" + bytes(187)
    return packet * (SEGMENT_BYTES // len(packet))


async def trickle(
    writer: asyncio.StreamWriter, body: bytes, content_type: str, seconds: float
) -> None:
    """``body`` in 8 pieces spread over ``seconds``: a CDN slower than real time."""
    writer.write(head(200, len(body), content_type, []))
    step = -(-len(body) // 8)
    for start in range(0, len(body), step):
        writer.write(body[start : start + step])
        await writer.drain()
        await asyncio.sleep(seconds / 8)


_DASH_SEGMENT = 2.0
"""Seconds per DASH segment."""


async def serve_dash(req: HttpRequest, writer: asyncio.StreamWriter, started: float) -> None:
    """``/live/dash/manifest.mpd``: a dynamic MPD whose SegmentTimeline grows with the
    clock (``$Number$``), an init segment (``ftyp``) and media segments (``styp``)."""
    file = req.path.rsplit("/", 1)[-1]
    if file == "manifest.mpd":
        await respond(
            writer, 200, dash_manifest(started, time.time()).encode(), "application/dash+xml"
        )
    elif file == "init.mp4":
        await respond(writer, 200, _box(b"ftyp", b"iso6\0\0\0\0iso6dash"), "video/mp4")
    elif file.startswith("seg-") and file.endswith(".m4s"):
        body = _box(b"styp", b"msdh\0\0\0\0msdh") + _box(b"mdat", bytes(SEGMENT_BYTES))
        await respond(writer, 200, body, "video/iso.segment")
    else:
        await respond(writer, 404, b'{"error": "no such file"}')


def _box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def dash_manifest(started: float, now: float) -> str:
    """A live MPD: segments of ``_DASH_SEGMENT`` s, the newest 4 that are complete listed.
    The stream began a minute before the platform did: it is on air when asked."""
    started -= 60
    done = int((now - started) / _DASH_SEGMENT)
    first = max(0, done - LIVE_WINDOW)
    scale = 1000
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
    published = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    duration = int(_DASH_SEGMENT * scale)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" '
        f'profiles="urn:mpeg:dash:profile:isoff-live:2011" availabilityStartTime="{iso}" '
        f'publishTime="{published}" minimumUpdatePeriod="PT2S" minBufferTime="PT4S" '
        'timeShiftBufferDepth="PT10S">\n'
        '  <Period id="0" start="PT0S">\n'
        '    <AdaptationSet contentType="video" mimeType="video/mp4" segmentAlignment="true">\n'
        '      <Representation id="v0" bandwidth="800000" width="640" height="360" '
        'codecs="avc1.64001e">\n'
        f'        <SegmentTemplate timescale="{scale}" initialization="init.mp4" '
        f'media="seg-$Number$.m4s" startNumber="{first}">\n'
        "          <SegmentTimeline>\n"
        f'            <S t="{first * duration}" d="{duration}" r="{done - first - 1}"/>\n'
        "          </SegmentTimeline>\n"
        "        </SegmentTemplate>\n"
        "      </Representation>\n"
        "    </AdaptationSet>\n"
        "  </Period>\n"
        "</MPD>\n"
    )
