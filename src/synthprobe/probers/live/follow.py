"""Following a live stream, written once for HLS and DASH: one attempt's state
(``LiveAttempt``), the newest segments of a variant, its age, and the reload that proves
the stream moves on. A format answers the loop's questions as a ``Manifest``
(``formats.py``)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, Self, TypeVar

from synthprobe.classify import ProbeFailure, classify_exception
from synthprobe.models import Failure, ProbeSpec, Reason
from synthprobe.probers.attempt import Attempt
from synthprobe.probers.base import DaemonThreads, Network
from synthprobe.probers.exchange import Exchange, Request, fetch
from synthprobe.probers.live import REFRESH, VARIANTS, LiveSpec, Variant, integrity
from synthprobe.probers.live.media import check_media
from synthprobe.probers.live.playlist import MAX_PLAYLIST_BYTES
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


@dataclass(frozen=True, slots=True)
class Piece:
    """One segment to download."""

    url: str
    duration: float
    """Seconds, as the manifest says (0: unknown)."""
    byterange: tuple[int, int] | None = None
    """(offset, length) to ask for with ``Range``."""
    what: str = "segment"
    """How messages name it."""
    check: bool = True
    """Must start like media (an encrypted segment cannot)."""
    timed: bool = True
    """Counts in the segment figures and against ``realtime`` (an init segment does not)."""


class Manifest(Protocol):
    """A live playlist or MPD as the follow loop asks it: what one fetch holds of a
    variant, and whether a later fetch moved on."""

    @property
    def name(self) -> str:
        """How messages name it: ``playlist`` or ``MPD``."""

    def reader(self) -> Callable[[bytes, str], Self]:
        """How to read a later fetch of it (body, final URL), in a parse thread;
        ``ProbeFailure`` when the body is not one."""

    def check_newest(self) -> None:
        """``ProbeFailure`` when there is nothing to follow (ended, no segment yet)."""

    def details(self) -> dict[str, Any]:
        """What ``details`` shows of the variant (its sequence, its newest segment)."""

    def newest(self, count: int) -> tuple[Piece, ...]:
        """The variant's newest segments to download (``count`` of them where the
        format lists several), in order."""

    def newest_age(self, now: datetime) -> float | None:
        """Seconds since its newest segment began (or ended), when the format says."""

    @property
    def refresh(self) -> float:
        """Seconds after which a reload must show it moved on."""

    @property
    def position(self) -> object:
        """Moves when the stream moves on (a media sequence, segment numbers...)."""

    def check_reload(self, before: Self) -> None:
        """What a reload after ``before`` must hold to; ``ProbeFailure`` otherwise."""

    def advanced_by(self, before: Self) -> int | None:
        """Segments it moved on since ``before`` (None when it cannot say)."""

    def stalled(self, waited: float) -> str:
        """The message when it did not move on in ``waited`` seconds."""


M = TypeVar("M", bound=Manifest)


@dataclass(slots=True)
class Track:
    """What following one variant (or Representation) found."""

    details: dict[str, Any] = field(default_factory=dict)
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


@dataclass(slots=True)
class LiveAttempt:
    """One attempt of a live probe: what each of its fetches needs, and what they add
    up to. A variant followed beside others (``variant: all``) has one of its own."""

    spec: ProbeSpec[LiveSpec]
    attempt: Attempt
    """Its clock, cookies and details."""
    net: Network
    bytes_in: int = 0
    """Every body byte this attempt received (playlists, segments, reloads)."""

    @property
    def live(self) -> LiveSpec:
        return self.spec.options

    # --- one variant ---

    async def follow(self, manifest: Manifest, url: str, *, reload: bool) -> Track:
        """One variant: its newest segments, its age, and with ``reload`` proof that it
        moves on (``url``: where its manifest is reloaded from)."""
        live = self.live
        track = Track()
        manifest.check_newest()
        track.details.update(manifest.details())
        for piece in manifest.newest(live.segments) if live.segments else ():
            await self.download(track, piece)
        if live.segments:
            track.details.update(track.figures())
        age = manifest.newest_age(datetime.now(UTC))
        if age is not None:
            track.details["newest_age_s"] = round(age, 3)
            if live.max_age is not None and age > live.max_age:
                raise ProbeFailure(
                    Reason.SERVER_LIVE_STALLED,
                    f"newest segment is {age:.1f}s old (max_age {live.max_age:g}s)",
                )
        if reload:
            advanced = await self.moves_on(manifest, url)
            if advanced is not None:
                track.details["advanced_by"] = advanced
        return track

    async def moves_on(self, before: M, url: str) -> int | None:
        """Reload after one refresh interval; if unchanged, once more half one later, as
        a player would (RFC 8216 §6.3.4): an encoder writing a segment a little late is
        not a stalled stream. ``server.live_stalled`` when it did not move on. The
        runner's deadline cuts the wait (intervals are capped at
        integrity.MAX_TARGET_DURATION)."""
        pause, waited = before.refresh, 0.0
        for wait in (pause, pause / 2):
            self.attempt.clock.begin(REFRESH)
            await asyncio.sleep(wait)
            self.attempt.clock.end(REFRESH)
            waited += wait
            again = await self.get_ok(url, f"{before.name} refetch", playlist=True)
            later = await self.parse(again, url, before.name, before.reader())
            later.check_reload(before)
            if later.position != before.position:
                return later.advanced_by(before)
        raise ProbeFailure(Reason.SERVER_LIVE_STALLED, before.stalled(waited))

    async def download(self, track: Track, piece: Piece) -> None:
        """Download one segment: it must be media, and arrive within ``realtime`` times
        its duration, timed by the exchange's own phases (the kernel's receive times,
        not our loop's: a busy loop never makes a stream look slow)."""
        live, clock = self.live, self.attempt.clock
        before = sum(clock.durations.values())
        started = time.perf_counter()
        got = await self.get_ok(piece.url, piece.what, piece.byterange)
        took = sum(clock.durations.values()) - before
        if took <= 0:  # no phase was timed (a transport that emits no trace)
            took = time.perf_counter() - started
        duration = piece.duration
        if piece.timed:
            track.record(took, got.bytes_in, duration)
        if piece.check and live.media_check:
            check_media(got.observation.body[:4096], piece.what, piece.url)
        if piece.timed and live.realtime > 0 and duration > 0 and took > live.realtime * duration:
            raise ProbeFailure(
                Reason.SERVER_LIVE_SLOW,
                f"{_slow(duration, took, live.realtime)}: {piece.url}",
                {"realtime": round(took / duration, 3), "segment_ms": round(took * 1000, 3)},
            )

    # --- every variant ---

    async def follow_variants(
        self,
        items: Sequence[T],
        row: Callable[[T], dict[str, Any]],
        follow: Callable[[LiveAttempt, T], Awaitable[Track]],
    ) -> dict[str, Any]:
        """The one variant chosen, or (``variant: all``) every one: the details of the
        one, or the worst figures of them all."""
        if self.live.variant is not Variant.ALL:
            [item] = items
            return (await follow(self, item)).details
        tracks = await self._each_variant(items, [row(item) for item in items], follow)
        out: dict[str, Any] = {}
        ratios = [t.worst for t in tracks if t.worst is not None]
        if ratios:
            out["realtime"] = round(max(ratios), 3)
        if tracks:
            out["segment_bytes"] = sum(t.segment_bytes for t in tracks)
            out["segment_ms"] = round(max(t.segment_s for t in tracks) * 1000, 3)
        return out

    async def _each_variant(
        self,
        items: Sequence[T],
        entries: list[dict[str, Any]],
        follow: Callable[[LiveAttempt, T], Awaitable[Track]],
    ) -> list[Track]:
        """Follow every variant at once within the probe's one deadline, each on a clock
        of its own (a clock times one exchange at a time); fail naming the first variant
        (in playlist order) that failed. ``details.variants`` is on the record even when
        the deadline cuts the probe."""
        attempt = self.attempt
        shown = [{k: v for k, v in e.items() if not k.startswith("_")} for e in entries]
        attempt.details["variants"] = shown
        jar = attempt.cookies()  # shared: a cookie the CDN sets serves every variant
        tracks = [Track() for _ in items]
        failures: list[tuple[int, ProbeFailure]] = []

        async def one(index: int, item: T) -> None:
            # its own clock and connection; the attempt's cookies and values to mask
            mine = Attempt(jar=jar, secrets=attempt.secrets, tracing=attempt.tracing)
            own = LiveAttempt(self.spec, mine, self.net)
            row = shown[index]
            try:
                track = await follow(own, item)
            except asyncio.CancelledError:
                step = own.attempt.clock.current
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
                remote = own.attempt.remote or own.attempt.target
                if remote is not None and classified.failure in (Failure.NETWORK, Failure.TIMEOUT):
                    error = f"{error} ({remote[0]}:{remote[1]})"
                row.update(ok=False, reason=classified.reason.value, error=error)
                failures.append((index, ProbeFailure(classified.reason, error)))
                return
            finally:
                self.bytes_in += own.bytes_in
            tracks[index] = track
            figures = track.figures()
            row.update(
                ok=True, segment_ms=figures.get("segment_ms"), realtime=figures.get("realtime")
            )

        attempt.clock.begin(VARIANTS)
        await asyncio.gather(*(one(i, item) for i, item in enumerate(items)))
        attempt.clock.end(VARIANTS)
        if failures:
            failures.sort(key=lambda f: f[0])
            index, exc = failures[0]
            found = exc.classified
            more = (
                f" ({len(failures)} of {len(items)} variants failed)" if len(failures) > 1 else ""
            )
            # the worst ratio of every variant, the failed ones included: details.realtime
            ratios = [r["realtime"] for r in shown if isinstance(r.get("realtime"), int | float)]
            figures = {"realtime": max(ratios)} if ratios else {}
            raise ProbeFailure(
                found.reason,
                f"variant {entries[index]['_label']}: {found.error}{more}",
                {**found.details, **figures},
            )
        return tracks

    # --- fetching ---

    async def parse(
        self, got: Exchange, url: str, what: str, reader: Callable[[bytes, str], T]
    ) -> T:
        """``got``'s body read by ``reader`` in a parse thread; ``server.assertion`` when
        the body was cut at its cap (its newest segments are past the cut)."""
        if got.observation.truncated:
            limit = self._playlist_limit()
            why = "max_body" if limit < MAX_PLAYLIST_BYTES else f"the cap for a {what}"
            raise ProbeFailure(
                Reason.SERVER_ASSERTION,
                f"{url}: {what} is larger than {format_size(limit)} ({why}): "
                "its newest segments are out of reach",
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(PARSE_THREADS, reader, got.observation.body, url)

    async def get(
        self, url: str, headers: tuple[tuple[str, str], ...] = (), *, playlist: bool = False
    ) -> Exchange:
        spec = self.spec
        request = Request("GET", url, spec.headers + headers)
        if playlist:
            got = await fetch(
                spec, request, self.attempt, self.net, max_body=self._playlist_limit()
            )
        else:
            got = await fetch(spec, request, self.attempt, self.net)
        self.bytes_in += got.bytes_in
        return got

    async def get_ok(
        self,
        url: str,
        what: str,
        byterange: tuple[int, int] | None = None,
        *,
        playlist: bool = False,
    ) -> Exchange:
        """GET a URL the manifest gave: ``server.status`` unless 2xx."""
        integrity.check_fetchable(url, what)
        headers: tuple[tuple[str, str], ...] = ()
        if byterange is not None:
            offset, length = byterange
            headers = (("Range", f"bytes={offset}-{offset + length - 1}"),)
        got = await self.get(url, headers, playlist=playlist)
        if not 200 <= got.observation.status < 300:
            raise ProbeFailure(
                Reason.SERVER_STATUS, f"{what} {url}: status {got.observation.status}"
            )
        return got

    def _playlist_limit(self) -> int:
        return min(self.spec.max_body, MAX_PLAYLIST_BYTES)


def entry(
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


def _slow(duration: float, took: float, realtime: float) -> str:
    """The documented message; more digits when one decimal would show the two as equal."""
    digits = 1
    while digits < 3 and f"{took:.{digits}f}" == f"{duration * realtime:.{digits}f}":
        digits += 1
    return (
        f"segment of {duration:.{digits}f}s took {took:.{digits}f}s to download "
        f"(realtime {realtime}): viewers would buffer"
    )
