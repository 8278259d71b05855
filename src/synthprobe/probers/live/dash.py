"""Reading a live DASH manifest (MPD) a server sent: hostile XML, bounded, strict.

The standard library's XML parser (expat, in C) parses; the bytes are capped before it
runs (``MAX_MPD_BYTES``, as a playlist) and any ``<!DOCTYPE`` or ``<!ENTITY`` is refused
first, so entity expansion ("billion laughs") and external entities never happen; an
MPD needs neither. ``mpegdash`` (PyPI) was not used: it parses with ``xml.dom.minidom``
(the same expat, with no such guard) and models no SegmentTimeline arithmetic.

What a live check needs of an MPD is reduced here to ``Mpd``: whether it is
``dynamic``, its ``publishTime``, and per Representation the URL of its initialization
segment and of its newest segment, from ``SegmentTemplate`` (``$Number$`` or ``$Time$``,
with ``SegmentTimeline`` or a fixed ``@duration`` counted from ``availabilityStartTime``)
or ``SegmentList``. Templates, BaseURLs and timescales inherit down Period >
AdaptationSet > Representation as ISO/IEC 23009-1 §5.3.9 says.

``parse_mpd``: whatever the bytes, an ``Mpd`` or ``NotAnMpd`` (the message says why).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin

from synthprobe.probers.live import Variant
from synthprobe.probers.live.playlist import MAX_PLAYLIST_BYTES, clip

MAX_MPD_BYTES = MAX_PLAYLIST_BYTES
"""Bytes of an MPD we read (or ``max_body``, if smaller): as a playlist."""
MAX_TIMELINE_ENTRIES = 100_000
"""``<S>`` elements of one SegmentTimeline; repeats (``@r``) are counted, not expanded."""
MAX_REPRESENTATIONS = 1_000
"""Representations in one MPD (real ladders have a dozen)."""
MAX_SEGMENT_URLS = 100_000
"""``<SegmentURL>`` elements of one SegmentList."""
DASH_TYPES = ("application/dash+xml", "video/vnd.mpeg.dash.mpd")
"""Content types that say MPD (the second is an older registration some servers send)."""

_NAME = re.compile(rb"(?:[A-Za-z_][\w.-]{0,40}:)?([A-Za-z_][\w.-]{0,40})")
_FORBIDDEN = (b"<!doctype", b"<!entity")
_INTEGER = re.compile(r"[0-9]{1,20}")
_SIGNED = re.compile(r"-?[0-9]{1,20}")
_DURATION = re.compile(
    r"P(?:([0-9]{1,6})Y)?(?:([0-9]{1,6})M)?(?:([0-9]{1,7})D)?"
    r"(?:T(?:([0-9]{1,9})H)?(?:([0-9]{1,10})M)?(?:([0-9]{1,12}(?:\.[0-9]{0,12})?)S)?)?"
)
_IDENTIFIER = re.compile(r"\$([^$]{0,40})\$")
_FORMAT = re.compile(r"(RepresentationID|Number|Time|Bandwidth)(?:%0?([0-9]{1,2})d)?")
_MAX_WIDTH = 20
_EARLIEST_YEAR, _LATEST_YEAR = 1900, 9000


class NotAnMpd(ValueError):
    """The bytes are not an MPD we can use (the message says why)."""


@dataclass(frozen=True, slots=True)
class DashSegment:
    """One segment of a Representation."""

    url: str
    """Absolute URL."""
    duration: float
    """Seconds."""
    position: int
    """Moves when the stream advances: its ``$Number$``, or ``$Time$`` in a attempt."""
    byterange: tuple[int, int] | None = None
    """(offset, length) of a SegmentList ``@mediaRange``."""
    ends_at: datetime | None = None
    """Wall-clock time its last frame ends (availabilityStartTime-based), when known."""


@dataclass(frozen=True, slots=True)
class Representation:
    """What a live check needs of one Representation."""

    id: str
    bandwidth: int
    width: int | None
    height: int | None
    video: bool
    """In a video AdaptationSet (or of a video mimeType)."""
    init: str | None
    """Absolute URL of its initialization segment, if it has one."""
    newest: DashSegment | None
    """Its newest available segment; None when none is available yet."""

    @property
    def label(self) -> str:
        """How an error names it: id, then resolution, else bandwidth."""
        size = f"{self.width}x{self.height}" if self.width and self.height else None
        if self.id:
            return clip(f"{self.id} ({size})" if size else self.id, 60)
        return size or f"BANDWIDTH={self.bandwidth}"

    @property
    def resolution(self) -> str | None:
        return f"{self.width}x{self.height}" if self.width and self.height else None


@dataclass(frozen=True, slots=True)
class Mpd:
    """A parsed MPD."""

    dynamic: bool
    """``type="dynamic"``: a live presentation (``static`` is on demand, or ended)."""
    publish_time: datetime | None
    availability_start: datetime | None
    minimum_update_period: float | None
    time_shift_buffer_depth: float | None
    representations: tuple[Representation, ...]

    def position(self, ids: tuple[str, ...]) -> tuple[object, tuple[int | None, ...]]:
        """Moves when the MPD moves on: (publishTime, the newest segment's position of
        each Representation in ``ids``, None where it has none or is gone)."""
        by_id = {r.id: r.newest for r in self.representations}
        newest = tuple(s.position if (s := by_id.get(i)) is not None else None for i in ids)
        return self.publish_time, newest

    def choose(self, which: Variant) -> tuple[Representation, ...]:
        """The Representations a probe follows (video ones for a single choice, when the
        MPD has any: a viewer picks a video rendition; ``all`` takes every one)."""
        reps = self.representations
        if which is Variant.ALL:
            return reps
        videos = tuple(r for r in reps if r.video) or reps
        if which is Variant.HIGHEST:
            return (max(videos, key=lambda r: r.bandwidth),)
        if which is Variant.LOWEST:
            return (min(videos, key=lambda r: r.bandwidth),)
        return videos[:1]


def looks_like_mpd(content_type: str | None, body: bytes) -> bool:
    """Whether a live URL served an MPD: by its content type, or a body that starts
    (after an XML declaration and comments) with an ``<MPD`` element."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind in DASH_TYPES or _first_element(body[:4096]) == b"MPD"


