"""``dns`` probes: one question to one server with dnspython, the answer told apart.

NXDOMAIN is ``dns.nxdomain``; NOERROR without a record of the asked type (NODATA) is
``dns.no_address``; SERVFAIL, REFUSED and every other error rcode ``dns.error``; no
answer before the deadline ``dns.timeout`` (the runner's deadline cuts the query step);
an answer that does not hold what ``expect.answers`` asks ``dns.answer``.
"""

from __future__ import annotations

import re

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver

from synthprobe.classify import ProbeFailure
from synthprobe.models import AnswerCheck, ProbeSpec, Reason
from synthprobe.probers.base import Network, ProbeOutcome
from synthprobe.probers.dns import DnsSpec, Question, Transport, question
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


async def ask(
    q: Question, transport: Transport, timeline: Timeline
) -> tuple[dns.message.Message, str, bool]:
    """(response, server asked, whether TCP was used); the query is the timed dns step."""
    server = q.server or system_nameserver()
    where = f"[{server}]:{q.port}" if ":" in server else f"{server}:{q.port}"
    query = dns.message.make_query(q.name, q.rdtype)
    timeline.target = (server, q.port)
    timeline.begin(Step.DNS)
    try:
        if transport is Transport.TCP:
            response = await dns.asyncquery.tcp(query, server, port=q.port)
            used_tcp = True
        else:
            # a truncated UDP answer (TC) is asked again over TCP
            response, used_tcp = await dns.asyncquery.udp_with_fallback(query, server, port=q.port)
    except (OSError, dns.exception.DNSException) as exc:
        # for a DNS probe, a server that cannot be asked is a resolver failure
        timeline.fail(Step.DNS)
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ProbeFailure(Reason.DNS_ERROR, f"{where}: {detail or type(exc).__name__}") from exc
    timeline.end(Step.DNS)
    return response, where, bool(used_tcp)


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


def check_answers(check: AnswerCheck, answers: list[str]) -> str | None:
    """What is wrong with the answers, or None."""
    normal = {a.rstrip(".").strip('"').lower() for a in answers}
    for wanted in check.contains:
        if wanted.rstrip(".").strip('"').lower() not in normal:
            return f"{wanted} not among the answers {answers}"
    if check.min is not None and len(answers) < check.min:
        return f"{len(answers)} answers, expected at least {check.min}"
    if check.matches is not None and not any(re.search(check.matches, a) for a in answers):
        return f"no answer matches /{check.matches}/: {answers}"
    return None


class DnsProber:
    """Ask the question of the URL; label the answer."""

    def prepare(self, spec: ProbeSpec) -> None:
        """Nothing to build."""

    async def probe(self, spec: ProbeSpec, timeline: Timeline, net: Network) -> ProbeOutcome:
        options = spec.options
        assert isinstance(options, DnsSpec)  # the kind's parser always sets it
        q = question(spec.url)
        response, server, used_tcp = await ask(q, options.transport, timeline)
        rcode = dns.rcode.to_text(response.rcode())
        answers, ttl = answers_of(response, q.rdtype)
        details = {
            "rcode": rcode,
            "answers": answers,
            "ttl": ttl,
            "server": server,
            "transport": "tcp" if used_tcp else "udp",
        }
        timeline.details.update(details)
        if response.rcode() == dns.rcode.NXDOMAIN:
            raise ProbeFailure(Reason.DNS_NXDOMAIN, f"{q.name}: NXDOMAIN from {server}")
        if response.rcode() != dns.rcode.NOERROR:
            raise ProbeFailure(Reason.DNS_ERROR, f"{q.name} {q.rdtype}: {rcode} from {server}")
        if not answers:
            raise ProbeFailure(
                Reason.DNS_NO_ADDRESS, f"{q.name}: no {q.rdtype} record (NODATA) from {server}"
            )
        if spec.expect.answers is not None:
            problem = check_answers(spec.expect.answers, answers)
            if problem:
                raise ProbeFailure(Reason.DNS_ANSWER, f"{q.name} {q.rdtype}: {problem}")
        return ProbeOutcome(None, 0, 0, details)
