"""Kind ``tcp``: a TCP (``tcp://``) or TLS (``tls://``) service, such as a cache, a chat
gateway or an RTMP ingest. Connect (and handshake), optionally send a line and wait for
a reply that matches. This module is what the config and ``probe list`` know of the kind;
the prober is in ``prober.py``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult

from synthprobe.config.nodes import Located, fail
from synthprobe.config.readers import Field, Reader, Table, scalar_text
from synthprobe.models import Reason
from synthprobe.observes import Observes
from synthprobe.patterns import Pattern
from synthprobe.probers.kind import ControlForm, KindInfo
from synthprobe.steps import KindStep, Step
from synthprobe.units import is_whole_number


@dataclass(frozen=True, slots=True)
class TcpSpec:
    """What a ``tcp`` probe sends and waits for; all None: a connect (and handshake) check."""

    send: str | None = None
    """Text sent once connected (escapes such as ``\\r\\n`` as YAML gives them)."""
    expect: str | None = None
    """The reply must contain this text."""
    expect_regex: Pattern | None = None
    """The reply must match this regex."""


def _send(r: Reader, loc: Located, path: str) -> str:
    send = r.text(loc, path, allow_scalar=True)
    if send == "":
        fail(loc, path, "must not be empty (leave it out for a connect check)")
    return send


FIELDS = Table(
    Field("send", _send),
    Field("expect", scalar_text),
    Field("expect_regex", Reader.regex),
)


def parse(r: Reader, loc: Located | None, path: str, probe: Located) -> TcpSpec:
    if loc is None:
        return TcpSpec()
    block = FIELDS.read(r, loc, path)
    block.done()
    return TcpSpec(**block.fields())


def check_url(parts: SplitResult) -> str | None:
    """``tcp://host:port`` or ``tls://host:port``: a port, and nothing after it."""
    if parts.port is None:
        return f"a {parts.scheme}:// URL needs a port"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return f"a {parts.scheme}:// URL is host and port only"
    return None


FIRST_BYTE = KindStep("first_byte", Reason.TIMEOUT_READ, "no reply within {t}", counts_as=Step.WAIT)
"""Waiting for the first byte of the reply: counts in ttfb."""
MORE = KindStep("more", Reason.SERVER_REPLY, "reply still not matching after {t}")
"""A reply came but does not match yet: waiting for more of it."""


def _control_ok(hostport: str) -> bool:
    host, _, port = hostport.rpartition(":")
    return bool(host.strip("[]")) and is_whole_number(port) and 1 <= int(port) <= 65535


CONTROL = ControlForm(
    prefix="tcp:",
    usage="tcp:HOST:PORT",
    check=_control_ok,
    spec=lambda hostport: (f"tcp://{hostport}", TcpSpec()),  # a connect: it only has to answer
)

KINDS = (
    KindInfo(
        name="tcp",
        prober="synthprobe.probers.tcp.prober:TcpProber",
        schemes=("tcp", "tls"),
        default_method="TCP",
        block="tcp",
        parse_block=parse,
        steps=(FIRST_BYTE, MORE),
        negotiates_http=False,
        observes=Observes.REPLY,
        check_url=check_url,
        control=CONTROL,
    ),
)
