"""``dns`` probes: one question to one server with dnspython, the answer told apart.

NXDOMAIN is ``dns.nxdomain``; NOERROR without a record of the asked type (NODATA) is
``dns.no_address``; SERVFAIL, REFUSED and every other error rcode ``dns.error``, and so
is an answer that cannot be used (malformed, cut short, for another question: see
``dnsquery``); no answer before the deadline ``dns.timeout`` (the runner's deadline cuts
the query step); an answer that does not hold what ``expect.answers`` asks ``dns.answer``.
"""

from __future__ import annotations

import dns.rcode

from synthprobe.classify import ProbeFailure
from synthprobe.expect import Answers
from synthprobe.models import ProbeSpec, Reason
from synthprobe.probers.attempt import Attempt
from synthprobe.probers.base import Network, ProbeOutcome
from synthprobe.probers.dns import DnsSpec, question
from synthprobe.probers.dnsquery import answers_of, ask

KEPT_ANSWERS = 100
"""Answers kept in ``details.answers`` (a 64 KiB answer holds thousands); every one is
still checked against ``expect.answers``. ``details.answers_total`` counts them all."""
KEPT_CHARS = 512
"""Characters kept of one answer in ``details.answers`` (one TXT record can be 64 KiB)."""


def _short(answer: str, limit: int) -> str:
    return answer if len(answer) <= limit else answer[:limit] + "..."


class DnsProber:
    """Ask the question of the URL; label the answer."""

    def prepare(self, spec: ProbeSpec[DnsSpec]) -> None:
        """Nothing to build."""

    async def probe(self, spec: ProbeSpec[DnsSpec], attempt: Attempt, net: Network) -> ProbeOutcome:
        options = spec.options
        q = question(spec.url)
        response, server, used_tcp = await ask(
            q.name, q.rdtype, q.server, q.port, options.transport == "tcp", attempt
        )
        rcode = dns.rcode.to_text(response.rcode())
        answers, ttl = answers_of(response, q.rdtype)
        details: dict[str, object] = {
            "rcode": rcode,
            "answers": [_short(a, KEPT_CHARS) for a in answers[:KEPT_ANSWERS]],
            "ttl": ttl,
            "server": server,
            "transport": "tcp" if used_tcp else "udp",
        }
        if len(answers) > KEPT_ANSWERS:
            details["answers_total"] = len(answers)
        attempt.details.update(details)
        if response.rcode() == dns.rcode.NXDOMAIN:
            raise ProbeFailure(Reason.DNS_NXDOMAIN, f"{q.name}: NXDOMAIN from {server}")
        if response.rcode() != dns.rcode.NOERROR:
            raise ProbeFailure(Reason.DNS_ERROR, f"{q.name} {q.rdtype}: {rcode} from {server}")
        if not answers:
            raise ProbeFailure(
                Reason.DNS_NO_ADDRESS, f"{q.name}: no {q.rdtype} record (NODATA) from {server}"
            )
        # expect.answers is the runner's to judge, as every expectation is
        return ProbeOutcome(Answers(f"{q.name} {q.rdtype}", tuple(answers)))
