"""``dns`` probes: one question to one server with dnspython, the answer told apart.

NXDOMAIN is ``dns.nxdomain``; NOERROR without a record of the asked type (NODATA) is
``dns.no_address``; SERVFAIL, REFUSED and every other error rcode ``dns.error``, and so
is an answer that cannot be used (malformed, cut short, for another question: see
``dnsquery``); no answer before the deadline ``dns.timeout`` (the runner's deadline cuts
the query step); an answer that does not hold what ``expect.answers`` asks ``dns.answer``.
"""

from __future__ import annotations

import dns.rcode

from synthprobe import patterns
from synthprobe.classify import ProbeFailure
from synthprobe.models import AnswerCheck, ProbeSpec, Reason
from synthprobe.probers.base import Network, ProbeOutcome
from synthprobe.probers.dns import DnsSpec, question
from synthprobe.probers.dnsquery import answers_of, ask
from synthprobe.timing import Timeline

KEPT_ANSWERS = 100
"""Answers kept in ``details.answers`` (a 64 KiB answer holds thousands); every one is
still checked against ``expect.answers``. ``details.answers_total`` counts them all."""
KEPT_CHARS = 512
"""Characters kept of one answer in ``details.answers`` (one TXT record can be 64 KiB)."""
NAMED = 10
"""Answers an error message names."""


def _short(answer: str, limit: int) -> str:
    return answer if len(answer) <= limit else answer[:limit] + "..."


def shown(answers: list[str]) -> str:
    """The answers for an error message: the first few, each shortened."""
    text = ", ".join(_short(a, 80) for a in answers[:NAMED])
    more = f" and {len(answers) - NAMED:,} more" if len(answers) > NAMED else ""
    return f"[{text}{more}]"


def check_answers(check: AnswerCheck, answers: list[str]) -> str | None:
    """What is wrong with the answers, or None."""
    normal = {a.rstrip(".").strip('"').lower() for a in answers}
    for wanted in check.contains:
        if wanted.rstrip(".").strip('"').lower() not in normal:
            return f"{wanted} not among the answers {shown(answers)}"
    if check.min is not None and len(answers) < check.min:
        return f"{len(answers)} answers, expected at least {check.min}"
    if check.matches is not None and not any(
        patterns.search(check.matches, a, "a DNS answer") for a in answers
    ):
        return f"no answer matches /{check.matches}/: {shown(answers)}"
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
        details: dict[str, object] = {
            "rcode": rcode,
            "answers": [_short(a, KEPT_CHARS) for a in answers[:KEPT_ANSWERS]],
            "ttl": ttl,
            "server": server,
            "transport": "tcp" if used_tcp else "udp",
        }
        if len(answers) > KEPT_ANSWERS:
            details["answers_total"] = len(answers)
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
