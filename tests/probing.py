"""What many tests do, written once: write a config file, and run probes together (a
hostile one beside a healthy one) within a deadline.

A config mapping is written one flow mapping per line (JSON is YAML): top-level keys
first, then ``probes:`` with probe N on line ``len(top) + 2 + N``, so a test can name the
line an error should point at.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthprobe.models import ProbeResult
from synthprobe.probers.base import Network

from .conftest import run_specs, specs_from_yaml


def config_text(config: Mapping[str, Any]) -> str:
    """A config's YAML: each top-level key on its line, each probe on its own line."""
    lines = [f"{key}: {json.dumps(value)}" for key, value in config.items() if key != "probes"]
    if "probes" in config:
        lines += ["probes:", *(f"  - {json.dumps(p)}" for p in config["probes"])]
    return "".join(line + "\n" for line in lines)


def probes_text(*probes: Mapping[str, Any]) -> str:
    """A config of just these probes."""
    return config_text({"probes": probes})


def write_config(
    directory: Path, config: str | Mapping[str, Any], name: str = "probes.yaml"
) -> Path:
    """``config`` (YAML text as is, or a mapping as ``config_text``) in ``directory/name``."""
    path = directory / name
    path.write_text(config if isinstance(config, str) else config_text(config))
    return path


@dataclass(frozen=True)
class Together:
    """The results of one run, by probe name, and how long the run took."""

    results: dict[str, ProbeResult]
    wall: float

    def __getitem__(self, probe: str) -> ProbeResult:
        return self.results[probe]


def run_together(
    probes: Sequence[Mapping[str, Any]],
    *,
    within: float | None = None,
    network: Network | None = None,
) -> Together:
    """Every probe in one run, all at once (concurrency = their number). Each must be
    recorded, and with ``within`` the run must have ended within that many seconds."""
    started = time.monotonic()
    found = run_specs(
        specs_from_yaml(probes_text(*probes)), network, concurrency=max(1, len(probes))
    )
    wall = time.monotonic() - started
    run = Together({r.probe: r for r in found}, wall)
    assert sorted(run.results) == sorted(p["name"] for p in probes)
    if within is not None:
        assert wall <= within, f"the run took {wall:.2f}s, more than {within}s"
    return run


def run_beside_healthy(
    hostile: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    healthy: Mapping[str, Any],
    *,
    within: float,
    network: Network | None = None,
) -> Together:
    """The hostile probe(s) and ``healthy`` (named ``healthy`` unless it says) in one run:
    the run ends within ``within`` seconds and the healthy probe passed, whatever the
    hostile ones did to their own connections."""
    others = [hostile] if isinstance(hostile, Mapping) else list(hostile)
    fine = {"name": "healthy", **healthy}
    run = run_together([*others, fine], within=within, network=network)
    assert run[fine["name"]].ok, run[fine["name"]].error
    return run
