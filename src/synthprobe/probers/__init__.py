"""One prober per kind, behind the ``Prober`` protocol, found through ``prober_for``.

A prober only probes: the runner owns the deadline, retries, the clock and the
result record (as blackbox_exporter's handler does for its probers). Modules load on
first use: a run of feed probes never imports the HLS parser or the WebSocket stack.
"""

from __future__ import annotations

import importlib

from synthprobe.models import Kind
from synthprobe.probers.base import Network, ProbeOutcome, Prober

REGISTRY: dict[Kind, tuple[str, str]] = {
    Kind.HTTP: ("synthprobe.probers.http", "HttpProber"),
    Kind.FEED: ("synthprobe.probers.http", "HttpProber"),
    Kind.UPLOAD: ("synthprobe.probers.upload", "UploadProber"),
    Kind.LIVE: ("synthprobe.probers.live", "LiveProber"),
    Kind.MESSAGING: ("synthprobe.probers.messaging", "MessagingProber"),
}
"""Kind -> (module, class)."""
_LOADED: dict[Kind, Prober] = {}


def prober_for(kind: Kind) -> Prober:
    """The prober of a kind, imported and built on first use."""
    found = _LOADED.get(kind)
    if found is None:
        module, name = REGISTRY[kind]
        found = _LOADED[kind] = getattr(importlib.import_module(module), name)()
    return found


__all__ = ["REGISTRY", "Network", "ProbeOutcome", "Prober", "prober_for"]
