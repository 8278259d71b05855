"""YAML config files -> validated, frozen ``ProbeSpec``s.

    nodes.py       YAML text -> Located trees (line numbers, limits on size and depth)
    variables.py   ${VAR} expansion; which values are secrets
    readers.py     typed readers over Located trees (kinds use them for their blocks)
    schema.py      the probe schema: keys, defaults, merging, whole files
    journeys.py    a probe's steps, captures and masks

``load_configs``, ``load_sources`` and ``LoadedConfig`` come from ``schema.py`` on first
use: the schema reads the kind registry, whose kinds read their blocks with
``readers.py``, so importing this package must not import the schema (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synthprobe.config.schema import LoadedConfig, load_configs, load_sources

__all__ = ["LoadedConfig", "load_configs", "load_sources"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("synthprobe.config.schema"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
