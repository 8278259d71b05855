"""Kind ``live``: an HLS or DASH stream must be served, playable and moving, as viewers
see it. This module is what the config and ``probe list`` know of the kind; the prober is
in ``prober.py``."""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass

from synthprobe.config.nodes import Located, fail
from synthprobe.config.readers import Reader, mapping, type_name
from synthprobe.models import Reason
from synthprobe.probers.kind import KindInfo
from synthprobe.steps import KindStep

LIVE_KEYS = {"check_advancing", "variant", "segments", "max_age", "realtime", "media_check"}
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


def parse(r: Reader, loc: Located | None, path: str, probe: Located) -> LiveSpec:
    base = LiveSpec()
    if loc is None:
        return base
    m = mapping(loc, path, LIVE_KEYS)
    return LiveSpec(
        check_advancing=r.boolean(m["check_advancing"], f"{path}.check_advancing")
        if "check_advancing" in m
        else base.check_advancing,
        variant=Variant(
            r.choice(m["variant"], f"{path}.variant", [v.value for v in Variant], "variant")
        )
        if "variant" in m
        else base.variant,
        segments=r.integer(m["segments"], f"{path}.segments", 0, 20)
        if "segments" in m
        else base.segments,
        max_age=r.duration(m["max_age"], f"{path}.max_age") if "max_age" in m else None,
        realtime=_ratio(r, m["realtime"], f"{path}.realtime") if "realtime" in m else base.realtime,
        media_check=r.boolean(m["media_check"], f"{path}.media_check")
        if "media_check" in m
        else base.media_check,
    )


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
        steps=(REFRESH, VARIANTS),
    ),
)
