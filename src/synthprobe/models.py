"""The data that flows through synthprobe: specs in, results out.

Everything here is a frozen dataclass or a ``str`` Enum, so a value built by
``config`` cannot be changed by the runner or a prober, and results can be
handed to every output writer without copying.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Generic

if TYPE_CHECKING:
    from synthprobe.patterns import Pattern
    from synthprobe.tracing import ProbeTrace


class Failure(enum.StrEnum):
    """The four failure classes of a target (docs/reference.md), and ``internal``: a bug
    of synthprobe's, recorded for that probe alone and counted as no data."""

    DNS = "dns"
    NETWORK = "network"
    SERVER = "server"
    TIMEOUT = "timeout"
    INTERNAL = "internal"


TARGET_FAILURES = (Failure.DNS, Failure.NETWORK, Failure.SERVER, Failure.TIMEOUT)
"""The classes a target can cause: what reports count and ``retry_on`` may name."""


class State(enum.StrEnum):
    """A probe's state at one location, as the state file keeps it."""

    UP = "up"
    PENDING = "pending"
    DOWN = "down"
    MAINTENANCE = "maintenance"
    """Only on results: inside a window the entry itself does not move."""


class EventKind(enum.StrEnum):
    DOWN = "down"
    UP = "up"
    REMINDER = "reminder"


class Vantage(enum.StrEnum):
    """What the controls said of this machine, on the failures they judge."""

    DOWN = "down"
    """Every control failed too: this machine looked cut off."""


@dataclass(frozen=True, slots=True)
class Standing:
    """What the run's state says of one result: the probe's state after it, since when,
    and the event it raised. ``Standing()``: the run keeps no state."""

    state: State | None = None
    since: str | None = None
    event: EventKind | None = None


NO_STANDING = Standing()


class Reason(enum.StrEnum):
    """The dotted reasons of the contract (docs/reference.md). The part before the dot
    is the failure class, so a reason can never disagree with its class."""

    DNS_NXDOMAIN = "dns.nxdomain"
    DNS_NO_ADDRESS = "dns.no_address"
    DNS_ERROR = "dns.error"
    DNS_TIMEOUT = "dns.timeout"
    DNS_ANSWER = "dns.answer"
    NETWORK_REFUSED = "network.refused"
    NETWORK_RESET = "network.reset"
    NETWORK_UNREACHABLE = "network.unreachable"
    NETWORK_TLS = "network.tls"
    NETWORK_CLOSED = "network.closed"
    NETWORK_PROTOCOL = "network.protocol"
    TIMEOUT_CONNECT = "timeout.connect"
    TIMEOUT_READ = "timeout.read"
    TIMEOUT_WRITE = "timeout.write"
    TIMEOUT_TOTAL = "timeout.total"
    SERVER_STATUS = "server.status"
    SERVER_ASSERTION = "server.assertion"
    SERVER_SLOW = "server.slow"
    SERVER_REDIRECTS = "server.redirects"
    SERVER_LIVE_STALLED = "server.live_stalled"
    SERVER_LIVE_ENDED = "server.live_ended"
    SERVER_LIVE_SLOW = "server.live_slow"
    SERVER_REPLY = "server.reply"
    SERVER_CERT_EXPIRING = "server.cert_expiring"
    SERVER_STALE = "server.stale"
    INTERNAL_ERROR = "internal.error"

    @property
    def failure(self) -> Failure:
        """The class this reason belongs to."""
        return Failure(self.value.partition(".")[0])


class HttpVersion(enum.StrEnum):
    """``http_version``: which HTTP a probe speaks over TLS (plain http is always 1.1)."""

    AUTO = "auto"
    """HTTP/2 when the server offers it by ALPN, else HTTP/1.1: what browsers and apps do."""
    HTTP1 = "1.1"
    HTTP2 = "2"
    """HTTP/2 or fail as ``network.protocol``."""
    HTTP3 = "3"
    """HTTP/3 over QUIC only, like ``curl --http3-only``: https:// URLs only."""