def _first_element(head: bytes) -> bytes | None:
    """The local name of the first element (or of a DOCTYPE, which an MPD may be sent
    with and is refused when parsed), past an XML declaration and comments."""
    rest = head.removeprefix(b"\xef\xbb\xbf")
    for _ in range(50):  # declarations and comments before the root: a few at most
        rest = rest.lstrip()
        if rest.startswith(b"<?"):
            end = rest.find(b"?>")
        elif rest.startswith(b"<!--"):
            end = rest.find(b"-->")
        elif rest.startswith(b"<!DOCTYPE"):
            found = _NAME.match(rest[9:].lstrip())
            return found.group(1) if found else None
        elif rest.startswith(b"<"):
            found = _NAME.match(rest[1:])
            return found.group(1) if found else None
        else:
            return None
        if end < 0:
            return None
        rest = rest[end + 2 :].removeprefix(b">")
    return None


def parse_mpd(body: bytes, url: str, now: datetime) -> Mpd:
    """Parse an MPD from ``url``; ``now`` places segments counted by the clock."""
    if len(body) > MAX_MPD_BYTES:
        raise NotAnMpd(f"MPD is larger than {MAX_MPD_BYTES:,} bytes")
    lowered = body.lower()
    for forbidden in _FORBIDDEN:
        if forbidden in lowered:
            tag = forbidden.decode().upper()
            raise NotAnMpd(f"MPD holds a {tag} declaration (refused: entity expansion)")
    try:
        root = ET.fromstring(body)
    except Exception as exc:  # ParseError, or a LookupError for an unknown encoding
        raise NotAnMpd(f"MPD is not well-formed XML: {clip(str(exc), 160)}") from None
    if _local(root.tag) != "MPD":
        raise NotAnMpd(f"not a DASH MPD (the root element is <{clip(_local(root.tag), 40)}>)")
    kind = root.get("type", "static").strip()
    if kind not in ("static", "dynamic"):
        raise NotAnMpd(f'MPD@type="{clip(kind, 40)}" is neither "static" nor "dynamic"')
    ast = _date(root, "availabilityStartTime")
    manifest = Mpd(
        dynamic=kind == "dynamic",
        publish_time=_date(root, "publishTime"),
        availability_start=ast,
        minimum_update_period=_duration(root, "minimumUpdatePeriod"),
        time_shift_buffer_depth=_duration(root, "timeShiftBufferDepth"),
        representations=(),
    )
    if not manifest.dynamic:
        return manifest  # ended (or on demand): nothing more is needed
    periods = _children(root, "Period")
    if not periods:
        raise NotAnMpd("MPD has no Period")
    # the live edge is in the last Period
    period = periods[-1]
    base = _base(root, url)
    base = _base(period, base)
    period_start = _duration(period, "start") or 0.0
    reps: list[Representation] = []
    for adaptation in _children(period, "AdaptationSet"):
        set_base = _base(adaptation, base)
        set_video = _is_video(adaptation)
        for element in _children(adaptation, "Representation"):
            if len(reps) >= MAX_REPRESENTATIONS:
                raise NotAnMpd(f"MPD has more than {MAX_REPRESENTATIONS:,} Representations")
            rep_base = _base(element, set_base)
            context = _Context(
                rep_id=element.get("id", "").strip(),
                bandwidth=_int(element, "bandwidth") or 0,
                base=rep_base,
                ast=ast,
                period_start=period_start,
                now=now,
            )
            init, newest = _segments(context, (period, adaptation, element))
            reps.append(
                Representation(
                    id=context.rep_id,
                    bandwidth=context.bandwidth,
                    width=_int(element, "width") or _int(adaptation, "width"),
                    height=_int(element, "height") or _int(adaptation, "height"),
                    video=set_video or _is_video(element),
                    init=init,
                    newest=newest,
                )
            )
    if not reps:
        raise NotAnMpd("the MPD's last Period has no Representation")
    return Mpd(
        dynamic=True,
        publish_time=manifest.publish_time,
        availability_start=ast,
        minimum_update_period=manifest.minimum_update_period,
        time_shift_buffer_depth=manifest.time_shift_buffer_depth,
        representations=tuple(reps),
    )


