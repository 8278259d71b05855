"""``live`` probes: an HLS or DASH stream must be served, watchable and moving.

A live playlist that answers 200 can still be dead: the encoder stopped and the
playlist is frozen (``server.live_stalled``), or the event is over and the playlist
says ``#EXT-X-ENDLIST`` (an MPD ``type="static"``): ``server.live_ended``. It can also
be up and unwatchable, which is what viewers report: one rendition is broken (``variant:
all`` checks every one), segments arrive slower than they play (``server.live_slow``),
or the CDN serves an HTML page with 200 instead of video (``server.assertion``).

We fetch the playlist (following a master playlist to its variant(s)), download the
newest segment(s), and, with ``check_advancing``, fetch the playlist again one target
duration later. An MPD is probed the same way (``dash.py``).

Parsing and its bounds are in ``playlist.py`` and ``dash.py``; what a playlist must hold
to (also across reloads) is in ``integrity.py``; what media looks like in ``media.py``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from synthprobe.classify import ProbeFailure, classify_exception
from synthprobe.expect import Segments, judge
from synthprobe.models import Failure, ProbeSpec, Reason
from synthprobe.probers.attempt import Attempt
from synthprobe.probers.base import DaemonThreads, Network, ProbeOutcome
from synthprobe.probers.exchange import Exchange, Request, fetch
from synthprobe.probers.live import REFRESH, VARIANTS, LiveSpec, Variant, integrity
from synthprobe.probers.live.dash import (
    DashSegment,
    Manifest,
    NotAnMpd,
    Representation,
    looks_like_mpd,
    parse_mpd,
)
from synthprobe.probers.live.media import check_media
from synthprobe.probers.live.playlist import (
    MAX_PLAYLIST_BYTES,
    MediaPlaylist,
    NotAPlaylist,
    Stream,
    Variants,
    check_size,
    parse_playlist,
)
from synthprobe.steps import KindStep
from synthprobe.units import format_size

T = TypeVar("T")
_ROW_FIGURES = ("realtime", "segment_ms")
"""Figures a failed variant's ``details.variants`` row keeps from its failure."""

PARSE_THREADS = DaemonThreads(2)
"""Where playlists and MPDs are parsed: m3u8 is pure Python (up to about a second for a
playlist at the caps), and on the event loop it would hold every other probe's timing,
the deadline and SIGTERM. Daemon threads: a parse the deadline abandoned never delays
exit."""
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


def read_mpd(body: bytes, url: str, now: datetime) -> Manifest:
    """The MPD a server sent from ``url``; whatever the bytes, a ``Manifest`` or
    ``ProbeFailure`` (``server.assertion``, naming ``url``)."""
    try:
        return parse_mpd(body, url, now)
    except NotAnMpd as exc:
        raise ProbeFailure(Reason.SERVER_ASSERTION, f"{url}: {exc}") from None


@dataclass(slots=True)
class _Track:
    """What following one variant (or Representation) found."""

    details: dict[str, Any] = field(default_factory=dict)
    bytes_in: int = 0
    segment_bytes: int = 0
    segment_s: float = 0.0
    worst: float | None = None
    """Worst download time / duration of its segments."""

    def record(self, took: float, size: int, duration: float) -> None:
        self.segment_s += took
        self.segment_bytes += size
        if duration > 0:
            ratio = took / duration
            self.worst = ratio if self.worst is None else max(self.worst, ratio)

    def figures(self) -> dict[str, Any]:
        """segment_bytes, segment_ms, segment_mbps and realtime, as the record has them."""
        out: dict[str, Any] = {
            "segment_bytes": self.segment_bytes,
            "segment_ms": round(self.segment_s * 1000, 3),
        }
        if self.segment_s > 0:
            out["segment_mbps"] = round(self.segment_bytes * 8 / self.segment_s / 1e6, 3)
        if self.worst is not None:
            out["realtime"] = round(self.worst, 3)
        return out


