"""Playlist integrity: what a live HLS playlist must hold to for players to play it.

Each check raises ``ProbeFailure(server.assertion)`` naming the tag and the values, so a
stream that real players refuse or mis-time never passes. Shared by every live check
(one playlist, a refetch, each variant), so a rule lives here once.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import assert_never

import httpx

from synthprobe.classify import ProbeFailure
from synthprobe.models import Reason
from synthprobe.probers.live.playlist import MediaPlaylist, Variants, clip
from synthprobe.probers.urls import SCHEMES, Flaw, Unusable, usable

MAX_TARGET_DURATION = 600
"""Seconds: a larger ``#EXT-X-TARGETDURATION`` is refused. Players stay three target
durations behind live, so ten-minute segments would put viewers half an hour behind;
and ``check_advancing`` waits 1.5 target durations."""
FUTURE_SLACK = 60.0
"""Seconds a ``#EXT-X-PROGRAM-DATE-TIME`` may run ahead of our clock (clock skew)."""
_SCHEMES = tuple(f"{scheme}://" for scheme in SCHEMES)
"""What every URI of a playlist must start with: ``urls.SCHEMES``."""


def check_playlist(playlist: MediaPlaylist | Variants, url: str) -> None:
    """What every fetch of a playlist must hold to: a sane target duration, and only
    http(s) URIs, which players can fetch (a ``file:`` or ``data:`` URI is not media)."""
    if isinstance(playlist, Variants):
        for stream in playlist.streams:
            _check_scheme(stream.uri, "variant", url)
        return
    check_target_duration(playlist, url)
    for segment in playlist.segments:
        _check_scheme(segment.uri, "segment", url)
    check_extinf(playlist, url)


def check_extinf(media: MediaPlaylist, url: str) -> None:
    """No segment may last longer than the target duration once rounded to the nearest
    whole second (RFC 8216 §4.3.3.1): players size their buffer and reload timer by it,
    and stall when a segment overruns it."""
    target = media.target_duration
    if target is None:
        return
    for segment in media.segments:
        # half up, as "rounded to the nearest integer" reads (Python's round() is
        # half-even: 2.5 would pass a target of 2)
        if math.floor(segment.duration + 0.5) > target:
            raise _assertion(
                f"{url}: #EXTINF:{_number(segment.duration)} is longer than "
                f"#EXT-X-TARGETDURATION:{_number(target)} (RFC 8216 §4.3.3.1: a segment, "
                f"rounded, may not last longer): {clip(segment.uri)}"
            )


def check_target_duration(media: MediaPlaylist, url: str) -> None:
    """RFC 8216 requires ``#EXT-X-TARGETDURATION``; we wait by it, so it must be sane."""
    target = media.target_duration
    if target is None:
        raise _assertion(f"{url}: media playlist has no #EXT-X-TARGETDURATION (RFC 8216 §4.3.3.1)")
    if target <= 0:
        raise _assertion(
            f"{url}: #EXT-X-TARGETDURATION:{_number(target)} is not a positive number of seconds"
        )
    if target > MAX_TARGET_DURATION:
        raise _assertion(
            f"{url}: #EXT-X-TARGETDURATION:{_number(target)} is more than the "
            f"{MAX_TARGET_DURATION}s a live segment may last"
        )


def check_fetchable(uri: str, what: str) -> httpx.URL:
    """``uri`` as a URL we can GET (``urls.usable``), else why not (the playlist or MPD
    gave it to us)."""
    try:
        return usable(uri)
    except Unusable as exc:
        raise _assertion(f"{what} URI {_unusable(exc)}: {clip(uri)}") from None


def _unusable(exc: Unusable) -> str:
    match exc.flaw:
        case Flaw.INVALID:
            return f"is not a valid URL ({exc.why})"
        case Flaw.SCHEME:
            return "is not http(s)"
        case Flaw.NO_HOST:
            return "has no host"
        case Flaw.PORT:
            assert exc.url is not None
            return f"has port {exc.url.port}, outside 1..65535"
        case Flaw.HOST:
            return f"has {exc.why}"
        case _:
            assert_never(exc.flaw)


