"""DNS questions with dnspython, shared by the dns kind and by every probe that names a
``resolver``: one timed ``dns`` step, and the answer's rcode kept, so NXDOMAIN, NODATA
and SERVFAIL stay apart (getaddrinfo blurs them)."""

from __future__ import annotations

import asyncio
import os

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver

from synthprobe.classify import ProbeFailure
from synthprobe.models import Reason
from synthprobe.steps import Step
from synthprobe.timing import Timeline


def system_nameserver() -> str:
    """The first ``nameserver`` of /etc/resolv.conf, as the system's resolver asks it."""
    try:
        servers = dns.resolver.Resolver(configure=True).nameservers
    except dns.resolver.NoResolverConfiguration:
        servers = []
    if not servers:
        raise ProbeFailure(Reason.DNS_ERROR, "no nameserver in /etc/resolv.conf")
    return str(servers[0])


def _why(exc: Exception) -> str:
    """An OS error by its errno ("Connection refused"), not asyncio's wording of it."""
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


def where(server: str, port: int) -> str:
    """``127.0.0.1:53``, ``[::1]:53``."""
    return f"[{server}]:{port}" if ":" in server else f"{server}:{port}"


async def ask(
    name: str, rdtype: str, server: str | None, port: int, tcp: bool, timeline: Timeline
) -> tuple[dns.message.Message, str, bool]:
    """(response, server asked, whether TCP was used); the query is the timed dns step.
    ``server`` None asks the system's resolver."""
    server = server or system_nameserver()
    asked = where(server, port)
    timeline.target = (server, port)
    timeline.begin(Step.DNS)
    try:
        response, used_tcp = await _query(dns.message.make_query(name, rdtype), server, port, tcp)
    except (OSError, dns.exception.DNSException) as exc:
        # for a DNS probe, a server that cannot be asked is a resolver failure
        timeline.fail(Step.DNS)
        detail = _why(exc)
        raise ProbeFailure(Reason.DNS_ERROR, f"{asked}: {detail}") from exc
    timeline.end(Step.DNS)
    return response, asked, used_tcp


async def _query(
    query: dns.message.Message, server: str, port: int, tcp: bool
) -> tuple[dns.message.Message, bool]:
    if tcp:
        return await dns.asyncquery.tcp(query, server, port=port), True
    # a truncated UDP answer (TC) is asked again over TCP
    response, used_tcp = await dns.asyncquery.udp_with_fallback(query, server, port=port)
    return response, bool(used_tcp)


def answers_of(response: dns.message.Message, rdtype: str) -> tuple[list[str], int | None]:
    """The answers of the asked type, as text, and the smallest TTL among them."""
    wanted = dns.rdatatype.from_text(rdtype)
    texts: list[str] = []
    ttl: int | None = None
    for rrset in response.answer:
        if rrset.rdtype != wanted:
            continue
        texts += [rdata.to_text() for rdata in rrset]
        ttl = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
    return texts, ttl


async def resolve_with(
    server: str, port: int, host: str, ip_version: int | None, timeline: Timeline
) -> list[str]:
    """``host``'s addresses from ``server``: A and AAAA asked at once (IPv4 first), or
    only the family ``ip_version`` asks; labelled as the dns kind labels them."""
    types = {4: ["A"], 6: ["AAAA"]}.get(ip_version or 0, ["A", "AAAA"])
    asked = where(server, port)
    timeline.target = (server, port)
    timeline.details["resolver"] = asked
    timeline.begin(Step.DNS)
    try:
        responses = await asyncio.gather(
            *(_query(dns.message.make_query(host, t), server, port, False) for t in types)
        )
    except (OSError, dns.exception.DNSException) as exc:
        timeline.fail(Step.DNS)
        detail = _why(exc)
        raise ProbeFailure(Reason.DNS_ERROR, f"{host}: resolver {asked}: {detail}") from exc
    timeline.end(Step.DNS)
    addresses: list[str] = []
    for (response, _tcp), rdtype in zip(responses, types, strict=True):
        code = response.rcode()
        if code == dns.rcode.NXDOMAIN:
            raise ProbeFailure(Reason.DNS_NXDOMAIN, f"{host}: NXDOMAIN from resolver {asked}")
        if code != dns.rcode.NOERROR:
            text = dns.rcode.to_text(code)
            raise ProbeFailure(Reason.DNS_ERROR, f"{host}: {text} from resolver {asked}")
        addresses += answers_of(response, rdtype)[0]
    if not addresses:
        family = f"IPv{ip_version} " if ip_version else ""
        raise ProbeFailure(
            Reason.DNS_NO_ADDRESS, f"{host} has no {family}address (NODATA from {asked})"
        )
    return addresses
