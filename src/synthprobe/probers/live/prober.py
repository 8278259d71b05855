"""``live`` probes: an HLS or DASH stream must be served, watchable and moving.

A live playlist that answers 200 can still be dead: the encoder stopped and the
playlist is frozen (``server.live_stalled``), or the event is over and the playlist
says ``#EXT-X-ENDLIST`` (an MPD ``type="static"``): ``server.live_ended``. It can also
be up and unwatchable, which is what viewers report: one rendition is broken (``variant:
all`` checks every one), segments arrive slower than they play (``server.live_slow``),
or the CDN serves an HTML page with 200 instead of video (``server.assertion``).

We fetch the playlist (following a master playlist to its variant(s)), download the
newest segment(s), and, with ``check_advancing``, fetch the playlist again one target
duration later. An MPD is probed the same way.

Here: which format, and which variants. Following a variant and the reload are written
once for both formats in ``follow.py``; how HLS and DASH answer it is in ``formats.py``;
parsing and its bounds in ``playlist.py`` and ``dash.py``; what a playlist must hold to
(also across reloads) in ``integrity.py``; what media looks like in ``media.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx

from synthprobe.classify import ProbeFailure
from synthprobe.expect import Segments, judge
from synthprobe.models import ProbeSpec, Reason
from synthprobe.probers.attempt import Attempt
from synthprobe.probers.base import Network, ProbeOutcome
from synthprobe.probers.exchange import Exchange
from synthprobe.probers.live import LiveSpec, Variant
from synthprobe.probers.live.dash import Representation, looks_like_mpd
from synthprobe.probers.live.follow import LiveAttempt, Track, entry
from synthprobe.probers.live.formats import (
    DashView,
    HlsMedia,
    check_dynamic,
    read_mpd,
    read_playlist,
)
from synthprobe.probers.live.playlist import MediaPlaylist, Stream, Variants

__all__ = ["LiveProber", "read_mpd", "read_playlist"]


class LiveProber:
    """Playlist or MPD, newest segment(s) of each variant followed, and (optionally)
    proof that the stream moves."""

    def prepare(self, spec: ProbeSpec[LiveSpec]) -> None:
        """Nothing to build."""

    async def probe(
        self, spec: ProbeSpec[LiveSpec], attempt: Attempt, net: Network
    ) -> ProbeOutcome:
        # known on every result, failed ones too (the runner records attempt.details);
        # the URL's guess until the body says
        path = httpx.URL(spec.url).path if spec.url.startswith("http") else spec.url
        attempt.details["format"] = "dash" if path.lower().endswith(".mpd") else "hls"
        this = LiveAttempt(spec, attempt, net)
        first = await this.get(spec.url, playlist=True)
        playlist = Segments(first.observation)
        if judge(spec.expect, playlist, None) is not None:
            # the runner's judge says why; segments of a wrong playlist prove nothing
            attempt.details.update(first.details)
            return ProbeOutcome(playlist, first.bytes_in, 0)
        url = str(first.details.get("final_url", spec.url))
        body = first.observation.body
        dash = not body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"#EXTM3U") and looks_like_mpd(
            dict(first.observation.headers).get("content-type"), body
        )
        attempt.details["format"] = "dash" if dash else "hls"
        details = await (_dash if dash else _hls)(this, first, url)
        attempt.details.update({"truncated": first.observation.truncated, **details})
        return ProbeOutcome(playlist, bytes_in=this.bytes_in, bytes_out=0)


async def _hls(this: LiveAttempt, first: Exchange, url: str) -> dict[str, Any]:
    """A media playlist followed; a master playlist's chosen variant(s) followed."""
    live = this.live
    playlist = await this.parse(first, url, "playlist", read_playlist)
    if isinstance(playlist, MediaPlaylist):
        track = await this.follow(HlsMedia(playlist), url, reload=live.check_advancing)
        return track.details
    streams = playlist.choose(live.variant)
    details: dict[str, Any] = {}
    if live.variant is not Variant.ALL:
        details.update(variant_url=streams[0].uri, variants=len(playlist.streams))

    def row(s: Stream) -> dict[str, Any]:
        return entry(s.uri, s.bandwidth, s.resolution, s.name, s.label)

    details.update(await this.follow_variants(streams, row, _hls_variant))
    return details


async def _hls_variant(this: LiveAttempt, stream: Stream) -> Track:
    """One variant of a master playlist: its media playlist fetched, then followed."""
    got = await this.get_ok(stream.uri, "variant playlist", playlist=True)
    # relative segment URIs resolve against where the playlist was found, as players do
    # after a redirect
    url = str(got.details.get("final_url", stream.uri))
    media = await this.parse(got, url, "playlist", read_playlist)
    if isinstance(media, Variants):
        raise ProbeFailure(Reason.SERVER_ASSERTION, f"{url}: variant is a master")
    return await this.follow(HlsMedia(media), url, reload=this.live.check_advancing)


async def _dash(this: LiveAttempt, first: Exchange, url: str) -> dict[str, Any]:
    """The MPD's chosen Representation(s) followed; with ``check_advancing`` the MPD
    reloaded once for them all (with one Representation, as its follow's reload)."""
    live = this.live
    mpd = await this.parse(first, url, "MPD", partial(read_mpd, now=datetime.now(UTC)))
    check_dynamic(mpd, "MPD")
    chosen = mpd.choose(live.variant)
    details: dict[str, Any] = {"representations": len(mpd.representations)}
    if mpd.publish_time is not None:
        details["publish_time"] = mpd.publish_time.isoformat()
    one = live.variant is not Variant.ALL
    if one:
        details["representation"] = chosen[0].id

    def row(r: Representation) -> dict[str, Any]:
        newest = r.newest.url if r.newest else r.init or url
        return entry(newest, r.bandwidth, r.resolution, r.id or None, r.label)

    def follow(each: LiveAttempt, rep: Representation) -> Awaitable[Track]:
        return each.follow(DashView(mpd, (rep,)), url, reload=one and live.check_advancing)

    details.update(await this.follow_variants(chosen, row, follow))
    if not one and live.check_advancing:
        advanced = await this.moves_on(DashView(mpd, chosen), url)
        if advanced is not None:
            details["advanced_by"] = advanced
    return details