class LiveProber:
    """Playlist or MPD, newest segment(s) of each variant followed, and (optionally)
    proof that the stream moves."""

    def prepare(self, spec: ProbeSpec[LiveSpec]) -> None:
        """Nothing to build."""

    async def probe(
        self, spec: ProbeSpec[LiveSpec], attempt: Attempt, net: Network
    ) -> ProbeOutcome:
        live = spec.options
        # known on every result, failed ones too (the runner records attempt.details);
        # the URL's guess until the body says
        path = httpx.URL(spec.url).path if spec.url.startswith("http") else spec.url
        attempt.details["format"] = "dash" if path.lower().endswith(".mpd") else "hls"
        first = await self._get(spec, spec.url, attempt, net, playlist=True)
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
        if dash:
            details, bytes_in = await self._dash(spec, live, first, url, attempt, net)
        else:
            details, bytes_in = await self._hls(spec, live, first, url, attempt, net)
        attempt.details.update({"truncated": first.observation.truncated, **details})
        return ProbeOutcome(playlist, bytes_in=bytes_in, bytes_out=0)

    # --- HLS ---

    async def _hls(
        self,
        spec: ProbeSpec,
        live: LiveSpec,
        first: Exchange,
        url: str,
        attempt: Attempt,
        net: Network,
    ) -> tuple[dict[str, Any], int]:
        playlist = await self._read(spec, first, url)
        bytes_in = first.bytes_in
        if isinstance(playlist, MediaPlaylist):
            track = await self._follow_hls(spec, live, url, playlist, attempt, net)
            return track.details, bytes_in + track.bytes_in
        if live.variant is not Variant.ALL:
            [stream] = playlist.choose(live.variant)
            details: dict[str, Any] = {
                "variant_url": stream.uri,
                "variants": len(playlist.streams),
            }
            track = await self._follow_hls(spec, live, stream.uri, None, attempt, net)
            return {**details, **track.details}, bytes_in + track.bytes_in

        def follow(stream: Stream, clock: Attempt) -> Awaitable[_Track]:
            return self._follow_hls(spec, live, stream.uri, None, clock, net)

        entries = [
            _entry(s.uri, s.bandwidth, s.resolution, s.name, s.label) for s in playlist.streams
        ]
        tracks = await _each_variant(attempt, list(playlist.streams), entries, follow)
        return _summary(entries, tracks), bytes_in + sum(t.bytes_in for t in tracks)

    async def _follow_hls(
        self,
        spec: ProbeSpec,
        live: LiveSpec,
        url: str,
        media: MediaPlaylist | None,
        attempt: Attempt,
        net: Network,
    ) -> _Track:
        """One media playlist (fetched here unless given): its newest segments, its age,
        and with ``check_advancing`` its reload."""
        track = _Track()
        if media is None:
            got = await self._get_ok(spec, url, attempt, net, "variant playlist", playlist=True)
            track.bytes_in += got.bytes_in
            # relative segment URIs resolve against where the playlist was found, as
            # players do after a redirect
            url = str(got.details.get("final_url", url))
            parsed = await self._read(spec, got, url)
            if isinstance(parsed, Variants):
                raise ProbeFailure(Reason.SERVER_ASSERTION, f"{url}: variant is a master")
            media = parsed
        track.details.update(
            media_sequence=media.media_sequence,
            target_duration=media.target_duration,
            segments=len(media.segments),
        )
        _check_live(media, "playlist")
        for segment in media.segments[-live.segments :] if live.segments else ():
            await self._segment(
                spec,
                live,
                track,
                attempt,
                net,
                segment.uri,
                segment.duration,
                segment.byterange,
                check=not segment.encrypted,
            )
        if live.segments:
            track.details.update(track.figures())
        age = integrity.newest_age(media, datetime.now(UTC))
        if age is not None:
            track.details["newest_age_s"] = round(age, 3)
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
                attempt.clock.begin(REFRESH)
                await asyncio.sleep(pause)
                attempt.clock.end(REFRESH)
                waited += pause
                again = await self._get_ok(
                    spec, url, attempt, net, "playlist refetch", playlist=True
                )
                track.bytes_in += again.bytes_in
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
            track.details["advanced_by"] = later.end_sequence - media.end_sequence
        return track

    # --- DASH ---

    async def _dash(
        self,
        spec: ProbeSpec,
        live: LiveSpec,
        first: Exchange,
        url: str,
        attempt: Attempt,
        net: Network,
    ) -> tuple[dict[str, Any], int]:
        manifest = await self._read_mpd(spec, first, url)
        bytes_in = first.bytes_in
        _check_dynamic(manifest, "MPD")
        chosen = manifest.choose(live.variant)
        details: dict[str, Any] = {"representations": len(manifest.representations)}
        if manifest.publish_time is not None:
            details["publish_time"] = manifest.publish_time.isoformat()
        if live.variant is not Variant.ALL:
            [rep] = chosen
            details["representation"] = rep.id
            track = await self._follow_dash(spec, live, rep, attempt, net)
            details.update(track.details)
            bytes_in += track.bytes_in
        else:

            def follow(rep: Representation, clock: Attempt) -> Awaitable[_Track]:
                return self._follow_dash(spec, live, rep, clock, net)

            entries = [
                _entry(
                    r.newest.url if r.newest else r.init or url,
                    r.bandwidth,
                    r.resolution,
                    r.id or None,
                    r.label,
                )
                for r in chosen
            ]
            tracks = await _each_variant(attempt, list(chosen), entries, follow)
            details.update(_summary(entries, tracks))
            bytes_in += sum(t.bytes_in for t in tracks)
        if live.check_advancing:
            moved, got = await self._mpd_moves_on(spec, url, manifest, chosen, attempt, net)
            details.update(moved)
            bytes_in += got
        return details, bytes_in

    async def _follow_dash(
        self,
        spec: ProbeSpec,
        live: LiveSpec,
        rep: Representation,
        attempt: Attempt,
        net: Network,
    ) -> _Track:
        """One Representation: its init segment once, its newest segment, its age."""
        track = _Track()
        newest = rep.newest
        if newest is None:
            raise ProbeFailure(
                Reason.SERVER_LIVE_STALLED,
                f"Representation {rep.label} has no segment available yet",
            )
        track.details["segment_number"] = newest.position
        if live.segments:
            if rep.init is not None:
                got = await self._get_ok(spec, rep.init, attempt, net, "init segment")
                track.bytes_in += got.bytes_in
                if live.media_check:
                    check_media(got.observation.body[:4096], "init segment", rep.init)
            await self._segment(
                spec,
                live,
                track,
                attempt,
                net,
                newest.url,
                newest.duration,
                newest.byterange,
                check=True,
            )
            track.details.update(track.figures())
        age = _dash_age(newest)
        if age is not None:
            track.details["newest_age_s"] = round(age, 3)
            if live.max_age is not None and age > live.max_age:
                raise ProbeFailure(
                    Reason.SERVER_LIVE_STALLED,
                    f"newest segment is {age:.1f}s old (max_age {live.max_age:g}s)",
                )
        return track

    async def _mpd_moves_on(
        self,
        spec: ProbeSpec,
        url: str,
        manifest: Manifest,
        chosen: tuple[Representation, ...],
        attempt: Attempt,
        net: Network,
    ) -> tuple[dict[str, Any], int]:
        """Refetch the MPD after one segment duration (and once more half one later): it
        must list a newer segment of a chosen Representation, or a newer publishTime."""
        ids = [r.id for r in chosen]
        before = _dash_position(manifest, ids)
        duration = max((r.newest.duration for r in chosen if r.newest), default=1.0)
        pause = min(max(duration, 0.1), float(integrity.MAX_TARGET_DURATION))
        waited, bytes_in = 0.0, 0
        for wait in (pause, pause / 2):
            attempt.clock.begin(REFRESH)
            await asyncio.sleep(wait)
            attempt.clock.end(REFRESH)
            waited += wait
            again = await self._get_ok(spec, url, attempt, net, "MPD refetch", playlist=True)
            bytes_in += again.bytes_in
            reloaded = await self._read_mpd(spec, again, url)
            _check_dynamic(reloaded, "MPD refetch")
            after = _dash_position(reloaded, ids)
            if after != before:
                moved: dict[str, Any] = {}
                numbers = [
                    (a - b)
                    for a, b in zip(after[1], before[1], strict=True)
                    if isinstance(a, int) and isinstance(b, int)
                ]
                if numbers and all(n < 0 for n in numbers):
                    raise ProbeFailure(
                        Reason.SERVER_ASSERTION,
                        f"the MPD's newest segment went back from {before[1]} to {after[1]} "
                        "between two fetches",
                    )
                if numbers:
                    moved["advanced_by"] = max(numbers)
                return moved, bytes_in
        newest = ", ".join(str(p) for p in before[1])
        published = manifest.publish_time.isoformat() if manifest.publish_time else "none"
        raise ProbeFailure(
            Reason.SERVER_LIVE_STALLED,
            f"MPD did not move on in {waited:g}s (newest segment {newest}, "
            f"publishTime {published})",
        )

    # --- shared ---

    async def _segment(
        self,
        spec: ProbeSpec,
        live: LiveSpec,
        track: _Track,
        attempt: Attempt,
        net: Network,
        url: str,
        duration: float,
        byterange: tuple[int, int] | None,
        *,
        check: bool,
    ) -> None:
        """Download one segment: it must be media, and arrive within ``realtime`` times
        its duration, timed by the exchange's own phases (the kernel's receive times,
        not our loop's: a busy loop never makes a stream look slow)."""
        before = sum(attempt.clock.durations.values())
        started = time.perf_counter()
        got = await self._get_ok(spec, url, attempt, net, "segment", byterange)
        took = sum(attempt.clock.durations.values()) - before
        if took <= 0:  # no phase was timed (a transport that emits no trace)
            took = time.perf_counter() - started
        track.bytes_in += got.bytes_in
        track.record(took, got.bytes_in, duration)
        if check and live.media_check:
            check_media(got.observation.body[:4096], "segment", url)
        if live.realtime > 0 and duration > 0 and took > live.realtime * duration:
            raise ProbeFailure(
                Reason.SERVER_LIVE_SLOW,
                f"{_slow(duration, took, live.realtime)}: {url}",
                {"realtime": round(took / duration, 3), "segment_ms": round(took * 1000, 3)},
            )

    @staticmethod
    async def _read(spec: ProbeSpec, got: Exchange, url: str) -> MediaPlaylist | Variants:
        _refuse_truncated(spec, got, url, "playlist")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(PARSE_THREADS, read_playlist, got.observation.body, url)

    @staticmethod
    async def _read_mpd(spec: ProbeSpec, got: Exchange, url: str) -> Manifest:
        _refuse_truncated(spec, got, url, "MPD")
        loop = asyncio.get_running_loop()
        now = datetime.now(UTC)
        return await loop.run_in_executor(PARSE_THREADS, read_mpd, got.observation.body, url, now)

    @staticmethod
    async def _get(
        spec: ProbeSpec,
        url: str,
        attempt: Attempt,
        net: Network,
        headers: tuple[tuple[str, str], ...] = (),
        *,
        playlist: bool = False,
    ) -> Exchange:
        request = Request("GET", url, spec.headers + headers)
        if playlist:
            return await fetch(spec, request, attempt, net, max_body=_playlist_limit(spec))
        return await fetch(spec, request, attempt, net)

    async def _get_ok(
        self,
        spec: ProbeSpec,
        url: str,
        attempt: Attempt,
        net: Network,
        what: str,
        byterange: tuple[int, int] | None = None,
        *,
        playlist: bool = False,
    ) -> Exchange:
        integrity.check_fetchable(url, what)
        headers: tuple[tuple[str, str], ...] = ()
        if byterange is not None:
            offset, length = byterange
            headers = (("Range", f"bytes={offset}-{offset + length - 1}"),)
        got = await self._get(spec, url, attempt, net, headers, playlist=playlist)
        if not 200 <= got.observation.status < 300:
            raise ProbeFailure(
                Reason.SERVER_STATUS, f"{what} {url}: status {got.observation.status}"
            )
        return got


