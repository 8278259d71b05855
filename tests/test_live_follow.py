"""The one reload loop (follow.LiveAttempt.moves_on) over both formats: an HLS media
playlist and an MPD answer the same questions (formats.py), and the loop decides moved,
stalled or refused once. The network is replaced by the reloads a table gives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from synthprobe.classify import ProbeFailure
from synthprobe.models import ProbeSpec
from synthprobe.probers.attempt import Attempt
from synthprobe.probers.base import Network
from synthprobe.probers.live import REFRESH, LiveSpec
from synthprobe.probers.live.dash import DashSegment, Mpd, Representation
from synthprobe.probers.live.follow import LiveAttempt, Manifest
from synthprobe.probers.live.formats import DashView, HlsMedia
from synthprobe.probers.live.playlist import MediaPlaylist, Segment

PUBLISHED = datetime(2026, 12, 5, tzinfo=UTC)


def hls(sequence: int, count: int = 3, *, ended: bool = False, target: float = 0.001) -> HlsMedia:
    segments = tuple(
        Segment(f"http://127.0.0.1/{sequence + i}.ts", target, None, None, False)
        for i in range(count)
    )
    return HlsMedia(MediaPlaylist(target, sequence, segments, ended))


def dash(*numbers: int | None, dynamic: bool = True, published: int = 0) -> DashView:
    reps = tuple(
        Representation(
            f"r{i}",
            1000 * (i + 1),
            None,
            None,
            True,
            None,
            None if n is None else DashSegment(f"http://127.0.0.1/r{i}/{n}.m4s", 0.05, n),
        )
        for i, n in enumerate(numbers)
    )
    when = PUBLISHED.replace(second=published)
    return DashView(Mpd(dynamic, when, None, None, None, reps), reps)


class Replayed(LiveAttempt):
    """A LiveAttempt whose reloads are the given manifests, in order."""

    reloads: list[Manifest]
    fetched: list[str]

    async def get_ok(self, url: str, what: str, *args: Any, **kwargs: Any) -> Any:
        self.fetched.append(what)
        return None

    async def parse(self, got: Any, url: str, what: str, reader: Callable[..., Any]) -> Any:
        return self.reloads.pop(0)


def replayed(reloads: list[Manifest]) -> Replayed:
    spec: ProbeSpec[LiveSpec] = ProbeSpec(
        "p", "live", "http://127.0.0.1/", "GET", options=LiveSpec()
    )
    this = Replayed(spec, Attempt(), Network())
    this.reloads, this.fetched = list(reloads), []
    return this


CASES = [
    pytest.param(hls(10), [hls(11)], 1, "", id="hls-window-moved"),
    pytest.param(hls(10), [hls(10, 4)], 1, "", id="hls-grew"),
    pytest.param(hls(10), [hls(10), hls(12)], 2, "", id="hls-moved-on-second-reload"),
    pytest.param(
        hls(10),
        [hls(10), hls(10)],
        None,
        "media sequence 10 did not advance in 0.0015s",
        id="hls-stalled",
    ),
    pytest.param(
        hls(10), [hls(9)], None, "#EXT-X-MEDIA-SEQUENCE went back from 10 to 9", id="hls-back"
    ),
    pytest.param(
        hls(10),
        [hls(11, ended=True)],
        None,
        "playlist refetch has ended (#EXT-X-ENDLIST) at media sequence 11",
        id="hls-ended",
    ),
    pytest.param(dash(5, 7), [dash(6, 9)], 2, "", id="dash-moved"),
    pytest.param(dash(5), [dash(5, published=1)], 0, "", id="dash-published-only"),
    pytest.param(dash(5), [dash(5), dash(6)], 1, "", id="dash-moved-on-second-reload"),
    pytest.param(
        dash(5, None),
        [dash(5, None), dash(5, None)],
        None,
        "MPD did not move on in 0.15s (newest segment 5, None, "
        "publishTime 2026-12-05T00:00:00+00:00)",
        id="dash-stalled",
    ),
    pytest.param(
        dash(5, 7),
        [dash(3, 6)],
        None,
        "the MPD's newest segment went back from (5, 7) to (3, 6) between two fetches",
        id="dash-back",
    ),
    pytest.param(
        dash(5),
        [dash(6, dynamic=False)],
        None,
        'MPD refetch is type="static"',
        id="dash-static",
    ),
]


@pytest.mark.parametrize(("before", "reloads", "advanced", "error"), CASES)
def test_one_reload_loop_for_both_formats(
    before: Manifest, reloads: list[Manifest], advanced: int | None, error: str
) -> None:
    this = replayed(reloads)
    wanted = len(reloads)
    if error:
        with pytest.raises(ProbeFailure) as info:
            asyncio.run(this.moves_on(before, "http://127.0.0.1/live"))
        assert error in info.value.classified.error
    else:
        assert asyncio.run(this.moves_on(before, "http://127.0.0.1/live")) == advanced
    # every reload given was fetched (no more), each named after its format
    assert this.fetched == [f"{before.name} refetch"] * wanted and not this.reloads
    assert this.attempt.clock.durations[REFRESH.key] >= before.refresh


@pytest.mark.parametrize(
    ("manifest", "refresh"),
    [
        pytest.param(hls(1, target=4.0), 4.0, id="hls-target-duration"),
        pytest.param(dash(5), 0.1, id="dash-short-segment-at-least-0.1"),
        pytest.param(dash(None), 1.0, id="dash-no-segment-1s"),
    ],
)
def test_refresh_interval(manifest: Manifest, refresh: float) -> None:
    assert manifest.refresh == refresh
