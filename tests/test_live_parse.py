"""HLS playlist parsing edge cases (pure: no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthprobe.classify import ProbeFailure
from synthprobe.probers.live import Variant, integrity
from synthprobe.probers.live.playlist import (
    MediaPlaylist,
    NotAPlaylist,
    Segment,
    Variants,
    parse_playlist,
)
from synthprobe.probers.live.prober import read_playlist

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


def _media(sequence: int, segments: int) -> MediaPlaylist:
    return MediaPlaylist(
        target_duration=2.0,
        media_sequence=sequence,
        segments=tuple(
            Segment(f"http://127.0.0.1/{sequence + i}.ts", 2.0, None, None, False)
            for i in range(segments)
        ),
        ended=False,
    )


@pytest.mark.parametrize(
    ("before", "after", "words"),
    [
        pytest.param(_media(100, 3), _media(101, 3), None, id="moved-on"),
        pytest.param(_media(100, 3), _media(100, 3), None, id="unchanged"),
        pytest.param(_media(100, 3), _media(100, 4), None, id="window-growing"),
        pytest.param(_media(100, 3), _media(90, 3), "went back from 100 to 90", id="back"),
        pytest.param(
            _media(100, 3), _media(100, 2), "ended at segment 102, then at 101", id="lost"
        ),
    ],
)
def test_a_reload_may_only_move_on(
    before: MediaPlaylist, after: MediaPlaylist, words: str | None
) -> None:
    if words is None:
        integrity.check_sequence(before, after)
        return
    with pytest.raises(ProbeFailure, match=words) as caught:
        integrity.check_sequence(before, after)
    assert caught.value.classified.reason == "server.assertion"


NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ahead", "refused"),
    [
        pytest.param(-30.0, False, id="past"),
        pytest.param(59.0, False, id="skew-under-a-minute"),
        pytest.param(61.0, True, id="over-a-minute-ahead"),
    ],
)
def test_a_date_in_the_future_is_refused(ahead: float, refused: bool) -> None:
    when = NOW + timedelta(seconds=ahead)
    media = MediaPlaylist(2.0, 1, (Segment("http://h/a.ts", 2.0, None, when, False),), False)
    if not refused:
        assert integrity.newest_age(media, NOW) == -ahead
        return
    with pytest.raises(ProbeFailure, match=r"#EXT-X-PROGRAM-DATE-TIME .* in the future"):
        integrity.newest_age(media, NOW)


TAGS = [
    "#EXTM3U", "#EXTINF", "#EXT-X-TARGETDURATION", "#EXT-X-MEDIA-SEQUENCE",
    "#EXT-X-BYTERANGE", "#EXT-X-PROGRAM-DATE-TIME", "#EXT-X-DISCONTINUITY",
    "#EXT-X-DISCONTINUITY-SEQUENCE", "#EXT-X-ENDLIST", "#EXT-X-KEY", "#EXT-X-MAP",
    "#EXT-X-STREAM-INF", "#EXT-X-MEDIA", "#EXT-X-I-FRAME-STREAM-INF", "#EXT-X-BITRATE",
    "#EXT-X-DATERANGE", "#EXT-X-PART", "#EXT-X-PART-INF", "#EXT-X-SERVER-CONTROL",
    "#EXT-X-SKIP", "#EXT-X-PRELOAD-HINT", "#EXT-X-RENDITION-REPORT", "#EXT-X-CUE-OUT",
    "#EXT-X-CUE-OUT-CONT", "#EXT-X-CUE-IN", "#EXT-X-GAP", "#EXT-X-START",
    "#EXT-X-SESSION-DATA", "#EXT-X-SESSION-KEY", "#EXT-X-PLAYLIST-TYPE", "#EXT-X-VERSION",
    "#EXT-X-CONTENT-STEERING", "#EXT-X-IMAGE-STREAM-INF", "#EXT-X-TILES",
    "#EXT-OATCLS-SCTE35", "#EXT-X-ASSET", "#EXT-X-INDEPENDENT-SEGMENTS",
]  # fmt: skip
VALUES = [
    "", "2", "-5", "0", "1000000000", "2.5", "abc", "1e400", "nan", "inf", "-inf", "9" * 5000,
    "1_000", "\u0661\u0662", "abc@xyz", "10@", "@5", "0@0", "5@-1", "1000@0",
    "2026-11-22T10:00:00Z", "2099-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59Z", "2026-11-22", "BANDWIDTH=1e400", "BANDWIDTH=" + "9" * 5000,
    "BANDWIDTH=-1,RESOLUTION=axb", 'METHOD=AES-128,URI="k"', 'URI="k"', "METHOD=NONE",
    'ID="a",START-DATE="nope",DURATION=abc', "TIME-OFFSET=nan", "DURATION=x",
    "CAN-SKIP-UNTIL=abc", "PART-TARGET=-1", '"unterminated', "2,title", "2,", ",",
]  # fmt: skip
URIS = [
    "a.ts", "/abs/b.ts", "//127.0.0.2/c.ts", "ftp://127.0.0.1/a.ts", "file:///etc/passwd",
    "data:video/mp2t;base64,R0dH", "http://[x/a.ts", "https:///a.ts", "http://h:99999/a.ts",
    "http://xn--zz.invalid/a.ts", "http://\U0001f4a9.invalid/a.ts", "javascript:x",
    "http://127.0.0.1/" + "a" * 70000, "v.m3u8",
]  # fmt: skip

tag_line = st.builds(
    lambda tag, sep, value: tag + sep + value,
    st.sampled_from(TAGS),
    st.sampled_from([":", "", ": ", "::"]),
    st.one_of(st.sampled_from(VALUES), st.text(max_size=20)),
)
# mostly well-formed segments and variants, so the checks after parsing run too
segment = st.builds(
    lambda duration, uri: f"#EXTINF:{duration},\n{uri}",
    st.sampled_from(["2", "2.5", "0", ".5", "2,title", "abc", "1e400"]),
    st.sampled_from(URIS),
)
variant = st.builds(
    lambda attributes, uri: f"#EXT-X-STREAM-INF:{attributes}\n{uri}",
    st.sampled_from(["BANDWIDTH=1", "BANDWIDTH=800000,RESOLUTION=640x360", *VALUES]),
    st.sampled_from(URIS),
)
line = st.one_of(segment, segment, variant, tag_line, st.sampled_from(URIS), st.text(max_size=30))
HEADS = [
    "#EXTM3U\n#EXT-X-TARGETDURATION:2\n",
    "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n"
    "#EXT-X-PROGRAM-DATE-TIME:2026-11-22T10:00:00Z\n",
    "#EXTM3U\n",
    "\ufeff#EXTM3U\r\n",
    "",
]
playlist_text = st.builds(
    lambda head, lines, sep, tail: (head + sep.join(lines)).encode() + tail,
    st.sampled_from(HEADS),
    st.lists(line, max_size=25),
    st.sampled_from(["\n", "\n", "\r\n", "\r", "\x0b", "\u2028", "\n\n"]),
    st.one_of(st.just(b""), st.just(b""), st.binary(max_size=200)),
)


def _through_the_prober(body: bytes, earlier: bytes) -> None:
    """What the prober does with a playlist a server sent, whatever it holds."""
    url = "http://127.0.0.1:8080/live/index.m3u8"
    playlist = read_playlist(body, url)
    if isinstance(playlist, Variants):
        for which in Variant:
            integrity.check_fetchable(playlist.pick(which), "variant playlist")
        return
    for segment in playlist.segments[-20:]:
        integrity.check_fetchable(segment.uri, "segment")
    integrity.newest_age(playlist, datetime.now(UTC))
    before = read_playlist(earlier, url)
    if isinstance(before, MediaPlaylist):
        integrity.check_sequence(before, playlist)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(playlist_text, playlist_text)
def test_any_playlist_is_a_playlist_or_a_probe_failure(body: bytes, earlier: bytes) -> None:
    try:
        _through_the_prober(body, earlier)
    except ProbeFailure as exc:
        assert exc.classified.reason.value.startswith("server.") and exc.classified.error


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_are_a_playlist_or_a_probe_failure(body: bytes) -> None:
    for raw in (body, b"#EXTM3U\n" + body):
        try:
            _through_the_prober(raw, raw)
        except ProbeFailure as exc:
            assert exc.classified.error
