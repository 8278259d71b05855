"""Kind ``messaging``: a WebSocket round trip (HTTP/1.1 upgrade). This module is what the
config and ``probe list`` know of the kind; the prober is in ``prober.py``."""

from __future__ import annotations

from dataclasses import dataclass

from synthprobe.config.nodes import Located, fail
from synthprobe.config.readers import Field, Reader, Table
from synthprobe.models import Reason
from synthprobe.observes import Observes
from synthprobe.patterns import Pattern
from synthprobe.probers.kind import KindInfo
from synthprobe.steps import KindStep


@dataclass(frozen=True, slots=True)
class MessagingSpec:
    """What a ``messaging`` probe sends and waits for."""

    send: str
    """Text message sent once the WebSocket is open."""
    expect: str | None = None
    """A reply containing this text passes."""
    expect_regex: Pattern | None = None
    """A reply matching this regex passes."""


FIELDS = Table(
    Field("send", Reader.text, required=True),
    Field("expect", Reader.text),
    Field("expect_regex", Reader.regex),
)


def parse(r: Reader, loc: Located | None, path: str, probe: Located) -> MessagingSpec:
    if loc is None:
        probe_path = path.rpartition(".")[0]
        fail(probe, probe_path, 'missing required key "messaging" (with send and expect)')
    block = FIELDS.read(r, loc, path)
    if "expect" not in block.given and "expect_regex" not in block.given:
        block.add(loc, path, 'missing "expect" or "expect_regex": what reply passes?')
    block.done()
    return MessagingSpec(**block.fields())


REPLY = KindStep("reply", Reason.TIMEOUT_READ, "no matching reply within {t}")
"""Waiting for the reply that matches."""

KINDS = (
    KindInfo(
        name="messaging",
        prober="synthprobe.probers.messaging.prober:MessagingProber",
        schemes=("ws", "wss"),
        default_method="WS",
        block="messaging",
        parse_block=parse,
        steps=(REPLY,),
        observes=Observes.REPLY,
        negotiates_http=False,  # an HTTP/1.1 Upgrade, always: WebSockets over HTTP/2 are rare
    ),
)
