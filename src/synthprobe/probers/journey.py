"""A user's path in one probe: the probe's own request, then its ``steps`` in order,
each classified like a probe, values captured from one response used in the next.

One deadline (the runner's) covers every step; the attempt sums each phase over the
steps. ``details.steps`` lists what each step got; on a failure ``details.step`` names
the step, and the runner starts the error with it, once (``feed: status 503, expected
2xx``).

Captured values are a server's data put into our requests: a value too long to keep, a
URL that cannot be built from it, a scheme that is not http(s), a host name or a header
value it makes invalid is ``server.assertion`` naming the capture and where it was put,
never a request we send malformed or an exception of httpx's.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, assert_never
from urllib.parse import quote, unquote

from synthprobe.classify import ProbeFailure
from synthprobe.expect import Response, Walked, find, judge
from synthprobe.jsonpath import scalar_text
from synthprobe.models import Capture, Journey, JourneyStep, ProbeSpec, Reason
from synthprobe.probers.attempt import Attempt
from synthprobe.probers.base import Network, ProbeOutcome
from synthprobe.probers.exchange import Exchange, Request, exchange
from synthprobe.probers.urls import Flaw, Unusable, usable

_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MAX_CAPTURE = 64 * 1024
"""Characters one captured value may hold: far above any token, id or URL, and small
enough that a step's URL, headers and body stay bounded whatever a server sends."""
SHOWN = 80
"""Characters of a captured value an error message shows."""
_HEADER_BREAKERS = re.compile(r"[\x00\r\n\x0b\x0c]")
"""What no header value may carry: a line break would start another header (request
splitting); NUL and the other vertical spaces are refused by HTTP stacks."""


def _names(template: str) -> list[str]:
    """The captures a template uses, in order, each once."""
    return list(dict.fromkeys(_PLACEHOLDER_RE.findall(template)))


def _short(text: str) -> str:
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "...")


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


def _captures_named(names: list[str]) -> str:
    return ("capture " if len(names) == 1 else "captures ") + ", ".join(names)


def _unusable(exc: Unusable, used: str, text: str) -> str:
    """Why the URL a step's captures made is not one we can request, naming them."""
    match exc.flaw:
        case Flaw.INVALID:
            return f"the URL built from {used} is not a valid URL ({exc.why}): {_short(text)}"
        case Flaw.SCHEME:
            return f"captured URL is not http(s): {_short(text)} ({used})"
        case Flaw.NO_HOST | Flaw.HOST:
            return (
                f"{used} put into the URL's host gives {unquote(exc.raw_host)!r}, not a host name"
            )
        case Flaw.PORT:
            assert exc.url is not None
            return f"{used} put into the URL gives port {exc.url.port}, not 1 to 65535"
        case _:
            assert_never(exc.flaw)


def step_url(step: JourneyStep, values: dict[str, str]) -> str:
    """The step's URL with its captures in it; ``server.assertion`` when the captured data
    does not make a URL we can request (httpx would refuse it, or ask the wrong thing)."""
    names = _names(step.url)
    text = fill(step.url, values, url=True)
    if not names:
        return text  # the config checked it
    used = _captures_named(names)
    try:
        usable(text)
    except Unusable as exc:
        raise ProbeFailure(Reason.SERVER_ASSERTION, _unusable(exc, used, text)) from None
    return text


