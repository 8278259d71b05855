"""W3C trace context for probes, and the record of every request a probe sent.

One ``Trace`` per probe per run (``runner.Runner.probe``): a trace id all its attempts
and steps share, a root span id for the probe, and one span id per request, sent as
``traceparent: 00-<trace-id>-<span-id>-01`` (https://www.w3.org/TR/trace-context/).
Each request is recorded as it goes (``Attempt.sending`` opens it, the next request or
the attempt's end closes it) with the instants its phases ended, taken from the
attempt's own clock: its phase events add up to the JSON line's ``timings_ms``.

Light on purpose: no OpenTelemetry here. ``otel.py`` turns a finished ``ProbeTrace``
into spans only when a run exports; without an endpoint nothing else is imported.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import SplitResult, unquote, urlsplit

if TYPE_CHECKING:
    from synthprobe.models import Otlp
    from synthprobe.timing import Clock

TRACEPARENT = "traceparent"
"""The header's name (lower case, as the recommendation writes it)."""

PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("dns", ("dns",)),
    ("connect", ("connect",)),
    ("tls", ("tls",)),
    ("ttfb", ("send", "wait")),
    ("transfer", ("body",)),
)
"""Each phase of the JSON line and the clock's steps it sums (``Clock.phases_ms``; an
upload's ``send_body`` is added to ttfb there, and here)."""

_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def new_trace_id() -> str:
    """16 random bytes as 32 lowercase hex digits; never all zeros (invalid)."""
    while True:
        value = secrets.token_hex(16)
        if value.strip("0"):
            return value


def new_span_id() -> str:
    """8 random bytes as 16 lowercase hex digits; never all zeros (invalid)."""
    while True:
        value = secrets.token_hex(8)
        if value.strip("0"):
            return value


def traceparent(trace_id: str, span_id: str) -> str:
    """The header's value: version 00, sampled."""
    return f"00-{trace_id}-{span_id}-01"


def has_traceparent(headers: tuple[tuple[str, str], ...]) -> bool:
    """The probe's own headers carry one: it is sent as written."""
    return any(name.lower() == TRACEPARENT for name, _ in headers)


class RequestSpan(NamedTuple):
    """One request a probe sent, as the export makes a CLIENT span of it."""

    span_id: str
    """The span id its ``traceparent`` carried (16 hex digits)."""
    method: str
    url: str
    """Masked as in the JSON lines."""
    server_address: str
    server_port: int | None
    start_ns: int
    """Epoch nanoseconds: when the request began (its DNS lookup, if any)."""
    end_ns: int
    phases: tuple[tuple[str, int], ...]
    """(phase, epoch ns when it ended), in order: the phases this request reached."""
    status: int | None
    """Its response's HTTP status; None when none arrived."""
    protocol: str | None
    """``1.1``, ``2`` or ``3``; None before a connection was made."""
    error_type: str | None
    """The probe's reason when this request is where the attempt failed; else None."""


class ProbeTrace(NamedTuple):
    """A probe's trace, finished: what the export needs, picklable (``--workers``
    sends it to the parent with its result)."""

    trace_id: str
    span_id: str
    """The root span's id (the probe's)."""
    start_ns: int
    end_ns: int
    requests: tuple[RequestSpan, ...]


class OpenRequest:
    """A request under way: what its span will say once it is over (a plain class,
    as ``Trace``)."""

    __slots__ = (
        "after",
        "before",
        "clock",
        "method",
        "over",
        "protocol",
        "span_id",
        "start",
        "status",
        "url",
    )

    def __init__(self, span_id: str, method: str, url: str, clock: Clock) -> None:
        self.span_id = span_id
        self.method = method
        self.url = url
        self.clock = clock
        self.start = time.perf_counter()
        """perf_counter clock."""
        self.before = (dict(clock.durations), dict(clock.counts))
        """The clock's step durations and counts when it began: its own phases are
        what it adds."""
        self.status: int | None = None
        self.protocol: str | None = None
        self.after: tuple[dict[str, float], dict[str, int]] | None = None
        """The same when the next request on the same clock began."""
        self.over: float | None = None
        """When that was (perf_counter clock)."""

    def next_began(self) -> None:
        """The next request on this clock began: what the clock adds now is not ours."""
        if self.after is None:
            self.after = (dict(self.clock.durations), dict(self.clock.counts))
            self.over = time.perf_counter()


