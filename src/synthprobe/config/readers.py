"""Typed access to ``Located`` trees: each reader checks one kind of value and fails
with the file's line and the key's path. Kinds parse their own blocks with these."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeAlias, TypeVar
from urllib.parse import urlsplit

from synthprobe.config.nodes import Located, Problem, Problems, fail
from synthprobe.config.variables import Expander
from synthprobe.patterns import Pattern
from synthprobe.units import MAX_DEADLINE, parse_duration, parse_size

TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
"""An HTTP token: a method or a header name."""
_SPACE_RE = re.compile(r"\s")
"""What ``str.isspace`` calls white space (the same table), found without a Python loop."""
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
T = TypeVar("T")
P = ParamSpec("P")
ReadFn: TypeAlias = Callable[["Reader", Located, str], T]
"""Reads one value at a place (the path names it in problems)."""


def type_name(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f'a string ("{value[:40]}")'
    return type(value).__name__


def mapping(loc: Located, path: str, allowed: Collection[str]) -> dict[str, Located]:
    """The mapping at ``loc``; every key it has that is not ``allowed`` is a problem."""
    if not isinstance(loc.value, dict):
        fail(loc, path, f"expected a mapping, got {type_name(loc.value)}")
    mapping: dict[str, Located] = loc.value
    unknown = Collector()
    for key, sub in mapping.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            unknown.add(Problem(sub.line, join(path, key), f"unknown key{hint}"))
    unknown.raise_any()
    return mapping


class Collector:
    """Problems gathered while reading on: one bad key does not hide the next."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, problem: Problem) -> None:
        self.problems.extend(problem.all)

    def take(self, read: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """``read(...)``, or None with its problems kept."""
        try:
            return read(*args, **kwargs)
        except Problem as p:
            self.add(p)
            return None

    def raise_any(self) -> None:
        if self.problems:
            raise Problems(self.problems) if len(self.problems) > 1 else self.problems[0]


@dataclass(frozen=True, slots=True)
class Field(Generic[T]):
    """One key of a block: how its value is read, and where it goes.

    A block's table of fields is where its keys are written for reading: the allowed keys,
    the read loop and (for a key left out) the dataclass's default all come from it."""

    key: str
    read: ReadFn[T]
    attr: str | None = ""
    """The dataclass field it fills: "" is the key's own name; None, a value the block's
    reader combines itself (a cross-key rule)."""
    required: bool = False

    @property
    def target(self) -> str | None:
        return self.key if self.attr == "" else self.attr


def each(items: list[Located], path: str, read: Callable[[Located, str], T]) -> tuple[T, ...]:
    """``read`` every item of a list, keeping every item's problems."""
    problems = Collector()
    out = [problems.take(read, item, f"{path}[{i}]") for i, item in enumerate(items)]
    problems.raise_any()
    return tuple(x for x in out if x is not None)


def each_entry(loc: Located, path: str, read: Callable[[str, Located, str], T]) -> tuple[T, ...]:
    """A mapping whose keys are the user's own (header names, capture names): ``read``
    every entry with its key, node and path, keeping every entry's problems."""
    if not isinstance(loc.value, dict):
        fail(loc, path, f"expected a mapping, got {type_name(loc.value)}")
    entries: dict[str, Located] = loc.value
    problems = Collector()
    out = [problems.take(read, key, sub, join(path, key)) for key, sub in entries.items()]
    problems.raise_any()
    return tuple(x for x in out if x is not None)


def each_string(
    r: Reader, loc: Located, path: str, check: Callable[[str, Located, str], T]
) -> tuple[T, ...]:
    """A text or a list of texts (``Reader.strings``), each item given to ``check`` with
    its node and path; every item's problem is kept, not only the first."""
    texts = r.strings(loc, path)
    problems = Collector()
    out = [
        problems.take(check, text, item_of(loc, i), f"{path}[{i}]") for i, text in enumerate(texts)
    ]
    problems.raise_any()
    return tuple(x for x in out if x is not None)


class Table:
    """A block's fields, indexed: the keys the block allows, each with its reader."""

    __slots__ = ("_by_key", "_required", "_targets", "fields", "keys")

    def __init__(self, *fields: Field[Any]) -> None:
        self.fields = fields
        self.keys = frozenset(f.key for f in fields)
        self._by_key = {f.key: f for f in fields}
        self._required = tuple(f for f in fields if f.required)
        self._targets = {f.key: f.target for f in fields if f.target is not None}

    def read(
        self,
        r: Reader,
        loc: Located,
        path: str,
        *,
        merge: Callable[[dict[str, Located]], dict[str, Located]] | None = None,
    ) -> Block:
        """Read every key present at ``loc`` (after ``merge``, which puts a probe's
        defaults under it), keeping every problem: unknown keys, missing required keys,
        bad values. Raises at once only when ``loc`` is not a mapping at all."""
        if not isinstance(loc.value, dict):
            fail(loc, path, f"expected a mapping, got {type_name(loc.value)}")
        problems = Collector()
        node: dict[str, Located] = loc.value
        own = node
        if not self.keys.issuperset(node):
            problems.take(mapping, loc, path, self.keys)
            own = {k: v for k, v in node.items() if k in self.keys}
        given = merge(own) if merge is not None else own
        values: dict[str, Any] = {}
        for key, sub in given.items():
            try:
                values[key] = self._by_key[key].read(r, sub, join(path, key))
            except Problem as p:
                problems.add(p)
        for f in self._required:
            if f.key not in given:
                problems.add(Problem(loc.line, path, f'missing required key "{f.key}"'))
        return Block(self, loc, path, own, given, values, problems)


@dataclass(slots=True)
class Block:
    """A block read through its table: what it said, what could be read, what could not."""

    table: Table
    loc: Located
    path: str
    own: dict[str, Located]
    """The keys the block itself gives."""
    given: dict[str, Located]
    """``own`` with what was merged under it (a probe's defaults)."""
    values: dict[str, Any]
    """Read values by key, for the keys given and read without a problem."""
    problems: Collector

    def fields(self) -> dict[str, Any]:
        """The values that fill dataclass fields, as keyword arguments."""
        targets = self.table._targets
        return {targets[k]: v for k, v in self.values.items() if k in targets}

    def check(self, read: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """A cross-key rule, run with its problem kept like any other."""
        return self.problems.take(read, *args, **kwargs)

    def add(self, loc: Located, path: str, message: str) -> None:
        """A problem a cross-key rule found."""
        self.problems.add(Problem(loc.line, path, message))

    def done(self) -> None:
        """Raise every problem found so far (one ``Problems``), if any."""
        self.problems.raise_any()


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def item_of(loc: Located, i: int) -> Located:
    """The node of the ``i``-th value of a text-or-list (``Reader.strings``): a problem
    with one item is reported at that item's line."""
    return loc.value[i] if isinstance(loc.value, list) else loc


def list_of(loc: Located, path: str) -> list[Located]:
    if isinstance(loc.value, list):
        return loc.value
    fail(loc, path, f"expected a list, got {type_name(loc.value)}")


class Reader:
    """Typed access to a ``Located`` tree, expanding variables in strings."""

    def __init__(self, expander: Expander) -> None:
        self.x = expander

    def text(self, loc: Located, path: str, *, allow_scalar: bool = False) -> str:
        value = loc.value
        if allow_scalar and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            hint = (
                " (YAML reads yes/no/on/off as booleans: quote it)"
                if isinstance(value, bool)
                else ""
            )
            fail(loc, path, f"expected a string, got {type_name(value)}{hint}")
        return self.x.expand(loc, path, value)

    def integer(self, loc: Located, path: str, lo: int, hi: int) -> int:
        value = loc.value
        if isinstance(value, str):
            value = self.x.expand(loc, path, value).strip()
            value = int(value) if re.fullmatch(r"-?\d+", value) else value
        if isinstance(value, bool) or not isinstance(value, int):
            fail(loc, path, f"expected a whole number, got {type_name(value)}")
        if not lo <= value <= hi:
            fail(loc, path, f"must be between {lo} and {hi}, got {value}")
        return value

    def boolean(self, loc: Located, path: str) -> bool:
        if isinstance(loc.value, bool):
            return loc.value
        fail(loc, path, f"expected true or false, got {type_name(loc.value)}")

    def _measure(
        self, loc: Located, path: str, parse: Callable[[object], Any], example: str
    ) -> tuple[object, Any]:
        """(value as written, parsed value) of a duration or size field."""
        value = loc.value
        if isinstance(value, str):
            value = self.x.expand(loc, path, value)
        elif not isinstance(value, int | float) or isinstance(value, bool):
            fail(loc, path, f"expected {example}, got {type_name(value)}")
        try:
            return value, parse(value)
        except ValueError as exc:
            fail(loc, path, str(exc))

    def duration(self, loc: Located, path: str, *, positive: bool = True) -> float:
        value, seconds = self._measure(loc, path, parse_duration, "a duration such as 5s")
        if positive and seconds <= 0:
            fail(loc, path, f"must be more than 0, got {value!r}")
        if seconds > MAX_DEADLINE:
            fail(loc, path, f"must be at most 24h, got {value!r}")
        return float(seconds)

    def size(self, loc: Located, path: str) -> int:
        value, size = self._measure(loc, path, parse_size, "a size such as 64KiB")
        if size > 64 * 1024**3:
            fail(loc, path, f"must be at most 64GiB, got {value!r}")
        return int(size)

    def regex(self, loc: Located, path: str) -> Pattern:
        """A pattern compiled now by the engine that will run it (``patterns.py``)."""
        return pattern(self.text(loc, path), loc, path)

    def choice(self, loc: Located, path: str, choices: Iterable[str], what: str) -> str:
        options = list(choices)
        value = self.text(loc, path)
        if value not in options:
            fail(loc, path, f'unknown {what} "{value}": expected one of {", ".join(options)}')
        return value

    def strings(self, loc: Located, path: str) -> tuple[str, ...]:
        items = [loc] if isinstance(loc.value, str) else list_of(loc, path)
        return tuple(self.text(item, f"{path}[{i}]") for i, item in enumerate(items))


def pattern(text: str, loc: Located, path: str) -> Pattern:
    """``text`` compiled as a ``Pattern``; what the engine refuses is a problem here."""
    try:
        return Pattern(text)
    except ValueError as exc:
        fail(loc, path, f"bad regex {text!r}: {exc}")


def check_url(
    loc: Located,
    path: str,
    url: str,
    schemes: tuple[str, ...],
    kind: str,
    *,
    need_host: bool = True,
) -> None:
    """A URL with one of ``schemes``, a host (unless the kind's URLs may lack one, as
    ``dns:NAME`` does), a valid port and no white space."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        fail(loc, path, f"bad URL {url!r}: {exc}")
    if parts.scheme not in schemes:
        fail(
            loc,
            path,
            f"bad URL {url!r}: scheme must be {' or '.join(schemes)} for kind {kind}",
        )
    if need_host and not parts.hostname:
        fail(loc, path, f"bad URL {url!r}: no host")
    if _SPACE_RE.search(url):
        fail(loc, path, f"bad URL {url!r}: contains white space")
    host = parts.hostname or ""
    if not host.isascii():
        # what httpx will do with it (IDNA 2008); the idna package comes with httpx, and
        # only a non-ASCII host pays for importing it
        import idna

        try:
            idna.encode(host, uts46=True)
        except idna.IDNAError as exc:
            fail(loc, path, f"bad URL {url!r}: host {host!r} is not a valid name ({exc})")


def integer(lo: int, hi: int) -> ReadFn[int]:
    """A whole number from ``lo`` to ``hi``."""
    return lambda r, loc, path: r.integer(loc, path, lo, hi)


def choice(choices: Iterable[str], what: str) -> ReadFn[str]:
    """One of ``choices`` (``what`` names them in the problem)."""
    return lambda r, loc, path: r.choice(loc, path, choices, what)


def http_method(r: Reader, loc: Located, path: str) -> str:
    """An HTTP method, upper-cased: a token (no spaces, no header injection)."""
    method = r.text(loc, path).upper()
    if not TOKEN_RE.match(method):
        fail(loc, path, f"bad HTTP method {method!r}")
    return method


def name_text(r: Reader, loc: Located, path: str) -> str:
    """A probe's or a step's name: one word, shown in every output."""
    name = r.text(loc, path)
    if not _NAME_RE.match(name):
        fail(loc, path, f"bad name {name!r}: use letters, digits and . _ : / - (no spaces)")
    return name


def request_headers(r: Reader, loc: Located, path: str) -> tuple[tuple[str, str], ...]:
    """Request headers, in order: token names, one-line values (no header injection).
    Every bad header is reported, each at its own line."""

    def header(key: str, sub: Located, where: str) -> tuple[str, str]:
        if not TOKEN_RE.match(key):
            fail(sub, where, "bad header name")
        value = r.text(sub, where, allow_scalar=True)
        if "\n" in value or "\r" in value:
            fail(sub, where, "a header value cannot span lines")
        return key, value

    return each_entry(loc, path, header)


def request_body(r: Reader, given: dict[str, Located], path: str) -> tuple[str | None, bool]:
    """(body, is JSON) of a probe or a step: ``json:`` (any YAML value, sent as JSON) or
    ``body:`` (text); not both."""
    if "json" in given and "body" in given:
        fail(given["body"], f"{path}.body", "give json or body, not both")
    if "json" in given:
        return json.dumps(_plain(r, given["json"], f"{path}.json")), True
    if "body" in given:
        return r.text(given["body"], f"{path}.body", allow_scalar=True), False
    return None, False


def _plain(r: Reader, loc: Located, path: str) -> Any:
    """A Located tree back to plain values, ``${VAR}`` expanded in strings."""
    value = loc.value
    if isinstance(value, dict):
        return {k: _plain(r, v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(r, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        return r.text(loc, path)
    return value


def scalar_text(r: Reader, loc: Located, path: str) -> str:
    """Text, taking a number as written (``body_contains: 42``)."""
    return r.text(loc, path, allow_scalar=True)


def raw(r: Reader, loc: Located, path: str) -> Located:
    """The node as it is, for a block's reader to combine with other keys."""
    return loc