@dataclass(frozen=True, slots=True)
class _Context:
    rep_id: str
    bandwidth: int
    base: str
    ast: datetime | None
    period_start: float
    now: datetime


def _segments(
    ctx: _Context, levels: tuple[ET.Element, ...]
) -> tuple[str | None, DashSegment | None]:
    """(init URL, newest segment) of a Representation from the nearest SegmentTemplate
    or SegmentList up its hierarchy."""
    templates = [t for level in levels for t in _children(level, "SegmentTemplate")[:1]]
    if templates:
        return _from_template(ctx, templates)
    lists = [s for level in levels for s in _children(level, "SegmentList")[:1]]
    if lists:
        return _from_list(ctx, lists)
    where = f"Representation {clip(ctx.rep_id, 40)!r}" if ctx.rep_id else "a Representation"
    raise NotAnMpd(
        f"{where} has neither a SegmentTemplate nor a SegmentList (a live MPD needs one)"
    )


def _inherited(elements: list[ET.Element], name: str) -> str | None:
    """An attribute from the nearest level that sets it (the Representation's first)."""
    for element in reversed(elements):
        value = element.get(name)
        if value is not None:
            return value
    return None


def _from_template(
    ctx: _Context, templates: list[ET.Element]
) -> tuple[str | None, DashSegment | None]:
    timescale = _positive(_inherited(templates, "timescale"), "SegmentTemplate@timescale", 1)
    start_number = _whole(_inherited(templates, "startNumber"), "SegmentTemplate@startNumber", 1)
    offset = _whole(
        _inherited(templates, "presentationTimeOffset"),
        "SegmentTemplate@presentationTimeOffset",
        0,
    )
    media = _inherited(templates, "media")
    if not media:
        raise NotAnMpd("SegmentTemplate has no @media")
    initialization = _inherited(templates, "initialization")
    init = None
    if initialization:
        init = urljoin(ctx.base, _fill(initialization, ctx, None, None))
    attempt = None
    for template in reversed(templates):
        found = _children(template, "SegmentTimeline")
        if found:
            attempt = found[0]
            break
    if attempt is not None:
        newest = _timeline_newest(ctx, attempt, timescale, start_number, offset)
        if newest is None:
            return init, None
        number, time, duration = newest
        ends = _wall(ctx, (time + duration - offset) / timescale)
        position = time if "$Time" in media else number
        url = urljoin(ctx.base, _fill(media, ctx, number, time))
        return init, DashSegment(url, duration / timescale, position, None, ends)
    if "$Time" in media:
        raise NotAnMpd("SegmentTemplate uses $Time$ without a SegmentTimeline")
    duration = _positive(_inherited(templates, "duration"), "SegmentTemplate@duration", None)
    if ctx.ast is None:
        raise NotAnMpd("a dynamic MPD with SegmentTemplate@duration needs an availabilityStartTime")
    seconds = duration / timescale
    elapsed = (ctx.now - ctx.ast).total_seconds() - ctx.period_start
    # the newest segment whose end has passed is the newest a player may fetch
    index = math.floor(elapsed / seconds) - 1
    if index < 0:
        return init, None
    number = start_number + index
    time = offset + index * duration
    ends = _wall(ctx, (index + 1) * seconds)
    url = urljoin(ctx.base, _fill(media, ctx, number, time))
    return init, DashSegment(url, seconds, number, None, ends)


