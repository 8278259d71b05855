"""What a kind observes, and so which ``expect`` keys it can judge.

Light on purpose (no httpx): the config reads it to refuse the keys a kind cannot
judge, before anything is probed. The judge itself is ``expect.judge``."""

from __future__ import annotations

import enum
from typing import assert_never


class Observes(enum.Enum):
    """What a kind's prober observes (``KindInfo.observes``), and so which ``expect``
    keys its results can be judged on. A new kind declares one of these; the config
    refuses any other key in a probe's own ``expect``."""

    RESPONSE = "response"
    """An HTTP response: http, feed, upload and every journey step."""
    SEGMENTS = "segments"
    """A playlist or MPD and the segments it names: live. Only the playlist's (or
    MPD's) status and headers are the user's to judge; the segments have their checks."""
    REPLY = "reply"
    """A reply matched by the kind's own block: tcp, messaging."""
    ANSWERS = "answers"
    """DNS answers."""


_HTTP_KEYS = frozenset({"status", "body_contains", "body_regex", "headers", "json"})


def judged_keys(observes: Observes) -> frozenset[str]:
    """The ``expect`` keys a kind that observes this can judge (SPEC "Fourth wave").
    ``max_latency`` is judged for every kind; ``cert_min_days`` wherever a URL may carry
    TLS (https, wss, tls)."""
    match observes:
        case Observes.RESPONSE:
            keys = _HTTP_KEYS | {"cert_min_days"}
        case Observes.SEGMENTS:
            keys = frozenset({"status", "headers", "cert_min_days"})
        case Observes.REPLY:
            keys = frozenset({"cert_min_days"})
        case Observes.ANSWERS:
            keys = frozenset({"answers"})
        case _:
            assert_never(observes)
    return keys | {"max_latency"}


def why_not(key: str, observes: Observes) -> str:
    """Why a kind that observes this cannot judge ``key``, for the config's message."""
    if key == "answers":
        return "only dns probes have answers"
    if key == "cert_min_days":
        return "it makes no TLS connection of its own"
    match observes:
        case Observes.SEGMENTS:
            return "a live probe judges its playlist's or MPD's status and headers only"
        case Observes.REPLY | Observes.ANSWERS:
            what = {"status": "HTTP status", "headers": "HTTP headers"}.get(key, "HTTP body")
            if observes is Observes.REPLY:
                return f"it has no {what}: its replies are matched by its own block"
            return f"it has no {what}"
        case Observes.RESPONSE:
            return "an HTTP response has no such part"
        case _:
            assert_never(observes)
