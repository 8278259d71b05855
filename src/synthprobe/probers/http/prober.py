"""``http`` and ``feed`` probes: one request, the response checked by the runner."""

from __future__ import annotations

from synthprobe.models import ProbeSpec
from synthprobe.probers.base import Network, ProbeOutcome
from synthprobe.probers.exchange import Request, fetch
from synthprobe.timing import Timeline


class HttpProber:
    """GET (or the configured method) the URL once."""

    def prepare(self, spec: ProbeSpec) -> None:
        """Nothing to build."""

    async def probe(self, spec: ProbeSpec, timeline: Timeline, net: Network) -> ProbeOutcome:
        result = await fetch(spec, Request(spec.method, spec.url, spec.headers), timeline, net)
        return ProbeOutcome(result.observation, result.bytes_in, result.bytes_out, result.details)