def _timeline_newest(
    ctx: _Context, attempt: ET.Element, timescale: int, start_number: int, offset: int
) -> tuple[int, int, int] | None:
    """(number, time, duration) of the last segment a SegmentTimeline lists, counting
    repeats arithmetically (an ``@r`` of 10^18 costs nothing)."""
    entries = _children(attempt, "S")
    if len(entries) > MAX_TIMELINE_ENTRIES:
        raise NotAnMpd(
            f"SegmentTimeline has {len(entries):,} <S> elements, more than the cap of "
            f"{MAX_TIMELINE_ENTRIES:,}"
        )
    number = start_number - 1
    cursor: int | None = None
    last: tuple[int, int, int] | None = None
    for index, entry in enumerate(entries):
        t_text = entry.get("t")
        t = _whole(t_text, "S@t", 0) if t_text is not None else (cursor or 0)
        d = _positive(entry.get("d"), "S@d", None)
        r = _signed(entry.get("r"), "S@r", 0)
        if r >= 0:
            count = r + 1
        else:  # -1: repeat until the next S's time, or until now
            following = entries[index + 1].get("t") if index + 1 < len(entries) else None
            if following is not None:
                count = max(1, math.ceil((_whole(following, "S@t", 0) - t) / d))
            elif ctx.ast is not None:
                now_media = (
                    (ctx.now - ctx.ast).total_seconds() - ctx.period_start
                ) * timescale + offset
                count = max(1, math.floor((now_media - t) / d))
            else:
                count = 1
        number += count
        last = (number, t + (count - 1) * d, d)
        cursor = t + count * d
    return last


def _from_list(ctx: _Context, lists: list[ET.Element]) -> tuple[str | None, DashSegment | None]:
    timescale = _positive(_inherited(lists, "timescale"), "SegmentList@timescale", 1)
    start_number = _whole(_inherited(lists, "startNumber"), "SegmentList@startNumber", 1)
    duration = _positive(_inherited(lists, "duration"), "SegmentList@duration", 1)
    init = None
    for element in reversed(lists):
        found = _children(element, "Initialization")
        if found and found[0].get("sourceURL"):
            init = urljoin(ctx.base, found[0].get("sourceURL", ""))
            break
    urls: list[ET.Element] = []
    for element in reversed(lists):
        urls = _children(element, "SegmentURL")
        if urls:
            break
    if len(urls) > MAX_SEGMENT_URLS:
        raise NotAnMpd(
            f"SegmentList has {len(urls):,} SegmentURLs, more than the cap of {MAX_SEGMENT_URLS:,}"
        )
    if not urls:
        return init, None
    newest = urls[-1]
    target = urljoin(ctx.base, newest.get("media") or "")
    byterange = _range(newest.get("mediaRange"))
    return init, DashSegment(
        target, duration / timescale, start_number + len(urls) - 1, byterange, None
    )


