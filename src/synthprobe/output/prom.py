"""``--prom PATH``: the run as metrics for node_exporter's textfile collector.

OpenMetrics text (which the collector's Prometheus-format parser also reads: ``# EOF``
is a comment to it). The file is written whole with a temporary file and a rename, so
the collector never scrapes half of it.
"""

from __future__ import annotations

from collections.abc import Iterable

from synthprobe.models import Failure, ProbeResult


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _gauge(name: str, help_text: str, samples: Iterable[tuple[str, str]]) -> list[str]:
    """One metric family: HELP, TYPE and (labels, value) samples."""
    return [
        f"# HELP {name} {help_text}",
        f"# TYPE {name} gauge",
        *(f"{name}{labels} {value}" for labels, value in samples),
    ]


def prom_text(
    results: Iterable[ProbeResult],
    finished_at: float,
    location: str,
    vantage_up: bool | None = None,
) -> str:
    """Gauges: up, duration by phase, failure by class and reason, HTTP status,
    certificate expiry, last run. Every series carries ``location``: several locations
    may share one textfile directory (node_exporter keeps one of two series that differ
    in nothing), and the shipped rules count locations, not series."""
    results = list(results)
    here = _labels(location=location)

    def who(r: ProbeResult, **extra: str) -> str:
        return _labels(probe=r.probe, kind=r.kind, location=r.location, **extra)

    lines = [
        *_gauge(
            "synthprobe_up",
            "1 if the probe passed in the last run, else 0.",
            ((who(r), str(int(r.ok))) for r in results if r.failure is not Failure.INTERNAL),
        ),
        *_gauge(
            "synthprobe_internal_error",
            "1 when synthprobe itself failed on the probe (a bug): no data about the target.",
            ((who(r), "1") for r in results if r.failure is Failure.INTERNAL),
        ),
        *_gauge(
            "synthprobe_duration_seconds",
            "Time of each phase of the last attempt.",
            (
                (who(r, phase=phase), f"{ms / 1000:.6f}")
                for r in results
                for phase, ms in r.timings_ms.items()
                if ms is not None
            ),
        ),
        *_gauge(
            "synthprobe_failure",
            "1 for the class and reason of a failed probe.",
            (
                (who(r, **{"class": r.failure.value}, reason=r.reason or ""), "1")
                for r in results
                if r.failure is not None and r.failure is not Failure.INTERNAL
            ),
        ),
        *_gauge(
            "synthprobe_http_status",
            "HTTP status of the last response.",
            ((who(r), str(r.status)) for r in results if r.status is not None),
        ),
        *_gauge(
            "synthprobe_cert_expiry_days",
            "Days until the verified TLS certificate of the last attempt expires.",
            (
                (who(r), str(r.details["cert_expires_in_days"]))
                for r in results
                if isinstance(r.details.get("cert_expires_in_days"), int | float)
            ),
        ),
        *_gauge(
            "synthprobe_vantage_up",
            "0 when every control failed in the last run (this machine looked cut off).",
            [] if vantage_up is None else [(here, str(int(vantage_up)))],
        ),
        *_gauge(
            "synthprobe_last_run_timestamp_seconds",
            "When the last run finished.",
            [(here, f"{finished_at:.3f}")],
        ),
        "# EOF",
    ]
    return "\n".join(lines) + "\n"
