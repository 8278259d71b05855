"""The embedded demo platform: a small HTTP/1.1 server on 127.0.0.1 with switchable faults.

It is written on raw asyncio streams, not a web framework, because the faults it must
show (a reset, a close without reply, a trickled body, garbage instead of HTTP) are
below what frameworks let an application do. The test suite uses it as one of its
real servers.

    server.py     routing and the platform's endpoints; DemoPlatform, PlatformThread
    faults.py     FAULTS: fault mode -> handler (every list of modes comes from it)
    hls.py        live HLS playlists and segments
    websocket.py  the WebSocket endpoints
    http.py       requests and responses on raw streams
    app.py        the app API for journeys: login, a token-protected feed, ranged videos
    h2.py         the TLS port: HTTP/2 (h2 library) or HTTP/1.1, as ALPN decides
    tcp.py        the TCP port: a cache answering PING with +PONG

With ``extras`` (``probe demo`` sets it) two more listeners start: ``tls_port``, TLS
with a throwaway self-signed certificate shipped in this package, offering h2 and
http/1.1 by ALPN (the feed and /healthz over HTTP/2; the whole platform over HTTP/1.1),
and ``tcp_port``, the cache.

Endpoints (``/v1/...`` is the platform, ``/fault/...`` misbehaves on purpose):

    GET  /v1/feed?limit=N         JSON feed
    GET  /v1/feed/trending        JSON feed, 20 ms slower
    POST /v1/media                takes an upload, answers 201 {"id", "bytes"}
    GET  /v1/media/ID             404 until 200 ms after the upload, then 200 (verify_url)
    DELETE /v1/media/ID           204 (cleanup)
    GET  /healthz                 "ok"
    GET  /live/master.m3u8        HLS master playlist: two variants of the main stream
    GET  /live/main/index.m3u8    live HLS that advances every second
    GET  /live/stalled/index.m3u8 live HLS frozen at one media sequence
    GET  /live/ended/index.m3u8   an HLS playlist with #EXT-X-ENDLIST
    GET  /live/ladder/master.m3u8 a 3-rendition ladder (low, mid, high); the fault endpoint
                                  live-variant (404, slow, html) breaks the mid rendition
    GET  /live/ladder-slow/master.m3u8  the same ladder, mid always below real time
    GET  /live/dash/manifest.mpd  live DASH: a SegmentTimeline that grows every 2 s
    GET  /ws                      WebSocket: answers a message containing "ping" with
                                  {"type":"pong"}, echoes anything else
    GET  /ws/wrong                WebSocket: answers "nope" and closes
    GET  /ws/silent               WebSocket: accepts and never answers
"""

from __future__ import annotations

from synthprobe.demo.faults import FAULT_MODES, usage
from synthprobe.demo.server import ENDPOINTS, DemoPlatform, PlatformThread, refused_port

_SWITCHABLE = "|".join(dict.fromkeys(ENDPOINTS.values()))
__doc__ = (
    (__doc__ or "")
    + usage()
    + f"""

    PUT    /_demo/faults/ENDPOINT?mode=MODE   make {_SWITCHABLE} misbehave;
           MODE is one of {", ".join(FAULT_MODES)}
    DELETE /_demo/faults/ENDPOINT             back to normal
    GET    /_demo/faults                      the faults set
"""
)

__all__ = ["FAULT_MODES", "DemoPlatform", "PlatformThread", "refused_port"]
