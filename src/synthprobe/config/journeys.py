"""Journeys: a probe's ``steps``, its ``capture``, ``mask`` and ``step_name``, and each
step's block. One table per block (``config/readers.py``); every problem of every step
is reported, each bad capture and header at its own line.

The probe's own request is the first step; ``{{NAME}}`` in a later step may use only what
an earlier step captures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from synthprobe.config.expectations import read_expect
from synthprobe.config.nodes import Located, fail
from synthprobe.config.readers import (
    Field,
    Reader,
    Table,
    check_url,
    each_entry,
    each_string,
    http_method,
    list_of,
    name_text,
    pattern,
    raw,
    request_body,
    request_headers,
)
from synthprobe.jsonpath import parse_json_path
from synthprobe.models import Capture, HttpVersion, Journey, JourneyStep, ProbeSpec

_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

_CAPTURE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_SOURCES = ("json", "header", "regex")
"""Capture sources that take an argument (``status`` takes none)."""


def read_captures(r: Reader, loc: Located, path: str) -> tuple[Capture, ...]:
    """``capture: {NAME: SOURCE}``; every bad capture is reported, each at its line."""
    return each_entry(loc, path, lambda name, sub, where: _capture(r, name, sub, where))


def _capture(r: Reader, name: str, loc: Located, path: str) -> Capture:
    if not _CAPTURE_NAME_RE.match(name):
        fail(loc, path, "a capture name is letters, digits and _ (it is used as {{name}})")
    text = r.text(loc, path)
    source, sep, arg = text.partition(":")
    if source == "status" and not sep:
        return Capture(name, "status")
    if source not in _SOURCES or not sep or not arg:
        fail(
            loc, path, f"bad capture {text!r}: use json:PATH, header:NAME, regex:PATTERN or status"
        )
    if source == "json":
        try:
            parse_json_path(arg)
        except ValueError as exc:
            fail(loc, path, str(exc))
    if source == "regex":
        return Capture(name, source, pattern(arg, loc, path))
    return Capture(name, source, arg)


def uses(*texts: str | None) -> set[str]:
    """The ``{{NAME}}`` placeholders in ``texts``."""
    return {n for t in texts if t for n in _PLACEHOLDER_RE.findall(t)}


@dataclass(frozen=True, slots=True)
class _Inherited:
    """What every step takes from its probe unless it says otherwise."""

    headers: tuple[tuple[str, str], ...]
    follow_redirects: bool
    max_body: int
    http_version: HttpVersion

    @classmethod
    def of(cls, probe: dict[str, Any]) -> _Inherited:
        """The probe's values as read, each left out taken from ``ProbeSpec``'s default
        (the step gets what the probe will have)."""
        return cls(**{f.name: probe.get(f.name, _PROBE_DEFAULTS[f.name]) for f in fields(cls)})


_HTTP3_NEEDS_TLS = 'HTTP/3 needs an https:// URL (QUIC always uses TLS); http_version is "3"'

_PROBE_DEFAULTS = {f.name: f.default for f in fields(ProbeSpec)}


def read_journey(
    r: Reader,
    m: dict[str, Located],
    v: dict[str, Any],
    path: str,
    body: tuple[str | None, bool] | None,
) -> Journey:
    """The journey of a probe whose keys (merged with its defaults) are ``m``, read as
    ``v``; ``body`` is the probe's own request body."""
    own = {key: m[key] for key in JOURNEY_KEYS if key in m}
    block = JOURNEY_FIELDS.read(r, Located(own, 0), path)  # no key is required: no line shown
    headers: tuple[tuple[str, str], ...] = v.get("headers", ())
    url: str = v.get("url", "")
    early = uses(url, body[0] if body else None, *(value for _, value in headers))
    if early:  # the probe's own request is the first step: nothing is captured yet
        where = m["url"] if uses(url) else m.get("json") or m.get("body") or m["headers"]
        name = sorted(early)[0]
        block.add(where, path, f"{{{{{name}}}}}: no earlier step captures {name}")
    values = block.values
    capture: tuple[Capture, ...] = values.get("capture", ())
    known = {c.name for c in capture}
    names = {values.get("step_name", _JOURNEY_MAIN)}
    inherited = _Inherited.of(v)
    steps: list[JourneyStep] = []
    items = block.check(list_of, m["steps"], f"{path}.steps") if "steps" in m else []
    for i, item in enumerate(items or ()):
        at = f"{path}.steps[{i}]"
        step = block.check(_step, r, item, at, inherited, frozenset(known))
        if step is None:
            continue
        if step.name in names:
            block.add(item, f"{at}.name", f'duplicate step name "{step.name}"')
        names.add(step.name)
        known |= {c.name for c in step.capture}
        steps.append(step)

    def captured(name: str, item: Located, where: str) -> str:
        if name not in known:
            fail(item, where, f"no step captures {name}")
        return name

    journey = block.fields()
    if "mask" in m:
        journey["mask"] = block.check(each_string, r, m["mask"], f"{path}.mask", captured)
    block.done()
    return Journey(**journey, steps=tuple(steps))