class Trace:
    """One probe's trace in one run, shared by all its attempts and steps. (A plain
    class: every ``probe run`` imports this module, and a dataclass costs about 1 ms
    of start-up to make.)"""

    __slots__ = ("done", "open", "perf0", "send", "span_id", "trace_id", "wall0")

    def __init__(self, send: bool = True) -> None:
        self.send = send
        """``trace_context``: send ``traceparent`` and report ``trace_id``."""
        self.trace_id = new_trace_id()
        self.span_id = new_span_id()
        """The probe's root span."""
        self.wall0 = time.time_ns()
        self.perf0 = time.perf_counter()
        self.open: list[OpenRequest] = []
        """Requests of the attempt under way, in the order they began."""
        self.done: list[RequestSpan] = []

    @property
    def shown_id(self) -> str | None:
        """The ``trace_id`` of the JSON line: None when ``trace_context`` is false."""
        return self.trace_id if self.send else None

    def ns(self, perf: float) -> int:
        """A perf_counter instant as epoch nanoseconds."""
        return self.wall0 + round((perf - self.perf0) * 1e9)

    def begin(self, clock: Clock, method: str, url: str) -> OpenRequest:
        request = OpenRequest(new_span_id(), method, url, clock)
        self.open.append(request)
        return request

    def attempt_over(self, reason: str | None, mask_url: Callable[[str], str]) -> None:
        """The attempt ended (``reason`` when it failed): its requests are recorded, the
        last one marked as where it failed, each URL masked with the attempt's values."""
        now = time.perf_counter()
        last = len(self.open) - 1
        for index, request in enumerate(self.open):
            failed = reason is not None and index == last
            self.done.append(self._span(request, now, reason if failed else None, mask_url))
        self.open.clear()

    def _span(
        self,
        request: OpenRequest,
        now: float,
        reason: str | None,
        mask_url: Callable[[str], str],
    ) -> RequestSpan:
        clock = request.clock
        after, done = (clock.durations, clock.counts) if request.after is None else request.after
        now = now if request.over is None else request.over
        before, did = request.before
        # the steps this request completed (a step of 0 s included), and their time
        delta = {k: v - before.get(k, 0.0) for k, v in after.items() if did.get(k) != done.get(k)}
        at = request.start
        phases: list[tuple[str, int]] = []
        for phase, steps in PHASES:
            if not all(step in delta for step in steps):
                continue
            at += sum(delta[s] for s in steps)
            if phase == "ttfb":
                at += delta.get("send_body", 0.0)
            phases.append((phase, self.ns(at)))
        end = at
        if not phases or phases[-1][0] != "transfer":
            # not complete: it lasted until it failed or the deadline cut it
            stopped = request.clock.ended
            end = max(at, now if stopped is None else min(stopped, now))
        error = reason
        if error is None and request.status is not None and request.status >= 400:
            error = str(request.status)  # HTTP semantic conventions: the status code
        parts = urlsplit(request.url)
        return RequestSpan(
            span_id=request.span_id,
            method=request.method,
            url=mask_url(request.url),
            server_address=mask_url(parts.hostname or ""),
            server_port=_port(parts.scheme, parts),
            start_ns=self.ns(request.start),
            end_ns=self.ns(end),
            phases=tuple(phases),
            status=request.status,
            protocol=request.protocol,
            error_type=error,
        )

    def finished(self) -> ProbeTrace:
        """The trace as the result carries it: root from the probe's start to now."""
        return ProbeTrace(self.trace_id, self.span_id, self.wall0, time.time_ns(), tuple(self.done))


