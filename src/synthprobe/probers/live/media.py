"""Does a segment look like media? A CDN that answers 200 with an HTML error page, a JSON
error or an empty body instead of video must not count as a downloaded segment: a
viewer's player gets nothing it can decode.

``sniff`` looks at the first bytes only (pure: table-tested, never raises), the way
players and ``file(1)`` recognise a container; ``check_media`` turns "not media" into
``server.assertion`` naming what the bytes start with.
"""

from __future__ import annotations

from synthprobe.classify import ProbeFailure
from synthprobe.models import Reason

TS_PACKET = 188
TS_PACKETS_CHECKED = 4
"""MPEG-TS packets whose sync byte must be 0x47: enough that text rarely passes by
chance (a 'G' every 188 bytes), few enough for a short segment."""
BMFF_BOXES = frozenset(
    (b"ftyp", b"styp", b"moof", b"mdat", b"sidx", b"moov", b"emsg", b"prft", b"free", b"skip")
)
"""ISO BMFF (fMP4, CMAF) boxes a segment may start with: an init segment's ``ftyp``,
a media segment's ``styp``/``moof``/``sidx``/``emsg``/``prft`` (``free``/``skip`` as
padding before them)."""
SHOWN = 14
"""Characters of a non-media body quoted in the message: '<!DOCTYPE html' fits."""
_EBML = b"\x1a\x45\xdf\xa3"
_AC3 = b"\x0b\x77"


def sniff(data: bytes) -> str | None:
    """The container ``data`` starts as (``mpeg-ts``, ``iso-bmff``, ``adts``, ``id3``,
    ``webvtt``, ``webm``), or None when it is none of them."""
    if _is_ts(data):
        return "mpeg-ts"
    if _is_bmff(data):
        return "iso-bmff"
    if _is_audio_frame(data):
        return "adts"
    if data.startswith(b"ID3") and _after_id3_is_media(data):
        return "id3"
    if _is_webvtt(data):
        return "webvtt"
    if data.startswith(_EBML):
        return "webm"
    return None


def check_media(data: bytes, what: str = "segment", url: str | None = None) -> str:
    """The container of a downloaded segment, else ``server.assertion``: "segment is not
    media (starts with '<!DOCTYPE html')", then ``url`` if given."""
    kind = sniff(data)
    if kind is not None:
        return kind
    where = f": {url}" if url else ""
    if not data:
        why = "it is empty"
    else:
        why = f"starts with {data[: SHOWN * 4].decode('utf-8', 'replace')[:SHOWN]!r}"
    raise ProbeFailure(Reason.SERVER_ASSERTION, f"{what} is not media ({why}){where}")


def _is_ts(data: bytes) -> bool:
    if not data or data[0] != 0x47:
        return False
    # every whole packet we have (up to TS_PACKETS_CHECKED) starts with the sync byte;
    # a segment shorter than one packet is not TS
    packets = min(len(data) // TS_PACKET, TS_PACKETS_CHECKED)
    return packets >= 1 and all(data[i * TS_PACKET] == 0x47 for i in range(packets))


def _is_bmff(data: bytes) -> bool:
    if len(data) < 8 or data[4:8] not in BMFF_BOXES:
        return False
    size = int.from_bytes(data[0:4], "big")
    if size == 1:  # a 64-bit size follows the type
        return len(data) >= 16 and int.from_bytes(data[8:16], "big") >= 16
    return size == 0 or size >= 8  # 0: the box runs to the end of the file


def _is_audio_frame(data: bytes) -> bool:
    """ADTS AAC (sync 0xFFF, layer 0), MPEG audio (sync 0xFFE) or AC-3: HLS packed audio."""
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:
        return True
    return data.startswith(_AC3)


def _after_id3_is_media(data: bytes) -> bool:
    """An ID3 tag (HLS packed audio's timestamp), then audio frames or TS."""
    if len(data) < 10:
        return False
    size_bytes = data[6:10]
    if any(b & 0x80 for b in size_bytes):  # sizes are syncsafe: 7 bits a byte
        return False
    size = 0
    for b in size_bytes:
        size = size << 7 | b
    end = 10 + size + (10 if data[5] & 0x10 else 0)  # the footer flag adds 10 bytes
    rest = data[end:]
    if not rest:
        return True  # the tag runs past what we read: nothing says it is not media
    return _is_audio_frame(rest) or _is_ts(rest) or rest.startswith(b"ID3")


def _is_webvtt(data: bytes) -> bool:
    body = data.removeprefix(b"\xef\xbb\xbf")
    return body.startswith(b"WEBVTT") and (
        len(body) == 6 or body[6:7] in (b" ", b"\t", b"\n", b"\r")
    )
