"""The steps of an attempt's timeline: those every exchange shares, and those a kind adds.

Light on purpose (no asyncio): kinds declare their steps in ``KindInfo``, which the
config reads, and ``probe validate`` must stay quick to start.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from synthprobe.models import Reason


class Step(enum.StrEnum):
    """The steps every network exchange goes through, in order. Where a deadline cuts
    one decides the reason (``classify.classify_deadline``)."""

    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    SEND = "send"
    SEND_BODY = "send_body"
    WAIT = "wait"
    BODY = "body"


@dataclass(frozen=True, slots=True)
class KindStep:
    """A step one kind adds to the timeline (a live playlist's re-check, a WebSocket
    reply), declared in its ``KindInfo`` with what a deadline cutting it means."""

    name: str
    """Key in ``Timeline.durations``."""
    timeout_reason: Reason
    """The reason when the deadline passes during this step."""
    timeout_text: str
    """The error then; ``{t}`` is the deadline."""
    counts_as: Step | None = None
    """The shared step whose phase this one's time counts in (a TCP probe's wait for a
    reply is its ttfb), or None for a step of its own."""

    @property
    def key(self) -> str:
        """Where the timeline keeps its time."""
        return self.counts_as.value if self.counts_as is not None else self.name
