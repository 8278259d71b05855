"""A run's results as OpenTelemetry traces and metrics, sent over OTLP/HTTP (protobuf).

Imported only when a run has an endpoint (``tracing.export_target``): the SDK costs
start-up time nobody else should pay. The spans are made after the fact, from what
each probe recorded (``tracing.ProbeTrace``), with the SDK's own API: explicit start
and end times, and explicit ids (``_Ids``), so each CLIENT span has the span id its
request's ``traceparent`` carried and the backend's server spans hang under it.

- per probe, a root span ``probe <name>`` (INTERNAL) with the ``synthprobe.*``
  attributes, status ERROR and ``error.type`` when it failed;
- under it, a CLIENT span per request, named by its method, with the HTTP semantic
  conventions and its phases as events at the instants they ended;
- metrics ``synthprobe.up`` (gauge) and ``synthprobe.duration`` (histogram, seconds).

Sending is bounded: ``BUDGET`` seconds for both signals, in a thread of its own, and at
most one warning line whatever the collector does (down, slow, refusing); the SDK's
own log lines are kept from the terminal. The results, their lines and the exit code
never depend on it.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from synthprobe import __version__
from synthprobe.models import ProbeResult
from synthprobe.tracing import ExportTarget, ProbeTrace, RequestSpan

BUDGET = 5.0
"""Seconds a run may spend exporting, whatever the collector does."""
BATCH = 1000
"""Spans per export request."""
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""``synthprobe.duration``'s bucket bounds in seconds (the SDK's default ones are
milliseconds)."""


class _Ids(IdGenerator):
    """The ids the probe already chose: the next span gets ``span_id`` (and, as a root,
    ``trace_id``)."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id


class _Kept(SpanProcessor):
    """Every ended span, kept to be sent in one request."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


class _LastError(logging.Handler):
    """The SDK's log lines: never on the terminal; they say what failed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: str | None = None
        """The last error: the status and answer of a collector that refused."""
        self.os_error: str | None = None
        """The system's word on a connection that failed (retried until the deadline,
        when the SDK's last error says only "timeout, max retries or shutdown")."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not format: keep what we had
            return
        if record.levelno >= logging.ERROR:
            self.last = message
        found = _OS_ERROR.search(message) or _TRANSIENT.search(message)
        if found:
            self.os_error = found.group(found.lastindex or 0)

    def why(self) -> str | None:
        if self.os_error and self.last and "due to timeout" in self.last:
            return f"no answer from the collector: {self.os_error}"
        return self.last


_TRANSIENT = re.compile(r"Transient error (.+?) encountered while exporting")
_OS_ERROR = re.compile(r"\[Errno -?\d+\] [^'\")\]]+")


def resource(target: ExportTarget) -> Resource:
    return Resource.create(
        {
            "service.name": target.service_name,
            "service.version": __version__,
            "host.name": socket.gethostname(),
        }
    )


def spans(results: Sequence[ProbeResult], run_id: str, res: Resource) -> list[ReadableSpan]:
    """Each result's root span and its requests' CLIENT spans, ended."""
    ids = _Ids()
    kept = _Kept()
    provider = TracerProvider(resource=res, id_generator=ids, shutdown_on_exit=False)
    provider.add_span_processor(kept)
    tracer = provider.get_tracer("synthprobe", __version__)
    for result in results:
        trace = result.trace
        if trace is None:
            continue  # a bug of ours before the probe had a trace: no request was sent
        ids.trace_id, ids.span_id = int(trace.trace_id, 16), int(trace.span_id, 16)
        root = tracer.start_span(
            f"probe {result.probe}",
            context=Context(),
            kind=SpanKind.INTERNAL,
            attributes=_root_attributes(result, run_id),
            start_time=trace.start_ns,
        )
        parent = set_span_in_context(root, Context())
        for request in trace.requests:
            ids.span_id = int(request.span_id, 16)
            _client_span(tracer, parent, request)
        if result.ok:
            root.set_status(Status(StatusCode.OK))
        else:
            root.set_status(Status(StatusCode.ERROR, result.error or result.reason))
        root.end(end_time=_root_end(trace))
    return kept.spans


def _root_end(trace: ProbeTrace) -> int:
    return max([trace.end_ns, *(r.end_ns for r in trace.requests)])


def _root_attributes(result: ProbeResult, run_id: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "synthprobe.probe": result.probe,
        "synthprobe.kind": result.kind,
        "synthprobe.location": result.location,
        "synthprobe.run_id": run_id,
        "synthprobe.attempts": result.attempts,
    }
    if result.reason is not None:
        attributes["synthprobe.reason"] = result.reason.value
        attributes["error.type"] = result.reason.value
    return attributes


