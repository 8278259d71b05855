"""``dns`` probes: one question to one server with dnspython, the answer told apart.

NXDOMAIN is ``dns.nxdomain``; NOERROR without a record of the asked type (NODATA) is
``dns.no_address``; SERVFAIL, REFUSED and every other error rcode ``dns.error``; no
answer before the deadline ``dns.timeout`` (the runner's deadline cuts the query step);
an answer that does not hold what ``expect.answers`` asks ``dns.answer``.
"""

from __future__ import annotations

import re

import dns.rcode

from synthprobe.classify import ProbeFailure
from synthprobe.models import AnswerCheck, ProbeSpec, Reason
from synthprobe.probers.base import Network, ProbeOutcome
from synthprobe.probers.dns import DnsSpec, question
from synthprobe.probers.dnsquery import answers_of, ask
from synthprobe.timing import Timeline


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
        response, server, used_tcp = await ask(
            q.name, q.rdtype, q.server, q.port, options.transport == "tcp", timeline
        )
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