def _fill(template: str, ctx: _Context, number: int | None, time: int | None) -> str:
    """A SegmentTemplate URL with its identifiers replaced (§5.3.9.4.4)."""

    def replace(m: re.Match[str]) -> str:
        inner = m.group(1)
        if inner == "":
            return "$"
        found = _FORMAT.fullmatch(inner)
        if found is None:
            raise NotAnMpd(f"SegmentTemplate {clip(template, 80)!r} has an unknown ${inner}$")
        name, width = found.group(1), found.group(2)
        if name == "RepresentationID":
            if width is not None:
                raise NotAnMpd("$RepresentationID$ takes no format")
            return ctx.rep_id
        value = {"Number": number, "Time": time, "Bandwidth": ctx.bandwidth}[name]
        if value is None:
            raise NotAnMpd(f"SegmentTemplate@initialization uses ${name}$")
        digits = min(int(width or 1), _MAX_WIDTH)
        return f"{value:0{digits}d}"

    return _IDENTIFIER.sub(replace, template)


def _wall(ctx: _Context, media_seconds: float) -> datetime | None:
    """The wall-clock time of a point ``media_seconds`` into the Period, if it has one."""
    if ctx.ast is None:
        return None
    try:
        return ctx.ast + timedelta(seconds=ctx.period_start + media_seconds)
    except (OverflowError, ValueError):  # a time of 10^19 seconds is no time
        return None


def _local(tag: object) -> str:
    text = tag if isinstance(tag, str) else ""  # a comment or processing instruction
    return text.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _base(element: ET.Element, base: str) -> str:
    found = _children(element, "BaseURL")
    text = (found[0].text or "").strip() if found else ""
    if not text:
        return base
    try:
        return urljoin(base, text)
    except ValueError as exc:  # "Invalid IPv6 URL"
        raise NotAnMpd(f"BaseURL {clip(text, 80)!r} is not a URL ({exc})") from None


def _is_video(element: ET.Element) -> bool:
    kind = (element.get("contentType") or "").strip().lower()
    mime = (element.get("mimeType") or "").strip().lower()
    return kind == "video" or mime.startswith("video/")


def _int(element: ET.Element, name: str) -> int | None:
    value = element.get(name)
    if value is None:
        return None
    return _whole(value, f"@{name}", None)


def _whole(value: str | None, what: str, default: int | None) -> int:
    if value is None:
        if default is None:
            raise NotAnMpd(f"{what} is missing")
        return default
    text = value.strip()
    if not _INTEGER.fullmatch(text):
        raise NotAnMpd(f'{what}="{clip(text, 40)}" is not a whole number 0 or more')
    return int(text)


def _signed(value: str | None, what: str, default: int) -> int:
    if value is None:
        return default
    text = value.strip()
    if not _SIGNED.fullmatch(text) or int(text) < -1:
        raise NotAnMpd(f'{what}="{clip(text, 40)}" is not a whole number -1 or more')
    return int(text)


def _positive(value: str | None, what: str, default: int | None) -> int:
    number = _whole(value, what, default)
    if number <= 0:
        raise NotAnMpd(f'{what}="{number}" is not a positive whole number')
    return number


def _range(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    m = re.fullmatch(r"\s*([0-9]{1,20})-([0-9]{1,20})\s*", value)
    if m is None or int(m.group(2)) < int(m.group(1)):
        raise NotAnMpd(f'SegmentURL@mediaRange="{clip(value, 40)}" is not FIRST-LAST bytes')
    first, last = int(m.group(1)), int(m.group(2))
    return first, last - first + 1


def _duration(element: ET.Element, name: str) -> float | None:
    """An xs:duration attribute in seconds (a month is 30 days, a year 365)."""
    value = element.get(name)
    if value is None:
        return None
    text = value.strip()
    m = _DURATION.fullmatch(text)
    if m is None or text in ("P", "PT") or text.endswith("T"):
        raise NotAnMpd(f'@{name}="{clip(text, 40)}" is not a duration (like PT2S)')
    years, months, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
    return ((years * 365 + months * 30 + days) * 24 + hours) * 3600 + minutes * 60 + seconds


def _date(element: ET.Element, name: str) -> datetime | None:
    value = element.get(name)
    if value is None:
        return None
    text = value.strip()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise NotAnMpd(f'@{name}="{clip(text, 40)}" is not an ISO 8601 date and time') from None
    if not _EARLIEST_YEAR <= when.year <= _LATEST_YEAR:
        raise NotAnMpd(
            f'@{name}="{clip(text, 40)}" is not between the years {_EARLIEST_YEAR} and '
            f"{_LATEST_YEAR}"
        )
    # xs:dateTime without a zone: DASH clocks are UTC
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