def _client_span(tracer: Any, parent: Context, request: RequestSpan) -> None:
    attributes: dict[str, Any] = {
        "http.request.method": request.method,
        "url.full": request.url,
        "server.address": request.server_address,
    }
    if request.server_port is not None:
        attributes["server.port"] = request.server_port
    if request.status is not None:
        attributes["http.response.status_code"] = request.status
    if request.protocol is not None:
        attributes["network.protocol.version"] = request.protocol
    if request.error_type is not None:
        attributes["error.type"] = request.error_type
    span = tracer.start_span(
        request.method,
        context=parent,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        start_time=request.start_ns,
    )
    at = request.start_ns
    for phase, ended in request.phases:
        # the phase's own duration too: a backend shows it without subtracting
        span.add_event(phase, {"synthprobe.phase_ms": (ended - at) / 1e6}, timestamp=ended)
        at = ended
    if request.error_type is not None:
        span.set_status(Status(StatusCode.ERROR))
    span.end(end_time=request.end_ns)


def metrics(results: Sequence[ProbeResult], res: Resource) -> Any:
    """``synthprobe.up`` and ``synthprobe.duration`` of every result that says something
    about its target (``no_data`` results count neither up nor down)."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=res, metric_readers=[reader], shutdown_on_exit=False)
    meter = provider.get_meter("synthprobe", __version__)
    up = meter.create_gauge("synthprobe.up", unit="1", description="1 when the probe passed")
    duration = meter.create_histogram(
        "synthprobe.duration",
        unit="s",
        description="The probe's total time (timings_ms.total)",
        explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
    )
    for result in results:
        if result.no_data:
            continue
        labels = {
            "synthprobe.probe": result.probe,
            "synthprobe.kind": result.kind,
            "synthprobe.location": result.location,
        }
        up.set(1 if result.ok else 0, labels)
        total = result.latency_ms
        if total is not None:
            duration.record(total / 1000, labels)
    return reader.get_metrics_data()


def export(
    target: ExportTarget,
    results: Sequence[ProbeResult],
    run_id: str,
    warn: Callable[[str], None],
    budget: float = BUDGET,
) -> None:
    """Send the run's spans and metrics: at most ``budget`` seconds of the collector's
    time and one ``warn``. The spans and metrics are made first (our own CPU, about
    0.3 ms a probe: docs/tracing.md, "Cost"); the budget starts when sending does."""
    sdk_log = logging.getLogger("opentelemetry")
    # the SDK logs each retry: none of it reaches the terminal, even after we stop
    # listening (a sender still waiting on a slow collector), so a handler stays
    sdk_log.propagate = False
    if not any(isinstance(h, logging.NullHandler) for h in sdk_log.handlers):
        sdk_log.addHandler(logging.NullHandler())
    caught = _LastError()
    sdk_log.addHandler(caught)
    res = resource(target)
    made = spans(results, run_id, res) if target.traces_url is not None else []
    data = metrics(results, res) if target.metrics_url is not None and results else None
    failed: list[str] = []
    sent = [0]
    started = time.monotonic()

    def left() -> float:
        return max(budget - (time.monotonic() - started), 0.1)

    def send() -> None:
        try:
            headers = dict(target.headers)
            if made:
                assert target.traces_url is not None
                # batches keep each request of a large run within what collectors take
                # (otelcol's gRPC default is 4 MiB; 1000 spans are about 0.3 MiB); each
                # with the time still left (an exporter's timeout is fixed when made)
                for at in range(0, len(made), BATCH):
                    batch = made[at : at + BATCH]
                    exporter = OTLPSpanExporter(
                        endpoint=target.traces_url, headers=headers, timeout=left()
                    )
                    try:
                        if exporter.export(batch) is not SpanExportResult.SUCCESS:
                            failed.append("traces")
                            return  # a collector that failed once is not asked again
                    finally:
                        exporter.shutdown()  # type: ignore[no-untyped-call]
                    sent[0] += len(batch)
            if data is not None:
                assert target.metrics_url is not None
                exporter_m = OTLPMetricExporter(
                    endpoint=target.metrics_url, headers=headers, timeout=left()
                )
                try:
                    if exporter_m.export(data) is not MetricExportResult.SUCCESS:
                        failed.append("metrics")
                finally:
                    exporter_m.shutdown()
        except Exception as exc:  # a bug of ours or the SDK's: still one line, no traceback
            failed.append(f"{type(exc).__name__}: {exc}")

    # a daemon thread: a collector that never answers cannot hold the process past it
    sender = threading.Thread(target=send, name="otlp-export", daemon=True)
    sender.start()
    sender.join(budget)
    kept = f"{sent[0]} of {len(made)} spans sent" if made else "nothing sent"
    if sender.is_alive():
        warn(f"OTLP export to {target.shown} did not finish within {budget:g}s ({kept})")
    elif failed:
        why = caught.why() or ", ".join(failed)
        warn(f"OTLP export to {target.shown} failed ({_short(why)}; {kept})")
    sdk_log.removeHandler(caught)


def _short(text: str, limit: int = 200) -> str:
    """One line: a collector's answer may be anything."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
