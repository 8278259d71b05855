"""Kind ``dns``: ask a DNS server one question and check the answer. The URL is an
RFC 4501 DNS URI: ``dns:NAME?type=T`` asks the system's resolver (the first
``nameserver`` of /etc/resolv.conf), ``dns://SERVER[:PORT]/NAME?type=T`` that server.
This module is what the config knows of the kind; the prober is in ``prober.py``."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qsl, urlsplit

from synthprobe.config.nodes import Located
from synthprobe.config.readers import Field, Reader, Table
from synthprobe.observes import Observes
from synthprobe.probers.kind import ControlForm, KindInfo

TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "SRV", "PTR", "CAA")
"""Record types a probe may ask for."""


class Transport(enum.StrEnum):
    UDP = "udp"
    """UDP, and TCP again when the answer comes back truncated."""
    TCP = "tcp"


@dataclass(frozen=True, slots=True)
class DnsSpec:
    transport: Transport = Transport.UDP


@dataclass(frozen=True, slots=True)
class Question:
    """What a dns URL asks."""

    name: str
    rdtype: str
    server: str | None
    """None: the system's resolver."""
    port: int = 53


def question(url: str) -> Question:
    """Parse a DNS URI; ValueError says what is wrong."""
    return _question(urlsplit(url))


def _question(parts: SplitResult) -> Question:
    name = parts.path.lstrip("/") if parts.netloc else parts.path
    if not name or any(c.isspace() for c in name) or "/" in name:
        raise ValueError("name the record to ask for: dns:NAME or dns://SERVER/NAME")
    query = dict(parse_qsl(parts.query.replace(";", "&")))
    unknown = set(query) - {"type", "class"}
    if unknown:
        raise ValueError(f"unknown query part {sorted(unknown)[0]!r} (type and class only)")
    if query.get("class", "IN").upper() != "IN":
        raise ValueError("only class IN is asked")
    rdtype = query.get("type", "A").upper()
    if rdtype not in TYPES:
        raise ValueError(f"unknown record type {rdtype!r}: expected one of {', '.join(TYPES)}")
    server = parts.hostname if parts.netloc else None
    if server is not None:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            # the server is asked directly: a name would need a resolver of its own
            raise ValueError(
                f"dns://SERVER must be an IP address, not {server!r} (e.g. dns://127.0.0.1/NAME)"
            ) from None
    return Question(name.rstrip(".") or ".", rdtype, server, parts.port or 53)


def check_url(parts: SplitResult) -> str | None:
    try:
        _question(parts)
    except ValueError as exc:
        return str(exc)
    return None


def _transport(r: Reader, loc: Located, path: str) -> Transport:
    return Transport(r.choice(loc, path, [t.value for t in Transport], "transport"))


FIELDS = Table(Field("transport", _transport))


def parse(r: Reader, loc: Located | None, path: str, probe: Located) -> DnsSpec:
    if loc is None:
        return DnsSpec()
    block = FIELDS.read(r, loc, path)
    block.done()
    return DnsSpec(**block.fields())


CONTROL = ControlForm(
    prefix="dns:",
    usage="dns:NAME",
    check=lambda name: bool(name) and "/" not in name and "?" not in name,
    # the system's resolver, an A question: any answer, even NXDOMAIN, is a network
    spec=lambda name: (f"dns:{name}?type=A", DnsSpec()),
)

KINDS = (
    KindInfo(
        name="dns",
        prober="synthprobe.probers.dns.prober:DnsProber",
        schemes=("dns",),
        default_method="QUERY",
        block="dns",
        parse_block=parse,
        negotiates_http=False,
        check_url=check_url,
        url_has_host=False,
        observes=Observes.ANSWERS,
        control=CONTROL,
    ),
)
