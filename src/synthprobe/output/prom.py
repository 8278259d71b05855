"""``--prom PATH``: the run as metrics for node_exporter's textfile collector.

OpenMetrics text (which the collector's Prometheus-format parser also reads: ``# EOF``
is a comment to it). The file is written whole with a temporary file and a rename, so
the collector never scrapes half of it.
"""

from __future__ import annotations

from collections.abc import Iterable

from synthprobe.models import ProbeResult


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def prom_text(results: Iterable[ProbeResult], finished_at: float) -> str:
    """Gauges: up, duration by phase, failure by class and reason, HTTP status, last run."""
    results = list(results)
    lines = [
        "# HELP synthprobe_up 1 if the probe passed in the last run, else 0.",
        "# TYPE synthprobe_up gauge",
    ]
    for r in results:
        labels = _labels(probe=r.probe, kind=r.kind.value, location=r.location)
        lines.append(f"synthprobe_up{labels} {int(r.ok)}")
    lines += [
        "# HELP synthprobe_duration_seconds Time of each phase of the last attempt.",
        "# TYPE synthprobe_duration_seconds gauge",
    ]
    for r in results:
        for phase, ms in r.timings_ms.items():
            if ms is not None:
                labels = _labels(probe=r.probe, kind=r.kind.value, location=r.location, phase=phase)
                lines.append(f"synthprobe_duration_seconds{labels} {ms / 1000:.6f}")
    lines += [
        "# HELP synthprobe_failure 1 for the class and reason of a failed probe.",
        "# TYPE synthprobe_failure gauge",
    ]
    for r in results:
        if r.failure is not None:
            labels = _labels(
                probe=r.probe,
                kind=r.kind.value,
                location=r.location,
                **{"class": r.failure.value},
                reason=r.reason or "",
            )
            lines.append(f"synthprobe_failure{labels} 1")
    lines += [
        "# HELP synthprobe_http_status HTTP status of the last response.",
        "# TYPE synthprobe_http_status gauge",
    ]
    for r in results:
        if r.status is not None:
            labels = _labels(probe=r.probe, kind=r.kind.value, location=r.location)
            lines.append(f"synthprobe_http_status{labels} {r.status}")
    lines += [
        "# HELP synthprobe_last_run_timestamp_seconds When the last run finished.",
        "# TYPE synthprobe_last_run_timestamp_seconds gauge",
        f"synthprobe_last_run_timestamp_seconds {finished_at:.3f}",
        "# EOF",
    ]
    return "\n".join(lines) + "\n"
