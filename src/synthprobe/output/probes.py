"""Probes as they will run, for people and scripts: ``probe list`` and ``probe validate``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from synthprobe.models import AlertRule, Capture, Expectation, Journey, ProbeSpec
from synthprobe.observes import Observes, judged_keys
from synthprobe.probers import KINDS
from synthprobe.redact import Redactor
from synthprobe.units import format_duration, format_size


def _expectation(
    e: Expectation, redactor: Redactor, observes: Observes = Observes.RESPONSE
) -> dict[str, Any]:
    """What is judged: a kind without an HTTP status shows none (SPEC "Fourth wave")."""
    expect: dict[str, Any] = {}
    if "status" in judged_keys(observes):
        expect["status"] = list(e.status)
    if e.max_latency is not None:
        expect["max_latency"] = format_duration(e.max_latency)
    for key in ("body_contains", "body_regex"):
        if getattr(e, key) is not None:
            expect[key] = redactor.text(getattr(e, key))
    if e.headers:
        expect["headers"] = {k: redactor.text(v) for k, v in e.headers}
    if e.json:
        expect["json"] = [
            {k: v for k, v in dataclasses.asdict(c).items() if v is not None and k != "has_equals"}
            for c in e.json
        ]
    if e.cert_min_days is not None:
        expect["cert_min_days"] = e.cert_min_days
    if e.answers is not None:
        expect["answers"] = {
            k: v for k, v in dataclasses.asdict(e.answers).items() if v not in (None, ())
        }
    return expect


def _captures(captures: tuple[Capture, ...]) -> dict[str, str]:
    return {c.name: f"{c.source}:{c.arg}" if c.arg else c.source for c in captures}


def _journey(journey: Journey, redactor: Redactor) -> dict[str, Any]:
    return {
        "main": journey.main,
        "capture": _captures(journey.capture),
        "mask": list(journey.mask),
        "steps": [
            {
                "name": step.name,
                "method": step.method,
                "url": redactor.url(step.url),
                "headers": {k: redactor.header(k, v) for k, v in step.headers},
                **({"body": step.body} if step.body is not None else {}),
                "expect": _expectation(step.expect, redactor),
                "capture": _captures(step.capture),
            }
            for step in journey.steps
        ],
    }


def describe(spec: ProbeSpec, redactor: Redactor) -> dict[str, Any]:
    """A probe as it will run, secrets masked (``probe list --format json``)."""
    info = KINDS[spec.kind]
    out: dict[str, Any] = {
        "name": spec.name,
        "kind": spec.kind,
        "method": spec.method,
        "url": redactor.url(spec.url),
        "timeout": format_duration(spec.timeout),
        "retries": spec.retries,
        "retry_on": sorted(f.value for f in spec.retry_on),
        "headers": {k: redactor.header(k, v) for k, v in spec.headers},
        "tags": list(spec.tags),
        "expect": _expectation(spec.expect, redactor, KINDS[spec.kind].observes),
        "follow_redirects": spec.follow_redirects,
        "verify_tls": spec.verify_tls,
        "max_body": format_size(spec.max_body),
        "source": spec.source,
    }
    if info.negotiates_http:
        out["http_version"] = spec.http_version.value
    if spec.resolver is not None:
        out["resolver"] = "{}:{}".format(*spec.resolver)
    if spec.alert != AlertRule():
        alert = dataclasses.asdict(spec.alert)
        if spec.alert.remind_every is not None:
            alert["remind_every"] = format_duration(spec.alert.remind_every)
        out["alert"] = {k: v for k, v in alert.items() if v is not None}
    if spec.body is not None:
        out["json" if spec.json_body else "body"] = spec.body
    if spec.journey is not None:
        out["journey"] = _journey(spec.journey, redactor)
    if info.block is not None and spec.options is not None:
        out[info.block] = info.describe_block(spec.options, redactor)
    masked: dict[str, Any] = _masked(out, redactor)
    return masked


def _masked(value: Any, redactor: Redactor) -> Any:
    """Every string masked, however deep: a URL template is as secret as a URL."""
    if isinstance(value, str):
        return redactor.text(value)
    if isinstance(value, dict):
        return {k: _masked(v, redactor) for k, v in value.items()}
    if isinstance(value, list | tuple):  # asdict keeps a tuple (alert.notify) a tuple
        return [_masked(v, redactor) for v in value]
    return value


def render_probe_table(described: Sequence[dict[str, Any]], console: Console) -> None:
    """``probe list``'s table, then each probe's headers (masked) below it."""
    table = Table(pad_edge=False)
    for column in ("probe", "kind", "method", "url", "timeout", "retries", "tags", "expect"):
        table.add_column(column, overflow="fold")
    for d in described:
        expect = ", ".join(
            f"{k}={v if not isinstance(v, list | dict) else json.dumps(v)}"
            for k, v in d["expect"].items()
        )
        table.add_row(
            d["name"],
            d["kind"],
            d["method"],
            d["url"],
            d["timeout"],
            str(d["retries"]),
            ",".join(d["tags"]),
            expect,
        )
    console.print(table)
    for d in described:
        if d["headers"]:
            headers = ", ".join(f"{k}: {v}" for k, v in d["headers"].items())
            console.print(f"{d['name']} headers: {headers}", highlight=False, markup=False)
        # the kind's own block (live: variant, realtime, media_check...), as it will run
        block = d.get(d["kind"])
        if isinstance(block, dict) and block:
            options = ", ".join(
                f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in block.items()
            )
            console.print(f"{d['name']} {d['kind']}: {options}", highlight=False, markup=False)


def render_validation(files: Sequence[str], probes: Sequence[ProbeSpec], console: Console) -> None:
    """``probe validate``'s summary: the files, then the probes per kind."""
    by_kind: dict[str, list[str]] = {}
    for spec in probes:
        by_kind.setdefault(spec.kind, []).append(spec.name)
    console.print(f"[green]valid:[/] {', '.join(files)}: {len(probes)} probes", highlight=False)
    for kind in KINDS:
        names = by_kind.get(kind)
        if names:
            console.print(f"  {kind:<10} {len(names):>3}  {', '.join(names)}", highlight=False)