def _slow(duration: float, took: float, realtime: float) -> str:
    """The documented message; more digits when one decimal would show the two as equal."""
    digits = 1
    while digits < 3 and f"{took:.{digits}f}" == f"{duration * realtime:.{digits}f}":
        digits += 1
    return (
        f"segment of {duration:.{digits}f}s took {took:.{digits}f}s to download "
        f"(realtime {realtime}): viewers would buffer"
    )


def _entry(
    uri: str, bandwidth: int, resolution: str | None, name: str | None, label: str
) -> dict[str, Any]:
    """A ``details.variants`` row, pending until its variant is checked."""
    return {
        "uri": uri,
        "name": name,
        "bandwidth": bandwidth,
        "resolution": resolution,
        "ok": None,
        "reason": None,
        "segment_ms": None,
        "realtime": None,
        "_label": label,
    }


async def _each_variant(
    attempt: Attempt,
    items: list[T],
    entries: list[dict[str, Any]],
    follow: Callable[[T, Attempt], Awaitable[_Track]],
) -> list[_Track]:
    """Follow every variant at once within the probe's one deadline, each on a clock of
    its own (a clock times one exchange at a time); fail naming the first variant
    (in playlist order) that failed. ``details.variants`` is on the record even when the
    deadline cuts the probe."""
    shown = [{k: v for k, v in e.items() if not k.startswith("_")} for e in entries]
    attempt.details["variants"] = shown
    jar = attempt.cookies()  # shared: a cookie the CDN sets serves every variant
    tracks = [_Track() for _ in items]
    failures: list[tuple[int, ProbeFailure]] = []

    async def one(index: int, item: T) -> None:
        # its own clock and connection; the attempt's cookies and values to mask
        own = Attempt(jar=jar, secrets=attempt.secrets)
        row = shown[index]
        try:
            track = await follow(item, own)
        except asyncio.CancelledError:
            step = own.clock.current
            if step is not None:  # where the deadline found it
                row["step"] = step.key if isinstance(step, KindStep) else step.value
            raise
        except ProbeFailure as exc:
            found = exc.classified
            row.update(ok=False, reason=found.reason.value, error=found.error)
            row.update({k: v for k, v in found.details.items() if k in _ROW_FIGURES})
            failures.append((index, exc))
            return
        except Exception as exc:
            classified = classify_exception(exc)
            if classified is None:
                raise  # a bug of ours stays one
            error = classified.error
            remote = own.remote or own.target
            if remote is not None and classified.failure in (Failure.NETWORK, Failure.TIMEOUT):
                error = f"{error} ({remote[0]}:{remote[1]})"
            row.update(ok=False, reason=classified.reason.value, error=error)
            failures.append((index, ProbeFailure(classified.reason, error)))
            return
        tracks[index] = track
        figures = track.figures()
        row.update(ok=True, segment_ms=figures.get("segment_ms"), realtime=figures.get("realtime"))

    attempt.clock.begin(VARIANTS)
    await asyncio.gather(*(one(i, item) for i, item in enumerate(items)))
    attempt.clock.end(VARIANTS)
    if failures:
        failures.sort(key=lambda f: f[0])
        index, exc = failures[0]
        found = exc.classified
        more = f" ({len(failures)} of {len(items)} variants failed)" if len(failures) > 1 else ""
        # the worst ratio of every variant, the failed ones included: details.realtime
        ratios = [r["realtime"] for r in shown if isinstance(r.get("realtime"), int | float)]
        figures = {"realtime": max(ratios)} if ratios else {}
        raise ProbeFailure(
            found.reason,
            f"variant {entries[index]['_label']}: {found.error}{more}",
            {**found.details, **figures},
        )
    return tracks