class RunFormat(enum.StrEnum):
    """``probe run --format``: what goes to the terminal (JSON lines go to the file)."""

    TABLE = "table"
    JSON = "json"
    QUIET = "quiet"
    CHANGES = "changes"
    """One line per event (down, up, reminder), nothing else: for cron."""


class ListFormat(enum.StrEnum):
    """``probe list --format`` and ``probe report --format``."""

    TABLE = "table"
    JSON = "json"


class Phase(enum.StrEnum):
    """The timed phases of one attempt, in the order they happen."""

    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    TTFB = "ttfb"
    TRANSFER = "transfer"
    TOTAL = "total"


@dataclass(frozen=True, slots=True)
class JsonCheck:
    """One assertion on a JSON body, addressed by a dotted path."""

    path: str
    """Dotted path with ``[index]`` steps, e.g. ``items[0].id``."""
    exists: bool | None = None
    """True: the path must resolve; False: it must not."""
    equals: Any = None
    """The value at the path must equal this (only checked when ``has_equals``)."""
    has_equals: bool = False
    """Whether ``equals`` was given (``equals: null`` is a valid check)."""
    min_items: int | None = None
    """The value must be a list or object with at least this many entries."""
    max_items: int | None = None
    """The value must be a list or object with at most this many entries."""
    matches: Pattern | None = None
    """The value, as a string, must contain a match of this regex."""
    max_age: float | None = None
    """Seconds: the value is a time (ISO 8601, epoch seconds, or epoch milliseconds above
    10^11) no older than this, else ``server.stale``."""


@dataclass(frozen=True, slots=True)
class AnswerCheck:
    """``expect.answers`` of a dns probe: what the answer section must hold."""

    contains: tuple[str, ...] = ()
    """Each of these must be one of the answers (as text, e.g. ``203.0.113.7``)."""
    min: int | None = None
    """At least this many answers."""
    matches: Pattern | None = None
    """A regex at least one answer must match."""


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a response must look like for the probe to pass."""

    status: tuple[int | str, ...] = ("2xx",)
    """Accepted status codes: ints, or classes such as ``"2xx"``."""
    max_latency: float | None = None
    """Seconds; a slower attempt fails as ``server.slow``."""
    body_contains: str | None = None
    """A substring the (first ``max_body`` bytes of the) body must contain."""
    body_regex: Pattern | None = None
    """A regex that must match somewhere in the body."""
    headers: tuple[tuple[str, Pattern], ...] = ()
    """(header name, regex) pairs: the header must exist and match."""
    json: tuple[JsonCheck, ...] = ()
    """Assertions on the body parsed as JSON."""
    cert_min_days: float | None = None
    """For https/wss: fail as ``server.cert_expiring`` when the certificate ends sooner."""
    answers: AnswerCheck | None = None
    """For kind dns: what the answer must hold, else ``dns.answer``."""


@dataclass(frozen=True, slots=True)
class Capture:
    """``capture: {NAME: SOURCE}``: a value a later step may use as ``{{NAME}}``."""

    name: str
    source: str
    """``json``, ``header``, ``regex`` or ``status``."""
    arg: str = ""
    """The JSON path, header name or pattern (a ``Pattern``, compiled at load)."""


@dataclass(frozen=True, slots=True)
class JourneyStep:
    """One request after the probe's own, in a user's path (log in, feed, video)."""

    name: str
    method: str = "GET"
    url: str = field(kw_only=True)
    """May hold ``{{NAME}}`` (URL-encoded where it stands in the query)."""
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    """Request body text; may hold ``{{NAME}}`` (JSON-escaped in a JSON body)."""
    json_body: bool = False
    """The body is JSON (sent as application/json)."""
    expect: Expectation = field(default_factory=lambda: Expectation())
    capture: tuple[Capture, ...] = ()
    follow_redirects: bool = True
    max_body: int = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Journey:
    """Steps after the probe's own request, with what they capture and mask."""

    main: str = "main"
    """The name of the probe's own request as a step."""
    capture: tuple[Capture, ...] = ()
    """What the probe's own response gives later steps."""
    steps: tuple[JourneyStep, ...] = ()
    mask: tuple[str, ...] = ()
    """Captured values that are secrets: masked like ${VAR} secrets."""