_JOURNEY_MAIN = next(f.default for f in fields(Journey) if f.name == "main")


def _step(
    r: Reader, loc: Located, path: str, probe: _Inherited, known: frozenset[str]
) -> JourneyStep:
    block = STEP_FIELDS.read(r, loc, path)
    m, v = block.given, block.values
    url = v.get("url")
    if url is not None and (not uses(url) or not url.strip().startswith("{{")):
        checked = _PLACEHOLDER_RE.sub("x", url)
        block.check(check_url, m["url"], f"{path}.url", checked, ("http", "https"), "step")
        if probe.http_version is HttpVersion.HTTP3 and checked.strip().lower().startswith("http:"):
            block.add(m["url"], f"{path}.url", _HTTP3_NEEDS_TLS)
    headers = dict(probe.headers)  # the probe's headers (defaults included) on every step
    own: tuple[tuple[str, str], ...] = v.get("headers", ())
    lowered = {k.lower() for k, _ in own}
    headers = {k: value for k, value in headers.items() if k.lower() not in lowered}
    headers.update(own)
    body = block.check(request_body, r, m, path) or (None, False)
    for key, text in (("url", url), ("headers", " ".join(headers.values())), ("body", body[0])):
        missing = sorted(uses(text) - known)
        if missing:
            where = m.get(key) or m.get("json") or loc
            message = f"{{{{{missing[0]}}}}}: no earlier step captures {missing[0]}"
            block.add(where, f"{path}.{key}", message)
    block.done()
    step: dict[str, Any] = {"follow_redirects": probe.follow_redirects, "max_body": probe.max_body}
    step.update(block.fields())  # what the step says wins
    return JourneyStep(**step, headers=tuple(headers.items()), body=body[0], json_body=body[1])


# The tables: one per block, where its allowed keys, read loop and defaults come from.
JOURNEY_FIELDS = Table(
    Field("step_name", Reader.text, attr="main"),
    Field("capture", read_captures),
    Field("mask", raw, attr=None),  # read once the steps' captures are known
    Field("steps", raw, attr=None),  # read step by step, each with what came before
)
"""The keys of a probe that make it a journey (``defaults:`` may set none of them)."""

JOURNEY_KEYS = JOURNEY_FIELDS.keys

STEP_FIELDS = Table(
    Field("name", name_text, required=True),
    Field("url", Reader.text, required=True),
    Field("method", http_method),
    Field("headers", request_headers, attr=None),
    Field("json", raw, attr=None),
    Field("body", raw, attr=None),
    Field("expect", read_expect),
    Field("capture", read_captures),
    Field("follow_redirects", Reader.boolean),
    Field("max_body", Reader.size),
)
