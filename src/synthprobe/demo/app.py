"""The demo's app API, for journeys: log in, load your feed (with times and video URLs),
play the first video (ranged, as players ask).

    POST /v1/login            {"user", "password"}: 200 {"access_token"} for the password
                              "demo-password", else 401
    GET  /v1/me/feed          Bearer token required (401 otherwise): items with
                              created_at (ISO 8601), created_s, created_ms, video_url;
                              ?times=bad gives times that are not times
    GET  /v1/videos/NAME.mp4  206 with the Range asked (200 without one); ?quality=4k: 404

Faults: ``PUT /_demo/faults/myfeed?mode=stale`` makes the feed's items 3 hours old;
``PUT /_demo/faults/videos?mode=404`` stops every video from playing.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from datetime import UTC, datetime

from synthprobe.demo.http import HttpRequest, respond

DEMO_PASSWORD = "demo-password"
VIDEO_BYTES = 256 * 1024
STALE_BY = 3 * 3600.0
_RANGE_RE = re.compile(r"bytes=(\d+)-(\d*)$")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def login(req: HttpRequest, writer: asyncio.StreamWriter, tokens: set[str]) -> None:
    try:
        sent = json.loads(req.body or b"{}")
    except ValueError:
        sent = {}
    if not isinstance(sent, dict) or sent.get("password") != DEMO_PASSWORD:
        await respond(writer, 401, b'{"error": "bad credentials"}')
        return
    token = f"demo-{secrets.token_hex(12)}"
    tokens.add(token)
    await respond(writer, 200, json.dumps({"access_token": token, "expires_in": 3600}).encode())


async def my_feed(
    req: HttpRequest, writer: asyncio.StreamWriter, tokens: set[str], stale: bool
) -> None:
    auth = req.headers.get("authorization", "")
    if not auth.startswith("Bearer ") or auth[7:] not in tokens:
        await respond(writer, 401, b'{"error": "log in first"}')
        return
    base = f"http://{req.headers.get('host', '127.0.0.1')}"
    now = time.time() - (STALE_BY if stale else 0.0)
    items = []
    for i in range(3):
        made = now - 5 - i * 60
        items.append(
            {
                "id": f"v{i + 1}",
                "created_at": "yesterday-ish" if req.query.get("times") == "bad" else _iso(made),
                "created_s": int(made),
                "created_ms": int(made * 1000),
                "video_url": f"{base}/v1/videos/v{i + 1}.mp4",
            }
        )
    await respond(writer, 200, json.dumps({"items": items}).encode())


async def video(req: HttpRequest, writer: asyncio.StreamWriter) -> None:
    if req.query.get("quality") == "4k":
        await respond(writer, 404, b'{"error": "no such rendition"}')
        return
    wanted = _RANGE_RE.match(req.headers.get("range", "").strip())
    if wanted is None:
        await respond(writer, 200, b"\0" * VIDEO_BYTES, "video/mp4")
        return
    start = int(wanted.group(1))
    end = min(int(wanted.group(2)) if wanted.group(2) else VIDEO_BYTES - 1, VIDEO_BYTES - 1)
    if start > end:
        await respond(writer, 416, b"", extra=[("Content-Range", f"bytes */{VIDEO_BYTES}")])
        return
    await respond(
        writer,
        206,
        b"\0" * (end - start + 1),
        "video/mp4",
        extra=[("Content-Range", f"bytes {start}-{end}/{VIDEO_BYTES}")],
    )
