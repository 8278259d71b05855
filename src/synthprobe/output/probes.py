"""Probes as they will run, for people and scripts: ``probe list`` and ``probe validate``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from synthprobe.models import ProbeSpec
from synthprobe.probers import KINDS
from synthprobe.redact import Redactor
from synthprobe.units import format_duration, format_size


def describe(spec: ProbeSpec, redactor: Redactor) -> dict[str, Any]:
    """A probe as it will run, secrets masked (``probe list --format json``)."""
    e = spec.expect
    expect: dict[str, Any] = {"status": list(e.status)}
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
        "expect": expect,
        "follow_redirects": spec.follow_redirects,
        "verify_tls": spec.verify_tls,
        "max_body": format_size(spec.max_body),
        "source": spec.source,
    }
    info = KINDS[spec.kind]
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
    if isinstance(value, list):
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
