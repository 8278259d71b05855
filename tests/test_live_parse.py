"""HLS playlist parsing edge cases (pure: no network)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthprobe.classify import ProbeFailure
from synthprobe.errors import ConfigError
from synthprobe.probers.live import LiveSpec, Variant, integrity
from synthprobe.probers.live.dash import DashSegment, NotAnMpd, parse_mpd
from synthprobe.probers.live.media import check_media, sniff
from synthprobe.probers.live.playlist import (
    MediaPlaylist,
    NotAPlaylist,
    Segment,
    Stream,
    Variants,
    parse_playlist,
)
from synthprobe.probers.live.prober import read_mpd, read_playlist

from .conftest import specs_from_yaml

BASE = "http://127.0.0.1:8080/live/main/index.m3u8"

MASTER = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=1500000,RESOLUTION=960x540
mid/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=800000,NAME="low"
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
        Stream(1500000, "http://127.0.0.1:8080/live/main/mid/index.m3u8", "960x540"),
        Stream(800000, "http://127.0.0.1:8080/abs/low.m3u8", None, "low"),
        Stream(4000000, "http://127.0.0.2:9000/hd.m3u8"),
    )
    # an error names a variant by NAME, else RESOLUTION, else BANDWIDTH
    assert [s.label for s in parsed.streams] == ["960x540", "low", "BANDWIDTH=4000000"]


@pytest.mark.parametrize(
    ("which", "suffixes"),
    [
        pytest.param(Variant.FIRST, ["mid/index.m3u8"], id="first"),
        pytest.param(Variant.HIGHEST, ["hd.m3u8"], id="highest"),
        pytest.param(Variant.LOWEST, ["low.m3u8"], id="lowest"),
        pytest.param(Variant.ALL, ["mid/index.m3u8", "low.m3u8", "hd.m3u8"], id="all"),
    ],
)
def test_variant_choice(which: Variant, suffixes: list[str]) -> None:
    parsed = parse_playlist(MASTER, BASE)
    assert isinstance(parsed, Variants)
    chosen = parsed.choose(which)
    assert len(chosen) == len(suffixes)
    assert all(s.uri.endswith(suffix) for s, suffix in zip(chosen, suffixes, strict=True))
    assert parsed.pick(which) == chosen[0].uri


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


@pytest.mark.slow
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


# --- segments that look like media (media.py) ---

TS = b"G" + bytes(187)
FTYP = (24).to_bytes(4, "big") + b"ftypiso5" + bytes(12)


def _id3(size: int, then: bytes) -> bytes:
    syncsafe = bytes((size >> s) & 0x7F for s in (21, 14, 7, 0))
    return b"ID3\x04\x00\x00" + syncsafe + bytes(size) + then


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        pytest.param(TS * 5, "mpeg-ts", id="ts"),
        pytest.param(TS, "mpeg-ts", id="ts-one-packet"),
        pytest.param(TS * 2 + b"x" + bytes(187), None, id="ts-third-packet-unsynced"),
        pytest.param(b"G" + bytes(100), None, id="ts-shorter-than-a-packet"),
        pytest.param(FTYP, "iso-bmff", id="ftyp-init"),
        pytest.param((24).to_bytes(4, "big") + b"styp" + bytes(16), "iso-bmff", id="styp"),
        pytest.param((8).to_bytes(4, "big") + b"moof", "iso-bmff", id="moof"),
        pytest.param(bytes(4) + b"mdat", "iso-bmff", id="mdat-to-end"),
        pytest.param(
            (1).to_bytes(4, "big") + b"mdat" + (16).to_bytes(8, "big"),
            "iso-bmff",
            id="mdat-largesize",
        ),
        pytest.param(
            (1).to_bytes(4, "big") + b"mdat" + (3).to_bytes(8, "big"),
            None,
            id="largesize-too-small",
        ),
        pytest.param((4).to_bytes(4, "big") + b"moof", None, id="box-size-4"),
        pytest.param((44).to_bytes(4, "big") + b"sidx", "iso-bmff", id="sidx"),
        pytest.param((8).to_bytes(4, "big") + b"emsg", "iso-bmff", id="emsg"),
        pytest.param((8).to_bytes(4, "big") + b"prft", "iso-bmff", id="prft"),
        pytest.param((8).to_bytes(4, "big") + b"html", None, id="unknown-box"),
        pytest.param(b"\xff\xf1\x50\x80" + bytes(10), "adts", id="adts-aac"),
        pytest.param(b"\xff\xfb\x90\x00", "adts", id="mpeg-audio"),
        pytest.param(b"\x0b\x77" + bytes(6), "adts", id="ac3"),
        pytest.param(_id3(20, b"\xff\xf1\x50\x80"), "id3", id="id3-then-aac"),
        pytest.param(_id3(20, TS), "id3", id="id3-then-ts"),
        pytest.param(_id3(20, b"<html>"), None, id="id3-then-html"),
        pytest.param(b"ID3\x04\x00\x00\x80\x00\x00\x00", None, id="id3-not-syncsafe"),
        pytest.param(b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n", "webvtt", id="webvtt"),
        pytest.param(b"\xef\xbb\xbfWEBVTT", "webvtt", id="webvtt-bom"),
        pytest.param(b"WEBVTTX", None, id="webvtt-lookalike"),
        pytest.param(b"\x1a\x45\xdf\xa3\x9f", "webm", id="webm"),
        pytest.param(b"<!DOCTYPE html><html>", None, id="html"),
        pytest.param(b'{"error": "not found"}', None, id="json"),
        pytest.param(b"", None, id="empty"),
        pytest.param(b"#EXTM3U\n", None, id="a-playlist"),
    ],
)
def test_sniff(data: bytes, kind: str | None) -> None:
    assert sniff(data) == kind


@pytest.mark.parametrize(
    ("data", "words"),
    [
        pytest.param(
            b"<!DOCTYPE html><html><body>503", "(starts with '<!DOCTYPE html')", id="html"
        ),
        pytest.param(b"", "(it is empty)", id="empty"),
        pytest.param(b"\x00\xff<x", "(starts with '\\x00\ufffd<x')", id="binary"),
    ],
)
def test_not_media_is_server_assertion(data: bytes, words: str) -> None:
    with pytest.raises(ProbeFailure) as caught:
        check_media(data, "segment")
    assert caught.value.classified.reason == "server.assertion"
    assert f"segment is not media {words}" == caught.value.classified.error


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=1000),
        st.builds(
            lambda a, b: a + b,
            st.sampled_from(
                [
                    b"G",
                    b"ID3\x04\x00",
                    b"\xff\xf1",
                    b"WEBVTT",
                    bytes(4) + b"moof",
                    b"\x00\x00\x00\x01mdat",
                ]
            ),
            st.binary(max_size=600),
        ),
    )
)
def test_sniff_never_raises(data: bytes) -> None:
    kind = sniff(data)
    assert kind is None or isinstance(kind, str)


# --- DASH manifests (dash.py) ---

DASH_BASE = "http://127.0.0.1:8080/live/stream.mpd"
DASH_NOW = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)


def _mpd(period: str, head: str = "", kind: str = "dynamic") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="{kind}" {head}'
        'availabilityStartTime="2026-11-22T09:00:00Z" publishTime="2026-11-22T09:59:58Z">'
        f'<Period id="p0" start="PT0S">{period}</Period></MPD>'
    ).encode()


TIMELINE = (
    '<AdaptationSet contentType="video" mimeType="video/mp4">'
    '<SegmentTemplate timescale="1000" initialization="$RepresentationID$/init.mp4" '
    'media="$RepresentationID$/$Time$.m4s" startNumber="10"><SegmentTimeline>'
    '<S t="1000" d="2000" r="2"/><S d="1000"/></SegmentTimeline></SegmentTemplate>'
    '<Representation id="hi" bandwidth="3000000" width="1280" height="720"/>'
    '<Representation id="lo" bandwidth="500000" width="640" height="360"/>'
    "</AdaptationSet>"
    '<AdaptationSet contentType="audio"><Representation id="a" bandwidth="64000">'
    '<SegmentTemplate media="a-$Number%05d$.m4a" duration="2" startNumber="1"/>'
    "</Representation></AdaptationSet>"
)


@pytest.mark.parametrize(
    ("which", "ids"),
    [
        pytest.param(Variant.FIRST, ["hi"], id="first-video"),
        pytest.param(Variant.LOWEST, ["lo"], id="lowest-video"),
        pytest.param(Variant.HIGHEST, ["hi"], id="highest-video"),
        pytest.param(Variant.ALL, ["hi", "lo", "a"], id="all-with-audio"),
    ],
)
def test_mpd_representation_choice(which: Variant, ids: list[str]) -> None:
    manifest = parse_mpd(_mpd(TIMELINE), DASH_BASE, DASH_NOW)
    assert [r.id for r in manifest.choose(which)] == ids


def test_mpd_timeline_time_and_clock_counted_number() -> None:
    manifest = parse_mpd(_mpd(TIMELINE), DASH_BASE, DASH_NOW)
    assert manifest.dynamic and manifest.minimum_update_period is None
    assert manifest.publish_time == datetime(2026, 11, 22, 9, 59, 58, tzinfo=UTC)
    hi, lo, audio = manifest.representations
    assert hi.init == "http://127.0.0.1:8080/live/hi/init.mp4"
    assert hi.newest is not None and lo.newest is not None and audio.newest is not None
    # S t=1000 d=2000 r=2: 1000, 3000, 5000; then d=1000 at 7000: number 13
    assert hi.newest.url == "http://127.0.0.1:8080/live/hi/7000.m4s"
    assert (hi.newest.duration, hi.newest.position) == (1.0, 7000)
    assert hi.newest.ends_at == datetime(2026, 11, 22, 9, 0, 8, tzinfo=UTC)
    assert hi.label == "hi (1280x720)" and hi.video and not audio.video
    # 3600 s after availabilityStartTime, 2 s segments: the 1800th (index 1799, from
    # 3598 s to 3600 s) has just ended; startNumber 1
    assert audio.newest.url == "http://127.0.0.1:8080/live/a-01800.m4a"
    assert audio.newest.duration == 2.0


def test_mpd_segment_list_base_urls_and_repeat_until_next() -> None:
    period = (
        "<BaseURL>cdn/</BaseURL><AdaptationSet><BaseURL>v/</BaseURL>"
        '<Representation id="r" bandwidth="1">'
        '<SegmentList timescale="10" duration="20"><Initialization sourceURL="i.mp4"/>'
        '<SegmentURL media="s1.m4s"/><SegmentURL media="s2.m4s" mediaRange="100-199"/>'
        "</SegmentList></Representation>"
        '<Representation id="t" bandwidth="2"><SegmentTemplate media="$Number$-$Bandwidth$'
        '.m4s" timescale="1"><SegmentTimeline><S t="0" d="2" r="-1"/><S t="10" d="2"/>'
        "</SegmentTimeline></SegmentTemplate></Representation></AdaptationSet>"
    )
    manifest = parse_mpd(_mpd(period), DASH_BASE, DASH_NOW)
    listed, templated = manifest.representations
    assert listed.init == "http://127.0.0.1:8080/live/cdn/v/i.mp4"
    assert listed.newest == DashSegment(
        "http://127.0.0.1:8080/live/cdn/v/s2.m4s", 2.0, 2, (100, 100), None
    )
    # r=-1 up to t=10: 5 segments (numbers 1-5), then one more at t=10: number 6
    assert templated.newest is not None
    assert templated.newest.url == "http://127.0.0.1:8080/live/cdn/v/6-2.m4s"


def test_static_mpd_is_read_as_ended() -> None:
    manifest = parse_mpd(_mpd(TIMELINE, kind="static"), DASH_BASE, DASH_NOW)
    assert not manifest.dynamic and manifest.representations == ()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(
            b'<?xml version="1.0"?><!DOCTYPE MPD [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
            b'<MPD type="dynamic">&b;</MPD>',
            "<!DOCTYPE declaration (refused: entity expansion)",
            id="billion-laughs",
        ),
        pytest.param(b'<MPD type="dynamic"><Period>', "not well-formed XML", id="truncated"),
        pytest.param(b"<html></html>", "root element is <html>", id="html"),
        pytest.param(_mpd(TIMELINE, kind="live"), 'MPD@type="live"', id="bad-type"),
        pytest.param(_mpd(""), "last Period has no Representation", id="no-representation"),
        pytest.param(
            _mpd('<AdaptationSet><Representation id="x" bandwidth="1"/></AdaptationSet>'),
            "neither a SegmentTemplate nor a SegmentList",
            id="segment-base-only",
        ),
        pytest.param(
            _mpd(TIMELINE.replace("$Time$", "$Foo$")), "unknown $Foo$", id="unknown-identifier"
        ),
        pytest.param(_mpd(TIMELINE.replace('d="1000"', 'd="0"')), 'S@d="0"', id="zero-duration"),
        pytest.param(
            _mpd(TIMELINE.replace('r="2"', 'r="-7"')), 'S@r="-7"', id="repeat-below-minus-one"
        ),
        pytest.param(
            _mpd(TIMELINE.replace('timescale="1000"', 'timescale="abc"')),
            'SegmentTemplate@timescale="abc"',
            id="timescale-not-a-number",
        ),
        pytest.param(
            _mpd(TIMELINE.replace('duration="2"', "")),
            "SegmentTemplate@duration is missing",
            id="template-without-duration",
        ),
        pytest.param(
            _mpd(TIMELINE, head='minimumUpdatePeriod="soon" '),
            '@minimumUpdatePeriod="soon" is not a duration',
            id="bad-duration",
        ),
    ],
)
def test_hostile_mpd_is_refused(body: bytes, words: str) -> None:
    with pytest.raises(NotAnMpd) as caught:
        parse_mpd(body, DASH_BASE, DASH_NOW)
    assert words in str(caught.value)


def test_huge_repeat_is_counted_not_expanded() -> None:
    body = _mpd(TIMELINE.replace('r="2"', f'r="{10**19}"'))
    manifest = parse_mpd(body, DASH_BASE, DASH_NOW)
    newest = manifest.representations[0].newest
    assert newest is not None and newest.position == 1000 + (10**19 + 1) * 2000
    assert newest.ends_at is None  # 10^16 seconds after 2026 is no date


MPD_PIECES = [
    "<MPD", "</MPD>", 'type="dynamic"', 'type="static"', "<Period>", "</Period>",
    '<Period start="PT1H">', "<AdaptationSet>", "</AdaptationSet>",
    '<AdaptationSet contentType="video">', '<Representation id="r" bandwidth="1">',
    "</Representation>", '<Representation id="$" bandwidth="x"/>',
    '<SegmentTemplate media="$Number$.m4s" duration="2"/>',
    '<SegmentTemplate media="$Time$.m4s" timescale="0">', "</SegmentTemplate>",
    '<SegmentTemplate media="$Number%099d$$$$Bandwidth%3d$"', "<SegmentTimeline>",
    "</SegmentTimeline>", '<S t="0" d="1" r="-1"/>', '<S d="5" r="99999999999999999999"/>',
    '<S t="18446744073709551615" d="1"/>', '<S d="-1"/>', "<SegmentList>",
    '<SegmentURL media="x" mediaRange="9-1"/>', "</SegmentList>", "<BaseURL>http://[x/</BaseURL>",
    "<BaseURL>//127.0.0.2/</BaseURL>", 'availabilityStartTime="0001-01-01T00:00:00Z"',
    'availabilityStartTime="2026-11-22T09:00:00"', 'publishTime="nope"',
    'minimumUpdatePeriod="P99999Y"', "<!-- c -->", "<![CDATA[x]]>", "&amp;", "&x;", ">", "<",
]  # fmt: skip
mpd_text = st.builds(
    lambda head, parts, tail: head + "".join(parts).encode() + tail,
    st.sampled_from([b"", b'<?xml version="1.0"?>', b"\xef\xbb\xbf", b"<!DOCTYPE MPD>"]),
    st.lists(st.one_of(st.sampled_from(MPD_PIECES), st.text(max_size=10)), max_size=30),
    st.one_of(st.just(b""), st.binary(max_size=50)),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        mpd_text,
        st.builds(
            lambda p: _mpd(p).replace(b"X", b""),
            st.sampled_from([TIMELINE, TIMELINE.replace("$Time$", "$Number$"), ""]),
        ),
    )
)
def test_any_mpd_is_a_manifest_or_a_probe_failure(body: bytes) -> None:
    try:
        manifest = read_mpd(body, DASH_BASE, DASH_NOW)
    except ProbeFailure as exc:
        assert exc.classified.reason == "server.assertion" and exc.classified.error
        return
    for rep in manifest.representations:
        for url in (rep.init, rep.newest.url if rep.newest else None):
            if url is not None:
                with contextlib.suppress(ProbeFailure):
                    integrity.check_fetchable(url, "segment")


# --- the live block's new keys ---


@pytest.mark.parametrize(
    ("block", "realtime", "media_check", "problem"),
    [
        pytest.param("{}", 1.0, True, None, id="defaults"),
        pytest.param("{realtime: 1.5, media_check: false}", 1.5, False, None, id="set"),
        pytest.param("{realtime: 0}", 0.0, True, None, id="realtime-off"),
        pytest.param('{realtime: "2"}', 2.0, True, None, id="realtime-string"),
        pytest.param("{realtime: -1}", None, None, "must be between 0 and 100", id="negative"),
        pytest.param("{realtime: .nan}", None, None, "must be between 0 and 100", id="nan"),
        pytest.param("{realtime: fast}", None, None, "expected a number", id="word"),
        pytest.param("{media_check: 1}", None, None, "expected true or false", id="check-int"),
        pytest.param("{variant: every}", None, None, "first, highest, lowest, all", id="variant"),
    ],
)
def test_live_block_keys(
    block: str, realtime: float | None, media_check: bool | None, problem: str | None
) -> None:
    text = f"probes:\n  - {{name: p, kind: live, url: 'http://127.0.0.1/x.m3u8', live: {block}}}\n"
    if problem is not None:
        with pytest.raises(ConfigError, match=problem):
            specs_from_yaml(text)
        return
    [spec] = specs_from_yaml(text)
    assert isinstance(spec.options, LiveSpec)
    assert (spec.options.realtime, spec.options.media_check) == (realtime, media_check)
