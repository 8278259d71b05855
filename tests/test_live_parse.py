"""HLS playlist parsing edge cases (pure: no network)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from synthprobe.probers.live import Variant
from synthprobe.probers.live.prober import MediaPlaylist, NotAPlaylist, Variants, parse_playlist

BASE = "http://127.0.0.1:8080/live/main/index.m3u8"

MASTER = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=1500000,RESOLUTION=960x540
mid/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=800000
/abs/low.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=4000000
http://127.0.0.2:9000/hd.m3u8
"""

MEDIA = """#EXTM3U
#EXT-X-VERSION:4
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:41
#EXT-X-PROGRAM-DATE-TIME:2026-11-22T10:00:00.000Z
#EXTINF:2.0,
seg41.ts
#EXT-X-DISCONTINUITY
#EXTINF:2.0,
#EXT-X-BYTERANGE:1000@0
all.ts
#EXTINF:1.5,
#EXT-X-BYTERANGE:500
all.ts
"""


def test_master_playlist_variants_resolve_relative_uris() -> None:
    parsed = parse_playlist(MASTER, BASE)
    assert isinstance(parsed, Variants)
    assert parsed.streams == (
        (1500000, "http://127.0.0.1:8080/live/main/mid/index.m3u8"),
        (800000, "http://127.0.0.1:8080/abs/low.m3u8"),
        (4000000, "http://127.0.0.2:9000/hd.m3u8"),
    )


@pytest.mark.parametrize(
    ("which", "suffix"),
    [(Variant.FIRST, "mid/index.m3u8"), (Variant.HIGHEST, "hd.m3u8"), (Variant.LOWEST, "low.m3u8")],
)
def test_variant_choice(which: Variant, suffix: str) -> None:
    parsed = parse_playlist(MASTER, BASE)
    assert isinstance(parsed, Variants)
    assert parsed.pick(which).endswith(suffix)


def test_media_playlist_sequence_ranges_discontinuity_and_dates() -> None:
    parsed = parse_playlist(MEDIA, BASE)
    assert isinstance(parsed, MediaPlaylist)
    assert (parsed.target_duration, parsed.media_sequence, parsed.ended) == (2.0, 41, False)
    first, second, third = parsed.segments
    assert first.uri == "http://127.0.0.1:8080/live/main/seg41.ts"
    assert first.byterange is None and not first.discontinuity
    assert second.discontinuity and second.byterange == (0, 1000)
    assert third.byterange == (1000, 500)  # no offset: continues the previous range
    assert first.program_date_time == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert third.program_date_time == datetime(2026, 11, 22, 10, 0, 4, tzinfo=UTC)
    assert parsed.position == (41, "http://127.0.0.1:8080/live/main/all.ts")
    assert parsed.end_sequence == 44


def test_ended_playlist() -> None:
    parsed = parse_playlist(MEDIA + "#EXT-X-ENDLIST\n", BASE)
    assert isinstance(parsed, MediaPlaylist) and parsed.ended


def test_empty_playlist_has_no_segments() -> None:
    parsed = parse_playlist("#EXTM3U\n#EXT-X-TARGETDURATION:4\n", BASE)
    assert isinstance(parsed, MediaPlaylist)
    assert parsed.segments == () and parsed.position == (0, None)


@pytest.mark.parametrize(
    "text", ["", "<html>502 Bad Gateway</html>", '{"error": 1}'], ids=["empty-body", "html", "json"]
)
def test_not_a_playlist(text: str) -> None:
    with pytest.raises(NotAPlaylist, match="not an HLS playlist"):
        parse_playlist(text, BASE)


def test_master_without_variants_is_refused() -> None:
    with pytest.raises(NotAPlaylist):
        parse_playlist("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n", BASE)
