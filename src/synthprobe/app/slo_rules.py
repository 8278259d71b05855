"""``probe slo-rules``: the configs' SLOs as Prometheus rules; sends nothing."""

from __future__ import annotations

from collections.abc import Sequence

from synthprobe.app import EXIT_OK, Streams
from synthprobe.errors import UsageError


def slo_rules_command(configs: Sequence[str], output: str | None, io: Streams) -> int:
    """Load the configs; write the rules of every probe with an ``slo`` to ``output``
    (atomically) or stdout."""
    from synthprobe.config import load_configs
    from synthprobe.output.slo_rules import slo_rules

    loaded = load_configs(configs)
    if not any(p.slo is not None for p in loaded.probes):
        raise UsageError(
            f"no probe in {', '.join(configs)} has an slo",
            hint="give probes (or defaults) an slo: {objective: 99.9%, window: 28d}",
        )
    text = slo_rules(loaded.probes)
    if output is None or output == "-":
        io.stdout.write(text)
        io.stdout.flush()
        return EXIT_OK
    from synthprobe.output.files import write_atomic

    write_atomic(output, text.encode())
    return EXIT_OK
