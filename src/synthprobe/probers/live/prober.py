"""``live`` probes: an HLS stream must be served, playable and moving.

A live playlist that answers 200 can still be dead: the encoder stopped and the
playlist is frozen (``server.live_stalled``), or the event is over and the playlist
says ``#EXT-X-ENDLIST`` (``server.live_ended``). We fetch the playlist (following a
master playlist to one variant), download the newest segment(s), and, with
``check_advancing``, fetch the playlist again one target duration later.

Parsing and its bounds are in ``playlist.py``; what a playlist must hold to (also
across reloads) is in ``integrity.py``.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from typing import Any

from synthprobe.classify import ProbeFailure
from synthprobe.expect import status_matches
from synthprobe.models import ProbeSpec, Reason
from synthprobe.probers.base import DaemonThreads, Network, ProbeOutcome
from synthprobe.probers.exchange import Exchange, Request, fetch
from synthprobe.probers.live import REFRESH, LiveSpec, integrity
from synthprobe.probers.live.playlist import (
    MAX_PLAYLIST_BYTES,
    MediaPlaylist,
    NotAPlaylist,
    Segment,
    Variants,
    check_size,
    parse_playlist,
)
from synthprobe.timing import Timeline
from synthprobe.units import format_size

PARSE_THREADS = DaemonThreads(2)
"""Where playlists are parsed: m3u8 is pure Python (up to about a second for a playlist
at the caps), and on the event loop it would hold every other probe's timing, the
deadline and SIGTERM. Daemon threads: a parse the deadline abandoned never delays exit."""
os.register_at_fork(after_in_child=PARSE_THREADS.forget_threads)


def read_playlist(body: bytes, url: str) -> MediaPlaylist | Variants:
    """The playlist a server sent from ``url``, parsed and checked; whatever the bytes,
    a playlist or ``ProbeFailure`` (``server.assertion``, naming ``url``)."""
    text = body.decode("utf-8", "replace")
    try:
        check_size(text)
        parsed = parse_playlist(text, url)
    except NotAPlaylist as exc:
        raise ProbeFailure(Reason.SERVER_ASSERTION, f"{url}: {exc}") from None
    integrity.check_playlist(parsed, url)
    return parsed


class LiveProber:
    """Playlist, newest segment(s), and (optionally) proof that the stream moves."""

    def prepare(self, spec: ProbeSpec) -> None:
        """Nothing to build."""

    async def probe(self, spec: ProbeSpec, timeline: Timeline, net: Network) -> ProbeOutcome:
        live = spec.options
        assert isinstance(live, LiveSpec)  # the kind's parser always sets it
        first = await self._get(spec, spec.url, timeline, net, playlist=True)
        # a count, not the exchanges: twenty segments of max_body each must not stay in memory
        bytes_in = first.bytes_in
        if not status_matches(first.observation.status, spec.expect.status):
            return ProbeOutcome(first.observation, first.bytes_in, 0, first.details)
        url = str(first.details.get("final_url", spec.url))
        playlist = await self._read(spec, first, url)
        details: dict[str, Any] = {}
        if isinstance(playlist, Variants):
            url = playlist.pick(live.variant)
            details["variant_url"] = url
            details["variants"] = len(playlist.streams)
            media_response = await self._get_ok(
                spec, url, timeline, net, "variant playlist", playlist=True
            )
            bytes_in += media_response.bytes_in
            # relative segment URIs resolve against where the playlist was found, as
            # players do after a redirect
            url = str(media_response.details.get("final_url", url))
            playlist = await self._read(spec, media_response, url)
            if isinstance(playlist, Variants):
                raise ProbeFailure(Reason.SERVER_ASSERTION, "variant is a master")
        media = playlist
        details.update(
            media_sequence=media.media_sequence,
            target_duration=media.target_duration,
            segments=len(media.segments),
        )
        _check_live(media, "playlist")
        segment_bytes, segment_s = 0, 0.0
        for segment in media.segments[-live.segments :] if live.segments else ():
            started = time.perf_counter()
            got = await self._get_ok(spec, segment.uri, timeline, net, "segment", segment)
            segment_s += time.perf_counter() - started
            segment_bytes += got.bytes_in
            bytes_in += got.bytes_in
        if live.segments:
            details["segment_bytes"] = segment_bytes
            details["segment_ms"] = round(segment_s * 1000, 3)
            if segment_s > 0:
                details["segment_mbps"] = round(segment_bytes * 8 / segment_s / 1e6, 3)
        age = integrity.newest_age(media, datetime.now(UTC))
        if age is not None:
            details["newest_age_s"] = round(age, 3)
            if live.max_age is not None and age > live.max_age:
                raise ProbeFailure(
                    Reason.SERVER_LIVE_STALLED,
                    f"newest segment is {age:.1f}s old (max_age {live.max_age:g}s)",
                )
        if live.check_advancing:
            target = media.target_duration
            assert target is not None  # integrity.check_playlist refuses a playlist without
            later = media
            waited = 0.0
            # reload after one target duration; if unchanged, once more half a target
            # duration later, as a player would (RFC 8216 §6.3.4): an encoder writing a
            # segment a little late is not a stalled stream. The runner's deadline cuts
            # the wait (target durations are capped at integrity.MAX_TARGET_DURATION).
            for pause in (target, target / 2):
                timeline.begin(REFRESH)
                await asyncio.sleep(pause)
                timeline.end(REFRESH)
                waited += pause
                again = await self._get_ok(
                    spec, url, timeline, net, "playlist refetch", playlist=True
                )
                bytes_in += again.bytes_in
                reloaded = await self._read(spec, again, url)
                if isinstance(reloaded, Variants):
                    raise ProbeFailure(Reason.SERVER_ASSERTION, "playlist became a master")
                integrity.check_sequence(media, reloaded)
                _check_live(reloaded, "playlist refetch")
                later = reloaded
                if later.position != media.position:
                    break
            else:
                raise ProbeFailure(
                    Reason.SERVER_LIVE_STALLED,
                    f"media sequence {media.media_sequence} did not advance in {waited:g}s",
                )
            # segments added since the first fetch (the sequence only moves once the
            # window is full, so count by the index just past the newest segment)
            details["advanced_by"] = later.end_sequence - media.end_sequence
        return ProbeOutcome(
            first.observation,
            bytes_in=bytes_in,
            bytes_out=0,
            details={"truncated": first.observation.truncated, **details},
        )

    @staticmethod
    async def _read(spec: ProbeSpec, got: Exchange, url: str) -> MediaPlaylist | Variants:
        if got.observation.truncated:
            limit = _playlist_limit(spec)
            why = "max_body" if limit < MAX_PLAYLIST_BYTES else "the cap for a playlist"
            raise ProbeFailure(
                Reason.SERVER_ASSERTION,
                f"{url}: playlist is larger than {format_size(limit)} ({why}): "
                "its newest segments are out of reach",
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(PARSE_THREADS, read_playlist, got.observation.body, url)

    @staticmethod
    async def _get(
        spec: ProbeSpec,
        url: str,
        timeline: Timeline,
        net: Network,
        headers: tuple[tuple[str, str], ...] = (),
        *,
        playlist: bool = False,
    ) -> Exchange:
        request = Request("GET", url, spec.headers + headers)
        if playlist:
            return await fetch(spec, request, timeline, net, max_body=_playlist_limit(spec))
        return await fetch(spec, request, timeline, net)

    async def _get_ok(
        self,
        spec: ProbeSpec,
        url: str,
        timeline: Timeline,
        net: Network,
        what: str,
        segment: Segment | None = None,
        *,
        playlist: bool = False,
    ) -> Exchange:
        integrity.check_fetchable(url, what)
        headers: tuple[tuple[str, str], ...] = ()
        if segment is not None and segment.byterange is not None:
            offset, length = segment.byterange
            headers = (("Range", f"bytes={offset}-{offset + length - 1}"),)
        got = await self._get(spec, url, timeline, net, headers, playlist=playlist)
        if not 200 <= got.observation.status < 300:
            raise ProbeFailure(
                Reason.SERVER_STATUS, f"{what} {url}: status {got.observation.status}"
            )
        return got


def _playlist_limit(spec: ProbeSpec) -> int:
    return min(spec.max_body, MAX_PLAYLIST_BYTES)


def _check_live(media: MediaPlaylist, what: str) -> None:
    if media.ended:
        raise ProbeFailure(
            Reason.SERVER_LIVE_ENDED,
            f"{what} has ended (#EXT-X-ENDLIST) at media sequence {media.media_sequence}",
        )
    if not media.segments:
        raise ProbeFailure(Reason.SERVER_LIVE_STALLED, f"{what} has no segments")
