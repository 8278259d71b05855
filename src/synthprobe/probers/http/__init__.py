"""Kinds ``http`` and ``feed``: one request, the response checked against ``expect``.
They differ only in name (``feed`` marks a platform's feed in reports and selectors)."""

from __future__ import annotations

from synthprobe.probers.kind import KindInfo

KINDS = (
    KindInfo(
        name="http",
        prober="synthprobe.probers.http.prober:HttpProber",
        journeys=True,
        request_body=True,
        kernel_timed=True,
    ),
    KindInfo(
        name="feed",
        prober="synthprobe.probers.http.prober:HttpProber",
        journeys=True,
        request_body=True,
        kernel_timed=True,
    ),
)
