"""One way to build a ``ProbeResult`` in tests: sensible fields, any of them overridden."""

from __future__ import annotations

from synthprobe.models import Failure, ProbeResult, Reason

PHASES = ["dns", "connect", "tls", "ttfb", "transfer", "total"]


def make_result(name: str = "feed-home", ok: bool = True, **kw: object) -> ProbeResult:
    """A feed probe's result at eu-1; a failure is ``timeout.read`` unless ``kw`` says."""
    fields: dict[str, object] = dict(
        run_id="01JTESTRUN00000000000000000",
        ts="2026-11-22T10:00:00.123Z",
        location="eu-1",
        probe=name,
        kind="feed",
        method="GET",
        url="http://127.0.0.1/v1/feed",
        ok=ok,
        failure=None if ok else Failure.TIMEOUT,
        reason=None if ok else Reason.TIMEOUT_READ,
        error=None if ok else "no response headers within 5s",
        status=200 if ok else None,
        attempts=1,
        timings_ms={p: 1.0 for p in PHASES},
        bytes_in=10,
        bytes_out=0,
        tags=("critical",),
        details={},
    )
    fields.update(kw)
    return ProbeResult(**fields)  # type: ignore[arg-type]
