"""Typed access to ``Located`` trees: each reader checks one kind of value and fails
with the file's line and the key's path. Kinds parse their own blocks with these."""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from synthprobe.config.nodes import Located, fail
from synthprobe.config.variables import Expander
from synthprobe.units import MAX_DEADLINE, parse_duration, parse_size

TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
"""An HTTP token: a method or a header name."""


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


def mapping(loc: Located, path: str, allowed: set[str]) -> dict[str, Located]:
    if not isinstance(loc.value, dict):
        fail(loc, path, f"expected a mapping, got {type_name(loc.value)}")
    mapping: dict[str, Located] = loc.value
    for key, sub in mapping.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            fail(sub, join(path, key), f"unknown key{hint}")
    return mapping


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


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

    def regex(self, loc: Located, path: str) -> str:
        pattern = self.text(loc, path)
        try:
            with warnings.catch_warnings():
                # "possible nested set" and the like: valid today, the user's to judge
                warnings.simplefilter("ignore")
                re.compile(pattern)
        except re.error as exc:
            fail(loc, path, f"bad regex {pattern!r}: {exc}")
        return pattern

    def choice(self, loc: Located, path: str, choices: Iterable[str], what: str) -> str:
        options = list(choices)
        value = self.text(loc, path)
        if value not in options:
            fail(loc, path, f'unknown {what} "{value}": expected one of {", ".join(options)}')
        return value

    def strings(self, loc: Located, path: str) -> tuple[str, ...]:
        items = [loc] if isinstance(loc.value, str) else list_of(loc, path)
        return tuple(self.text(item, f"{path}[{i}]") for i, item in enumerate(items))


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
    if any(c.isspace() for c in url):
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
