"""JSON paths as configs write them (``items[0].id``), and URL templates built from them
(``https://cdn.example.com/v/{id}``). Pure: the config checks them, probers use them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_PATH_STEP_RE = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
MISSING = object()
"""What ``resolve_path`` returns when the path leads nowhere (``None`` is a JSON value)."""


def parse_json_path(path: str) -> tuple[str | int, ...]:
    """``items[0].id`` -> ``("items", 0, "id")``. Raises ValueError for the user."""
    steps: list[str | int] = []
    pos = 0
    while pos < len(path):
        if path[pos] == "." and steps and pos + 1 < len(path) and path[pos + 1] != ".":
            pos += 1
        m = _PATH_STEP_RE.match(path, pos)
        if not m:
            raise ValueError(f"bad JSON path {path!r} at character {pos + 1}")
        steps.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not steps:
        raise ValueError("bad JSON path: empty")
    return tuple(steps)


def resolve_path(document: Any, path: str) -> Any:
    """The value at a dotted path, or ``MISSING``."""
    value = document
    for step in parse_json_path(path):
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return MISSING
        elif not isinstance(value, dict) or step not in value:
            return MISSING
        value = value[step]
    return value


def scalar_text(document: Any, path: str) -> str | None:
    """The value at ``path`` as text for a URL or header (``true``, ``42``, ``abc``);
    None when it is missing, null, an object or a list."""
    value = resolve_path(document, path)
    if value is MISSING or value is None or isinstance(value, dict | list):
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)


def placeholders(template: str) -> list[str]:
    """The JSON paths between braces in a URL template."""
    return _PLACEHOLDER_RE.findall(template)


def fill_template(template: str, value: Callable[[str], str]) -> str:
    """The template with each ``{path}`` replaced by ``value(path)``."""
    return _PLACEHOLDER_RE.sub(lambda m: value(m.group(1)), template)
