"""A user's path in one probe: the probe's own request, then its ``steps`` in order,
each classified like a probe, values captured from one response used in the next.

One deadline (the runner's) covers every step; the timeline sums each phase over the
steps. ``details.steps`` lists what each step got; on a failure ``details.step`` names
the step and the error starts with it (``feed: status 503, expected 2xx``).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import quote

from synthprobe.classify import ProbeFailure, classify_exception
from synthprobe.expect import Observation, check
from synthprobe.jsonpath import scalar_text
from synthprobe.models import Capture, Journey, JourneyStep, ProbeSpec, Reason
from synthprobe.probers.base import Network, ProbeOutcome
from synthprobe.probers.exchange import Exchange, Request, exchange
from synthprobe.timing import Timeline

_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def fill(template: str, values: dict[str, str], *, url: bool = False, as_json: bool = False) -> str:
    """``{{NAME}}`` replaced by its captured value: URL-encoded in a URL's query,
    JSON-escaped in a JSON body, as it is elsewhere."""
    query_from = template.find("?") if url else -1

    def value(m: re.Match[str]) -> str:
        text = values[m.group(1)]  # the config checked every name is captured earlier
        if as_json:
            return json.dumps(text)[1:-1]
        if url and query_from != -1 and m.start() > query_from:
            return quote(text, safe="")
        return text

    return _PLACEHOLDER_RE.sub(value, template)


def capture(c: Capture, obs: Observation) -> str | None:
    """The captured value, or None when the response does not hold it."""
    if c.source == "status":
        return str(obs.status)
    if c.source == "header":
        found = [v for k, v in obs.headers if k == c.arg.lower()]
        return found[0] if found else None
    text = obs.body.decode("utf-8", errors="replace")
    if c.source == "regex":
        m = re.search(c.arg, text)
        if m is None:
            return None
        return m.group(1) if m.groups() else m.group(0)
    try:
        return scalar_text(json.loads(text), c.arg)
    except ValueError:
        return None


class Walk:
    """The state of one attempt's journey."""

    def __init__(self, spec: ProbeSpec, journey: Journey, timeline: Timeline) -> None:
        self.spec = spec
        self.journey = journey
        self.timeline = timeline
        self.values: dict[str, str] = {}
        self.steps: list[dict[str, Any]] = []
        timeline.details["steps"] = self.steps

    def starting(self, name: str) -> float:
        self.timeline.details["step"] = name
        return time.perf_counter()

    def finished(self, name: str, started: float, got: Exchange | None) -> float:
        elapsed = time.perf_counter() - started
        self.steps.append(
            {
                "name": name,
                "status": got.observation.status if got else None,
                "total_ms": round(elapsed * 1000, 3),
                "http_version": self.timeline.protocol,
            }
        )
        return elapsed

    def judge(
        self, name: str, expect_of: JourneyStep | ProbeSpec, got: Exchange, elapsed: float
    ) -> None:
        failed = check(expect_of.expect, got.observation, elapsed)
        if failed is not None:
            raise ProbeFailure(failed.reason, f"{name}: {failed.error}", failed.details)
        captures = self.journey.capture if isinstance(expect_of, ProbeSpec) else expect_of.capture
        for c in captures:
            value = capture(c, got.observation)
            if value is None:
                source = f"{c.source}:{c.arg}" if c.arg else c.source
                raise ProbeFailure(
                    Reason.SERVER_ASSERTION, f"{name}: capture {c.name} ({source}) found nothing"
                )
            self.values[c.name] = value
            if c.name in self.journey.mask:
                self.timeline.secrets.add(value)


async def walk(
    spec: ProbeSpec, first: Exchange, started: float, timeline: Timeline, net: Network
) -> ProbeOutcome:
    """The steps after the probe's own request (already made, ``first``)."""
    journey = spec.journey
    assert journey is not None
    state = Walk(spec, journey, timeline)
    state.judge(journey.main, spec, first, state.finished(journey.main, started, first))
    bytes_in, bytes_out = first.bytes_in, first.bytes_out
    for step in journey.steps:
        begun = state.starting(step.name)
        got: Exchange | None = None
        try:
            body = step.body
            if body is not None:
                body = fill(body, state.values, as_json=step.json_body)
            headers = tuple((k, fill(v, state.values)) for k, v in step.headers)
            request = Request(
                step.method,
                fill(step.url, state.values, url=True),
                headers,
                body.encode() if body is not None else None,
                "application/json" if step.json_body else ("text/plain" if body else None),
            )
            got = await exchange(
                request,
                timeline,
                net,
                follow_redirects=step.follow_redirects,
                verify_tls=spec.verify_tls,
                max_body=step.max_body,
                ip_version=spec.ip_version,
                http_version=spec.http_version,
                resolver=spec.resolver,
            )
        except Exception as exc:
            state.finished(step.name, begun, None)
            found = classify_exception(exc)
            if found is None:
                raise  # a bug of ours: never disguised as the step's fault
            raise ProbeFailure(found.reason, f"{step.name}: {found.error}", found.details) from exc
        elapsed = state.finished(step.name, begun, got)
        bytes_in += got.bytes_in
        bytes_out += got.bytes_out
        state.judge(step.name, step, got, elapsed)
    timeline.details.pop("step", None)
    return ProbeOutcome(None, bytes_in, bytes_out, {})
