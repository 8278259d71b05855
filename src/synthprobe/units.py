"""Durations, sizes and times as people write them in configs and options, and back for
display."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB|k|K)?\s*$")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "k": 1024,
    "K": 1024,
}


def is_whole_number(text: str) -> bool:
    """ASCII digits and nothing else: ``str.isdigit`` also says yes to "²", which
    ``int`` refuses (a traceback where a clear message was due)."""
    return text.isascii() and text.isdigit()


MAX_DEADLINE = 86400.0
"""The longest deadline a probe may have (24h), from a config or from ``--timeout``."""


def parse_duration(value: object) -> float:
    """``250ms``, ``5s``, ``2m``, ``1h`` or a number of seconds -> seconds.

    Raises ValueError with a message meant for the user.
    """
    if isinstance(value, bool):
        raise ValueError(f"bad duration {value!r}: use 250ms, 5s, 2m or a number of seconds")
    if isinstance(value, int) and abs(value) > 10**9:
        raise ValueError(f"bad duration {value!r}: too large")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    else:
        raise ValueError(f"bad duration {value!r}: use 250ms, 5s, 2m or a number of seconds")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"bad duration {value!r}: must be a finite number, 0 or more")
    return seconds


def parse_size(value: object) -> int:
    """``512``, ``64KiB``, ``1MiB``, ``2MB`` -> bytes. Raises ValueError for the user."""
    if isinstance(value, bool):
        raise ValueError(f"bad size {value!r}: use 512, 64KiB or 1MiB")
    if isinstance(value, int):
        size = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        size = int(value)
    elif isinstance(value, str) and (m := _SIZE_RE.match(value)):
        size = int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])
    else:
        raise ValueError(f"bad size {value!r}: use 512, 64KiB or 1MiB")
    if size < 0:
        raise ValueError(f"bad size {value!r}: must be 0 or more")
    return size


def format_duration(seconds: float) -> str:
    """The inverse of ``parse_duration`` for display: ``1.5s``, ``250ms``."""
    ms = seconds * 1000
    if seconds < 1 and ms == int(ms):
        return f"{int(ms)}ms"
    return f"{seconds:.6f}".rstrip("0").rstrip(".") + "s"


def format_span(seconds: float) -> str:
    """A duration for people: ``45s``, ``15m00s``, ``2h05m``."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def format_size(size: int) -> str:
    """Bytes for display: ``512B``, ``64KiB``, ``1.5MiB``."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:g}{unit}"
    return f"{size}B"


def format_utc(epoch: float, *, always_ms: bool = True) -> str:
    """``2026-11-22T10:00:00.123Z``; with ``always_ms=False`` the milliseconds only when
    there are some (``2026-11-22T10:00:00Z``). Milliseconds are truncated, not rounded:
    a result's ``ts`` never claims a start later than the real one."""
    stamp = datetime.fromtimestamp(epoch, UTC)
    ms = stamp.microsecond // 1000
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms:03d}Z" if ms or always_ms else f"{text}Z"


def parse_utc(text: str) -> float:
    """An ISO 8601 time -> epoch seconds; without a zone it is UTC. Raises ValueError."""
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def parse_when(text: str, reference: float) -> float:
    """``24h``/``90m`` (before ``reference``) or an ISO 8601 time. Raises ValueError."""
    try:
        return reference - parse_duration(text)
    except ValueError:
        pass
    try:
        return parse_utc(text)
    except ValueError:
        raise ValueError(
            f"{text!r}: use a duration such as 24h or 90m, or a time such as 2026-11-22T06:00:00Z"
        ) from None