@dataclass(frozen=True, slots=True)
class AlertRule:
    """When consecutive results become events (``alert:``; Gatus's threshold semantics:
    a success resets the failure count and a failure the success count)."""

    failure_threshold: int = 1
    """Consecutive failed results before the probe is DOWN."""
    success_threshold: int = 1
    """Consecutive passing results before a DOWN probe is UP again."""
    remind_every: float | None = None
    """Seconds: while DOWN, a reminder at most this often; None for none."""
    send_resolved: bool = True
    """Send an ``up`` event when a DOWN probe recovers."""
    notify: tuple[str, ...] | None = None
    """Apprise URLs for this probe's events, replacing ``settings.notify``; None: those."""


@dataclass(frozen=True, slots=True)
class Slo:
    """A service level objective (``slo:``): the share of valid results that must be good
    over a rolling window (docs/slo.md)."""

    objective: float
    """A fraction strictly between 0 and 1 (``99.9%`` is 0.999)."""
    window: float = 28 * 86400.0
    """Seconds: the rolling window the objective is judged over (the SRE workbook's 4 weeks)."""
    max_latency: float | None = None
    """Seconds: a passing result slower than this (``timings_ms.total``) is bad; None: any."""


class Weekday(enum.IntEnum):
    """Days of a recurring maintenance window, as ``datetime.weekday()`` numbers them."""

    MONDAY = 0
    TUESDAY = 1
    WEDNESDAY = 2
    THURSDAY = 3
    FRIDAY = 4
    SATURDAY = 5
    SUNDAY = 6


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A time when failures are expected: results inside are neither up nor down."""

    start: float | None = None
    """One-off: epoch seconds of the start."""
    end: float | None = None
    """One-off: epoch seconds of the end."""
    every: tuple[Weekday, ...] = ()
    """Recurring: the days it starts on."""
    at: tuple[int, int] = (0, 0)
    """Recurring: (hour, minute) it starts, local to ``timezone``."""
    duration: float = 0.0
    """Recurring: seconds it lasts."""
    timezone: str = "UTC"
    """Recurring: an IANA zone (``zoneinfo``), so a 03:00 window stays 03:00 across DST."""
    only: tuple[str, ...] = ()
    """Selectors (name, kind or ``tag:NAME``) of the probes it covers; empty: all."""


if TYPE_CHECKING:
    from typing_extensions import TypeVar

    Options = TypeVar("Options", covariant=True, default=object)
else:  # the default exists for the type checker only: typing_extensions costs startup
    from typing import TypeVar

    Options = TypeVar("Options", covariant=True)
"""The type of a kind's own options (``TcpSpec``...): ``ProbeSpec[TcpSpec]`` is what a
tcp prober takes; a bare ``ProbeSpec`` is any probe."""


@dataclass(frozen=True, slots=True)
class ProbeSpec(Generic[Options]):
    """One probe, with defaults merged and ``${VAR}`` expanded."""

    name: str
    """Unique name, used in every output."""
    kind: str
    """Which prober runs it: a key of ``probers.KINDS``."""
    url: str
    """Target URL (expanded, unmasked: print it only through the run's ``Redactor``)."""
    method: str
    """HTTP method (``WS`` for messaging): the kind's default unless the config says."""
    timeout: float = 10.0
    """Seconds: the TOTAL deadline of one attempt."""
    retries: int = 0
    """Extra attempts after a failure whose class is in ``retry_on``."""
    retry_on: frozenset[Failure] = frozenset({Failure.DNS, Failure.NETWORK, Failure.TIMEOUT})
    """Classes that earn a retry."""
    headers: tuple[tuple[str, str], ...] = ()
    """Request headers, in order (expanded, unmasked)."""
    tags: tuple[str, ...] = ()
    """Free labels, selectable with ``--only tag:NAME``."""
    expect: Expectation = Expectation()
    """Assertions on the response (the default: one object, shared, as it is frozen)."""
    follow_redirects: bool = True
    """Follow up to 10 redirects, each hop resolved and timed."""
    verify_tls: bool = True
    """Verify the server certificate and host name."""
    max_body: int = 10 * 1024 * 1024
    """Read no more than this many bytes of body."""
    ip_version: int | None = None
    """4 or 6 to use only that family; None (``auto``) tries every address in order."""
    http_version: HttpVersion = HttpVersion.AUTO
    """Which HTTP to speak over TLS."""
    resolver: tuple[str, int] | None = None
    """(address, port) of the DNS server that resolves the host; None: getaddrinfo."""
    alert: AlertRule = field(default_factory=AlertRule)
    """When its results become events."""
    slo: Slo | None = None
    """Its service level objective for ``probe report`` and ``probe slo-rules``; None: none."""
    trace_context: bool = True
    """Send W3C ``traceparent`` on every request and report ``trace_id`` (tracing.py)."""
    body: str | None = None
    """The probe's own request body (``json:`` or ``body:``), None for none."""
    json_body: bool = False
    """``body`` is JSON (sent as application/json)."""
    journey: Journey | None = None
    """Steps after the probe's own request, for http, feed and upload."""
    options: Options = None  # type: ignore[assignment]  # None: a kind without a block
    """The kind's own block, as its ``KindInfo.parse_block`` read it (an ``UploadSpec``,
    a ``LiveSpec``...); None for kinds without one."""
    source: str = ""
    """``file:line`` where the probe is defined, for messages."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Run-wide settings, merged once: command line > config ``settings:`` > defaults.

    A new setting is a field here, a reader in ``config/schema.py`` and, when it has
    one, an option in ``cli.py``; ``layered`` needs no change.
    """

    concurrency: int = 20
    """Most probes in flight at once."""
    output: str = "probe-results.jsonl"
    """JSONL path, ``-`` for stdout."""
    location: str | None = None
    """Vantage point recorded in every result; None means the host name."""
    junit: str | None = None
    """Path of a JUnit XML report, or None."""
    prom: str | None = None
    """Path of an OpenMetrics textfile, or None."""
    env_proxy: bool = True
    """Honour HTTP_PROXY / HTTPS_PROXY / NO_PROXY from the environment."""
    state: str | None = None
    """State file; None: next to the output file (``.state.json``)."""
    use_state: bool = True
    """False with ``--no-state``: no state read or written, no events."""
    notify: tuple[str, ...] = ()
    """Apprise URLs that receive each run's events."""
    status_url: str | None = None
    """Put in every message."""
    maintenance: tuple[MaintenanceWindow, ...] = ()
    """Windows when results count neither up nor down."""
    maintenance_run: bool = False
    """``--maintenance``: this whole run is one."""
    resolver: tuple[str, int] | None = None
    """The DNS server of probes that name none (``settings.resolver``)."""
    controls: tuple[str, ...] = ()
    """Targets outside the platform (URLs, ``dns:NAME``, ``tcp:HOST:PORT``) that tell a
    dead vantage point from a dead platform."""
    otlp: Otlp | None = None
    """Where each run exports its traces and metrics (``--otlp``, ``settings.otlp``);
    None: the ``OTEL_*`` variables decide, and without them nothing is exported."""

    @classmethod
    def layered(cls, *layers: Mapping[str, Any]) -> Settings:
        """The first layer that sets a field (not None) wins; unset fields keep the
        default. Layers name fields exactly: a typo is a bug, so it raises."""
        names = {f.name for f in fields(cls)}
        chosen: dict[str, Any] = {}
        for layer in layers:
            unknown = set(layer) - names
            if unknown:
                raise TypeError(f"not settings: {sorted(unknown)}")
            for key, value in layer.items():
                if value is not None and key not in chosen:
                    chosen[key] = value
        return cls(**chosen)


@dataclass(frozen=True, slots=True)
class Otlp:
    """An OTLP/HTTP endpoint (``settings.otlp``, ``--otlp``)."""

    endpoint: str
    """Base URL: traces go to ``<endpoint>/v1/traces``, metrics to ``/v1/metrics``."""
    headers: tuple[tuple[str, str], ...] = ()
    """Sent with every export (an API key): never exported, never printed."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of one probe in one run: one JSON line (schema 1).

    Built by the runner with every string already masked, so no writer can leak
    a secret.
    """

    run_id: str
    """ULID shared by every result of a run."""
    ts: str
    """UTC start time of the probe, ISO 8601 with milliseconds and ``Z``."""
    location: str
    """Vantage point."""
    probe: str
    """Probe name."""
    kind: str
    """Probe kind."""
    method: str
    """HTTP method (or ``WS`` for messaging)."""
    url: str
    """Masked URL."""
    ok: bool
    """True when the last attempt passed every expectation."""
    failure: Failure | None
    """Failure class of the last attempt, None when ok."""
    reason: Reason | None
    """Dotted reason, e.g. ``timeout.read``; None when ok."""
    error: str | None
    """Human explanation, masked; None when ok."""
    status: int | None
    """HTTP status of the last response, None when none arrived."""
    attempts: int
    """Attempts made (1 + retries used)."""
    timings_ms: dict[str, float | None]
    """Phase -> milliseconds; None when the phase was not reached or does not apply."""
    bytes_in: int
    """Response body bytes received on the wire."""
    bytes_out: int
    """Request body bytes sent."""
    tags: tuple[str, ...]
    """The probe's tags."""
    details: dict[str, Any]
    """Kind-specific figures (throughput, truncated, remote_ip, ...)."""
    state: State | None = None
    """The probe's state after this result; None without state."""
    since: str | None = None
    """When that state began (UTC ISO 8601)."""
    event: EventKind | None = None
    """The event this result caused, if any."""
    vantage: Vantage | None = None
    """``down`` when every control failed too: this machine, not the target, looked cut
    off (only dns, network and timeout failures are marked)."""
    trace_id: str | None = None
    """The probe's W3C trace id (32 hex digits); None when ``trace_context`` is false."""
    trace: ProbeTrace | None = field(default=None, compare=False, repr=False)
    """Its requests as spans for the export (otel.py); not in the JSON line."""

    @property
    def no_data(self) -> bool:
        """Says nothing about the target (``no_data``): moves no state, counts neither
        up nor down."""
        return no_data(self.failure, self.vantage)

    def line(self, standing: Standing, vantage: Vantage | None = None) -> ProbeResult:
        """The result as its JSON line says it, with what the run decided about it:
        the one place a measured result gains its state, event and vantage."""
        if standing.state is None and vantage is None:
            return self
        return replace(
            self,
            state=standing.state,
            since=standing.since,
            event=standing.event,
            vantage=vantage,
        )

    @property
    def latency_ms(self) -> float | None:
        """Total time of the last attempt."""
        return self.timings_ms.get(Phase.TOTAL.value)


def no_data(failure: Failure | None, vantage: Vantage | None) -> bool:
    """Whether a result says nothing about its target: this machine was cut off (the
    controls' ``vantage``), or synthprobe failed (``internal``). The one place this is
    decided: the state (``ledger.py``), the report (``record.decode``) and the line's
    own ``ProbeResult.no_data`` ask it."""
    return vantage is Vantage.DOWN or failure is Failure.INTERNAL