def _summary(entries: list[dict[str, Any]], tracks: list[_Track]) -> dict[str, Any]:
    """The probe's own figures under ``variant: all``: the worst of its variants."""
    out: dict[str, Any] = {}
    ratios = [t.worst for t in tracks if t.worst is not None]
    if ratios:
        out["realtime"] = round(max(ratios), 3)
    if tracks:
        out["segment_bytes"] = sum(t.segment_bytes for t in tracks)
        out["segment_ms"] = round(max(t.segment_s for t in tracks) * 1000, 3)
    return out


def _playlist_limit(spec: ProbeSpec) -> int:
    return min(spec.max_body, MAX_PLAYLIST_BYTES)


def _refuse_truncated(spec: ProbeSpec, got: Exchange, url: str, what: str) -> None:
    if got.observation.truncated:
        limit = _playlist_limit(spec)
        why = "max_body" if limit < MAX_PLAYLIST_BYTES else f"the cap for a {what}"
        raise ProbeFailure(
            Reason.SERVER_ASSERTION,
            f"{url}: {what} is larger than {format_size(limit)} ({why}): "
            "its newest segments are out of reach",
        )


def _check_live(media: MediaPlaylist, what: str) -> None:
    if media.ended:
        raise ProbeFailure(
            Reason.SERVER_LIVE_ENDED,
            f"{what} has ended (#EXT-X-ENDLIST) at media sequence {media.media_sequence}",
        )
    if not media.segments:
        raise ProbeFailure(Reason.SERVER_LIVE_STALLED, f"{what} has no segments")


def _check_dynamic(manifest: Manifest, what: str) -> None:
    if not manifest.dynamic:
        raise ProbeFailure(
            Reason.SERVER_LIVE_ENDED,
            f'{what} is type="static": the live presentation has ended (or is on demand)',
        )


def _dash_position(manifest: Manifest, ids: list[str]) -> tuple[object, tuple[object, ...]]:
    """(publishTime, newest segment position of each chosen Representation)."""
    by_id = {r.id: r.newest for r in manifest.representations}
    newest: list[object] = []
    for rep_id in ids:
        segment = by_id.get(rep_id)
        newest.append(None if segment is None else segment.position)
    return manifest.publish_time, tuple(newest)


def _dash_age(newest: DashSegment) -> float | None:
    if newest.ends_at is None:
        return None
    return (datetime.now(UTC) - newest.ends_at).total_seconds()
