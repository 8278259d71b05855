"""Is it me or them? Controls: targets outside the platform that should always answer.

When a run has failures of class dns, network or timeout, the controls are probed once,
in parallel, with the same machinery (5 s each). If every control fails too, this
vantage point is cut off: those failures are marked ``"vantage": "down"``, count as no
data in reports, raise no events, and the run exits 3 when every failure is so marked.
Server-class failures are never marked: a 503 proves the network works.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from synthprobe.models import Expectation, Failure, ProbeResult, ProbeSpec, Reason, Vantage
from synthprobe.probers import DEFAULT_KIND, KINDS

CONTROL_TIMEOUT = 5.0
JUDGED = frozenset({Failure.DNS, Failure.NETWORK, Failure.TIMEOUT})
"""Failure classes a dead vantage point can cause; only these are ever marked."""
_ANY_STATUS: tuple[int | str, ...] = ("1xx", "2xx", "3xx", "4xx", "5xx")


def control_spec(index: int, control: str) -> ProbeSpec:
    """``https://...``, or a kind's own form (``dns:NAME``, ``tcp:HOST:PORT``) as a probe
    (the config checked the form). Any HTTP status passes: a control only has to answer."""
    base = ProbeSpec(
        name=f"control-{index + 1}",
        kind=DEFAULT_KIND,
        url=control,
        method=KINDS[DEFAULT_KIND].default_method,
        timeout=CONTROL_TIMEOUT,
        follow_redirects=False,
        expect=Expectation(status=_ANY_STATUS),
        source="settings.controls",
    )
    for info in KINDS.values():
        form = info.control
        if form is not None and control.startswith(form.prefix):
            url, options = form.spec(control.removeprefix(form.prefix))
            return replace(
                base, kind=info.name, url=url, method=info.default_method, options=options
            )
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
    return result.vantage is Vantage.DOWN
