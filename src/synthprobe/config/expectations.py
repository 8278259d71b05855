"""The ``expect:`` block: statuses, latency, body, headers, JSON checks, certificate
and DNS answers. One table per block (``config/readers.py``)."""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from synthprobe.config.nodes import Located, fail
from synthprobe.config.readers import (
    Block,
    Field,
    Reader,
    Table,
    each,
    each_entry,
    integer,
    list_of,
    scalar_text,
)
from synthprobe.jsonpath import parse_json_path
from synthprobe.models import AnswerCheck, Expectation, JsonCheck
from synthprobe.observes import judged_keys, why_not
from synthprobe.patterns import Pattern
from synthprobe.units import is_whole_number

if TYPE_CHECKING:
    from synthprobe.probers.kind import KindInfo

_STATUS_CLASS_RE = re.compile(r"^[1-5]xx$")


def _status_list(r: Reader, loc: Located, path: str) -> tuple[int | str, ...]:
    if not isinstance(loc.value, list):
        return (_status(r, loc, path),)
    out = each(list_of(loc, path), path, lambda item, where: _status(r, item, where))
    if not out:
        fail(loc, path, "the list is empty: no status could pass")
    return out


def _status(r: Reader, loc: Located, path: str) -> int | str:
    """A code (``200``, ``"404"``) or a class (``2xx``)."""
    value = loc.value
    if isinstance(value, str):
        value = r.text(loc, path).strip()
        if _STATUS_CLASS_RE.match(value.lower()):
            return value.lower()
        if is_whole_number(value):
            value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        fail(loc, path, f"bad status {loc.value!r}: use a code like 200 or a class like 2xx")
    return value


def fit_to_kind(
    block: Block, expect: Expectation, own: Located | None, path: str, info: KindInfo
) -> Expectation:
    """A probe's ``expect`` as its kind can judge it (SPEC "Fourth wave"): a key the
    kind cannot judge is a problem where the probe wrote it, and dropped (back to the
    dataclass's default) where it came from ``defaults.expect``."""
    allowed = judged_keys(info.observes)
    written = own.value if own is not None and isinstance(own.value, dict) else {}
    for key, loc in written.items():  # in the file's order
        if key in EXPECT_FIELDS.keys and key not in allowed:
            article = "an" if info.name[0] in "aeiouh" else "a"  # an http, an upload
            why = why_not(key, info.observes)
            block.add(
                loc, f"{path}.{key}", f"{key} does not apply to {article} {info.name} probe ({why})"
            )
    dropped = {
        key: getattr(_DEFAULT, key)
        for key in EXPECT_FIELDS.keys - allowed
        if key not in written and getattr(expect, key) != getattr(_DEFAULT, key)
    }
    return dataclasses.replace(expect, **dropped) if dropped else expect


_DEFAULT = Expectation()


def read_expect(r: Reader, loc: Located, path: str) -> Expectation:
    block = EXPECT_FIELDS.read(r, loc, path)
    block.done()
    return Expectation(**block.fields())


def _expect_headers(r: Reader, loc: Located, path: str) -> tuple[tuple[str, Pattern], ...]:
    """Response headers, each a regex its value must match; every bad one reported."""
    return each_entry(loc, path, lambda key, sub, where: (key, r.regex(sub, where)))


def _json_checks(r: Reader, loc: Located, path: str) -> tuple[JsonCheck, ...]:
    return each(list_of(loc, path), path, lambda item, where: _json_check(r, item, where))


def _answers(r: Reader, loc: Located, path: str) -> AnswerCheck:
    block = ANSWER_FIELDS.read(r, loc, path)
    if not block.given:
        fail(loc, path, "nothing to check: add contains, min or matches")
    block.done()
    return AnswerCheck(**block.fields())


def _json_path(r: Reader, loc: Located, path: str) -> str:
    json_path = r.text(loc, path)
    try:
        parse_json_path(json_path)
    except ValueError as exc:
        fail(loc, path, str(exc))
    return json_path


def _single(r: Reader, loc: Located, path: str) -> Any:
    value = loc.value
    if isinstance(value, str):
        return r.text(loc, path)
    if isinstance(value, dict | list):
        fail(loc, path, "compare with a single value (text, number, bool, null)")
    return value


def _json_check(r: Reader, loc: Located, path: str) -> JsonCheck:
    block = JSON_CHECK_FIELDS.read(r, loc, path)
    if set(block.given) == {"path"}:
        fail(
            loc,
            path,
            "nothing to check: add exists, equals, min_items, max_items, matches or max_age",
        )
    block.done()
    has_equals = "equals" in block.given
    return JsonCheck(**block.fields(), has_equals=has_equals)


EXPECT_FIELDS = Table(
    Field("status", _status_list),
    Field("max_latency", Reader.duration),
    Field("body_contains", scalar_text),
    Field("body_regex", Reader.regex),
    Field("headers", _expect_headers),
    Field("json", _json_checks),
    Field("cert_min_days", integer(0, 3650)),
    Field("answers", _answers),
)

JSON_CHECK_FIELDS = Table(
    Field("path", _json_path, required=True),
    Field("exists", Reader.boolean),
    Field("equals", _single),
    Field("min_items", integer(0, 10**9)),
    Field("max_items", integer(0, 10**9)),
    Field("matches", Reader.regex),
    Field("max_age", Reader.duration),
)

ANSWER_FIELDS = Table(
    Field("contains", Reader.strings),
    Field("min", integer(0, 10_000)),
    Field("matches", Reader.regex),
)
