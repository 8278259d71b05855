"""HLS and DASH as the follow loop (``follow.py``) sees them: each a ``Manifest``.

``HlsMedia`` is one media playlist, reloaded on its own (under ``variant: all`` each
variant's playlist is); ``DashView`` is an MPD seen through the Representations a probe
chose (one while following a Representation, every chosen one for the MPD's reload).
Parsing and its bounds are in ``playlist.py`` and ``dash.py``, a playlist's rules in
``integrity.py``; what is left here is how each format answers the loop's questions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from synthprobe.classify import ProbeFailure
from synthprobe.models import Reason
from synthprobe.probers.live import integrity
from synthprobe.probers.live.dash import Mpd, NotAnMpd, Representation, parse_mpd
from synthprobe.probers.live.follow import Piece
from synthprobe.probers.live.playlist import (
    MediaPlaylist,
    NotAPlaylist,
    Variants,
    check_size,
    parse_playlist,
)


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


def read_mpd(body: bytes, url: str, now: datetime) -> Mpd:
    """The MPD a server sent from ``url``; whatever the bytes, an ``Mpd`` or
    ``ProbeFailure`` (``server.assertion``, naming ``url``)."""
    try:
        return parse_mpd(body, url, now)
    except NotAnMpd as exc:
        raise ProbeFailure(Reason.SERVER_ASSERTION, f"{url}: {exc}") from None


def check_live(media: MediaPlaylist, what: str) -> None:
    if media.ended:
        raise ProbeFailure(
            Reason.SERVER_LIVE_ENDED,
            f"{what} has ended (#EXT-X-ENDLIST) at media sequence {media.media_sequence}",
        )
    if not media.segments:
        raise ProbeFailure(Reason.SERVER_LIVE_STALLED, f"{what} has no segments")


def check_dynamic(mpd: Mpd, what: str) -> None:
    if not mpd.dynamic:
        raise ProbeFailure(
            Reason.SERVER_LIVE_ENDED,
            f'{what} is type="static": the live presentation has ended (or is on demand)',
        )


@dataclass(frozen=True, slots=True)
class HlsMedia:
    """One media playlist as a ``Manifest``."""

    media: MediaPlaylist

    @property
    def name(self) -> str:
        return "playlist"

    def reader(self) -> Callable[[bytes, str], HlsMedia]:
        return _reread_playlist

    def check_newest(self) -> None:
        check_live(self.media, "playlist")

    def details(self) -> dict[str, Any]:
        media = self.media
        return {
            "media_sequence": media.media_sequence,
            "target_duration": media.target_duration,
            "segments": len(media.segments),
        }

    def newest(self, count: int) -> tuple[Piece, ...]:
        return tuple(
            Piece(s.uri, s.duration, s.byterange, check=not s.encrypted)
            for s in self.media.segments[-count:]
        )

    def newest_age(self, now: datetime) -> float | None:
        return integrity.newest_age(self.media, now)

    @property
    def refresh(self) -> float:
        target = self.media.target_duration
        assert target is not None  # integrity.check_playlist refuses a playlist without
        return target

    @property
    def position(self) -> object:
        return self.media.position

    def check_reload(self, before: HlsMedia) -> None:
        integrity.check_sequence(before.media, self.media)
        check_live(self.media, "playlist refetch")

    def advanced_by(self, before: HlsMedia) -> int | None:
        # segments added since the first fetch (the sequence only moves once the window
        # is full, so count by the index just past the newest segment)
        return self.media.end_sequence - before.media.end_sequence

    def stalled(self, waited: float) -> str:
        return f"media sequence {self.media.media_sequence} did not advance in {waited:g}s"


def _reread_playlist(body: bytes, url: str) -> HlsMedia:
    reloaded = read_playlist(body, url)
    if isinstance(reloaded, Variants):
        raise ProbeFailure(Reason.SERVER_ASSERTION, "playlist became a master")
    return HlsMedia(reloaded)


@dataclass(frozen=True, slots=True)
class DashView:
    """An MPD as a ``Manifest``, through the Representations ``chosen`` (segments are
    those of the first; the MPD moves on when any of them, or publishTime, does)."""

    mpd: Mpd
    chosen: tuple[Representation, ...]

    @property
    def name(self) -> str:
        return "MPD"

    def reader(self) -> Callable[[bytes, str], DashView]:
        # the segments available depend on the time: the time of this fetch
        mpd = partial(read_mpd, now=datetime.now(UTC))
        return lambda body, url: DashView(mpd(body, url), self.chosen)

    def check_newest(self) -> None:
        rep = self.chosen[0]
        if rep.newest is None:
            raise ProbeFailure(
                Reason.SERVER_LIVE_STALLED,
                f"Representation {rep.label} has no segment available yet",
            )

    def details(self) -> dict[str, Any]:
        newest = self.chosen[0].newest
        return {} if newest is None else {"segment_number": newest.position}

    def newest(self, count: int) -> tuple[Piece, ...]:
        """The initialization segment (fetched, never timed) and the newest segment: a
        DASH player starts at the live edge, with one segment, whatever ``count``."""
        rep = self.chosen[0]
        init = () if rep.init is None else (Piece(rep.init, 0.0, what="init segment", timed=False),)
        newest = rep.newest
        assert newest is not None  # check_newest
        return (*init, Piece(newest.url, newest.duration, newest.byterange))

    def newest_age(self, now: datetime) -> float | None:
        ends_at = None if self.chosen[0].newest is None else self.chosen[0].newest.ends_at
        return None if ends_at is None else (now - ends_at).total_seconds()

    @property
    def refresh(self) -> float:
        """One segment duration (at least 0.1 s, at most a target duration's cap)."""
        duration = max((r.newest.duration for r in self.chosen if r.newest), default=1.0)
        return min(max(duration, 0.1), float(integrity.MAX_TARGET_DURATION))

    @property
    def position(self) -> tuple[object, tuple[int | None, ...]]:
        return self.mpd.position(tuple(r.id for r in self.chosen))

    def check_reload(self, before: DashView) -> None:
        check_dynamic(self.mpd, "MPD refetch")
        moved = self._moved(before)
        if moved and all(n < 0 for n in moved):
            raise ProbeFailure(
                Reason.SERVER_ASSERTION,
                f"the MPD's newest segment went back from {before.position[1]} to "
                f"{self.position[1]} between two fetches",
            )

    def advanced_by(self, before: DashView) -> int | None:
        moved = self._moved(before)
        return max(moved) if moved else None

    def stalled(self, waited: float) -> str:
        newest = ", ".join(str(p) for p in self.position[1])
        published = self.mpd.publish_time.isoformat() if self.mpd.publish_time else "none"
        return (
            f"MPD did not move on in {waited:g}s (newest segment {newest}, publishTime {published})"
        )

    def _moved(self, before: DashView) -> list[int]:
        """How far each chosen Representation's newest segment moved (where both
        fetches number it)."""
        return [
            a - b
            for a, b in zip(self.position[1], before.position[1], strict=True)
            if a is not None and b is not None
        ]
