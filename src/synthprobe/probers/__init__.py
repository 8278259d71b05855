"""One folder per kind, each declaring its ``KindInfo``; this module is the registry.

A prober only probes: the runner owns the deadline, retries, the clock and the
result record (as blackbox_exporter's handler does for its probers). Prober modules
load on first use: a run of feed probes never imports the HLS parser or the WebSocket
stack, and ``probe validate`` imports no prober at all.

Adding a kind: a package here exporting ``KINDS`` (see ``probers/kind.py``), and one
line below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from synthprobe.probers.kind import KindInfo

if TYPE_CHECKING:
    from synthprobe.probers.base import Prober

_PACKAGES = (
    "synthprobe.probers.http",
    "synthprobe.probers.upload",
    "synthprobe.probers.live",
    "synthprobe.probers.messaging",
    "synthprobe.probers.tcp",
    "synthprobe.probers.dns",
    "synthprobe.probers.grpc",
)
"""Each exports ``KINDS: tuple[KindInfo, ...]``; their order is the order of help texts."""


def _registry() -> dict[str, KindInfo]:
    kinds: dict[str, KindInfo] = {}
    for package in _PACKAGES:
        for info in importlib.import_module(package).KINDS:
            assert info.name not in kinds, f"kind {info.name} registered twice"
            kinds[info.name] = info
    return kinds


KINDS: dict[str, KindInfo] = _registry()
"""kind name -> its KindInfo."""
DEFAULT_KIND = "http"
_PROBERS: dict[str, Prober[Any]] = {}


def prober_for(kind: str) -> Prober[Any]:
    """The prober of a kind, imported and built on first use."""
    found = _PROBERS.get(kind)
    if found is None:
        found = _PROBERS[kind] = KINDS[kind].load_prober()
    return found


__all__ = ["DEFAULT_KIND", "KINDS", "KindInfo", "prober_for"]
