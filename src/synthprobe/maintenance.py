"""Pure: is this result inside a maintenance window?

A recurring window starts at a local time in its own zone (``zoneinfo``), so a Sunday
03:00 Europe/Paris window is 02:00Z in winter and 01:00Z in summer. A window may run
past midnight: the day before is checked too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from synthprobe.models import MaintenanceWindow, ProbeSpec


def selected(spec: ProbeSpec, selectors: Sequence[str]) -> bool:
    """A name, a kind or ``tag:NAME`` (``--only`` and a window's ``only``); none: all."""
    if not selectors:
        return True
    for selector in selectors:
        if selector.startswith("tag:"):
            if selector[4:] in spec.tags:
                return True
        elif selector in (spec.name, spec.kind):
            return True
    return False


def inside(window: MaintenanceWindow, epoch: float) -> bool:
    if not window.every:
        assert window.start is not None and window.end is not None
        return window.start <= epoch < window.end
    zone = ZoneInfo(window.timezone)
    local = datetime.fromtimestamp(epoch, zone)
    days = window.duration / 86400
    for back in range(int(days) + 2):  # today, and the days a long window spans back
        day = (local - timedelta(days=back)).date()
        if day.weekday() not in window.every:
            continue
        start = datetime(day.year, day.month, day.day, *window.at, tzinfo=zone).timestamp()
        if start <= epoch < start + window.duration:
            return True
    return False


def in_maintenance(spec: ProbeSpec, epoch: float, windows: Sequence[MaintenanceWindow]) -> bool:
    return any(selected(spec, w.only) and inside(w, epoch) for w in windows)
