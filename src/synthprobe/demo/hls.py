"""The demo's live streams: an HLS master playlist and media playlists that advance every
second, freeze (``stalled``, or the ``stall`` mode) or end (``ended``, or ``end``)."""

from __future__ import annotations

import asyncio
import time

from synthprobe.demo.http import HttpRequest, respond

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


async def serve_live(
    req: HttpRequest, writer: asyncio.StreamWriter, mode: str | None, started: float
) -> None:
    """``/live/...``; ``mode`` is the live endpoint's switched fault, ``started`` when the
    platform started (the stream's sequence counts from it)."""
    parts = req.path.split("/")  # ["", "live", NAME, FILE]
    if req.path == "/live/master.m3u8":
        await respond(writer, 200, _MASTER.encode(), _MPEGURL)
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
