"""Reading an HLS playlist a server sent: bounded in cost, strict about the values we use.

The ``m3u8`` package parses (it accepts any text, so ``#EXTM3U`` is checked first), but
it costs about 15 µs a line in pure Python and calls ``int()``, ``float()`` and
``datetime.fromisoformat`` on whatever a tag holds. So, before it runs, the size is
capped (``MAX_LINES``, ``MAX_SEGMENTS``; the prober caps the bytes it reads at
``MAX_PLAYLIST_BYTES``), and, while it runs, every tag whose value we use is checked
against RFC 8216's grammar through m3u8's ``custom_tags_parser`` hook: the same lines,
split the same way, so a value m3u8 would choke on is refused first with a message
naming the tag and the value.

``check_size`` then ``parse_playlist``: whatever the text, a playlist or ``NotAPlaylist``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import m3u8

from synthprobe.probers.live import Variant

MAX_PLAYLIST_BYTES = 4 * 1024 * 1024
"""Bytes of a playlist we read (or ``max_body``, if smaller). A 20,000-segment playlist
with a ``PROGRAM-DATE-TIME`` on every segment is about 1.7 MB."""
MAX_LINES = 100_000
"""Lines m3u8 may parse: five per segment at ``MAX_SEGMENTS``. 100,000 lines of any kind
cost m3u8 well under a second."""
MAX_SEGMENTS = 20_000
"""Segments (``#EXTINF``) in one playlist: eleven hours of 2 s segments, more than any
live window or DVR playlist we know of. m3u8 builds an object per segment."""
_MAX_DIGITS = 20
"""Digits of an integer tag: 2^64 - 1, RFC 8216's decimal-integer maximum, has 20."""

_INTEGER = re.compile(rf"[0-9]{{1,{_MAX_DIGITS}}}")
_SIGNED = re.compile(rf"[+-]?[0-9]{{1,{_MAX_DIGITS}}}")
# RFC 8216 decimal-floating-point; at most 9 digits before the point (31 years)
_DURATION = re.compile(r"(?:[0-9]{1,9}(?:\.[0-9]*)?|\.[0-9]+)")
_BYTERANGE = re.compile(rf"([0-9]{{1,{_MAX_DIGITS}}})(?:@([0-9]{{1,{_MAX_DIGITS}}}))?")
# Python refuses int() of longer digit strings with an unhelpful message
_HUGE_NUMBER = re.compile(r"[0-9]{4300,}")
_EARLIEST_YEAR, _LATEST_YEAR = 1900, 9000
"""PROGRAM-DATE-TIME years we accept: m3u8 adds segment durations to the date, and a
date near year 1 or 9999 would overflow."""


class NotAPlaylist(ValueError):
    """The text is not an HLS playlist we can use (the message says why)."""


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
    encrypted: bool = False
    """Encrypted whole (#EXT-X-KEY METHOD=AES-128): its bytes cannot look like media."""


@dataclass(frozen=True, slots=True)
class MediaPlaylist:
    """What a live check needs of a media playlist."""

    target_duration: float | None
    """Seconds (#EXT-X-TARGETDURATION); None when the playlist has no such tag."""
    media_sequence: int
    segments: tuple[Segment, ...]
    ended: bool
    discontinuity_sequence: int = 0
    """#EXT-X-DISCONTINUITY-SEQUENCE (0 without the tag)."""

    @property
    def end_sequence(self) -> int:
        """Media sequence number just past the newest segment."""
        return self.media_sequence + len(self.segments)

    @property
    def position(self) -> tuple[int, str | None]:
        """Moves when the stream advances: (media sequence, newest segment URI)."""
        return self.media_sequence, self.segments[-1].uri if self.segments else None


@dataclass(frozen=True, slots=True)
class Stream:
    """One variant of a master playlist (#EXT-X-STREAM-INF)."""

    bandwidth: int
    uri: str
    """Absolute URI of its media playlist."""
    resolution: str | None = None
    """``RESOLUTION`` as written (``1280x720``)."""
    name: str | None = None
    """``NAME``, which some packagers add to #EXT-X-STREAM-INF."""

    @property
    def label(self) -> str:
        """How an error names the variant: NAME, else RESOLUTION, else BANDWIDTH."""
        if self.name:
            return clip(self.name, 60)
        if self.resolution:
            return clip(self.resolution, 60)
        return f"BANDWIDTH={self.bandwidth}"


@dataclass(frozen=True, slots=True)
class Variants:
    """A master playlist: its variants, in playlist order."""

    streams: tuple[Stream, ...]

    def choose(self, which: Variant) -> tuple[Stream, ...]:
        """The variants a probe follows: every one for ``all``, else one."""
        if which is Variant.ALL:
            return self.streams
        if which is Variant.HIGHEST:
            return (max(self.streams, key=lambda s: s.bandwidth),)
        if which is Variant.LOWEST:
            return (min(self.streams, key=lambda s: s.bandwidth),)
        return self.streams[:1]

    def pick(self, which: Variant) -> str:
        """The URI of the (first) variant ``which`` chooses."""
        return self.choose(which)[0].uri


def check_size(text: str) -> None:
    """Refuse a playlist over ``MAX_LINES`` or ``MAX_SEGMENTS``: run before m3u8, whose
    cost the caps bound."""
    lines = len(text.splitlines())
    if lines > MAX_LINES:
        raise NotAPlaylist(f"playlist has {lines:,} lines, more than the cap of {MAX_LINES:,}")
    segments = text.count("#EXTINF")
    if segments > MAX_SEGMENTS:
        raise NotAPlaylist(
            f"playlist has {segments:,} segments, more than the cap of {MAX_SEGMENTS:,}"
        )


def parse_playlist(text: str, uri: str) -> MediaPlaylist | Variants:
    """Parse a master or media playlist; raise NotAPlaylist for anything else."""
    if not text.lstrip("\ufeff").startswith("#EXTM3U"):
        raise NotAPlaylist("not an HLS playlist (no #EXTM3U)")
    reached = _Reached()
    try:
        parsed = m3u8.loads(text, uri=uri, custom_tags_parser=reached.check)
    except NotAPlaylist:
        raise
    except Exception as exc:  # m3u8 raises bare ValueError/TypeError/... on junk
        where = reached.where() if _raised_while_parsing(exc) else ""
        raise NotAPlaylist(f"unparseable HLS playlist{where}: {_short(exc)}") from None
    if parsed.is_variant:
        raw = parsed.data.get("playlists") or []
        streams = tuple(
            Stream(
                int(v.stream_info.bandwidth or 0),
                _absolute(v, "variant"),
                _attribute(raw, n, "resolution"),
                _attribute(raw, n, "name"),
            )
            for n, v in enumerate(parsed.playlists)
        )
        if not streams:
            raise NotAPlaylist("master playlist lists no variant")
        return Variants(streams)
    segments: list[Segment] = []
    next_offset: dict[str, int] = {}
    for seg in parsed.segments:
        if seg.uri is None:
            # a last #EXTINF whose URI line is not written yet: players skip it too
            continue
        absolute = _absolute(seg, "segment")
        byterange = None
        if seg.byterange:
            length, offset = _byterange(str(seg.byterange).strip())
            # no offset: the range starts where the previous one of this URI ended
            start = offset if offset is not None else next_offset.get(absolute, 0)
            next_offset[absolute] = start + length
            byterange = (start, length)
        segments.append(
            Segment(
                uri=absolute,
                duration=float(seg.duration or 0.0),
                byterange=byterange,
                program_date_time=_utc(seg.current_program_date_time),
                discontinuity=bool(seg.discontinuity),
                encrypted=_encrypted(seg),
            )
        )
    return MediaPlaylist(
        target_duration=None if parsed.target_duration is None else float(parsed.target_duration),
        media_sequence=int(parsed.media_sequence or 0),
        segments=tuple(segments),
        ended=bool(parsed.is_endlist),
        discontinuity_sequence=int(parsed.discontinuity_sequence or 0),
    )


def _attribute(raw: list[Any], index: int, key: str) -> str | None:
    """An #EXT-X-STREAM-INF attribute as written (quotes removed), from m3u8's raw data."""
    try:
        value = raw[index]["stream_info"].get(key)
    except (IndexError, KeyError, TypeError, AttributeError):
        return None
    if value is None:
        return None
    text = str(value).strip().strip('"')
    return text or None


def _encrypted(seg: Any) -> bool:
    method = getattr(getattr(seg, "key", None), "method", None)
    return isinstance(method, str) and method.strip().upper() == "AES-128"


class _Reached:
    """m3u8's ``custom_tags_parser``: sees every tag line first (stripped, as m3u8 does)
    and refuses a value of a tag we use that m3u8 would turn into a bare exception."""

    def __init__(self) -> None:
        self.line = ""
        self.lineno = 0

    def check(self, line: str, lineno: int, data: Any, state: Any) -> bool:
        self.line, self.lineno = line, lineno
        if _HUGE_NUMBER.search(line):
            raise NotAPlaylist(f"line {lineno} holds a number of more than 4,300 digits")
        # the prefixes m3u8 tests with startswith, in the order that matters
        if line.startswith("#EXT-X-BYTERANGE"):
            _byterange(_value(line, "#EXT-X-BYTERANGE").strip())
        elif line.startswith(("#EXT-X-TARGETDURATION", "#EXT-X-BITRATE")):
            tag = line.split(":", 1)[0]
            _match(_SIGNED, line, tag, "a whole number")
        elif line.startswith(("#EXT-X-MEDIA-SEQUENCE", "#EXT-X-DISCONTINUITY-SEQUENCE")):
            tag = line.split(":", 1)[0]
            _match(_INTEGER, line, tag, "a whole number 0 or more")
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME"):
            _date_time(_value(line, "#EXT-X-PROGRAM-DATE-TIME"))  # m3u8 does not strip
        elif line.startswith("#EXTINF"):
            duration = _value(line, "#EXTINF").split(",", 1)[0].strip()
            if not _DURATION.fullmatch(duration):
                raise NotAPlaylist(
                    f"#EXTINF:{clip(duration)} is not a duration in seconds (like 6.006)"
                )
        return False  # m3u8 parses the line as usual

    def where(self) -> str:
        if not self.lineno:
            return ""
        return f" near line {self.lineno} ({clip(self.line)})"


def _raised_while_parsing(exc: Exception) -> bool:
    """Whether m3u8 raised while reading lines (the last tag line we saw is the culprit),
    not while building its objects afterwards (a key without METHOD)."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is m3u8.parser.parse.__code__:
            return True
        tb = tb.tb_next
    return False


def _value(line: str, tag: str) -> str:
    if not line.startswith(tag + ":"):
        raise NotAPlaylist(f"{clip(line)} is not {tag}:VALUE")
    return line[len(tag) + 1 :]


def _match(pattern: re.Pattern[str], line: str, tag: str, what: str) -> None:
    value = _value(line, tag).strip()  # m3u8 strips these before int()
    if not pattern.fullmatch(value):
        raise NotAPlaylist(f"{tag}:{clip(value)} is not {what}")


def _byterange(value: str) -> tuple[int, int | None]:
    """(length, offset or None) of an #EXT-X-BYTERANGE value."""
    m = _BYTERANGE.fullmatch(value)
    if m is None or int(m.group(1)) == 0:
        raise NotAPlaylist(
            f"#EXT-X-BYTERANGE:{clip(value)} is not LENGTH[@OFFSET] in bytes (length 1 or more)"
        )
    return int(m.group(1)), None if m.group(2) is None else int(m.group(2))


def _date_time(value: str) -> None:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise NotAPlaylist(
            f"#EXT-X-PROGRAM-DATE-TIME:{clip(value)} is not an ISO 8601 date and time"
        ) from None
    if not _EARLIEST_YEAR <= when.year <= _LATEST_YEAR:
        raise NotAPlaylist(
            f"#EXT-X-PROGRAM-DATE-TIME:{clip(value)} is not between the years "
            f"{_EARLIEST_YEAR} and {_LATEST_YEAR}"
        )


def _absolute(item: Any, what: str) -> str:
    try:
        return str(item.absolute_uri)
    except ValueError as exc:  # urljoin on "http://[x": "Invalid IPv6 URL"
        raise NotAPlaylist(f"{what} URI {clip(str(item.uri))} is not a URL ({exc})") from None


def _utc(when: datetime | None) -> datetime | None:
    # a date without a time zone is taken as local time, as m3u8 and players do
    return None if when is None else when.astimezone(UTC)


def clip(text: str, limit: int = 120) -> str:
    """``text``, cut to ``limit`` characters for a message."""
    return text if len(text) <= limit else text[:limit] + "..."


def _short(exc: Exception) -> str:
    return clip(f"{type(exc).__name__}: {exc}", 200)
