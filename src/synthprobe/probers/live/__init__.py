"""Kind ``live``: an HLS or DASH stream must be served, playable and moving, as viewers
see it. This module is what the config and ``probe list`` know of the kind; the prober is
in ``prober.py``."""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass

from synthprobe.config.nodes import Located, fail
from synthprobe.config.readers import Field, Reader, Table, integer, type_name
from synthprobe.models import Reason
from synthprobe.observes import Observes
from synthprobe.probers.kind import KindInfo
from synthprobe.steps import KindStep

MAX_REALTIME = 100.0
"""The largest ``realtime`` factor (a segment may take 100 times its duration)."""


class Variant(enum.StrEnum):
    """Which variant of an HLS master playlist (or Representation of an MPD) a live probe
    follows; ``all`` follows every one."""

    FIRST = "first"
    HIGHEST = "highest"
    LOWEST = "lowest"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class LiveSpec:
    """What a ``live`` probe checks of an HLS or DASH stream."""

    check_advancing: bool = False
    """Refetch the playlist after one target duration: it must have moved on."""
    variant: Variant = Variant.FIRST
    """Variant to follow in a master playlist."""
    segments: int = 1
    """How many of the newest segments to download (0: none)."""
    max_age: float | None = None
    """Seconds: with PROGRAM-DATE-TIME, the newest segment must be younger than this."""
    realtime: float = 1.0
    """Each segment must download within this many times its duration (0: not checked)."""
    media_check: bool = True
    """Each downloaded segment must start like media (TS, fMP4, AAC, WebVTT...)."""


def _variant(r: Reader, loc: Located, path: str) -> Variant:
    return Variant(r.choice(loc, path, [v.value for v in Variant], "variant"))


def parse(r: Reader, loc: Located | None, path: str, probe: Located) -> LiveSpec:
    if loc is None:
        return LiveSpec()
    block = FIELDS.read(r, loc, path)
    block.done()
    return LiveSpec(**block.fields())


def _ratio(r: Reader, loc: Located, path: str) -> float:
    """A factor such as 1.0 or 0.5 (a number, or a string holding one)."""
    value = loc.value
    if isinstance(value, str):
        text = r.x.expand(loc, path, value).strip()
        value = float(text) if re.fullmatch(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", text) else text
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail(loc, path, f"expected a number such as 1.0, got {type_name(value)}")
    if not (math.isfinite(value) and 0 <= value <= MAX_REALTIME):
        fail(loc, path, f"must be between 0 and {MAX_REALTIME:g} (0: off), got {value}")
    return float(value)


FIELDS = Table(
    Field("check_advancing", Reader.boolean),
    Field("variant", _variant),
    Field("segments", integer(0, 20)),
    Field("max_age", Reader.duration),
    Field("realtime", _ratio),
    Field("media_check", Reader.boolean),
)


REFRESH = KindStep(
    "refresh",
    Reason.TIMEOUT_TOTAL,
    "live playlist re-check not complete within {t} (allow 1.5 target durations)",
)
"""Waiting to reload the playlist (``check_advancing``)."""
VARIANTS = KindStep(
    "variants",
    Reason.TIMEOUT_TOTAL,
    "live variants not all checked within {t} (details.variants says which were pending)",
)
"""``variant: all``: the variants are checked concurrently, each on its own clock."""

KINDS = (
    KindInfo(
        name="live",
        prober="synthprobe.probers.live.prober:LiveProber",
        block="live",
        parse_block=parse,
        observes=Observes.SEGMENTS,
        steps=(REFRESH, VARIANTS),
    ),
)