def step_headers(step: JourneyStep, values: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The step's headers with their captures in them; ``server.assertion`` when a value
    cannot be sent as a header."""
    filled: list[tuple[str, str]] = []
    for key, template in step.headers:
        names = _names(template)
        value = fill(template, values)
        if names:
            used = _captures_named(names)
            bad = _HEADER_BREAKERS.search(value)
            if bad:
                what = "a line break (CR/LF)" if bad.group() in "\r\n" else f"{bad.group()!r}"
                raise ProbeFailure(
                    Reason.SERVER_ASSERTION,
                    f"{used} put into header {key} holds {what}, which a header "
                    f"value cannot carry: {_short(value)}",
                )
            if not value.isascii():
                raise ProbeFailure(
                    Reason.SERVER_ASSERTION,
                    f"{used} put into header {key} is not ASCII, which HTTP "
                    f"header text must be: {_short(value)}",
                )
            # what browsers do to a header value (Fetch: strip leading/trailing whitespace)
            value = value.strip(" \t")
        filled.append((key, value))
    return tuple(filled)


def step_request(step: JourneyStep, values: dict[str, str]) -> Request:
    """The step's request, captured values in place."""
    body = step.body
    if body is not None:
        body = fill(body, values, as_json=step.json_body)
    return Request(
        step.method,
        step_url(step, values),
        step_headers(step, values),
        body.encode() if body is not None else None,
        "application/json" if step.json_body else ("text/plain" if body else None),
    )


def capture(c: Capture, obs: Response) -> str | None:
    """The captured value, or None when the response does not hold it."""
    if c.source == "status":
        return str(obs.status)
    if c.source == "header":
        found = [v for k, v in obs.headers if k == c.arg.lower()]
        return found[0] if found else None
    text = obs.body.decode("utf-8", errors="replace")
    if c.source == "regex":
        m = find(c.arg, text, "the body")
        if m is None:
            return None
        return str(m.group(1) if m.groups() else m.group(0))
    if text.startswith("\ufeff"):
        text = text[1:]  # a UTF-8 BOM before JSON, skipped as expect.json skips it
    try:
        return scalar_text(json.loads(text), c.arg)
    except (ValueError, RecursionError):  # not JSON, a huge number, or nested too deep
        return None


class Walk:
    """The state of one attempt's journey."""

    def __init__(self, spec: ProbeSpec, journey: Journey, attempt: Attempt) -> None:
        self.spec = spec
        self.journey = journey
        self.attempt = attempt
        self.values: dict[str, str] = {}
        self.steps: list[dict[str, Any]] = []
        attempt.details["steps"] = self.steps

    def starting(self, name: str) -> float:
        self.attempt.details["step"] = name
        return time.perf_counter()

    def finished(self, name: str, started: float, got: Exchange | None) -> float:
        elapsed = time.perf_counter() - started
        self.steps.append(
            {
                "name": name,
                "status": got.observation.status if got else None,
                "total_ms": round(elapsed * 1000, 3),
                "http_version": self.attempt.protocol,
            }
        )
        return elapsed

    def judge(self, expect_of: JourneyStep | ProbeSpec, got: Exchange, elapsed: float) -> None:
        # the step is judged as it ends, by the one judge every kind's result goes
        # through: a failed step ends the walk
        failed = judge(expect_of.expect, got.observation, elapsed)
        if failed is not None:
            raise ProbeFailure(failed.reason, failed.error, failed.details)
        captures = self.journey.capture if isinstance(expect_of, ProbeSpec) else expect_of.capture
        for c in captures:
            source = f"{c.source}:{c.arg}" if c.arg else c.source
            try:
                value = capture(c, got.observation)
            except ProbeFailure as exc:  # a regex out of budget
                raise ProbeFailure(
                    exc.classified.reason, f"capture {c.name} ({source}): {exc}"
                ) from None
            if value is None:
                raise ProbeFailure(
                    Reason.SERVER_ASSERTION, f"capture {c.name} ({source}) found nothing"
                )
            if len(value) > MAX_CAPTURE:
                raise ProbeFailure(
                    Reason.SERVER_ASSERTION,
                    f"capture {c.name} ({source}) is {len(value):,} characters, over "
                    f"the {MAX_CAPTURE:,} a captured value may hold",
                )
            try:
                value.encode()
            except UnicodeEncodeError:  # JSON may escape a lone surrogate ("\ud800")
                raise ProbeFailure(
                    Reason.SERVER_ASSERTION,
                    f"capture {c.name} ({source}) is not text (it holds a lone "
                    f"surrogate): {_short(value)}",
                ) from None
            self.values[c.name] = value
            if c.name in self.journey.mask:
                self.attempt.secrets.add(value)


async def walk(
    spec: ProbeSpec, first: Exchange, started: float, attempt: Attempt, net: Network
) -> ProbeOutcome:
    """The steps after the probe's own request (already made, ``first``)."""
    journey = spec.journey
    assert journey is not None
    state = Walk(spec, journey, attempt)
    state.judge(spec, first, state.finished(journey.main, started, first))
    bytes_in, bytes_out = first.bytes_in, first.bytes_out
    for step in journey.steps:
        begun = state.starting(step.name)
        try:
            request = step_request(step, state.values)
        except ProbeFailure:  # the captured data, naming the capture
            state.finished(step.name, begun, None)
            raise
        try:
            got = await exchange(
                request,
                attempt,
                net,
                follow_redirects=step.follow_redirects,
                verify_tls=spec.verify_tls,
                max_body=step.max_body,
                ip_version=spec.ip_version,
                http_version=spec.http_version,
                resolver=spec.resolver,
            )
        except Exception:
            # the runner classifies it (a bug of ours stays one) and names the step
            state.finished(step.name, begun, None)
            raise
        elapsed = state.finished(step.name, begun, got)
        bytes_in += got.bytes_in
        bytes_out += got.bytes_out
        state.judge(step, got, elapsed)
    attempt.details.pop("step", None)
    return ProbeOutcome(Walked(), bytes_in, bytes_out)