def _port(scheme: str, parts: SplitResult) -> int | None:
    try:
        port = parts.port
    except ValueError:
        return None
    return int(port) if port is not None else _DEFAULT_PORTS.get(scheme)


def protocol_version(protocol: str) -> str:
    """``HTTP/1.1`` -> ``1.1``, ``HTTP/2`` -> ``2``, ``HTTP/3`` -> ``3``."""
    return protocol.removeprefix("HTTP/")


def endpoint_problem(url: str) -> str | None:
    """Why ``url`` cannot be an OTLP/HTTP endpoint (``--otlp``, ``settings.otlp``), or
    None: an http(s) URL with a host, a valid port and no white space."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        return f"bad URL {url!r}: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        return f"expected an http(s) URL such as http://127.0.0.1:4318, got {url!r}"
    return None


class ExportTarget(NamedTuple):
    """Where a run exports (``otel.py``), decided before it probes."""

    traces_url: str | None
    """``POST`` here (``<endpoint>/v1/traces``); None: no traces."""
    metrics_url: str | None
    headers: tuple[tuple[str, str], ...]
    service_name: str
    shown: str
    """The endpoint as messages name it (masked by the caller)."""


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def env_headers(text: str) -> tuple[tuple[str, str], ...] | None:
    """``OTEL_EXPORTER_OTLP_HEADERS`` (``key=value,key2=value2``, values URL-encoded);
    None when malformed."""
    out = []
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = unquote(key).strip()
        if not sep or not _HEADER_NAME.fullmatch(key):
            return None
        value = unquote(value).strip()
        if "\n" in value or "\r" in value:
            return None
        out.append((key, value))
    return tuple(out)


def export_target(
    option: str | None,
    configured: Otlp | None,
    environ: Mapping[str, str],
    warn: Callable[[str], None],
) -> ExportTarget | None:
    """The run's export: ``--otlp`` (``option``), then ``settings.otlp``, then the
    standard ``OTEL_EXPORTER_OTLP_*`` variables; None: nothing to export (no endpoint,
    ``OTEL_SDK_DISABLED=true``, or a malformed variable, which ``warn`` tells once).
    ``option`` and ``configured`` were checked already (exit 2 when not http(s))."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    service = environ.get("OTEL_SERVICE_NAME", "").strip() or "synthprobe"
    base = option or (configured.endpoint if configured else None)
    traces_url: str | None
    metrics_url: str | None
    if base is not None:
        headers = configured.headers if configured and configured.headers else None
        traces_url, metrics_url = _signal(base, "traces"), _signal(base, "metrics")
    else:
        named = {
            name: environ.get(name, "").strip()
            for name in (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            )
        }
        for name, value in named.items():
            if value and endpoint_problem(value):
                # the value is not printed: it may hold a token
                warn(
                    f"{name} is not an http(s) URL (such as http://127.0.0.1:4318): "
                    "nothing is exported"
                )
                return None
        env_base = named["OTEL_EXPORTER_OTLP_ENDPOINT"]
        traces_url = named["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] or (
            _signal(env_base, "traces") if env_base else None
        )
        metrics_url = named["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] or (
            _signal(env_base, "metrics") if env_base else None
        )
        if traces_url is None and metrics_url is None:
            return None
        base = env_base or traces_url or metrics_url or ""
        headers = None
    if headers is None:
        raw = environ.get("OTEL_EXPORTER_OTLP_HEADERS", "")
        headers = env_headers(raw)
        if headers is None:
            warn(
                "OTEL_EXPORTER_OTLP_HEADERS is malformed (expected key=value pairs separated "
                "by commas, values URL-encoded): nothing is exported"
            )
            return None
    return ExportTarget(traces_url, metrics_url, headers, service, base)


def _signal(base: str, signal: str) -> str:
    """``<endpoint>/v1/<signal>``, as the OTLP/HTTP specification builds it."""
    return f"{base.rstrip('/')}/v1/{signal}"
