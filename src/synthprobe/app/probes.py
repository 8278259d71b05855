"""``probe validate`` and ``probe list``: load the configs, send nothing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import assert_never

from rich.console import Console

from synthprobe.app import EXIT_OK
from synthprobe.config import load_configs
from synthprobe.models import ListFormat
from synthprobe.output.probes import describe, render_probe_table, render_validation
from synthprobe.redact import Redactor


def validate_command(configs: Sequence[str], console: Console) -> int:
    """``probe validate``: load and check, send nothing; print the probes per kind."""
    loaded = load_configs(configs)
    render_validation(loaded.files, loaded.probes, console)
    return EXIT_OK


def list_command(
    configs: Sequence[str], console: Console, fmt: ListFormat = ListFormat.TABLE
) -> int:
    """``probe list``: the probes as they will run (defaults merged, env expanded, masked)."""
    loaded = load_configs(configs)
    redactor = Redactor(loaded.secrets)
    described = [describe(s, redactor) for s in loaded.probes]
    if fmt is ListFormat.JSON:
        console.print_json(json.dumps(described))
    elif fmt is ListFormat.TABLE:
        render_probe_table(described, console)
    else:
        assert_never(fmt)
    return EXIT_OK
