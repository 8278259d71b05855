"""``live`` probes: an HLS stream must be served, playable and moving.

A live playlist that answers 200 can still be dead: the encoder stopped and the
playlist is frozen (``server.live_stalled``), or the event is over and the playlist
says ``#EXT-X-ENDLIST`` (``server.live_ended``). We fetch the playlist (following a
master playlist to one variant), download the newest segment(s), and, with
``check_advancing``, fetch the playlist again one target duration later.

Parsing uses the ``m3u8`` package; it accepts any text, so we check ``#EXTM3U`` first.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import m3u8

from synthprobe.classify import ProbeFailure
from synthprobe.expect import status_matches
from synthprobe.models import ProbeSpec, Reason
from synthprobe.probers.base import Network, ProbeOutcome
from synthprobe.probers.exchange import Exchange, Request, fetch
from synthprobe.probers.live import REFRESH, LiveSpec, Variant
from synthprobe.timing import Timeline


class NotAPlaylist(ValueError):
    """The text is not an HLS playlist."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One media segment, with its byte range resolved."""

    uri: str
    """Absolute URI."""
    duration: float
    """Seconds (#EXTINF)."""
    byterange: tuple[int, int] | None
    """(offset, length) of an #EXT-X-BYTERANGE, else None."""
    program_date_time: datetime | None
    """Wall-clock time of the segment's first frame, when the playlist says."""
    discontinuity: bool
    """Preceded by #EXT-X-DISCONTINUITY."""


@dataclass(frozen=True, slots=True)
class MediaPlaylist:
    """What a live check needs of a media playlist."""

    target_duration: float
    media_sequence: int
    segments: tuple[Segment, ...]
    ended: bool

    @property
    def end_sequence(self) -> int:
        """Media sequence number just past the newest segment."""
        return self.media_sequence + len(self.segments)

    @property
    def position(self) -> tuple[int, str | None]:
        """Moves when the stream advances: (media sequence, newest segment URI)."""
        return self.media_sequence, self.segments[-1].uri if self.segments else None


@dataclass(frozen=True, slots=True)
class Variants:
    """A master playlist: (bandwidth, absolute URI) per variant, in playlist order."""

    streams: tuple[tuple[int, str], ...]

    def pick(self, which: Variant) -> str:
        if which is Variant.HIGHEST:
            return max(self.streams, key=lambda s: s[0])[1]
        if which is Variant.LOWEST:
            return min(self.streams, key=lambda s: s[0])[1]
        return self.streams[0][1]


def parse_playlist(text: str, uri: str) -> MediaPlaylist | Variants:
    """Parse a master or media playlist; raise NotAPlaylist for anything else."""
    if not text.lstrip("\ufeff").startswith("#EXTM3U"):
        raise NotAPlaylist("not an HLS playlist (no #EXTM3U)")
    try:
        parsed = m3u8.loads(text, uri=uri)
    except Exception as exc:  # m3u8 raises bare ValueError/AttributeError on junk
        raise NotAPlaylist(f"unparseable HLS playlist: {exc}") from None
    if parsed.is_variant:
        streams = tuple(
            (int(v.stream_info.bandwidth or 0), str(v.absolute_uri)) for v in parsed.playlists
        )
        if not streams:
            raise NotAPlaylist("master playlist lists no variant")
        return Variants(streams)
    segments: list[Segment] = []
    next_offset: dict[str, int] = {}
    for seg in parsed.segments:
        absolute = str(seg.absolute_uri)
        byterange = None
        if seg.byterange:
            length_text, _, offset_text = str(seg.byterange).partition("@")
            length = int(length_text)
            # no offset: the range starts where the previous one of this URI ended
            offset = int(offset_text) if offset_text else next_offset.get(absolute, 0)
            next_offset[absolute] = offset + length
            byterange = (offset, length)
        pdt = seg.current_program_date_time
        segments.append(
            Segment(
                uri=absolute,
                duration=float(seg.duration or 0.0),
                byterange=byterange,
                program_date_time=pdt.astimezone(UTC) if pdt else None,
                discontinuity=bool(seg.discontinuity),
            )
        )
    return MediaPlaylist(
        target_duration=float(parsed.target_duration or 0.0),
        media_sequence=int(parsed.media_sequence or 0),
        segments=tuple(segments),
        ended=bool(parsed.is_endlist),
    )


