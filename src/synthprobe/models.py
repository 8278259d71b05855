"""The data that flows through synthprobe: specs in, results out.

Everything here is a frozen dataclass or a ``str`` Enum, so a value built by
``config.py`` cannot be changed by the runner or a prober, and results can be
handed to every output writer without copying.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Failure(enum.StrEnum):
    """The four failure classes of the contract (SPEC › Failure classes)."""

    DNS = "dns"
    NETWORK = "network"
    SERVER = "server"
    TIMEOUT = "timeout"


class Kind(enum.StrEnum):
    """What a probe checks. Each kind has a prober in ``probers/``."""

    HTTP = "http"
    FEED = "feed"
    UPLOAD = "upload"
    LIVE = "live"
    MESSAGING = "messaging"


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
    matches: str | None = None
    """The value, as a string, must contain a match of this regex."""


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a response must look like for the probe to pass."""

    status: tuple[int | str, ...] = ("2xx",)
    """Accepted status codes: ints, or classes such as ``"2xx"``."""
    max_latency: float | None = None
    """Seconds; a slower attempt fails as ``server.slow``."""
    body_contains: str | None = None
    """A substring the (first ``max_body`` bytes of the) body must contain."""
    body_regex: str | None = None
    """A regex that must match somewhere in the body."""
    headers: tuple[tuple[str, str], ...] = ()
    """(header name, regex) pairs: the header must exist and match."""
    json: tuple[JsonCheck, ...] = ()
    """Assertions on the body parsed as JSON."""
    cert_min_days: float | None = None
    """For https/wss: fail as ``server.cert_expiring`` when the certificate ends sooner."""


@dataclass(frozen=True, slots=True)
class UploadSpec:
    """The generated payload an ``upload`` probe sends as multipart."""

    size: int = 256 * 1024
    """Bytes of generated payload."""
    field: str = "file"
    """Multipart field name."""
    filename: str = "probe.bin"
    """File name sent in the multipart part."""
    content_type: str = "application/octet-stream"
    """Content type of the part."""
    verify_url: str | None = None
    """Polled after the upload until it answers 2xx; ``{field}`` comes from the upload's
    JSON response (e.g. ``https://cdn.example.com/v/{id}``)."""
    cleanup_method: str = "DELETE"
    """Method of the cleanup request."""
    cleanup_url: str | None = None
    """Sent after the probe whatever its result, with the same ``{field}`` substitutions;
    never changes the result."""


class Variant(enum.StrEnum):
    """Which variant of an HLS master playlist a live probe follows."""

    FIRST = "first"
    HIGHEST = "highest"
    LOWEST = "lowest"


@dataclass(frozen=True, slots=True)
class LiveSpec:
    """What a ``live`` probe checks of an HLS stream."""

    check_advancing: bool = False
    """Refetch the playlist after one target duration: it must have moved on."""
    variant: Variant = Variant.FIRST
    """Variant to follow in a master playlist."""
    segments: int = 1
    """How many of the newest segments to download (0: none)."""
    max_age: float | None = None
    """Seconds: with PROGRAM-DATE-TIME, the newest segment must be younger than this."""


@dataclass(frozen=True, slots=True)
class MessagingSpec:
    """What a ``messaging`` probe sends and waits for."""

    send: str
    """Text message sent once the WebSocket is open."""
    expect: str | None = None
    """A reply containing this text passes."""
    expect_regex: str | None = None
    """A reply matching this regex passes."""


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """One probe, with defaults merged and ``${VAR}`` expanded."""

    name: str
    """Unique name, used in every output."""
    kind: Kind
    """Which prober runs it."""
    url: str
    """Target URL (expanded, unmasked: never print it, print ``display_url``)."""
    method: str
    """HTTP method."""
    timeout: float
    """Seconds: the TOTAL deadline of one attempt."""
    retries: int = 0
    """Extra attempts after a failure whose class is in ``retry_on``."""
    retry_on: frozenset[Failure] = frozenset({Failure.DNS, Failure.NETWORK, Failure.TIMEOUT})
    """Classes that earn a retry."""
    headers: tuple[tuple[str, str], ...] = ()
    """Request headers, in order (expanded, unmasked)."""
    tags: tuple[str, ...] = ()
    """Free labels, selectable with ``--only tag:NAME``."""
    expect: Expectation = field(default_factory=Expectation)
    """Assertions on the response."""
    follow_redirects: bool = True
    """Follow up to 10 redirects, each hop resolved and timed."""
    verify_tls: bool = True
    """Verify the server certificate and host name."""
    max_body: int = 10 * 1024 * 1024
    """Read no more than this many bytes of body."""
    ip_version: int | None = None
    """4 or 6 to use only that family; None (``auto``) tries every address in order."""
    upload: UploadSpec | None = None
    """The payload, for ``kind: upload``."""
    live: LiveSpec | None = None
    """For ``kind: live``."""
    messaging: MessagingSpec | None = None
    """For ``kind: messaging``."""
    source: str = ""
    """``file:line`` where the probe is defined, for messages."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Run-wide settings: config ``settings:`` overridden by the command line."""

    concurrency: int = 20
    """Most probes in flight at once."""
    output: str | None = None
    """JSONL path, ``-`` for stdout, None for the default."""
    location: str | None = None
    """Vantage point recorded in every result; None means the host name."""
    junit: str | None = None
    """Path of a JUnit XML report, or None."""


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
    kind: Kind
    """Probe kind."""
    method: str
    """HTTP method (or ``WS`` for messaging)."""
    url: str
    """Masked URL."""
    ok: bool
    """True when the last attempt passed every expectation."""
    failure: Failure | None
    """Failure class of the last attempt, None when ok."""
    reason: str | None
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

    @property
    def latency_ms(self) -> float | None:
        """Total time of the last attempt."""
        return self.timings_ms.get(Phase.TOTAL.value)
