"""Is it me or them? Controls: targets outside the platform that should always answer.

When a run has failures of class dns, network or timeout, the controls are probed once,
in parallel, with the same machinery (5 s each). If every control fails too, this
vantage point is cut off: those failures are marked ``"vantage": "down"``, count as no
data in reports, raise no events, and the run exits 3 when every failure is so marked.
Server-class failures are never marked: a 503 proves the network works.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from synthprobe.models import Expectation, Failure, ProbeResult, ProbeSpec, Reason
from synthprobe.probers.dns import DnsSpec
from synthprobe.probers.tcp import TcpSpec

CONTROL_TIMEOUT = 5.0
JUDGED = frozenset({Failure.DNS, Failure.NETWORK, Failure.TIMEOUT})
"""Failure classes a dead vantage point can cause; only these are ever marked."""
_ANY_STATUS: tuple[int | str, ...] = ("1xx", "2xx", "3xx", "4xx", "5xx")


def control_spec(index: int, control: str) -> ProbeSpec:
    """``https://...``, ``dns:NAME`` or ``tcp:HOST:PORT`` as a probe (the config checked
    the form). Any HTTP status passes: a control only has to answer."""
    base = ProbeSpec(
        name=f"control-{index + 1}",
        kind="http",
        url=control,
        method="GET",
        timeout=CONTROL_TIMEOUT,
        follow_redirects=False,
        expect=Expectation(status=_ANY_STATUS),
        source="settings.controls",
    )
    if control.startswith("dns:"):
        return replace(base, kind="dns", url=f"{control}?type=A", method="QUERY", options=DnsSpec())
    if control.startswith("tcp:"):
        url = f"tcp://{control[4:]}"
        return replace(base, kind="tcp", url=url, method="TCP", options=TcpSpec())
    return base


def answered(result: ProbeResult) -> bool:
    """A control answered when a response of any kind came back: an HTTP error status,
    or a DNS server saying NXDOMAIN, proves this machine reaches the network."""
    if result.ok or result.failure is Failure.SERVER:
        return True
    return result.reason in (Reason.DNS_NXDOMAIN, Reason.DNS_NO_ADDRESS, Reason.DNS_ANSWER)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the controls said."""

    down: bool
    """Every control failed: this machine looks cut off."""
    controls: list[ProbeResult]

    def summary(self) -> str:
        """``control-1 https://... network.unreachable; control-2 ...``."""
        return "; ".join(f"{r.url} {r.reason or 'ok'}" for r in self.controls)


def judge(controls: list[ProbeResult]) -> Verdict:
    return Verdict(
        down=bool(controls) and not any(answered(r) for r in controls), controls=controls
    )


def marked(result: ProbeResult) -> bool:
    return result.vantage == "down"
