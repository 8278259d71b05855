"""``http`` and ``feed`` probes: one request, the response checked by the runner; or a
journey, the request and its ``steps`` checked by ``journey.py``."""

from __future__ import annotations

import time

from synthprobe.models import ProbeSpec
from synthprobe.probers.attempt import Attempt
from synthprobe.probers.base import Network, ProbeOutcome
from synthprobe.probers.exchange import Request, fetch
from synthprobe.probers.journey import walk


class HttpProber:
    """GET (or the configured method) the URL once."""

    def prepare(self, spec: ProbeSpec[None]) -> None:
        """Nothing to build."""

    async def probe(self, spec: ProbeSpec[None], attempt: Attempt, net: Network) -> ProbeOutcome:
        body = spec.body.encode() if spec.body is not None else None
        kind = (
            ("application/json" if spec.json_body else "text/plain") if body is not None else None
        )
        request = Request(spec.method, spec.url, spec.headers, body, kind)
        if spec.journey is None:
            result = await fetch(spec, request, attempt, net)
            attempt.details.update(result.details)
            return ProbeOutcome(result.observation, result.bytes_in, result.bytes_out)
        attempt.details["step"] = spec.journey.main
        started = time.perf_counter()
        result = await fetch(spec, request, attempt, net)
        outcome = await walk(spec, result, started, attempt, net)
        attempt.details.update(result.details)
        return outcome