def check_sequence(before: MediaPlaylist, after: MediaPlaylist) -> None:
    """A reload may only move on (RFC 8216 §6.2.2): the media sequence never decreases,
    the playlist never shrinks, the newest segment never disappears, and the
    discontinuity sequence counts exactly the #EXT-X-DISCONTINUITY tags that left the
    window; players lose their place (or their timestamps) otherwise."""
    if after.media_sequence < before.media_sequence:
        raise _assertion(
            f"#EXT-X-MEDIA-SEQUENCE went back from {before.media_sequence} to "
            f"{after.media_sequence} between two fetches of the playlist"
        )
    if after.media_sequence == before.media_sequence and len(after.segments) < len(before.segments):
        raise _assertion(
            f"the playlist shrank at #EXT-X-MEDIA-SEQUENCE:{after.media_sequence} from "
            f"{len(before.segments)} to {len(after.segments)} segments between two fetches: "
            f"it lost its newest segments (it ended at segment {before.end_sequence - 1}, "
            f"then at {after.end_sequence - 1})"
        )
    if after.end_sequence < before.end_sequence:
        raise _assertion(
            f"the playlist lost its newest segments between two fetches: it ended at "
            f"segment {before.end_sequence - 1}, then at {after.end_sequence - 1} "
            f"(#EXT-X-MEDIA-SEQUENCE {after.media_sequence}, {len(after.segments)} segments)"
        )
    check_discontinuity_sequence(before, after)


def check_discontinuity_sequence(before: MediaPlaylist, after: MediaPlaylist) -> None:
    """#EXT-X-DISCONTINUITY-SEQUENCE must grow by the number of #EXT-X-DISCONTINUITY tags
    on the segments that left the playlist between two fetches (RFC 8216 §6.2.2), and
    otherwise stay: players number their timelines by it (hls.js's ``cc``)."""
    removed = after.media_sequence - before.media_sequence
    was, now = before.discontinuity_sequence, after.discontinuity_sequence
    if removed > len(before.segments):
        # the window moved past everything we saw: we cannot count, only the direction
        if now < was:
            raise _assertion(
                f"#EXT-X-DISCONTINUITY-SEQUENCE went back from {was} to {now} between two "
                "fetches of the playlist"
            )
        return
    tags = sum(1 for segment in before.segments[:removed] if segment.discontinuity)
    # some packagers drop the tag as soon as it heads the window (a discontinuity before
    # the first segment means nothing) and count it then: one more tag, and as valid
    ahead = (
        removed < len(before.segments)
        and before.segments[removed].discontinuity
        and bool(after.segments)
        and not after.segments[0].discontinuity
    )
    if now != was + tags and not (ahead and now == was + tags + 1):
        raise _assertion(
            f"#EXT-X-DISCONTINUITY-SEQUENCE went from {was} to {now} between two fetches, "
            f"but the {removed} segment(s) that left the playlist carried {tags} "
            f"#EXT-X-DISCONTINUITY tag(s): expected {was + tags}"
        )


def newest_age(media: MediaPlaylist, now: datetime) -> float | None:
    """Seconds since the newest segment began, by ``#EXT-X-PROGRAM-DATE-TIME`` (None
    without one); a date more than ``FUTURE_SLACK`` ahead of ``now`` is refused: the
    encoder's clock is wrong, and players that sync by it (captions, ads) go wrong too."""
    if not media.segments:
        return None
    when = media.segments[-1].program_date_time
    if when is None:
        return None
    age = (now - when).total_seconds()
    if -age > FUTURE_SLACK:
        raise _assertion(
            f"#EXT-X-PROGRAM-DATE-TIME puts the newest segment at {when.isoformat()}, "
            f"{-age:,.0f}s in the future (more than {FUTURE_SLACK:g}s ahead of our clock)"
        )
    return age


def _check_scheme(uri: str, what: str, playlist_url: str) -> None:
    if not uri[:8].lower().startswith(_SCHEMES):
        raise _assertion(f"{playlist_url}: {what} URI is not http(s): {clip(uri)}")


def _assertion(message: str) -> ProbeFailure:
    return ProbeFailure(Reason.SERVER_ASSERTION, message)


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:g}"
