"""YAML config files -> validated, frozen ``ProbeSpec``s.

nodes.py       YAML text -> Located trees (line numbers, limits on size and depth)
variables.py   ${VAR} expansion; which values are secrets
readers.py     typed readers over Located trees (kinds use them for their blocks)
schema.py      the probe schema: keys, defaults, merging, whole files
"""

from __future__ import annotations

from synthprobe.config.schema import LoadedConfig, load_configs, load_sources

__all__ = ["LoadedConfig", "load_configs", "load_sources"]
