"""``${VAR}`` and ``${VAR:-default}`` in config strings, and which values are secrets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from synthprobe.config.nodes import Located, fail

_VAR_RE = re.compile(r"\$\$|\$\{([^}:]*)(?::-([^}]*))?\}")
VAR_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Expander:
    """Expands ``${VAR}`` and ``${VAR:-default}``; remembers values that are secrets."""

    env: Mapping[str, str]
    public: frozenset[str] = frozenset()
    secrets: set[str] = field(default_factory=set)

    def expand(self, loc: Located, path: str, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name, default = m.group(1), m.group(2)
            if not VAR_NAME_RE.match(name):
                fail(loc, path, f"bad variable reference {m.group(0)!r}")
            value = self.env.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    fail(loc, path, f"${{{name}}} is not set and has no default")
                return default
            if name not in self.public and value:
                self.secrets.add(value)
            return value

        return _VAR_RE.sub(sub, text)
