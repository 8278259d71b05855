"""One prober per kind, behind the ``Prober`` protocol, found through ``PROBERS``.

A prober only probes: the runner owns the deadline, retries, the clock and the
result record (as blackbox_exporter's handler does for its probers).
"""

from __future__ import annotations

from synthprobe.models import Kind
from synthprobe.probers.base import Network, ProbeOutcome, Prober
from synthprobe.probers.http import HttpProber
from synthprobe.probers.live import LiveProber
from synthprobe.probers.messaging import MessagingProber
from synthprobe.probers.upload import UploadProber

PROBERS: dict[Kind, Prober] = {
    Kind.HTTP: HttpProber(),
    Kind.FEED: HttpProber(),
    Kind.UPLOAD: UploadProber(),
    Kind.LIVE: LiveProber(),
    Kind.MESSAGING: MessagingProber(),
}
"""Every kind has a prober."""

__all__ = ["PROBERS", "Network", "ProbeOutcome", "Prober"]