class LiveProber:
    """Playlist, newest segment(s), and (optionally) proof that the stream moves."""

    def prepare(self, spec: ProbeSpec) -> None:
        """Nothing to build."""

    async def probe(self, spec: ProbeSpec, timeline: Timeline, net: Network) -> ProbeOutcome:
        live = spec.options
        assert isinstance(live, LiveSpec)  # the kind's parser always sets it
        first = await self._get(spec, spec.url, timeline, net)
        fetched = [first]
        if not status_matches(first.observation.status, spec.expect.status):
            return ProbeOutcome(first.observation, first.bytes_in, 0, first.details)
        url = str(first.details.get("final_url", spec.url))
        playlist = self._parse(first, url)
        details: dict[str, Any] = {}
        if isinstance(playlist, Variants):
            url = playlist.pick(live.variant)
            details["variant_url"] = url
            details["variants"] = len(playlist.streams)
            media_response = await self._get_ok(spec, url, timeline, net, "variant playlist")
            fetched.append(media_response)
            playlist = self._parse(media_response, url)
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
            fetched.append(got)
        if live.segments:
            details["segment_bytes"] = segment_bytes
            details["segment_ms"] = round(segment_s * 1000, 3)
            if segment_s > 0:
                details["segment_mbps"] = round(segment_bytes * 8 / segment_s / 1e6, 3)
        newest = media.segments[-1]
        if newest.program_date_time is not None:
            age = (datetime.now(UTC) - newest.program_date_time).total_seconds()
            details["newest_age_s"] = round(age, 3)
            if live.max_age is not None and age > live.max_age:
                raise ProbeFailure(
                    Reason.SERVER_LIVE_STALLED,
                    f"newest segment is {age:.1f}s old (max_age {live.max_age:g}s)",
                )
        if live.check_advancing:
            target = media.target_duration or 1.0
            later = media
            waited = 0.0
            # reload after one target duration; if unchanged, once more half a target
            # duration later, as a player would (RFC 8216 §6.3.4): an encoder writing a
            # segment a little late is not a stalled stream
            for pause in (target, target / 2):
                timeline.begin(REFRESH)
                await asyncio.sleep(pause)
                timeline.end(REFRESH)
                waited += pause
                again = await self._get_ok(spec, url, timeline, net, "playlist refetch")
                fetched.append(again)
                reloaded = self._parse(again, url)
                if isinstance(reloaded, Variants):
                    raise ProbeFailure(Reason.SERVER_ASSERTION, "playlist became a master")
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
            bytes_in=sum(f.bytes_in for f in fetched),
            bytes_out=0,
            details={"truncated": first.observation.truncated, **details},
        )

    @staticmethod
    def _parse(got: Exchange, url: str) -> MediaPlaylist | Variants:
        try:
            return parse_playlist(got.observation.body.decode("utf-8", "replace"), url)
        except NotAPlaylist as exc:
            raise ProbeFailure(Reason.SERVER_ASSERTION, f"{url}: {exc}") from None

    @staticmethod
    async def _get(
        spec: ProbeSpec,
        url: str,
        timeline: Timeline,
        net: Network,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Exchange:
        return await fetch(spec, Request("GET", url, spec.headers + headers), timeline, net)

    async def _get_ok(
        self,
        spec: ProbeSpec,
        url: str,
        timeline: Timeline,
        net: Network,
        what: str,
        segment: Segment | None = None,
    ) -> Exchange:
        headers: tuple[tuple[str, str], ...] = ()
        if segment is not None and segment.byterange is not None:
            offset, length = segment.byterange
            headers = (("Range", f"bytes={offset}-{offset + length - 1}"),)
        got = await self._get(spec, url, timeline, net, headers)
        if not 200 <= got.observation.status < 300:
            raise ProbeFailure(
                Reason.SERVER_STATUS, f"{what} {url}: status {got.observation.status}"
            )
        return got


def _check_live(media: MediaPlaylist, what: str) -> None:
    if media.ended:
        raise ProbeFailure(
            Reason.SERVER_LIVE_ENDED,
            f"{what} has ended (#EXT-X-ENDLIST) at media sequence {media.media_sequence}",
        )
    if not media.segments:
        raise ProbeFailure(Reason.SERVER_LIVE_STALLED, f"{what} has no segments")
