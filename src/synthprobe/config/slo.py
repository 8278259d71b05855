"""The ``slo:`` probe key: objective, window and max_latency (docs/slo.md)."""

from __future__ import annotations

from synthprobe.config.nodes import Located, fail
from synthprobe.config.readers import Field, Reader, Table
from synthprobe.models import Slo
from synthprobe.objectives import parse_objective, parse_window


def _objective(r: Reader, loc: Located, path: str) -> float:
    value = r.x.expand(loc, path, loc.value) if isinstance(loc.value, str) else loc.value
    try:
        return parse_objective(value)
    except ValueError as exc:
        fail(loc, path, str(exc))


def _window(r: Reader, loc: Located, path: str) -> float:
    value = r.x.expand(loc, path, loc.value) if isinstance(loc.value, str) else loc.value
    try:
        return parse_window(value)
    except ValueError as exc:
        fail(loc, path, str(exc))


def _max_latency(r: Reader, loc: Located, path: str) -> float:
    return r.duration(loc, path)


SLO_FIELDS = Table(
    Field("objective", _objective, required=True),
    Field("window", _window),
    Field("max_latency", _max_latency),
)


def read_slo(r: Reader, loc: Located, path: str) -> Slo:
    block = SLO_FIELDS.read(r, loc, path)
    block.done()
    return Slo(**block.fields())
