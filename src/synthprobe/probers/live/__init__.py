"""Kind ``live``: an HLS stream must be served, playable and moving. This module is what
the config and ``probe list`` know of the kind; the prober is in ``prober.py``."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from synthprobe.config.nodes import Located
from synthprobe.config.readers import Reader, mapping
from synthprobe.models import Reason
from synthprobe.probers.kind import KindInfo
from synthprobe.steps import KindStep

LIVE_KEYS = {"check_advancing", "variant", "segments", "max_age"}


class Variant(enum.StrEnum):
    """Which variant of an HLS master playlist a live probe follows."""

    FIRST = "first"
    HIGHEST = "highest"
    LOWEST = "lowest"


@dataclass(frozen=True, slots=True)
class LiveSpec:
    """What a ``live`` probe checks of an HLS stream."""

    check_advancing: bool = False
    """Refetch the playlist after one target duration: it must have moved on."""
    variant: Variant = Variant.FIRST
    """Variant to follow in a master playlist."""
    segments: int = 1
    """How many of the newest segments to download (0: none)."""
    max_age: float | None = None
    """Seconds: with PROGRAM-DATE-TIME, the newest segment must be younger than this."""


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
    )


REFRESH = KindStep(
    "refresh",
    Reason.TIMEOUT_TOTAL,
    "live playlist re-check not complete within {t} (allow 1.5 target durations)",
)
"""Waiting to reload the playlist (``check_advancing``)."""

KINDS = (
    KindInfo(
        name="live",
        prober="synthprobe.probers.live.prober:LiveProber",
        block="live",
        parse_block=parse,
        steps=(REFRESH,),
    ),
)
